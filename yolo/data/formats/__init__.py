"""Readers by format name: each turns a split of a dataset spec into image records."""

from __future__ import annotations

from yolo.data.formats.coco import read_coco
from yolo.data.formats.exdark import read_exdark
from yolo.data.formats.voc import read_voc
from yolo.data.formats.yolo_txt import read_yolo
from yolo.data.records import DataError, ImageRecord, Problems
from yolo.data.spec import DatasetSpec


def read_split(
    spec: DatasetSpec, split: str, problems: Problems
) -> tuple[list[ImageRecord], tuple[str, ...]]:
    """(records, class names) of one split; an empty split is always an error."""
    if spec.format == "coco":
        records, names = read_coco(spec, split, problems)
    else:
        reader = {"voc": read_voc, "exdark": read_exdark, "yolo": read_yolo}[spec.format]
        records, names = reader(spec, split, problems), spec.names
    if not records:
        raise DataError(f"{spec.source}: split '{split}' has no usable images")
    return records, names
