"""Batches: collate, multi-scale batch sampling, and the DataLoader factory.

A batch keeps each image's id, original size and letterbox so that predictions map back to
original pixels for evaluation and ``detect``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from yolo.data.dataset import DetectionDataset, Sample
from yolo.data.formats import read_split
from yolo.data.records import ImageRecord, Problems
from yolo.data.spec import DatasetSpec, load_spec
from yolo.data.transforms import AugmentConfig, Letterbox


@dataclass
class Batch:
    """A collated batch.

    Attributes:
        images: (B, 3, S, S) float32 in [0, 1].
        targets: (M, 6) ``image index in batch, class, cx, cy, w, h``, box normalised to S.
        difficult: (M,) bool, aligned with ``targets``.
        image_ids: B ids; original_sizes: B (width, height); letterboxes: B mappings.
    """

    images: torch.Tensor
    targets: torch.Tensor
    difficult: torch.Tensor
    image_ids: list[str]
    original_sizes: list[tuple[int, int]]
    letterboxes: list[Letterbox]

    def pin_memory(self) -> Batch:
        self.images = self.images.pin_memory()
        self.targets = self.targets.pin_memory()
        return self

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        self.images = self.images.to(device, non_blocking=non_blocking)
        self.targets = self.targets.to(device, non_blocking=non_blocking)
        return self


def collate(samples: list[Sample]) -> Batch:
    size = samples[0].image.shape[0]
    images = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2)
    rows = []
    for i, s in enumerate(samples):
        if not len(s.boxes):
            continue
        b = s.boxes / size
        xywh = np.c_[(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0],
                     b[:, 3] - b[:, 1]]  # fmt: skip
        rows.append(np.c_[np.full(len(b), i), s.labels, xywh])
    targets = torch.from_numpy(np.concatenate(rows)).float() if rows else torch.zeros(0, 6)
    difficult = torch.from_numpy(np.concatenate([s.difficult for s in samples]).astype(bool))
    return Batch(
        images=images.float().div_(255.0),
        targets=targets,
        difficult=difficult,
        image_ids=[s.image_id for s in samples],
        original_sizes=[s.original_size for s in samples],
        letterboxes=[s.letterbox for s in samples],
    )


class MultiScaleBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of (index, size): one input size per batch, a multiple of 32 in [low, high]."""

    def __init__(
        self,
        length: int,
        batch_size: int,
        sizes: tuple[int, int],
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        low, high = sizes
        if low % 32 or high % 32 or not 32 <= low <= high:
            raise ValueError(
                f"multi-scale sizes must be multiples of 32 with low <= high, got {sizes}"
            )
        self.length, self.batch_size = length, batch_size
        self.choices = list(range(low, high + 1, 32))
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(self.length, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        order = rng.permutation(self.length) if self.shuffle else np.arange(self.length)
        for b in range(len(self)):
            size = int(rng.choice(self.choices))
            chunk = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield [(int(i), size) for i in chunk]


def load_records(
    spec: DatasetSpec | str | Path, split: str, *, on_bad_sample: str | None = None
) -> tuple[list[ImageRecord], tuple[str, ...], Problems]:
    """Read one split; bad samples follow the policy and are summarised in one warning."""
    spec = spec if isinstance(spec, DatasetSpec) else load_spec(spec)
    problems = Problems(on_bad_sample or spec.on_bad_sample or "skip")
    records, names = read_split(spec, split, problems)
    problems.warn_if_any(f"{spec.source} [{split}]")
    return records, names, problems


def create_dataloader(
    spec: DatasetSpec | str | Path,
    split: str,
    *,
    img_size: int,
    batch_size: int,
    augment: AugmentConfig | None = None,
    shuffle: bool = False,
    multi_scale: tuple[int, int] | None = None,
    workers: int = 0,
    pin_memory: bool = False,
    cache: bool = False,
    seed: int = 0,
    on_bad_sample: str | None = None,
) -> DataLoader:
    """A DataLoader of :class:`Batch` over one split of a dataset spec."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    records, names, problems = load_records(spec, split, on_bad_sample=on_bad_sample)
    dataset = DetectionDataset(
        records,
        names,
        img_size=img_size,
        augment=augment,
        cache=cache,
        seed=seed,
        on_bad_sample=problems.policy,
    )
    common: dict[str, Any] = dict(num_workers=workers, pin_memory=pin_memory,
                                  collate_fn=collate, persistent_workers=False)  # fmt: skip
    if multi_scale is not None:
        sampler = MultiScaleBatchSampler(
            len(dataset), batch_size, multi_scale, shuffle=shuffle, seed=seed
        )
        return DataLoader(dataset, batch_sampler=sampler, **common)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, **common
    )


def set_loader_epoch(loader: DataLoader, epoch: int, seed: int) -> None:
    """Make a loader's order and augmentation a function of (seed, epoch) alone.

    This is what lets a resumed run see exactly the batches an uninterrupted one would.
    """
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)
    if isinstance(loader.batch_sampler, MultiScaleBatchSampler):
        loader.batch_sampler.set_epoch(epoch)
    if loader.generator is not None:
        loader.generator.manual_seed(seed * 1_000_003 + epoch)
