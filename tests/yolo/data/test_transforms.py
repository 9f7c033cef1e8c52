"""Augmentations keep boxes on the drawn content: draw a box, transform, find its pixels."""

from __future__ import annotations

import numpy as np
import pytest

from yolo.data.transforms import (
    AugmentConfig,
    Letterbox,
    affine_matrix,
    augment_hsv,
    flip_lr,
    letterbox,
    warp_affine,
)


def _canvas(w: int, h: int, box: tuple[int, int, int, int]) -> np.ndarray:
    image = np.zeros((h, w, 3), dtype=np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = 255
    return image


def _ink_box(image: np.ndarray, threshold: int = 127) -> np.ndarray:
    ys, xs = np.nonzero(image[..., 0] > threshold)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def test_letterbox_maps_boxes_exactly_and_back() -> None:
    box = (40, 10, 100, 50)
    image = _canvas(160, 80, box)
    out, lb = letterbox(image, 64)
    assert out.shape == (64, 64, 3) and (lb.sx, lb.sy, lb.left, lb.top) == (0.4, 0.4, 0, 16)
    moved = lb.to_input(np.array([box], dtype=float))[0]
    np.testing.assert_allclose(_ink_box(out), moved, atol=1.0)
    np.testing.assert_allclose(lb.to_original(lb.to_input(np.array([box], float)))[0], box)
    assert np.all(out[:16] == 114) and np.all(out[-16:] == 114)


def test_flip_moves_boxes_with_the_pixels() -> None:
    box = (5, 7, 20, 30)
    image = _canvas(64, 48, box)
    flipped, boxes = flip_lr(image, np.array([box], dtype=float))
    assert boxes[0].tolist() == [44, 7, 59, 30]
    assert _ink_box(flipped).tolist() == boxes[0].tolist()


@pytest.mark.parametrize("seed", range(6))
def test_random_affine_keeps_boxes_on_content(seed: int) -> None:
    cfg = AugmentConfig(degrees=25, translate=0.1, scale=0.3, shear=8)
    box = (40, 50, 90, 80)
    image = _canvas(128, 128, box)
    rng = np.random.default_rng(seed)
    matrix = affine_matrix(rng, (128, 128), (128, 128), cfg)
    warped, boxes, keep = warp_affine(image, np.array([box], dtype=float), matrix, (128, 128))
    assert keep.tolist() == [True]
    # the hull of an affine image of a rectangle is the hull of its corners; pixels agree to
    # the bilinear interpolation's half-pixel
    np.testing.assert_allclose(_ink_box(warped), boxes[0], atol=1.0)


def test_affine_with_the_seed_defaults_is_nearly_identity_in_expectation() -> None:
    cfg = AugmentConfig()
    matrices = [affine_matrix(np.random.default_rng(s), (100, 100), (100, 100), cfg)
                for s in range(200)]  # fmt: skip
    mean = np.mean(matrices, axis=0)
    np.testing.assert_allclose(mean[:2, :2], np.eye(2), atol=0.02)
    np.testing.assert_allclose(mean[:2, 2], [0, 0], atol=1.5)


def test_degenerate_boxes_are_dropped() -> None:
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 30, 30], [0, 0, 64, 1.5], [60, 60, 64, 64]], dtype=float)
    shift = np.array([[1, 0, 3], [0, 1, 3], [0, 0, 1]], dtype=float)  # move right/down by 3
    _, moved, keep = warp_affine(image, boxes, shift, (64, 64))
    # the thin box is under 2 px high; the corner box loses most of its area off the edge
    assert keep.tolist() == [True, False, False]
    assert moved[0].tolist() == [13, 13, 33, 33]


def test_hsv_changes_colour_not_geometry() -> None:
    image = _canvas(32, 32, (4, 4, 20, 20))
    image[..., 1] = 100
    out = augment_hsv(image, np.random.default_rng(0), 0.0138, 0.678, 0.36)
    assert out.shape == image.shape and not np.array_equal(out, image)
    assert np.array_equal(out.sum(-1) == 0, image.sum(-1) == 0)  # black stays black


def test_augment_config_validation() -> None:
    with pytest.raises(ValueError, match="augment flip_lr must be in \\[0, 1\\], got 2"):
        AugmentConfig(flip_lr=2)
    with pytest.raises(ValueError, match=r"augment degrees must be in \[0, 180\], got -1"):
        AugmentConfig(degrees=-1)


def test_letterbox_identity() -> None:
    lb = Letterbox(1.0, 1.0, 0, 0)
    boxes = np.array([[1.5, 2.5, 3.5, 4.5]])
    assert np.array_equal(lb.to_input(boxes), boxes)
