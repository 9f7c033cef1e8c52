"""Write records in the other formats: YOLO-txt and COCO json, each with its dataset spec.

Images are hard-linked into the output (copied where a link is impossible), so a converted
set is self-contained. YOLO-txt has no 'difficult' flag: such objects are written as normal
objects and counted in the returned notes. COCO keeps them as ``iscrowd``/``ignore``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import yaml

from yolo.data.records import ImageRecord

TARGETS = ("yolo", "coco")


def _place_image(record: ImageRecord, folder: Path) -> Path:
    """Link (or copy) the image into ``folder`` under a name unique within the split."""
    folder.mkdir(parents=True, exist_ok=True)
    name = record.image_id.replace("/", "__")
    if not name.lower().endswith(record.path.suffix.lower()):
        name += record.path.suffix
    target = folder / name
    if target.exists():
        target.unlink()
    try:
        os.link(record.path, target)
    except OSError:
        shutil.copy2(record.path, target)
    return target


def write_yolo(splits: dict[str, list[ImageRecord]], names: tuple[str, ...], out: Path) -> Counter:
    notes: Counter = Counter()
    spec: dict[str, object] = {"format": "yolo", "root": "."}
    for split, records in splits.items():
        lines = []
        for record in records:
            image = _place_image(record, out / "images" / split)
            label = out / "labels" / split / f"{image.stem}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            rows = []
            for (x1, y1, x2, y2), cls in zip(record.boxes, record.labels):
                cx, cy = (x1 + x2) / 2 / record.width, (y1 + y2) / 2 / record.height
                w, h = (x2 - x1) / record.width, (y2 - y1) / record.height
                rows.append(f"{int(cls)} {cx:.12g} {cy:.12g} {w:.12g} {h:.12g}")
            label.write_text("".join(r + "\n" for r in rows))
            notes["difficult objects written as normal (YOLO-txt has no flag)"] += int(
                record.difficult.sum()
            )
            lines.append(image.relative_to(out).as_posix())
        (out / f"{split}.txt").write_text("".join(line + "\n" for line in lines))
        spec[split] = [f"{split}.txt"]
    spec["names"] = list(names)
    (out / "data.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return +notes


def coco_dict(records: list[ImageRecord], names: tuple[str, ...], file_names: list[str]) -> dict:
    """COCO instances dict; category ids are 1-based class indices, image ids 1-based."""
    images: list[dict] = []
    annotations: list[dict] = []
    for number, (record, file_name) in enumerate(zip(records, file_names), start=1):
        images.append({"id": number, "file_name": file_name, "width": record.width,
                       "height": record.height})  # fmt: skip
        for (x1, y1, x2, y2), cls, difficult in zip(record.boxes, record.labels, record.difficult):
            w, h = float(x2 - x1), float(y2 - y1)
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": number,
                "category_id": int(cls) + 1,
                "bbox": [float(x1), float(y1), w, h],
                "area": w * h,
                "iscrowd": int(difficult),
                "ignore": int(difficult),
            })  # fmt: skip
    categories = [{"id": i + 1, "name": n, "supercategory": "none"} for i, n in enumerate(names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_coco(splits: dict[str, list[ImageRecord]], names: tuple[str, ...], out: Path) -> Counter:
    spec: dict[str, object] = {"format": "coco", "root": "."}
    for split, records in splits.items():
        files = [
            _place_image(r, out / "images" / split).relative_to(out).as_posix() for r in records
        ]
        path = out / "annotations" / f"{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(coco_dict(records, names, files)))
        spec[split] = [f"annotations/{split}.json"]
    spec["names"] = list(names)
    (out / "data.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return Counter()


def convert(
    splits: dict[str, list[ImageRecord]], names: tuple[str, ...], target: str, out: str | Path
) -> Counter:
    """Write ``splits`` as ``target`` under ``out``; returns counted notes."""
    if target not in TARGETS:
        raise ValueError(f"--to must be one of {', '.join(TARGETS)}, got '{target}'")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    writer = write_yolo if target == "yolo" else write_coco
    return writer(splits, names, out)
