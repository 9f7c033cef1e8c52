"""The dataset spec: which format, where, which splits, which classes. Loaded once, checked.

Our YAML::

    format: voc            # voc | exdark | yolo | coco
    root: VOCdevkit        # relative paths are relative to this file
    train: [VOC2007/trainval, VOC2012/trainval]
    val: VOC2007/test
    test: VOC2007/test
    names: [...]           # optional where the format implies them (voc, exdark, coco)
    anchors: [[26, 31], ...]   # optional, pixels at 416
    on_bad_sample: skip    # optional: error | skip (default: skip when training)

Also read as they are: a darknet ``.data`` file (``classes``, ``train``, ``valid``,
``names``) and an ultralytics data YAML (``path``, ``train``, ``val``, ``test``, ``names``),
both as ``format: yolo``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolo.data.records import ON_BAD_SAMPLE
from yolo.safe_yaml import read_yaml

FORMATS = ("voc", "exdark", "yolo", "coco")
SPLITS = ("train", "val", "test")

VOC_NAMES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
EXDARK_NAMES = (
    "Bicycle", "Boat", "Bottle", "Bus", "Car", "Cat", "Chair", "Cup", "Dog", "Motorbike",
    "People", "Table",
)  # fmt: skip

_KEYS = {"format", "root", *SPLITS, "names", "anchors", "on_bad_sample", "annotations"}


class SpecError(ValueError):
    """A dataset spec that cannot be used; names the file and the key."""


@dataclass(frozen=True)
class DatasetSpec:
    """A validated dataset spec. ``splits`` maps split name to its entries (format-specific)."""

    format: str
    root: Path
    splits: Mapping[str, tuple[str, ...]]
    names: tuple[str, ...]
    anchors: tuple[tuple[float, float], ...] | None = None
    on_bad_sample: str | None = None
    annotations: Path | None = None  # ExDark: annotation tree, if not beside the images
    source: str = "<spec>"

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def entries(self, split: str) -> tuple[str, ...]:
        if split not in self.splits or not self.splits[split]:
            given = ", ".join(s for s in SPLITS if self.splits.get(s)) or "none"
            raise SpecError(f"{self.source}: no '{split}' split; splits given: {given}")
        return self.splits[split]


def _fail(source: str, key: str, what: str) -> SpecError:
    return SpecError(f"{source}: {key}: {what}")


def _as_entries(source: str, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, (str, Path)) else value
    if not isinstance(items, list) or not all(isinstance(v, (str, Path)) for v in items):
        raise _fail(source, key, f"expected a path or a list of paths, got {value!r}")
    return tuple(str(v) for v in items)


def _names(source: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, dict):  # ultralytics: {0: person, 1: bicycle}
        keys = sorted(value)
        if keys != list(range(len(keys))):
            raise _fail(source, "names", f"a mapping must have keys 0..N-1, got {keys}")
        value = [value[k] for k in keys]
    if not isinstance(value, list) or not value:
        raise _fail(source, "names", f"expected a non-empty list of class names, got {value!r}")
    names = tuple(str(v) for v in value)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _fail(source, "names", f"duplicate class names: {', '.join(duplicates)}")
    return names


def _anchors(source: str, value: Any) -> tuple[tuple[float, float], ...] | None:
    if value is None:
        return None
    try:
        if isinstance(value, str):
            numbers = [float(v) for v in value.replace(",", " ").split()]
            pairs = [numbers[i : i + 2] for i in range(0, len(numbers), 2)]
        else:
            pairs = [[float(v) for v in pair] for pair in value]
        if not pairs or any(len(p) != 2 or p[0] <= 0 or p[1] <= 0 for p in pairs):
            raise ValueError
    except (TypeError, ValueError):
        raise _fail(source, "anchors", f"expected positive [w, h] pairs, got {value!r}") from None
    return tuple((p[0], p[1]) for p in pairs)


def spec_from_mapping(data: Mapping[str, Any], source: str, base: Path) -> DatasetSpec:
    """Validate a parsed YAML mapping; relative paths resolve against ``base``."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: expected a mapping of keys, got {type(data).__name__}")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise _fail(source, unknown[0], f"unknown key; allowed: {', '.join(sorted(_KEYS))}")
    fmt = data.get("format")
    if fmt not in FORMATS:
        raise _fail(source, "format", f"must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if "root" not in data:
        raise _fail(source, "root", "missing; the directory the split entries are under")
    root = (base / str(data["root"])).resolve()
    if not root.is_dir():
        raise _fail(source, "root", f"directory not found: {root}")
    splits = {s: _as_entries(source, s, data.get(s)) for s in SPLITS}
    if not any(splits.values()):
        raise _fail(source, "train", "no split given; at least one of train, val, test")
    default_names = {"voc": VOC_NAMES, "exdark": EXDARK_NAMES}.get(fmt)
    if data.get("names") is not None:
        names = _names(source, data["names"])
    elif default_names is not None:
        names = default_names
    elif fmt == "coco":
        names = ()  # from the json's categories, filled in by the reader
    else:
        raise _fail(source, "names", f"required for format '{fmt}'")
    policy = data.get("on_bad_sample")
    if policy is not None and policy not in ON_BAD_SAMPLE:
        raise _fail(
            source, "on_bad_sample", f"must be one of {', '.join(ON_BAD_SAMPLE)}, got {policy!r}"
        )
    annotations = None
    if data.get("annotations") is not None:
        annotations = (base / str(data["annotations"])).resolve()
        if not annotations.is_dir():
            raise _fail(source, "annotations", f"directory not found: {annotations}")
    return DatasetSpec(
        format=fmt,
        root=root,
        splits=splits,
        names=names,
        anchors=_anchors(source, data.get("anchors")),
        on_bad_sample=policy,
        annotations=annotations,
        source=source,
    )


def _read_darknet_data(path: Path) -> dict[str, Any]:
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise SpecError(f"{path}:{number}: expected 'key = value', got '{line}'")
        key, value = (part.strip() for part in line.split("=", 1))
        values[key] = value
    names_file = values.get("names")
    if names_file is None:
        raise SpecError(f"{path}: names: missing; a file with one class name per line")
    names_path = (path.parent / names_file).resolve()
    if not names_path.is_file():
        raise SpecError(f"{path}: names: file not found: {names_path}")
    names = [n.strip() for n in names_path.read_text(encoding="utf-8").splitlines() if n.strip()]
    if "classes" in values and int(values["classes"]) != len(names):
        raise SpecError(
            f"{path}: classes={values['classes']} but {names_path.name} lists {len(names)} names"
        )
    return {
        "format": "yolo",
        "root": ".",
        "train": values.get("train"),
        "val": values.get("valid"),
        "test": values.get("test"),
        "names": names,
    }


def load_spec(path: str | Path) -> DatasetSpec:
    """Load a dataset spec (our YAML, a darknet ``.data`` or an ultralytics data YAML)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset spec not found: {path}")
    source = str(path)
    if path.suffix == ".data":
        return spec_from_mapping(_read_darknet_data(path), source, path.parent)
    try:
        data = read_yaml(path)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    if isinstance(data, dict) and "format" not in data and "train" in data:
        # an ultralytics data YAML: 'path' is the root, splits are image dirs or list files
        data = dict(data)
        data["format"] = "yolo"
        data["root"] = data.pop("path", ".")
        data.pop("nc", None)
        data.pop("download", None)
    return spec_from_mapping(data, source, path.parent)
