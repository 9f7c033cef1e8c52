"""Architectures of a family: a parent cfg's residual stages and the choices that vary them.

A *stage* is a run of residual units at one resolution and width. In YOLOv3-Mobile a unit
is the ``[mobile]`` blocks closed by the ``[shortcut]`` that adds them to the unit's input;
in YOLO Nano it is one ``[PEP]`` block whose input and output have the same shape (it adds
its own residual). Dropping units from a stage's end leaves every shape as it was, so depth
is searched by keeping a stage's first ``d`` units (Once-for-All's rule), and the other
choices change only a unit's inner channels, kernel, squeeze-excite and activation, never
a stage's width: a generated cfg keeps every route, neck block and head of its parent, and
:mod:`yolo.inherit` can map each of its blocks onto one of the parent's. The ``[mobile]`` or
``[PEP]`` blocks after the last stage form the ``neck`` stage: one unit per block, none
removable (the heads read them), the same unit choices.

The architecture is applied to the typed cfg (:class:`~yolo.config.Cfg`) and written by the
cfg writer, never by string templates; references (``[route] layers``, ``[shortcut]
from``) are renumbered, and the result is shape-checked before anyone trains it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from yolo.blocks import Block, MobileBlock, PEPBlock, ShortcutBlock
from yolo.config import Cfg
from yolo.topology import infer_shapes

KERNELS = (3, 5, 7)  # odd, so the depthwise conv keeps the map's size with (k - 1) / 2 pad
MAX_EXPANSION = 8.0  # MobileNetV3 uses 1..6; beyond 8 a unit outgrows the stage it sits in
MAX_X_RATIO = 4.0
# the activations each family's blocks are written with (and the leaky variants')
ACTIVATIONS: dict[str, tuple[str, ...]] = {
    "mobile": ("relu", "hswish", "leaky"),
    "pep": ("relu6", "leaky"),
}
# what a unit of each kind can vary; `depth` is the stage's
UNIT_KEYS: dict[str, tuple[str, ...]] = {
    "mobile": ("expansion", "kernel", "se", "activation"),
    "pep": ("x_ratio", "activation"),
}
STAGE_KEYS = ("depth",)
NECK = "neck"


@dataclass(frozen=True)
class Stage:
    """A run of residual units in a parent cfg: ``units`` are tuples of block indices."""

    name: str  # s1, s2, … in forward order, or neck
    kind: str  # mobile | pep
    units: tuple[tuple[int, ...], ...]
    removable: bool = True  # units can be dropped from the end (not the neck's)

    @property
    def depth(self) -> int:
        return len(self.units)

    def keys(self) -> tuple[str, ...]:
        return (STAGE_KEYS if self.removable else ()) + UNIT_KEYS[self.kind]


def _is_mobile_unit(cfg: Cfg, end: int) -> tuple[int, ...] | None:
    """The unit closed by a linear ``[shortcut]`` at ``end`` over stride-1 ``[mobile]``s."""
    block = cfg.blocks[end]
    if not isinstance(block, ShortcutBlock) or block.activation != "linear":
        return None
    source = end + block.from_ if block.from_ < 0 else block.from_
    if source < 0:
        return None
    inner = cfg.blocks[source + 1 : end]
    if not inner:
        return None
    if not all(isinstance(b, MobileBlock) and b.stride == 1 for b in inner):
        return None
    return tuple(range(source + 1, end + 1))


def find_stages(cfg: Cfg) -> tuple[Stage, ...]:
    """The residual stages of ``cfg``, in forward order (empty for a cfg without any)."""
    shapes = infer_shapes(cfg)
    units: list[tuple[str, tuple[int, ...]]] = []
    for i, block in enumerate(cfg.blocks):
        if isinstance(block, PEPBlock) and block.stride == 1:
            shape = shapes[i]
            if shape.in_channels == shape.out_channels:
                units.append(("pep", (i,)))
        mobile = _is_mobile_unit(cfg, i)
        if mobile is not None:
            units.append(("mobile", mobile))
    stages: list[Stage] = []
    run: list[tuple[int, ...]] = []
    kind = ""
    for unit_kind, unit in units:
        if run and unit_kind == kind and unit[0] == run[-1][-1] + 1:
            run.append(unit)
            continue
        if run:
            stages.append(Stage(f"s{len(stages) + 1}", kind, tuple(run)))
        run, kind = [unit], unit_kind
    if run:
        stages.append(Stage(f"s{len(stages) + 1}", kind, tuple(run)))
    if stages:
        unit_type = MobileBlock if stages[-1].kind == "mobile" else PEPBlock
        last = stages[-1].units[-1][-1]
        neck = tuple((i,) for i in range(last + 1, len(cfg.blocks))
                     if type(cfg.blocks[i]) is unit_type)  # fmt: skip
        if neck:
            stages.append(Stage(NECK, stages[-1].kind, neck, removable=False))
    return tuple(stages)


@dataclass(frozen=True)
class UnitChoice:
    """What one unit becomes; ``None``: as the parent has it."""

    expansion: float | None = None
    kernel: int | None = None
    se: int | None = None
    activation: str | None = None
    x_ratio: float | None = None

    def over(self, base: UnitChoice) -> UnitChoice:
        """This choice, with ``base`` where it says nothing."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return UnitChoice(**{k: getattr(base, k) if v is None else v for k, v in values.items()})


@dataclass(frozen=True)
class StageChoice:
    depth: int | None = None
    unit: UnitChoice = field(default_factory=UnitChoice)  # every unit of the stage
    units: tuple[tuple[int, UnitChoice], ...] = ()  # (unit number from 1, its own choice)

    def of_unit(self, number: int) -> UnitChoice:
        own = dict(self.units).get(number)
        return self.unit if own is None else own.over(self.unit)


@dataclass(frozen=True)
class Architecture:
    """Choices by stage name; a stage not named is kept as the parent has it."""

    stages: tuple[tuple[str, StageChoice], ...] = ()

    def of(self, stage: str) -> StageChoice:
        return dict(self.stages).get(stage, StageChoice())


# --------------------------------------------------------------------------- checking values


def allowed_values(kind: str, key: str, depth: int) -> str:
    """The rule a value of ``key`` obeys in a stage of ``kind`` with ``depth`` units."""
    if key == "depth":
        return f"an integer 1..{depth} (the parent's units are the most a stage can inherit)"
    if key == "kernel":
        return f"one of {', '.join(map(str, KERNELS))}"
    if key == "se":
        return "0 or 1"
    if key == "activation":
        return f"one of {', '.join(ACTIVATIONS[kind])}"
    if key == "expansion":
        return f"a number in (0, {MAX_EXPANSION:g}]"
    return f"a number in (0, {MAX_X_RATIO:g}]"  # x_ratio


def check_value(stage: Stage, key: str, value: Any) -> Any:
    """``value`` as ``key`` takes it in ``stage``; ``ValueError`` with the rule."""
    kind, depth = stage.kind, stage.depth
    if key not in stage.keys():
        blocks = "[mobile]" if kind == "mobile" else "[PEP]"
        what = "the neck (its blocks are all kept)" if not stage.removable else \
            f"a stage of {blocks} units"  # fmt: skip
        raise ValueError(f"{what} has no choice '{key}'; allowed: "
                         f"{', '.join(stage.keys())}")  # fmt: skip
    rule = allowed_values(kind, key, depth)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key in ("depth", "kernel", "se"):
        ok = number and float(value).is_integer()
        ok = ok and (1 <= value <= depth if key == "depth" else
                     value in KERNELS if key == "kernel" else value in (0, 1))  # fmt: skip
        if not ok:
            raise ValueError(f"must be {rule}, got {value!r}")
        return int(value)
    if key == "activation":
        if value not in ACTIVATIONS[kind]:
            raise ValueError(f"must be {rule}, got {value!r}")
        return value
    high = MAX_EXPANSION if key == "expansion" else MAX_X_RATIO
    if not number or not (math.isfinite(value) and 0 < value <= high):
        raise ValueError(f"must be {rule}, got {value!r}")
    return float(value)


def architecture_from_flat(values: Mapping[str, Any], stages: tuple[Stage, ...]) -> Architecture:
    """The architecture of flat keys: ``<key>`` (every stage that has it), ``<stage>.<key>``
    or ``<stage>.u<N>.<key>`` (unit N from 1). ``ValueError`` naming the key and the rule."""
    by_name = {s.name: s for s in stages}
    shared: dict[str, Any] = {}
    per_stage: dict[str, dict[str, Any]] = {s.name: {} for s in stages}
    per_unit: dict[str, dict[int, dict[str, Any]]] = {s.name: {} for s in stages}
    for key, value in values.items():
        parts = key.split(".")
        try:
            if len(parts) == 1:
                kinds = [s for s in stages if parts[0] in s.keys()]
                if not kinds:
                    every = sorted({k for s in stages for k in s.keys()})
                    raise ValueError(f"no stage has a choice '{key}'; allowed: {', '.join(every)}")
                for s in kinds:
                    check_value(s, parts[0], value)
                shared[parts[0]] = value
                continue
            stage = by_name.get(parts[0])
            if stage is None:
                raise ValueError(f"no stage '{parts[0]}'; the parent's stages: "
                                 f"{', '.join(by_name) or 'none'}")  # fmt: skip
            if len(parts) == 2:
                per_stage[stage.name][parts[1]] = check_value(stage, parts[1], value)
                continue
            number = parts[1][1:]
            if len(parts) != 3 or parts[1][:1] != "u" or not number.isdigit():
                raise ValueError("a key is <choice>, <stage>.<choice> or <stage>.u<N>.<choice>")
            if not 1 <= int(number) <= stage.depth:
                raise ValueError(f"unit {number} does not exist; stage {stage.name} has units "
                                 f"1..{stage.depth}")  # fmt: skip
            if parts[2] == "depth":
                raise ValueError("depth is a stage's choice, not a unit's")
            own = per_unit[stage.name].setdefault(int(number), {})
            own[parts[2]] = check_value(stage, parts[2], value)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    result = []
    for stage in stages:
        merged = {k: v for k, v in shared.items() if k in stage.keys()} | per_stage[stage.name]
        merged = {k: check_value(stage, k, v) for k, v in merged.items()}
        depth = merged.pop("depth", None)
        units = tuple((n, UnitChoice(**c)) for n, c in sorted(per_unit[stage.name].items()))
        result.append((stage.name, StageChoice(depth, UnitChoice(**merged), units)))
    return Architecture(tuple(result))


# --------------------------------------------------------------------------- generating cfgs


@dataclass(frozen=True)
class Generated:
    """A generated cfg and, for each of its blocks, the parent block it stands for."""

    cfg: Cfg
    parent_block: tuple[int, ...]


def _scaled_x(x: int, ratio: float) -> int:
    """A PEP's projection channels times ``ratio``, a multiple of 8 (the parent's own count
    at ratio 1: YOLO Nano's counts are themselves a search's output)."""
    return x if ratio == 1.0 else max(8, round(x * ratio / 8) * 8)


def _edit(block: Block, choice: UnitChoice) -> Block:
    changes: dict[str, Any] = {}
    if isinstance(block, MobileBlock):
        if choice.expansion is not None:
            changes["expansion_ratio"] = choice.expansion
        if choice.kernel is not None and block.size > 1:  # a 1x1 [mobile] stays pointwise
            changes["size"] = choice.kernel
        if choice.se is not None:
            changes["squeeze_excite"] = choice.se
    if isinstance(block, PEPBlock) and choice.x_ratio is not None:
        changes["x"] = _scaled_x(block.x, choice.x_ratio)
    if isinstance(block, (MobileBlock, PEPBlock)) and choice.activation is not None:
        changes["activation"] = choice.activation
    return dataclasses.replace(block, **changes) if changes else block


def _renumber(block: Block, old: int, new: int, target: dict[int, int]) -> Block:
    """``block`` (at ``old`` in the parent, ``new`` in the child) with its references moved;
    a relative reference stays relative."""

    def moved(ref: int) -> int:
        absolute = old + ref if ref < 0 else ref
        return target[absolute] - new if ref < 0 else target[absolute]

    return dataclasses.replace(block.renumbered(moved), index=new)


def generate(parent: Cfg, architecture: Architecture, *,
             source: str = "<architecture>") -> Generated:  # fmt: skip
    """The cfg of ``architecture`` applied to ``parent``, shape-checked (``CfgError`` naming
    the block where it cannot fit)."""
    stages = find_stages(parent)
    dropped: set[int] = set()
    choice_of_block: dict[int, UnitChoice] = {}
    for stage in stages:
        choice = architecture.of(stage.name)
        depth = stage.depth if choice.depth is None else choice.depth
        for number, unit in enumerate(stage.units, 1):
            if number > depth:
                dropped.update(unit)
            for i in unit:
                choice_of_block[i] = choice.of_unit(number)
    kept = [i for i in range(len(parent.blocks)) if i not in dropped]
    target: dict[int, int] = {}
    new = -1
    for i in range(len(parent.blocks)):
        if i not in dropped:
            new += 1
        target[i] = new  # a dropped block's readers read the last block kept before it
    blocks = []
    for position, i in enumerate(kept):
        block = parent.blocks[i]
        if i in choice_of_block:
            block = _edit(block, choice_of_block[i])
        blocks.append(_renumber(block, i, position, target))
    cfg = dataclasses.replace(parent.replace_blocks(blocks), source=source)
    infer_shapes(cfg)
    return Generated(cfg, tuple(kept))
