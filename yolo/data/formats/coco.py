"""COCO instances json: ``images``, ``annotations`` (bbox ``[x, y, w, h]``), ``categories``.

Split entries are json files relative to ``root``. An image's ``file_name`` is looked up
under ``root``, then under ``root/<json stem without 'instances_'>`` (the standard
``annotations/instances_val2017.json`` + ``val2017/`` layout). ``iscrowd`` or ``ignore``
objects are kept as *difficult*: present, but ignored by evaluation. Class indices follow
the spec's ``names`` when given, else the categories sorted by id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yolo.data.formats.coco_schema import check_coco_structure
from yolo.data.records import DataError, ImageRecord, Problems, check_box, inside_root
from yolo.data.spec import DatasetSpec
from yolo.safe_json import load_json


def load_coco_json(path: Path, *, need_sizes: bool = True) -> dict[str, Any]:
    """The file's json once its structure is valid (:mod:`.coco_schema`); a dataset needs
    every image's width and height, ground truth for ``yct score`` does not."""
    if not path.is_file():
        raise DataError(f"COCO annotation file not found: {path}")
    data = load_json(path, DataError)
    check_coco_structure(data, path, need_sizes=need_sizes)
    return dict(data)


def coco_names(data: dict[str, Any]) -> tuple[str, ...]:
    return tuple(c["name"] for c in sorted(data["categories"], key=lambda c: c["id"]))


def _resolve(root: Path, json_path: Path, file_name: str) -> Path:
    direct = root / file_name
    if direct.is_file():
        return direct
    folder = json_path.stem.removeprefix("instances_")
    return root / folder / file_name


def read_coco(
    spec: DatasetSpec, split: str, problems: Problems
) -> tuple[list[ImageRecord], tuple[str, ...]]:
    names = spec.names
    records = []
    for entry in spec.entries(split):
        json_path = inside_root(spec.root, spec.root / entry, f"{spec.source}: {split}")
        data = load_coco_json(json_path)
        names = names or coco_names(data)
        index = {name: i for i, name in enumerate(names)}
        category = {c["id"]: c["name"] for c in data["categories"]}
        by_image: dict[Any, list[dict]] = {}
        for ann in data["annotations"]:
            by_image.setdefault(ann.get("image_id"), []).append(ann)
        for image in data["images"]:
            image_path = inside_root(
                spec.root,
                _resolve(spec.root, json_path, str(image.get("file_name", ""))),
                f"{json_path}: image {image['id']!r} file_name",
            )
            if not image_path.is_file():
                problems.report(image_path, "missing image")
                continue
            width, height = int(image.get("width", 0)), int(image.get("height", 0))
            objects = []
            for ann in by_image.get(image["id"], []):
                where = f"{json_path} annotation {ann.get('id')}"
                name = category.get(ann.get("category_id"))
                if name not in index:
                    problems.report(where, "unknown class", f"category_id {ann.get('category_id')}")
                    continue
                try:
                    x, y, w, h = (float(v) for v in ann["bbox"])
                except (KeyError, TypeError, ValueError):
                    problems.report(where, "malformed annotation", "bbox must be [x, y, w, h]")
                    continue
                checked = check_box(problems, where, (x, y, x + w, y + h), width, height)
                if checked is None:
                    continue
                difficult = bool(ann.get("iscrowd", 0)) or bool(ann.get("ignore", 0))
                objects.append((*checked, index[name], difficult))
            records.append(ImageRecord.build(str(image["id"]), image_path, width, height, objects))
    return records, names
