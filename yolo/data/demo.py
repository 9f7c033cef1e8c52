"""A real detection set built offline from data that scikit-learn ships.

The 1,797 real 8x8 handwritten digit scans of ``load_digits`` (10 classes) are upscaled and
pasted, several per image, at random scales and positions with partial overlaps, onto crops
of the real photographs of ``load_sample_images``. Boxes are the tight extent of each pasted
digit's ink, so they match the pixels. ``low_light`` darkens with a random gamma and adds
sensor noise, imitating ExDark. Written in VOC layout with a ``data.yaml`` spec, and read
back by the VOC reader like any other VOC set. Deterministic for a seed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from yolo.data.images import write_image

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLIT_SHARES = (("train", 0.7), ("val", 0.15), ("test", 0.15))
YEAR_DIR = "VOCdemo"
INK_THRESHOLD = 0.25  # alpha above which a pixel counts as the digit's ink (its box)


@dataclass(frozen=True)
class DemoConfig:
    images: int = 500
    size: int = 128
    objects: tuple[int, int] = (2, 4)  # per image, inclusive
    digit_scale: tuple[float, float] = (0.2, 0.45)  # digit side as a share of the image side
    max_iou: float = 0.3  # partial overlaps allowed up to this IoU
    low_light: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.images < 20:
            raise ValueError(f"--images must be >= 20 (3 splits, 10 classes), got {self.images}")
        if self.size < 64:
            raise ValueError(f"--size must be >= 64 px, got {self.size}")


def _sources() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    from sklearn.datasets import load_digits, load_sample_images

    digits = load_digits()
    photos = [np.asarray(p, dtype=np.uint8) for p in load_sample_images().images]
    return digits.images.astype(np.float32) / 16.0, digits.target.astype(np.int64), photos


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def _background(rng: np.random.Generator, photos: list[np.ndarray], size: int) -> np.ndarray:
    photo = photos[rng.integers(len(photos))]
    h, w = photo.shape[:2]
    side = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = photo[top : top + side, left : left + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)


def _paste(
    rng: np.random.Generator,
    canvas: np.ndarray,
    digit: np.ndarray,
    side: int,
    placed: list[tuple[int, int, int, int]],
    max_iou: float,
) -> tuple[int, int, int, int] | None:
    """Alpha-blend one digit; returns its ink box (x1, y1, x2, y2) or None if no room."""
    size = canvas.shape[0]
    alpha = cv2.resize(digit, (side, side), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    ys, xs = np.nonzero(alpha > INK_THRESHOLD)
    if not len(xs):
        return None
    for _ in range(30):
        left, top = (int(v) for v in rng.integers(0, size - side + 1, 2))
        box = (left + int(xs.min()), top + int(ys.min()), left + int(xs.max()) + 1,
               top + int(ys.max()) + 1)  # fmt: skip
        if all(_iou(box, other) <= max_iou for other in placed):
            break
    else:
        return None
    region = canvas[top : top + side, left : left + side]
    luminance = region.mean()
    # dark ink on bright ground and vice versa, in a random hue
    base = rng.uniform(0, 70, 3) if luminance > 110 else rng.uniform(185, 255, 3)
    a = alpha[..., None]
    canvas[top : top + side, left : left + side] = region * (1 - a) + base * a
    return box


def _darken(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    gamma = rng.uniform(2.0, 3.5)
    gain = rng.uniform(0.5, 0.85)
    dark = 255.0 * gain * (image / 255.0) ** gamma
    shot = rng.normal(0, 1, image.shape) * np.sqrt(np.maximum(dark, 0) * 0.5)
    read = rng.normal(0, rng.uniform(2, 6), image.shape)
    return dark + shot + read


def _voc_xml(image_id: str, size: int, objects: list[tuple[int, int, int, int, int]]) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = YEAR_DIR
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    dims = ET.SubElement(root, "size")
    for key, value in (("width", size), ("height", size), ("depth", 3)):
        ET.SubElement(dims, key).text = str(value)
    for x1, y1, x2, y2, label in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = NAMES[label]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        bndbox = ET.SubElement(obj, "bndbox")
        # continuous 0-based -> VOC 1-based inclusive
        for key, value in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(bndbox, key).text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8")


def build_demo_set(out: str | Path, config: DemoConfig = DemoConfig()) -> Path:
    """Write the demo set under ``out``; returns the path of its ``data.yaml``."""
    out = Path(out)
    year = out / YEAR_DIR
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (year / sub).mkdir(parents=True, exist_ok=True)
    scans, targets, photos = _sources()
    by_class = [np.flatnonzero(targets == c) for c in range(len(NAMES))]
    counts = [int(config.images * share) for _, share in SPLIT_SHARES]
    counts[0] += config.images - sum(counts)
    number = 0
    for (split, _), count in zip(SPLIT_SHARES, counts):
        rng = np.random.default_rng([config.seed, len(split), count])
        per_image = rng.integers(config.objects[0], config.objects[1] + 1, count)
        # each split draws classes from its own balanced stream: counts differ by at most one
        stream = rng.permutation(np.resize(np.arange(len(NAMES)), int(per_image.sum())))
        ids, cursor = [], 0
        for n in per_image:
            image_rng = np.random.default_rng([config.seed, number])
            image_id = f"{number:06d}"
            canvas = _background(image_rng, photos, config.size)
            placed: list[tuple[int, int, int, int]] = []
            objects = []
            for label in stream[cursor : cursor + n]:
                scan = scans[image_rng.choice(by_class[label])]
                low, high = config.digit_scale
                side = int(image_rng.uniform(low, high) * config.size)
                box = _paste(image_rng, canvas, scan, side, placed, config.max_iou)
                if box is not None:
                    placed.append(box)
                    objects.append((*box, int(label)))
            cursor += n
            if config.low_light:
                canvas = _darken(image_rng, canvas)
            image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
            write_image(year / "JPEGImages" / f"{image_id}.jpg", image)
            (year / "Annotations" / f"{image_id}.xml").write_bytes(
                _voc_xml(image_id, config.size, objects)
            )
            ids.append(image_id)
            number += 1
        (year / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    spec = {
        "format": "voc",
        "root": ".",
        "train": [f"{YEAR_DIR}/train"],
        "val": [f"{YEAR_DIR}/val"],
        "test": [f"{YEAR_DIR}/test"],
        "names": list(NAMES),
    }
    spec_path = out / "data.yaml"
    header = (
        "# yct demo set: sklearn digits pasted on sklearn sample photos"
        f" ({config.images} images, {config.size} px, seed {config.seed}"
        f"{', low light' if config.low_light else ''})\n"
    )
    spec_path.write_text(header + yaml.safe_dump(spec, sort_keys=False))
    return spec_path
