"""A detection dataset over image records: load, letterbox, augment, all seeded.

Every random draw comes from a generator seeded by (seed, epoch, index), so a sample is the
same whichever worker makes it and however many workers there are; ``set_epoch`` moves to
the next epoch's draws.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from torch.utils.data import Dataset

from yolo.data.images import ImageReadError, read_image
from yolo.data.records import ON_BAD_SAMPLE, DataError, DataWarning, ImageRecord
from yolo.data.transforms import (
    PAD_VALUE,
    AugmentConfig,
    Letterbox,
    affine_matrix,
    augment_hsv,
    flip_lr,
    letterbox,
    resize_long_side,
    warp_affine,
)


@dataclass
class Sample:
    """One network input and its objects in input pixels.

    ``letterbox`` maps original pixels to input pixels (exact for un-augmented samples, which
    is what evaluation uses to put predictions back on the original image).
    """

    image: np.ndarray  # (S, S, 3) uint8 RGB
    boxes: np.ndarray  # (N, 4) x1 y1 x2 y2 in input pixels
    labels: np.ndarray  # (N,)
    difficult: np.ndarray  # (N,)
    image_id: str
    original_size: tuple[int, int]  # (width, height)
    letterbox: Letterbox


class DetectionDataset(Dataset):
    """Records -> samples at ``img_size`` (or the size a multi-scale sampler asks for)."""

    def __init__(
        self,
        records: list[ImageRecord],
        names: tuple[str, ...],
        *,
        img_size: int,
        augment: AugmentConfig | None = None,
        cache: bool = False,
        seed: int = 0,
        on_bad_sample: str = "skip",
    ) -> None:
        if img_size < 32 or img_size % 32:
            raise ValueError(f"img_size must be a positive multiple of 32, got {img_size}")
        if on_bad_sample not in ON_BAD_SAMPLE:
            raise ValueError(f"on_bad_sample must be one of {ON_BAD_SAMPLE}, got {on_bad_sample!r}")
        self.records = records
        self.names = names
        self.img_size = img_size
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.on_bad_sample = on_bad_sample
        self._cache: list[tuple[np.ndarray, float, float] | None] | None = None
        if cache:
            # filled in the main process, so forked workers share it copy-on-write
            self._cache = [self._read_resized(i, img_size) for i in range(len(records))]

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    # ------------------------------------------------------------------ loading

    def _read_resized(self, index: int, size: int) -> tuple[np.ndarray, float, float] | None:
        record = self.records[index]
        try:
            image = read_image(record.path)
        except ImageReadError as exc:
            if self.on_bad_sample == "error":
                raise DataError(str(exc)) from None
            warnings.warn(f"{exc}; skipped (the next image is used)", DataWarning, stacklevel=2)
            return None
        if image.shape[1] != record.width or image.shape[0] != record.height:
            # the annotation's size disagrees with the pixels: trust the pixels, scale boxes
            sx0, sy0 = image.shape[1] / record.width, image.shape[0] / record.height
        else:
            sx0 = sy0 = 1.0
        resized, sx, sy = resize_long_side(image, size)
        return resized, sx * sx0, sy * sy0

    def load(self, index: int, size: int) -> tuple[int, np.ndarray, np.ndarray, float, float]:
        """(index used, image with long side ``size``, its boxes, x and y scale from the
        original); a bad file is skipped for the next one under the ``skip`` policy."""
        for attempt in range(len(self.records)):
            i = (index + attempt) % len(self.records)
            loaded = self._cache[i] if self._cache is not None else None
            if loaded is not None and max(loaded[0].shape[:2]) != size:
                image, sx, sy = resize_long_side(loaded[0], size)
                loaded = (image, loaded[1] * sx, loaded[2] * sy)
            if loaded is None:
                loaded = self._read_resized(i, size)
            if loaded is None:
                continue
            image, sx, sy = loaded
            boxes = self.records[i].boxes * np.array([sx, sy, sx, sy])
            return i, image, boxes, sx, sy
        raise DataError("no image of the dataset could be read")

    # ------------------------------------------------------------------ samples

    def __getitem__(self, item: int | tuple[int, int]) -> Sample:
        index, size = item if isinstance(item, tuple) else (item, self.img_size)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        cfg = self.augment
        if cfg is not None and cfg.mosaic > 0 and rng.random() < cfg.mosaic:
            index, image, boxes, labels, difficult = self._mosaic(index, size, rng, cfg)
            box = Letterbox(1.0, 1.0, 0, 0)
        else:
            index, resized, boxes, sx, sy = self.load(index, size)
            labels, difficult = self.records[index].labels, self.records[index].difficult
            image, pad = letterbox(resized, size)
            box = Letterbox(sx * pad.sx, sy * pad.sy, pad.left, pad.top)
            boxes = boxes + np.array([pad.left, pad.top, pad.left, pad.top])
            if cfg is not None:
                matrix = affine_matrix(rng, (size, size), (size, size), cfg)
                image, boxes, keep = warp_affine(image, boxes, matrix, (size, size))
                boxes, labels, difficult = boxes[keep], labels[keep], difficult[keep]
        if cfg is not None:
            image = augment_hsv(image, rng, cfg.hsv_h, cfg.hsv_s, cfg.hsv_v)
            if rng.random() < cfg.flip_lr:
                image, boxes = flip_lr(image, boxes)
        record = self.records[index]
        return Sample(
            image=image,
            boxes=boxes,
            labels=labels,
            difficult=difficult,
            image_id=record.image_id,
            original_size=(record.width, record.height),
            letterbox=box,
        )

    def _mosaic(
        self, index: int, size: int, rng: np.random.Generator, cfg: AugmentConfig
    ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Four images around a random centre of a 2S canvas, then one affine back to S.

        Returns the index of the first image (the sample's id), the image, and the boxes,
        labels and difficult flags of all four images that survive.
        """
        others = rng.integers(0, len(self.records), 3).tolist()
        centre_x, centre_y = (float(v) for v in rng.uniform(size / 2, 3 * size / 2, 2))
        canvas = np.full((2 * size, 2 * size, 3), PAD_VALUE, dtype=np.uint8)
        boxes, labels, difficult, used = [], [], [], []
        for k, i in enumerate([index, *others]):
            i, image, image_boxes, _, _ = self.load(int(i), size)
            used.append(i)
            h, w = image.shape[:2]
            # quadrant k puts the image's corner at the centre: 0 top-left, 1 top-right, …
            x0 = round(centre_x - w if k in (0, 2) else centre_x)
            y0 = round(centre_y - h if k in (0, 1) else centre_y)
            cx1, cy1 = max(x0, 0), max(y0, 0)
            cx2, cy2 = min(x0 + w, 2 * size), min(y0 + h, 2 * size)
            canvas[cy1:cy2, cx1:cx2] = image[cy1 - y0 : cy2 - y0, cx1 - x0 : cx2 - x0]
            boxes.append(image_boxes + np.array([x0, y0, x0, y0]))
            labels.append(self.records[i].labels)
            difficult.append(self.records[i].difficult)
        # parts of a box beyond the canvas were never drawn
        all_boxes = np.concatenate(boxes).clip(0, 2 * size)
        matrix = affine_matrix(rng, (2 * size, 2 * size), (size, size), cfg)
        image, all_boxes, keep = warp_affine(canvas, all_boxes, matrix, (size, size))
        return (
            used[0],
            image,
            all_boxes[keep],
            np.concatenate(labels)[keep],
            np.concatenate(difficult)[keep],
        )
