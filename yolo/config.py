"""Strict parser and writer for the darknet cfg dialect, custom sections included.

A cfg is text; the architecture *is* that text (house style: the architecture is data). This
module turns it into frozen, typed blocks and back. Every problem is a :class:`CfgError`
naming the file, the line, the block index (numbered from 0 after ``[net]``, as ``route``
and ``shortcut`` count) and what is allowed; nothing unknown is silently accepted.

Keys that darknet uses only for its own training loop (``[net] batch``, ``[yolo] jitter`` …)
are accepted so that existing cfg files load unchanged; they are kept verbatim in
``extras`` and written back, but they do not change the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACTIVATIONS: tuple[str, ...] = (
    "leaky",
    "relu",
    "relu6",
    "hswish",
    "swish",
    "mish",
    "linear",
    "sigmoid",
)
# darknet spells the sigmoid "logistic"; it is the same function, not a fallback.
ACTIVATION_ALIASES: dict[str, str] = {"logistic": "sigmoid"}


class CfgError(ValueError):
    """A cfg that cannot be a model; the message names file, line, block and the rule."""


def cfg_error(source: str, line: int, index: int | None, section: str, what: str) -> CfgError:
    where = f"{source}:{line}"
    if index is None:
        return CfgError(f"{where}: [{section}]: {what}")
    return CfgError(f"{where}: block {index} [{section}]: {what}")


# --------------------------------------------------------------------------- typed blocks


@dataclass(frozen=True, kw_only=True)
class Block:
    """Common to every block: where it came from, so later checks can point at it."""

    index: int
    line: int = 0
    extras: tuple[tuple[str, str], ...] = ()

    section = "block"  # overridden per subclass; a class attribute, not a field


@dataclass(frozen=True, kw_only=True)
class NetSpec:
    width: int = 416
    height: int = 416
    channels: int = 3
    line: int = 0
    extras: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class ConvBlock(Block):
    section = "convolutional"
    filters: int
    size: int
    stride: int = 1
    pad: int = 0
    groups: int = 1
    batch_normalize: int = 0
    activation: str

    @property
    def padding(self) -> int:
        return (self.size - 1) // 2 if self.pad else 0


@dataclass(frozen=True, kw_only=True)
class MaxPoolBlock(Block):
    section = "maxpool"
    size: int
    stride: int = 1


@dataclass(frozen=True, kw_only=True)
class RouteBlock(Block):
    section = "route"
    layers: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class ShortcutBlock(Block):
    section = "shortcut"
    from_: int
    activation: str = "linear"


@dataclass(frozen=True, kw_only=True)
class UpsampleBlock(Block):
    section = "upsample"
    stride: int = 2


@dataclass(frozen=True, kw_only=True)
class YoloBlock(Block):
    section = "yolo"
    mask: tuple[int, ...]
    anchors: tuple[tuple[float, float], ...]
    classes: int
    num: int


@dataclass(frozen=True, kw_only=True)
class PEPBlock(Block):
    section = "PEP"
    filters: int
    x: int
    stride: int = 1
    activation: str


@dataclass(frozen=True, kw_only=True)
class EPBlock(Block):
    section = "EP"
    filters: int
    stride: int = 1
    activation: str


@dataclass(frozen=True, kw_only=True)
class FCABlock(Block):
    section = "FCA"
    reduction: int
    activation: str


@dataclass(frozen=True, kw_only=True)
class MobileBlock(Block):
    section = "mobile"
    filters: int
    size: int
    expansion_ratio: float
    stride: int = 1
    squeeze_excite: int = 0
    activation: str


@dataclass(frozen=True)
class Cfg:
    """A parsed cfg: the input spec and the blocks in forward order."""

    net: NetSpec
    blocks: tuple[Block, ...]
    source: str = "<cfg>"

    def replace_blocks(self, blocks: list[Block] | tuple[Block, ...]) -> Cfg:
        return dataclasses.replace(self, blocks=tuple(blocks))


# --------------------------------------------------------------------------- value parsers


def _parse_int(text: str) -> int:
    return int(text.strip())


def _parse_float(text: str) -> float:
    return float(text.strip())


def _parse_flag(text: str) -> int:
    value = int(text.strip())
    if value not in (0, 1):
        raise ValueError(f"must be 0 or 1, got {value}")
    return value


def _parse_int_list(text: str) -> tuple[int, ...]:
    items = [t for t in (s.strip() for s in text.split(",")) if t]
    if not items:
        raise ValueError("must be a comma-separated list of integers, got an empty list")
    return tuple(int(t) for t in items)


def _parse_anchors(text: str) -> tuple[tuple[float, float], ...]:
    values = [float(t) for t in (s.strip() for s in text.split(",")) if t]
    if not values or len(values) % 2:
        raise ValueError(f"must be pairs 'w,h, w,h, …', got {len(values)} numbers")
    if any(v <= 0 for v in values):
        raise ValueError("anchor sizes must be > 0")
    return tuple((values[i], values[i + 1]) for i in range(0, len(values), 2))


def _parse_activation(text: str) -> str:
    name = text.strip().lower()
    name = ACTIVATION_ALIASES.get(name, name)
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{text.strip()}'; allowed: {', '.join(ACTIVATIONS)}")
    return name


_KIND_WORDS: dict[Callable[[str], Any], str] = {
    _parse_int: "an integer",
    _parse_float: "a number",
    _parse_flag: "0 or 1",
    _parse_int_list: "a list of integers",
    _parse_anchors: "anchor pairs",
    _parse_activation: "an activation name",
}


@dataclass(frozen=True)
class _Section:
    cls: type
    keys: dict[str, Callable[[str], Any]]
    required: frozenset[str]
    ignored: frozenset[str] = frozenset()
    rename: dict[str, str] = field(default_factory=dict)


_DARKNET_NET_KEYS = frozenset(
    "batch subdivisions momentum decay angle saturation exposure hue learning_rate burn_in "
    "max_batches policy steps scales mosaic flip max_chart_loss".split()
)
_DARKNET_YOLO_KEYS = frozenset(
    "jitter ignore_thresh truth_thresh random iou_thresh iou_normalizer cls_normalizer "
    "scale_x_y iou_loss nms_kind beta_nms".split()
)

SECTIONS: dict[str, _Section] = {
    "convolutional": _Section(
        ConvBlock,
        {
            "filters": _parse_int,
            "size": _parse_int,
            "stride": _parse_int,
            "pad": _parse_flag,
            "groups": _parse_int,
            "batch_normalize": _parse_flag,
            "activation": _parse_activation,
        },
        frozenset({"filters", "size", "activation"}),
    ),
    "maxpool": _Section(
        MaxPoolBlock, {"size": _parse_int, "stride": _parse_int}, frozenset({"size"})
    ),
    "route": _Section(RouteBlock, {"layers": _parse_int_list}, frozenset({"layers"})),
    "shortcut": _Section(
        ShortcutBlock,
        {"from": _parse_int, "activation": _parse_activation},
        frozenset({"from"}),
        rename={"from": "from_"},
    ),
    "upsample": _Section(UpsampleBlock, {"stride": _parse_int}, frozenset()),
    "yolo": _Section(
        YoloBlock,
        {
            "mask": _parse_int_list,
            "anchors": _parse_anchors,
            "classes": _parse_int,
            "num": _parse_int,
        },
        frozenset({"mask", "anchors", "classes"}),
        ignored=_DARKNET_YOLO_KEYS,
    ),
    "pep": _Section(
        PEPBlock,
        {
            "filters": _parse_int,
            "x": _parse_int,
            "stride": _parse_int,
            "activation": _parse_activation,
        },
        frozenset({"filters", "x", "activation"}),
    ),
    "ep": _Section(
        EPBlock,
        {"filters": _parse_int, "stride": _parse_int, "activation": _parse_activation},
        frozenset({"filters", "activation"}),
    ),
    "fca": _Section(
        FCABlock,
        {"reduction": _parse_int, "activation": _parse_activation},
        frozenset({"reduction", "activation"}),
    ),
    "mobile": _Section(
        MobileBlock,
        {
            "filters": _parse_int,
            "size": _parse_int,
            "expansion_ratio": _parse_float,
            "stride": _parse_int,
            "squeeze_excite": _parse_flag,
            "activation": _parse_activation,
        },
        frozenset({"filters", "size", "expansion_ratio", "activation"}),
    ),
}
_NET_SECTION = _Section(
    NetSpec,
    {"width": _parse_int, "height": _parse_int, "channels": _parse_int},
    frozenset(),
    ignored=_DARKNET_NET_KEYS,
)
_SECTION_NAMES = "net, " + ", ".join(cls.cls.section for cls in SECTIONS.values())

# Values that must be >= 1; checked once here so the builder can trust them.
_POSITIVE_KEYS = frozenset(
    "filters size stride groups classes num x reduction width height channels".split()
)


# --------------------------------------------------------------------------- parser


@dataclass
class _RawSection:
    name: str
    line: int
    items: list[tuple[str, str, int]]  # key, value, line


def _split_sections(text: str, source: str) -> list[_RawSection]:
    sections: list[_RawSection] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise CfgError(f"{source}:{number}: malformed section header '{raw.strip()}'")
            sections.append(_RawSection(line[1:-1].strip(), number, []))
            continue
        if "=" not in line:
            raise CfgError(
                f"{source}:{number}: expected 'key = value' or '[section]', got '{line}'"
            )
        if not sections:
            raise CfgError(f"{source}:{number}: 'key = value' before any [section]")
        key, value = (part.strip() for part in line.split("=", 1))
        if not key or not value:
            raise CfgError(f"{source}:{number}: expected 'key = value', got '{line}'")
        sections[-1].items.append((key, value, number))
    return sections


def _build(raw: _RawSection, spec: _Section, source: str, index: int | None) -> Any:
    section = raw.name
    values: dict[str, Any] = {}
    extras: list[tuple[str, str]] = []
    for key, text, number in raw.items:
        if key in values or any(key == k for k, _ in extras):
            raise cfg_error(source, number, index, section, f"key '{key}' given twice")
        if key in spec.ignored:
            extras.append((key, text))
            continue
        parser = spec.keys.get(key)
        if parser is None:
            allowed = ", ".join(spec.keys)
            raise cfg_error(
                source, number, index, section, f"unknown key '{key}'; allowed: {allowed}"
            )
        try:
            value = parser(text)
        except ValueError as exc:
            detail = str(exc)
            if "invalid literal" in detail or "could not convert" in detail:
                detail = f"must be {_KIND_WORDS[parser]}, got '{text}'"
            raise cfg_error(source, number, index, section, f"{key}: {detail}") from None
        if key in _POSITIVE_KEYS and value < 1:
            raise cfg_error(source, number, index, section, f"{key} must be >= 1, got {value}")
        values[spec.rename.get(key, key)] = value
    missing = [k for k in spec.keys if k in spec.required and spec.rename.get(k, k) not in values]
    if missing:
        raise cfg_error(source, raw.line, index, section, f"missing required key '{missing[0]}'")
    kwargs: dict[str, Any] = dict(values, line=raw.line, extras=tuple(extras))
    if index is not None:
        kwargs["index"] = index
    if spec.cls is YoloBlock:
        kwargs.setdefault("num", len(values["anchors"]))
    return spec.cls(**kwargs)


def parse_cfg(text: str, source: str = "<cfg>") -> Cfg:
    """Parse cfg text into typed blocks. Raises :class:`CfgError` on anything not allowed."""
    raw_sections = _split_sections(text, source)
    if not raw_sections or raw_sections[0].name.lower() not in ("net", "network"):
        line = raw_sections[0].line if raw_sections else 1
        raise CfgError(f"{source}:{line}: a cfg must start with a [net] section")
    net = _build(raw_sections[0], _NET_SECTION, source, None)
    blocks: list[Block] = []
    for index, raw in enumerate(raw_sections[1:]):
        spec = SECTIONS.get(raw.name.lower())
        if spec is None:
            raise CfgError(
                f"{source}:{raw.line}: block {index}: unknown section [{raw.name}]; "
                f"allowed: {_SECTION_NAMES}"
            )
        blocks.append(_build(raw, spec, source, index))
    if not blocks:
        raise CfgError(f"{source}:{raw_sections[0].line}: the cfg has no blocks after [net]")
    return Cfg(net=net, blocks=tuple(blocks), source=source)


def load_cfg(path: str | Path) -> Cfg:
    """Read and parse a cfg file; a missing file is a one-line error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"cfg file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise CfgError(f"{path}: not a text cfg file ({exc.reason})") from None
    return parse_cfg(text, source=str(path))


# --------------------------------------------------------------------------- writer


def _format_value(value: Any) -> str:
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return ",  ".join(f"{_format_number(w)},{_format_number(h)}" for w, h in value)
    if isinstance(value, tuple):
        return ",".join(_format_number(v) for v in value)
    return _format_number(value) if not isinstance(value, str) else value


def _format_number(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_cfg(cfg: Cfg) -> str:
    """Write a cfg back to text that :func:`parse_cfg` reads into the same blocks."""
    lines = ["[net]"]
    lines += [f"{k}={_format_value(getattr(cfg.net, k))}" for k in ("width", "height", "channels")]
    lines += [f"{k}={v}" for k, v in cfg.net.extras]
    for block in cfg.blocks:
        spec = SECTIONS[block.section.lower()]
        lines += ["", f"[{block.section}]"]
        for key in spec.keys:
            value = getattr(block, spec.rename.get(key, key))
            lines.append(f"{key}={_format_value(value)}")
        lines += [f"{k}={v}" for k, v in block.extras]
    return "\n".join(lines) + "\n"
