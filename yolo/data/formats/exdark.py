"""ExDark: one folder per class of images; per image ``<image name>.txt`` in bbGt v3 form.

An annotation starts with ``% bbGt version=3``; then one object a line: class name, left,
top, width, height, and seven more numbers (occlusion and ignore fields, unused here). Boxes
are taken as 0-based ``x1 = left, x2 = left + width``. Annotations live beside the images or
in a parallel tree given as ``annotations:`` in the spec (as in ``ExDark_Annno/``). Split
entries are list files of image paths relative to ``root``, or folders (all images below).
"""

from __future__ import annotations

from pathlib import Path

from yolo.data.formats.listing import list_images
from yolo.data.images import size_or_report
from yolo.data.records import ImageRecord, Problems, check_box
from yolo.data.spec import DatasetSpec

HEADER = "% bbGt"
FIELDS = 12


def parse_exdark_annotation(
    path: Path, image_path: Path, image_id: str, names: tuple[str, ...], problems: Problems
) -> ImageRecord | None:
    if not path.is_file():
        problems.report(path, "missing annotation")
        return None
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or not lines[0].startswith(HEADER):
        problems.report(path, "malformed annotation", f"first line must start with '{HEADER}'")
        return None
    size = size_or_report(image_path, problems)
    if size is None:
        return None
    width, height = size
    index = {name: i for i, name in enumerate(names)}
    objects = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        fields = line.split()
        if len(fields) != FIELDS:
            problems.report(
                where, "malformed annotation", f"expected {FIELDS} fields, got {len(fields)}"
            )
            continue
        if fields[0] not in index:
            problems.report(where, "unknown class", f"'{fields[0]}'")
            continue
        try:
            left, top, w, h = (float(v) for v in fields[1:5])
        except ValueError:
            problems.report(where, "malformed annotation", "left top width height must be numbers")
            continue
        checked = check_box(problems, where, (left, top, left + w, top + h), width, height)
        if checked is not None:
            objects.append((*checked, index[fields[0]], False))
    return ImageRecord.build(image_id, image_path, width, height, objects)


def read_exdark(spec: DatasetSpec, split: str, problems: Problems) -> list[ImageRecord]:
    annotation_root = spec.annotations or spec.root
    records = []
    for image_path in list_images(spec, split, problems):
        relative = image_path.relative_to(spec.root)
        annotation = annotation_root / relative.parent / f"{relative.name}.txt"
        record = parse_exdark_annotation(
            annotation, image_path, relative.as_posix(), spec.names, problems
        )
        if record is not None:
            records.append(record)
    return records
