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

from yolo.blocks import (
    BLOCK_TYPES,
    SECTIONS,
    Block,
    ConvBlock,
    EPBlock,
    FCABlock,
    MaxPoolBlock,
    MobileBlock,
    PEPBlock,
    RouteBlock,
    ShortcutBlock,
    UpsampleBlock,
    YoloBlock,
)
from yolo.cfg_values import KIND_WORDS, parse_float, parse_int
from yolo.errors import CfgError, cfg_error
from yolo.layers import ACTIVATIONS

__all__ = [
    "ACTIVATIONS", "Block", "Cfg", "CfgError", "ConvBlock", "EPBlock", "FCABlock", "MaxPoolBlock",
    "MobileBlock", "NetSpec", "PEPBlock", "RouteBlock", "ShortcutBlock", "UpsampleBlock",
    "YoloBlock", "cfg_error", "format_cfg", "load_cfg", "parse_cfg",
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class NetSpec:
    width: int = 416  # darknet's own default
    height: int = 416
    channels: int = 3
    # a project key: how [maxpool] pads (darknet's edge, or the ultralytics port's zeros
    # for size 2 / stride 1, which the seed thesis trained with); written only when "zero"
    maxpool_padding: str = "edge"
    # a project key: every BatchNorm's eps, where it must match another code's (darknet and
    # the seed thesis use 1e-5; this project trains with 1e-4); written only when set
    batchnorm_eps: float | None = None
    line: int = 0
    extras: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Cfg:
    """A parsed cfg: the input spec and the blocks in forward order."""

    net: NetSpec
    blocks: tuple[Block, ...]
    source: str = "<cfg>"

    def replace_blocks(self, blocks: list[Block] | tuple[Block, ...]) -> Cfg:
        return dataclasses.replace(self, blocks=tuple(blocks))

    def prediction_convs(self) -> tuple[int, ...]:
        """Blocks whose conv writes a ``[yolo]`` head's channels, in order."""
        found = {c for b in self.blocks if isinstance(b, YoloBlock) for c in b.prediction_convs()}
        return tuple(sorted(found))


# --------------------------------------------------------------------------- the [net] spec


@dataclass(frozen=True)
class _Section:
    keys: dict[str, Callable[[str], Any]]
    required: frozenset[str]
    ignored: frozenset[str] = frozenset()
    rename: dict[str, str] = field(default_factory=dict)


_DARKNET_NET_KEYS = frozenset(
    "batch subdivisions momentum decay angle saturation exposure hue learning_rate burn_in "
    "max_batches policy steps scales mosaic flip max_chart_loss mask_initial_value".split()
)
MAXPOOL_PADDINGS = ("edge", "zero")


def _parse_maxpool_padding(text: str) -> str:
    value = text.strip().lower()
    if value not in MAXPOOL_PADDINGS:
        raise ValueError(f"must be one of {', '.join(MAXPOOL_PADDINGS)}, got '{text.strip()}'")
    return value


def _parse_batchnorm_eps(text: str) -> float:
    value = parse_float(text)
    if not 0 < value < 1:
        raise ValueError(f"must be in (0, 1), got {value}")
    return value


_NET_SECTION = _Section(
    {
        "width": parse_int,
        "height": parse_int,
        "channels": parse_int,
        "maxpool_padding": _parse_maxpool_padding,
        "batchnorm_eps": _parse_batchnorm_eps,
    },
    frozenset(),
    ignored=_DARKNET_NET_KEYS,
)
_SECTION_NAMES = "net, " + ", ".join(cls.section for cls in BLOCK_TYPES)

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


def _build(raw: _RawSection, spec: _Section | type[Block], cls: type, source: str,
           index: int | None) -> Any:  # fmt: skip
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
                detail = f"must be {KIND_WORDS[parser]}, got '{text}'"
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
    if cls is YoloBlock:
        kwargs.setdefault("num", len(values["anchors"]))
    return cls(**kwargs)


def parse_cfg(text: str, source: str = "<cfg>") -> Cfg:
    """Parse cfg text into typed blocks. Raises :class:`CfgError` on anything not allowed."""
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write is not content
    raw_sections = _split_sections(text, source)
    if not raw_sections or raw_sections[0].name.lower() not in ("net", "network"):
        line = raw_sections[0].line if raw_sections else 1
        raise CfgError(f"{source}:{line}: a cfg must start with a [net] section")
    net = _build(raw_sections[0], _NET_SECTION, NetSpec, source, None)
    blocks: list[Block] = []
    for index, raw in enumerate(raw_sections[1:]):
        spec = SECTIONS.get(raw.name.lower())
        if spec is None:
            raise CfgError(
                f"{source}:{raw.line}: block {index}: unknown section [{raw.name}]; "
                f"allowed: {_SECTION_NAMES}"
            )
        blocks.append(_build(raw, spec, spec, source, index))
    if not blocks:
        raise CfgError(f"{source}:{raw_sections[0].line}: the cfg has no blocks after [net]")
    if not any(isinstance(block, YoloBlock) for block in blocks):
        raise CfgError(
            f"{source}:{raw_sections[-1].line}: the cfg has no [yolo] block; a detector needs "
            "at least one head (is the file cut off?)"
        )
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


def _default(spec: type, name: str) -> Any:
    found = next(f for f in dataclasses.fields(spec) if f.name == name)
    return found.default


def format_cfg(cfg: Cfg) -> str:
    """Write a cfg back to text that :func:`parse_cfg` reads into the same blocks."""
    lines = ["[net]"]
    lines += [f"{k}={_format_value(getattr(cfg.net, k))}" for k in ("width", "height", "channels")]
    if cfg.net.maxpool_padding != "edge":
        lines.append(f"maxpool_padding={cfg.net.maxpool_padding}")
    if cfg.net.batchnorm_eps is not None:
        lines.append(f"batchnorm_eps={cfg.net.batchnorm_eps!r}")
    lines += [f"{k}={v}" for k, v in cfg.net.extras]
    for block in cfg.blocks:
        spec = type(block)
        lines += ["", f"[{block.section}]"]
        for key in spec.keys:
            name = spec.rename.get(key, key)
            value = getattr(block, name)
            if value is None or (key in spec.optional and value == _default(spec, name)):
                continue
            lines.append(f"{key}={_format_value(value)}")
        lines += [f"{k}={v}" for k, v in block.extras]
    return "\n".join(lines) + "\n"
