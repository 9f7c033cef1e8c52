"""Geometric and colour augmentation with boxes that follow every pixel exactly.

Images are (H, W, 3) uint8 RGB; boxes (N, 4) float64 x1, y1, x2, y2 in continuous pixel
coordinates (pixel i covers [i, i+1)). cv2 samples at pixel *centres* (integer coordinates),
so every affine matrix here is defined on continuous coordinates and shifted by half a pixel
before cv2 sees it; boxes and content then agree to interpolation precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from yolo.domains import check_range

PAD_VALUE = 114


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation; defaults are the seed's hyper-parameters."""

    degrees: float = 1.98
    translate: float = 0.05
    scale: float = 0.05
    shear: float = 0.641
    hsv_h: float = 0.0138
    hsv_s: float = 0.678
    hsv_v: float = 0.36
    flip_lr: float = 0.5
    mosaic: float = 0.0  # probability of a 4-image mosaic

    def __post_init__(self) -> None:
        for name in ("degrees", "shear"):
            check_range(f"augment {name}", getattr(self, name), 0, 180)
        for name in ("translate", "scale", "hsv_h", "hsv_s", "hsv_v", "flip_lr", "mosaic"):
            check_range(f"augment {name}", getattr(self, name), 0, 1)
        if self.scale >= 1 or self.translate >= 0.5:
            raise ValueError(
                f"augment scale must be < 1 and translate < 0.5, got {self.scale}, {self.translate}"
            )


@dataclass(frozen=True)
class Letterbox:
    """How an original image maps into the network input: ``x_in = x * sx + left``."""

    sx: float
    sy: float
    left: int
    top: int

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        out = boxes.astype(np.float64, copy=True)
        out[:, [0, 2]] = out[:, [0, 2]] * self.sx + self.left
        out[:, [1, 3]] = out[:, [1, 3]] * self.sy + self.top
        return out

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        out = boxes.astype(np.float64, copy=True)
        out[:, [0, 2]] = (out[:, [0, 2]] - self.left) / self.sx
        out[:, [1, 3]] = (out[:, [1, 3]] - self.top) / self.sy
        return out


def resize_long_side(image: np.ndarray, size: int) -> tuple[np.ndarray, float, float]:
    """Resize so the longer side is ``size``; returns the image and the x, y scales."""
    h, w = image.shape[:2]
    ratio = size / max(h, w)
    new_w, new_h = max(1, round(w * ratio)), max(1, round(h * ratio))
    if (new_w, new_h) == (w, h):
        return image, 1.0, 1.0
    interpolation = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    return resized, new_w / w, new_h / h


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Fit into a ``size`` x ``size`` square keeping the aspect ratio; pad with grey."""
    resized, sx, sy = resize_long_side(image, size)
    h, w = resized.shape[:2]
    left, top = (size - w) // 2, (size - h) // 2
    out = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    out[top : top + h, left : left + w] = resized
    return out, Letterbox(sx, sy, left, top)


def flip_lr(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right: x -> W - x."""
    w = image.shape[1]
    flipped = boxes.copy()
    flipped[:, [0, 2]] = w - boxes[:, [2, 0]]
    return np.ascontiguousarray(image[:, ::-1]), flipped


def augment_hsv(
    image: np.ndarray, rng: np.random.Generator, h: float, s: float, v: float
) -> np.ndarray:
    """Random gains on hue, saturation and value (the seed's colour jitter)."""
    gains = rng.uniform(-1, 1, 3) * (h, s, v) + 1
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_RGB2HSV))
    x = np.arange(256, dtype=np.float64)
    lut_h = ((x * gains[0]) % 180).astype(np.uint8)
    lut_s = np.clip(x * gains[1], 0, 255).astype(np.uint8)
    lut_v = np.clip(x * gains[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_h), cv2.LUT(sat, lut_s), cv2.LUT(val, lut_v)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def affine_matrix(
    rng: np.random.Generator,
    in_size: tuple[int, int],
    out_size: tuple[int, int],
    cfg: AugmentConfig,
) -> np.ndarray:
    """A random 3x3 affine on continuous coordinates: rotate, scale, shear about the input
    centre, then place at the output centre with a random translation."""
    in_w, in_h = in_size
    out_w, out_h = out_size
    centre = np.array([[1, 0, -in_w / 2], [0, 1, -in_h / 2], [0, 0, 1]], dtype=np.float64)
    angle = rng.uniform(-cfg.degrees, cfg.degrees)
    scale = rng.uniform(1 - cfg.scale, 1 + cfg.scale)
    rotate = np.eye(3)
    rotate[:2] = cv2.getRotationMatrix2D((0, 0), angle, scale)
    shear = np.eye(3)
    shear[0, 1] = math.tan(math.radians(rng.uniform(-cfg.shear, cfg.shear)))
    shear[1, 0] = math.tan(math.radians(rng.uniform(-cfg.shear, cfg.shear)))
    move = np.eye(3)
    move[0, 2] = rng.uniform(0.5 - cfg.translate, 0.5 + cfg.translate) * out_w
    move[1, 2] = rng.uniform(0.5 - cfg.translate, 0.5 + cfg.translate) * out_h
    return move @ shear @ rotate @ centre


def warp_affine(
    image: np.ndarray, boxes: np.ndarray, matrix: np.ndarray, out_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply a continuous-coordinate affine to image and boxes.

    Returns the warped image, the boxes (the hull of each box's transformed corners, clipped
    to the output) and a boolean keep-mask that drops boxes made degenerate: under 2 px wide
    or high, under 10% of their transformed area left inside, or thinner than 1:20.
    """
    half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    pixel_matrix = np.linalg.inv(half) @ matrix @ half  # cv2 indexes pixel centres
    warped = cv2.warpAffine(
        image,
        pixel_matrix[:2],
        dsize=out_size,
        flags=cv2.INTER_LINEAR,
        borderValue=(PAD_VALUE, PAD_VALUE, PAD_VALUE),
    )
    if not len(boxes):
        return warped, boxes.reshape(0, 4), np.zeros(0, dtype=bool)
    corners = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 2)  # 4 corners per box
    corners = np.c_[corners, np.ones(len(corners))] @ matrix.T
    xy = corners[:, :2].reshape(-1, 4, 2)
    moved = np.c_[xy.min(1), xy.max(1)]
    unclipped_area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
    out_w, out_h = out_size
    moved[:, [0, 2]] = moved[:, [0, 2]].clip(0, out_w)
    moved[:, [1, 3]] = moved[:, [1, 3]].clip(0, out_h)
    keep = box_candidates(moved, unclipped_area)
    return warped, moved, keep


def box_candidates(boxes: np.ndarray, area_before_clip: np.ndarray) -> np.ndarray:
    """Boxes still worth training on after a transform (see :func:`warp_affine`)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    aspect = np.maximum(w / (h + 1e-16), h / (w + 1e-16))
    return (w > 2) & (h > 2) & (w * h > 0.1 * area_before_clip) & (aspect < 20)
