"""YOLO text labels: ``class cx cy w h`` normalised to [0, 1], one ``.txt`` per image.

The label of ``…/images/x.jpg`` is ``…/labels/x.txt`` (ultralytics), else ``…/images/x.txt``
beside it (darknet). An image with neither is a background image (no objects), as both tools
treat it; those are counted and reported at the end of loading.
"""

from __future__ import annotations

from pathlib import Path

from yolo.data.formats.listing import list_images
from yolo.data.images import size_or_report
from yolo.data.records import ImageRecord, Problems, check_box
from yolo.data.spec import DatasetSpec


def label_path(image_path: Path) -> Path:
    """The ultralytics location of an image's label file (``images`` -> ``labels``)."""
    parts = list(image_path.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image_path.with_suffix(".txt")


def parse_yolo_label(
    path: Path | None, image_path: Path, image_id: str, num_classes: int, problems: Problems
) -> ImageRecord | None:
    size = size_or_report(image_path, problems)
    if size is None:
        return None
    width, height = size
    objects = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path else []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        fields = line.split()
        try:
            if len(fields) != 5:
                raise ValueError
            cls = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError:
            problems.report(where, "malformed annotation", "expected 'class cx cy w h'")
            continue
        if not 0 <= cls < num_classes:
            problems.report(where, "unknown class", f"id {cls}; names has {num_classes}")
            continue
        box = (
            (cx - w / 2) * width,
            (cy - h / 2) * height,
            (cx + w / 2) * width,
            (cy + h / 2) * height,
        )
        checked = check_box(problems, where, box, width, height)
        if checked is not None:
            objects.append((*checked, cls, False))
    return ImageRecord.build(image_id, image_path, width, height, objects)


def read_yolo(spec: DatasetSpec, split: str, problems: Problems) -> list[ImageRecord]:
    records = []
    for image_path in list_images(spec, split, problems):
        label = next(
            (p for p in (label_path(image_path), image_path.with_suffix(".txt")) if p.is_file()),
            None,
        )
        if label is None:
            problems.note("images without a label file (background)")
        try:
            image_id = image_path.relative_to(spec.root).as_posix()
        except ValueError:
            image_id = image_path.as_posix()
        record = parse_yolo_label(label, image_path, image_id, spec.num_classes, problems)
        if record is not None:
            records.append(record)
    return records
