"""What every reader produces: one record per image, and the policy for bad samples.

Boxes are float64 ``(N, 4)`` ``x1, y1, x2, y2`` in continuous 0-based pixel coordinates of
the original image (the full image is ``0, 0, W, H``); each format converts into this
exactly (e.g. VOC's 1-based inclusive ``xmin`` becomes ``xmin - 1``).
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ON_BAD_SAMPLE = ("error", "skip")
# Boxes may overshoot the image by this much (annotation rounding) and are clipped; beyond
# it they are reported as outside the image.
EDGE_TOLERANCE_PX = 1.0


class DataError(ValueError):
    """A bad sample under ``on_bad_sample: error``: names the file and what is wrong."""


class DataWarning(UserWarning):
    """The end-of-loading summary of what ``on_bad_sample: skip`` skipped."""


@dataclass(frozen=True)
class ImageRecord:
    """One image and its objects, in original pixels.

    Attributes:
        image_id: unique within the dataset (a VOC id, a relative path, a COCO id).
        path: the image file.
        width, height: original size in pixels.
        boxes: (N, 4) float64 x1, y1, x2, y2.
        labels: (N,) int64 class indices into the dataset's names.
        difficult: (N,) bool; VOC 'difficult' / COCO 'iscrowd', ignored by evaluation.
    """

    image_id: str
    path: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray

    @staticmethod
    def build(
        image_id: str,
        path: Path,
        width: int,
        height: int,
        objects: list[tuple[float, float, float, float, int, bool]],
    ) -> ImageRecord:
        boxes = np.array([o[:4] for o in objects], dtype=np.float64).reshape(-1, 4)
        labels = np.array([o[4] for o in objects], dtype=np.int64)
        difficult = np.array([o[5] for o in objects], dtype=bool)
        return ImageRecord(image_id, path, int(width), int(height), boxes, labels, difficult)


@dataclass
class Problems:
    """Collects bad samples: raises at once (``error``) or counts them (``skip``)."""

    policy: str = "error"
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    notes: Counter = field(default_factory=Counter)  # counted facts that are not errors
    messages: list[str] = field(default_factory=list)  # every problem, for `yct data check`

    def __post_init__(self) -> None:
        if self.policy not in ON_BAD_SAMPLE:
            raise ValueError(
                f"on_bad_sample must be one of {', '.join(ON_BAD_SAMPLE)}, got '{self.policy}'"
            )

    def report(self, where: Path | str, kind: str, detail: str = "") -> None:
        """One bad image or object; ``kind`` is the counted category, ``detail`` the specifics."""
        message = f"{where}: {kind}" + (f" ({detail})" if detail else "")
        if self.policy == "error":
            raise DataError(message)
        self.counts[kind] += 1
        self.examples.setdefault(kind, message)
        self.messages.append(message)

    def note(self, kind: str) -> None:
        """Count something worth telling that is allowed (e.g. a YOLO image with no label)."""
        self.notes[kind] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        parts = [f"{n} × {kind} (e.g. {self.examples[kind]})" for kind, n in self.counts.items()]
        parts += [f"{n} × {kind}" for kind, n in self.notes.items()]
        skipped = f"skipped {self.total} bad images/objects" if self.total else "nothing skipped"
        return skipped + (": " + "; ".join(parts) if parts else "")

    def warn_if_any(self, what: str) -> None:
        """The end-of-loading line: every skipped sample and every note, counted."""
        if self.total or self.notes:
            warnings.warn(f"{what}: {self.summary()}", DataWarning, stacklevel=2)


def inside_root(root: Path, path: Path, where: str) -> Path:
    """``path`` if it lies under the dataset root (symlinks and ``..`` resolved), else a
    ``DataError``: a list file or annotation must not make a reader open files anywhere on
    disk. Always an error, whatever ``on_bad_sample`` says: it is the dataset's structure."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise DataError(f"{where}: paths must stay inside the dataset root {root}, got {path}")
    return path


def check_box(
    problems: Problems,
    where: Path | str,
    box: tuple[float, float, float, float],
    width: int,
    height: int,
) -> tuple[float, float, float, float] | None:
    """Validate one box against its image; returns it (clipped within tolerance) or None."""
    x1, y1, x2, y2 = box
    if not all(np.isfinite(box)):
        problems.report(where, "non-finite box", f"{box}")
        return None
    if x2 <= x1 or y2 <= y1:
        problems.report(where, "box with non-positive size", f"x1={x1} y1={y1} x2={x2} y2={y2}")
        return None
    tol = EDGE_TOLERANCE_PX
    if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
        problems.report(
            where,
            "box outside the image",
            f"x1={x1:g} y1={y1:g} x2={x2:g} y2={y2:g} in a {width}x{height} image",
        )
        return None
    return (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
