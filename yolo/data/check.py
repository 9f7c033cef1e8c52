"""``yct data check``: what a dataset holds, and every problem in it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from yolo.data.formats import read_split
from yolo.data.images import ImageReadError, read_image
from yolo.data.records import DataError, ImageRecord, Problems
from yolo.data.spec import SPLITS, DatasetSpec

SIZE_BINS = (0, 8, 16, 32, 64, 128, 256, float("inf"))
SIZE_LABELS = ("<8", "8-16", "16-32", "32-64", "64-128", "128-256", ">=256")


@dataclass
class SplitReport:
    split: str
    images: int = 0
    objects: Counter = field(default_factory=Counter)
    images_per_class: Counter = field(default_factory=Counter)
    difficult: int = 0
    size_histogram: list[int] = field(default_factory=lambda: [0] * (len(SIZE_BINS) - 1))
    problems: list[str] = field(default_factory=list)
    notes: Counter = field(default_factory=Counter)
    # the split cannot be read at all (its structure: a list leaving the root, an empty
    # split, a malformed annotation file): bad input, not a sample defect to count
    structural: str | None = None


def _decode_all(records: list[ImageRecord], problems: Problems, split: str) -> None:
    for record in tqdm(records, desc=f"decoding {split}", unit="img", leave=False):
        try:
            image = read_image(record.path)
        except ImageReadError as exc:
            problems.report(record.path, "corrupt image", exc.reason)
            continue
        height, width = image.shape[:2]
        if (width, height) != (record.width, record.height):
            problems.report(
                record.path,
                "image size differs from annotation",
                f"{width}x{height} vs {record.width}x{record.height}",
            )


def check_split(spec: DatasetSpec, split: str, *, decode: bool = True) -> SplitReport:
    """Read a split collecting every problem (nothing raises but an unreadable spec)."""
    problems = Problems("skip")
    report = SplitReport(split)
    try:
        records, _ = read_split(spec, split, problems)
    except DataError as exc:  # e.g. an empty split: still a finding, not a crash
        report.problems = [*problems.messages, str(exc)]
        report.structural = " ".join(str(exc).split())
        return report
    if decode:
        _decode_all(records, problems, split)
    report.images = len(records)
    for record in records:
        report.objects.update(int(c) for c in record.labels)
        report.images_per_class.update({int(c) for c in record.labels})
        report.difficult += int(record.difficult.sum())
        sides = np.sqrt(
            (record.boxes[:, 2] - record.boxes[:, 0]) * (record.boxes[:, 3] - record.boxes[:, 1])
        )
        hist, _ = np.histogram(sides, bins=SIZE_BINS)
        report.size_histogram = [a + int(b) for a, b in zip(report.size_histogram, hist)]
    report.problems = problems.messages
    report.notes = problems.notes
    return report


def check_dataset(
    spec: DatasetSpec, splits: tuple[str, ...] | None = None, *, decode: bool = True
) -> list[SplitReport]:
    chosen = splits or tuple(s for s in SPLITS if spec.splits.get(s))
    return [check_split(spec, split, decode=decode) for split in chosen]


def format_report(spec: DatasetSpec, report: SplitReport, names: tuple[str, ...]) -> str:
    total = sum(report.objects.values())
    lines = [
        f"{spec.source} [{report.split}]: {report.images} images, {total} objects "
        f"({report.difficult} difficult), {len(names)} classes"
    ]
    if total:
        width = max(len(n) for n in names)
        lines.append(f"  {'class':<{width}}  objects  images")
        for i, name in enumerate(names):
            lines.append(
                f"  {name:<{width}}  {report.objects[i]:>7}  {report.images_per_class[i]:>6}"
            )
        labels = SIZE_LABELS
        lines.append(
            "  box size sqrt(w*h) px: "
            + ", ".join(f"{label}: {count}" for label, count in zip(labels, report.size_histogram))
        )
    for kind, count in report.notes.items():
        lines.append(f"  note: {count} × {kind}")
    if report.problems:
        lines.append(f"  {len(report.problems)} problems:")
        lines += [f"    {message}" for message in report.problems]
    else:
        lines.append("  problems: none")
    return "\n".join(lines)
