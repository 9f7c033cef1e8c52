"""The structure of a COCO instances json, checked before a single image is read.

pydantic states the types (an id is an integer or a string, a width a positive integer,
``images`` a list of objects) and reports where a value breaks them as a JSON path; the
rules pydantic cannot state (ids unique, every annotation naming an existing image) follow
it. Structure is always an error; a bad box or an unknown category in one annotation is a
sample defect that ``on_bad_sample`` decides (:mod:`yolo.data.records`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from yolo.data.records import DataError

Id = StrictInt | StrictStr


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # COCO files carry more keys than we read


class CocoImage(_Open):
    id: Id
    file_name: StrictStr = ""
    width: int | None = Field(default=None, gt=0, le=2**20, strict=True)
    height: int | None = Field(default=None, gt=0, le=2**20, strict=True)


class CocoAnnotation(_Open):
    id: Id | None = None
    image_id: Id
    category_id: Id
    bbox: Any = None  # a sample-level value: checked per annotation by the reader


class CocoCategory(_Open):
    id: Id
    name: StrictStr


class CocoInstances(_Open):
    images: list[CocoImage]
    annotations: list[CocoAnnotation]
    categories: list[CocoCategory]


def _where(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "the root"


def _rule(error: Any) -> str:
    """``images[0].id: must be an integer or a string, got [1]`` from a pydantic error."""
    location = tuple(error["loc"])
    if location and location[-1] in ("int", "str"):  # a branch of the Id union
        location, rule = location[:-1], "must be an integer or a string"
    elif error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        rule = "must be a JSON object"
    else:
        rule = error["msg"].replace("Input should be", "must be").replace("Field", "is")
        rule = rule[0].lower() + rule[1:]
    got = repr(error.get("input"))
    got = got if len(got) <= 60 else got[:57] + "..."
    return f"{_where(location)}: {rule}, got {got}"


def check_coco_structure(data: Any, path: Path, *, need_sizes: bool) -> CocoInstances:
    """The validated file, or a ``DataError`` naming the file, JSON path, rule and value."""
    try:
        instances = CocoInstances.model_validate(data)
    except ValidationError as exc:
        raise DataError(f"{path}: {_rule(exc.errors()[0])}") from None
    for field, items in (("images", instances.images), ("categories", instances.categories)):
        repeated = [key for key, n in Counter(item.id for item in items).items() if n > 1]
        if repeated:
            raise DataError(f"{path}: {field}: ids must be unique, got {repeated[0]!r} twice")
    known = {image.id for image in instances.images}
    for n, annotation in enumerate(instances.annotations):
        if annotation.image_id not in known:
            raise DataError(f"{path}: annotations[{n}].image_id: names no image in 'images', "
                            f"got {annotation.image_id!r}")  # fmt: skip
    if need_sizes:
        for n, image in enumerate(instances.images):
            if image.width is None or image.height is None:
                got = f"{image.width!r}, {image.height!r}"
                raise DataError(f"{path}: images[{n}]: width and height are required "
                                f"(positive integers), got {got}")  # fmt: skip
    return instances
