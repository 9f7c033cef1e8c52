"""Pascal VOC: ``<year dir>/Annotations/<id>.xml``, ``JPEGImages``, ``ImageSets/Main/<set>.txt``.

Split entries are ``<year dir>/<image set>`` (``VOC2007/trainval``); several combine, as the
seed trained on 2007+2012 trainval. XML boxes are 1-based inclusive pixels: a box with
``xmin=1, xmax=W`` covers the whole image, so ``x1 = xmin - 1`` and ``x2 = xmax``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from yolo.data.images import size_or_report
from yolo.data.records import DataError, ImageRecord, Problems, check_box, inside_root
from yolo.data.spec import DatasetSpec


def _image_set(spec: DatasetSpec, entry: str) -> tuple[Path, list[str]]:
    year, _, image_set = entry.rstrip("/").rpartition("/")
    if not year or not image_set:
        raise DataError(f"{spec.source}: VOC split entry '{entry}' must be '<year dir>/<set>'")
    year_dir = inside_root(spec.root, spec.root / year, f"{spec.source}: {entry}")
    list_file = year_dir / "ImageSets" / "Main" / f"{image_set}.txt"
    if not list_file.is_file():
        raise DataError(f"{spec.source}: image set list not found: {list_file}")
    ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    return year_dir, ids


def _text(node: ET.Element | None, tag: str) -> str | None:
    child = node.find(tag) if node is not None else None
    return None if child is None or child.text is None else child.text.strip()


def parse_voc_xml(
    xml_path: Path, image_path: Path, image_id: str, names: tuple[str, ...], problems: Problems
) -> ImageRecord | None:
    """One annotation file -> record; bad objects are reported to ``problems``."""
    try:
        root = ET.parse(xml_path).getroot()
    except FileNotFoundError:
        problems.report(xml_path, "missing annotation")
        return None
    except ET.ParseError as exc:
        problems.report(xml_path, "malformed annotation", str(exc))
        return None
    size_node = root.find("size")
    try:
        width = int(float(_text(size_node, "width") or 0)) if size_node is not None else 0
        height = int(float(_text(size_node, "height") or 0)) if size_node is not None else 0
    except (TypeError, ValueError):
        width = height = 0
    image_size = size_or_report(image_path, problems)  # the header only: cheap
    if image_size is None:
        return None
    if (width, height) != image_size and width > 0 and height > 0:
        # some VOC-style tools write 0 (the image knows); any other size that disagrees
        # means boxes drawn for another image
        problems.report(xml_path, "size disagrees with the image",
                        f"<size> {width}x{height}, image %dx%d" % image_size)  # fmt: skip
        return None
    width, height = image_size
    index = {name: i for i, name in enumerate(names)}
    objects = []
    for number, obj in enumerate(root.iter("object")):
        where = f"{xml_path} object {number}"
        name = _text(obj, "name")
        if name not in index:
            problems.report(where, "unknown class", f"'{name}'")
            continue
        box = obj.find("bndbox")
        try:
            xmin, ymin, xmax, ymax = (
                float(_text(box, k) or "") for k in ("xmin", "ymin", "xmax", "ymax")
            )
        except (TypeError, ValueError, AttributeError):
            problems.report(
                where, "malformed annotation", "bndbox needs numeric xmin ymin xmax ymax"
            )
            continue
        checked = check_box(problems, where, (xmin - 1, ymin - 1, xmax, ymax), width, height)
        if checked is None:
            continue
        difficult = _text(obj, "difficult") in ("1", "true", "True")
        objects.append((*checked, index[name], difficult))
    return ImageRecord.build(image_id, image_path, width, height, objects)


def read_voc(spec: DatasetSpec, split: str, problems: Problems) -> list[ImageRecord]:
    records = []
    for entry in spec.entries(split):
        year_dir, ids = _image_set(spec, entry)
        for image_id in ids:
            image_path = inside_root(spec.root, year_dir / "JPEGImages" / f"{image_id}.jpg",
                                     f"{year_dir} image set: id {image_id!r}")  # fmt: skip
            if not image_path.is_file():
                problems.report(image_path, "missing image")
                continue
            xml_path = year_dir / "Annotations" / f"{image_id}.xml"
            record = parse_voc_xml(
                xml_path, image_path, f"{year_dir.name}/{image_id}", spec.names, problems
            )
            if record is not None:
                records.append(record)
    return records
