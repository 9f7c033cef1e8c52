"""Small datasets of every format, written by the tests themselves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from PIL import Image


def write_image(path: Path, width: int, height: int, value: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), value, dtype=np.uint8)).save(path)


def voc_xml(objects: list[dict], width: int, height: int) -> str:
    parts = [f"<annotation><size><width>{width}</width><height>{height}</height>"
             "<depth>3</depth></size>"]  # fmt: skip
    for o in objects:
        parts.append(
            f"<object><name>{o['name']}</name><difficult>{int(o.get('difficult', 0))}</difficult>"
            f"<bndbox><xmin>{o['box'][0]}</xmin><ymin>{o['box'][1]}</ymin>"
            f"<xmax>{o['box'][2]}</xmax><ymax>{o['box'][3]}</ymax></bndbox></object>"
        )
    return "".join(parts) + "</annotation>"


def make_voc(
    root: Path,
    images: dict[str, tuple[int, int, list[dict]]],
    year: str = "VOC2007",
    split: str = "trainval",
    names: list[str] | None = None,
) -> Path:
    """``images``: id -> (width, height, objects with name, box (VOC 1-based), difficult)."""
    base = root / year
    for image_id, (w, h, objects) in images.items():
        write_image(base / "JPEGImages" / f"{image_id}.jpg", w, h)
        (base / "Annotations").mkdir(parents=True, exist_ok=True)
        (base / "Annotations" / f"{image_id}.xml").write_text(voc_xml(objects, w, h))
    sets = base / "ImageSets" / "Main"
    sets.mkdir(parents=True, exist_ok=True)
    (sets / f"{split}.txt").write_text("".join(f"{i}\n" for i in images))
    spec = {"format": "voc", "root": ".", "train": [f"{year}/{split}"]}
    if names:
        spec["names"] = names
    path = root / "voc.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def make_exdark(root: Path, images: dict[str, tuple[int, int, list[str]]]) -> Path:
    """``images``: relative path -> (width, height, annotation lines after the header)."""
    for rel, (w, h, lines) in images.items():
        write_image(root / "images" / rel, w, h)
        ann = root / "anno" / f"{rel}.txt"
        ann.parent.mkdir(parents=True, exist_ok=True)
        ann.write_text("% bbGt version=3\n" + "".join(line + "\n" for line in lines))
    (root / "images" / "train.txt").write_text("".join(f"{rel}\n" for rel in images))
    path = root / "exdark.yaml"
    path.write_text(yaml.safe_dump(
        {"format": "exdark", "root": "images", "annotations": "anno", "train": ["train.txt"]}
    ))  # fmt: skip
    return path


def make_yolo(
    root: Path,
    images: dict[str, tuple[int, int, list[str] | None]],
    names: list[str],
    beside: bool = False,
) -> Path:
    """``images``: file name -> (width, height, label lines or None for no label file)."""
    for name, (w, h, lines) in images.items():
        image = root / "images" / name
        write_image(image, w, h)
        if lines is None:
            continue
        label = (
            image.with_suffix(".txt")
            if beside
            else root / "labels" / Path(name).with_suffix(".txt")
        )
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(line + "\n" for line in lines))
    (root / "train.txt").write_text("".join(f"images/{n}\n" for n in images))
    path = root / "yolo.yaml"
    path.write_text(yaml.safe_dump({"format": "yolo", "root": ".", "train": "train.txt",
                                    "names": names}))  # fmt: skip
    return path


def make_coco(root: Path, data: dict, sizes: dict[str, tuple[int, int]]) -> Path:
    for file_name, (w, h) in sizes.items():
        write_image(root / "val2017" / file_name, w, h)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    path = root / "coco.yaml"
    path.write_text(yaml.safe_dump({"format": "coco", "root": ".",
                                    "val": ["annotations/instances_val2017.json"]}))  # fmt: skip
    return path
