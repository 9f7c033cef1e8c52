"""Channels inside a block that structured pruning may remove: a ``[mobile]`` block's
hidden (expanded) channels and a ``[PEP]`` block's projection channels.

Nothing outside the block sees them, so each block is its own group, independent of the
residual streams and routes :mod:`yolo.compress.channel_groups` follows. A unit is one
inner channel, removed from every layer of the block that carries it:

- ``[mobile]``: the expansion's filter and BatchNorm, the depthwise filter and BatchNorm,
  the squeeze-excite's input column and gate, the projection's input column. The
  squeeze-excite's own width follows the hidden one (``make_divisible(hidden // 4)``), so
  its weakest units go with them (a unit whose first layer is zeroed adds exactly 0).
  The pruned width is written as ``expansion_ratio = hidden / in`` (which the thesis'
  parser reads back to the same width); it stays a multiple of 8 (MobileNet's rounding)
  and never equals the block's input width, where the block would lose its expansion.
- ``[PEP]``: its ``x`` is two sets of channels (the input projection's outputs, and the
  separable block's expansion outputs, through its depthwise conv), both of width ``x``;
  a unit pairs the k-th strongest of each, so that both keep the same count.

Exactness on the masked model: the removed channels' filters, biases and BatchNorm gamma
and beta are zeroed, the block's activation maps 0 to 0, so every removed channel is
exactly 0 and the smaller block computes the same (checked after removal).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from yolo.compress.channel_groups import CRITERIA, Unprunable
from yolo.config import Block, MobileBlock, PEPBlock
from yolo.layers import PEP, ConvBNAct, MobileBottleneck, make_activation, make_divisible
from yolo.metrics.profile import module_macs
from yolo.model import Darknet

KINDS = ("mobile", "pep")


@dataclass(frozen=True)
class InnerGroup:
    """The inner channels of one block, unit by unit (``pairs``: PEP's (projection,
    expansion) channel of each unit; a ``[mobile]`` unit is its hidden channel)."""

    block: int
    kind: str
    width: int
    multiple: int  # widths the cfg can express: multiples of this
    forbidden: int | None = None  # a width that would change the block's structure
    pairs: tuple[tuple[int, int], ...] = ()

    def allowed(self, width: int) -> bool:
        return width % self.multiple == 0 and width != self.forbidden and width >= self.multiple


def _zero_preserving(activation: str) -> bool:
    return float(make_activation(activation)(torch.zeros(1)).item()) == 0.0


def _l1(weight: torch.Tensor) -> torch.Tensor:
    return weight.detach().float().flatten(1).abs().sum(1)


@torch.no_grad()
def inner_groups(model: Darknet, *, ignored_layers: tuple[int, ...] = (),
                 round_to: int = 8) -> tuple[list[InnerGroup], list[Unprunable]]:  # fmt: skip
    """The inner groups of ``model`` and the blocks whose inner channels stay, with why."""
    ignored = {i % len(model.blocks) for i in ignored_layers}
    groups: list[InnerGroup] = []
    refused: list[Unprunable] = []
    multiple = math.lcm(round_to, 8)
    for index, block in enumerate(model.cfg.blocks):
        if not isinstance(block, (MobileBlock, PEPBlock)) or index in ignored:
            continue
        module = model.blocks[index]
        why = None if _zero_preserving(block.activation) else (
            f"activation={block.activation} is not 0 at 0, so a removed channel would leave "
            "a constant")  # fmt: skip
        if isinstance(module, MobileBottleneck):
            if module.expand is None:
                why = why or "no expansion: its hidden channels are its input's"
            elif why is None:
                hidden = module.depthwise.conv.out_channels
                groups.append(InnerGroup(index, "mobile", hidden, multiple,
                                         forbidden=module.expand.conv.in_channels))  # fmt: skip
        elif isinstance(module, PEP) and why is None:
            a = torch.argsort(_l1(module.project_in.conv.weight), descending=True, stable=True)
            b = torch.argsort(_l1(module.block.expand.conv.weight), descending=True, stable=True)
            pairs = tuple((int(i), int(j)) for i, j in zip(a, b))
            groups.append(InnerGroup(index, "pep", len(pairs), round_to, pairs=pairs))
        if why is not None:
            refused.append(Unprunable((index,), block.line, why))
    return groups, refused


def _bn_gamma(unit: ConvBNAct, channels: torch.Tensor | list[int]) -> torch.Tensor:
    if unit.bn is None:
        raise ValueError("the bn_gamma criterion needs BatchNorm in every pruned layer")
    return unit.bn.weight.detach().float().abs()[channels]


@torch.no_grad()
def inner_scores(model: Darknet, group: InnerGroup, criterion: str) -> torch.Tensor:
    """Importance of each unit (higher: kept longer): the L1/L2 norm of the filter that
    makes the channel, or |BN gamma| after it (PEP: of both channels of the unit)."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}, got '{criterion}'")
    module = model.blocks[group.block]

    def score(unit: ConvBNAct, channels: Any) -> torch.Tensor:
        weight = unit.conv.weight.detach().float().flatten(1)[channels]
        if criterion == "l1":
            return weight.abs().sum(1)
        if criterion == "l2":
            return weight.pow(2).sum(1).sqrt()
        return _bn_gamma(unit, channels)

    if isinstance(module, MobileBottleneck):
        assert module.expand is not None
        return score(module.expand, list(range(group.width)))
    assert isinstance(module, PEP)
    first = [a for a, _ in group.pairs]
    second = [b for _, b in group.pairs]
    return score(module.project_in, first) + score(module.block.expand, second)


def _channels(group: InnerGroup, units: list[int]) -> tuple[list[int], list[int]]:
    """(first, second) channel indices of ``units`` (a [mobile] block's are its hidden)."""
    if group.kind == "mobile":
        return units, units
    return [group.pairs[u][0] for u in units], [group.pairs[u][1] for u in units]


def zero_filters(unit: ConvBNAct, channels: list[int]) -> None:
    """Make output ``channels`` of a conv(+BN) exactly 0 before its activation: filter,
    bias, BN gamma and beta zeroed (BN's running statistics then no longer matter)."""
    unit.conv.weight[channels] = 0
    if unit.conv.bias is not None:
        unit.conv.bias[channels] = 0
    if unit.bn is not None:
        unit.bn.weight[channels] = 0
        unit.bn.bias[channels] = 0


def _se_kept(module: MobileBottleneck, hidden: int) -> list[int]:
    """The squeeze-excite units a hidden width of ``hidden`` keeps: its weakest go."""
    assert module.se is not None
    width = make_divisible(hidden // 4, 8)
    order = torch.argsort(_l1(module.se.fc1.weight), descending=True, stable=True)
    return sorted(int(u) for u in order[:width])


@torch.no_grad()
def zero_inner(model: Darknet, group: InnerGroup, kept: tuple[int, ...]) -> None:
    """Make every unit of ``group`` not in ``kept`` exactly 0 in ``model`` (in place)."""
    removed = [u for u in range(group.width) if u not in set(kept)]
    if not removed:
        return
    first, second = _channels(group, removed)
    module = model.blocks[group.block]
    if isinstance(module, MobileBottleneck):
        assert module.expand is not None
        zero_filters(module.expand, first)
        zero_filters(module.depthwise, first)
        if module.se is not None:
            gone = sorted(set(range(module.se.fc1.out_features))
                          - set(_se_kept(module, len(kept))))  # fmt: skip
            module.se.fc1.weight[gone] = 0
            module.se.fc1.bias[gone] = 0
        return
    assert isinstance(module, PEP)
    zero_filters(module.project_in, first)
    zero_filters(module.block.expand, second)
    zero_filters(module.block.depthwise, second)


def _narrowed(block: Block, shape_in: int, width: int) -> Block:
    """The block with ``width`` inner channels."""
    if isinstance(block, MobileBlock):
        ratio = width / shape_in
        if make_divisible(shape_in * ratio, 8) != width:  # cannot happen for multiples of 8
            raise ValueError(f"block {block.index}: no expansion_ratio gives {width} channels")
        return dataclasses.replace(block, expansion_ratio=ratio)
    assert isinstance(block, PEPBlock)
    return dataclasses.replace(block, x=width)


@torch.no_grad()
def remove_inner(model: Darknet, groups: Sequence[InnerGroup],
                 kept: Sequence[tuple[int, ...]]) -> Darknet:  # fmt: skip
    """A smaller model without the units of ``groups`` that ``kept`` leaves out; the rest of
    the weights as they are. The caller checks it against the masked model."""
    blocks = list(model.cfg.blocks)
    slices: dict[int, tuple[InnerGroup, list[int]]] = {}
    for group, units in zip(groups, kept):
        if len(units) == group.width:
            continue
        width = model.shapes[group.block].in_channels
        blocks[group.block] = _narrowed(blocks[group.block], width, len(units))
        slices[group.block] = (group, sorted(units))
    smaller = Darknet(model.cfg.replace_blocks(blocks))
    state = model.state_dict()
    target = smaller.state_dict()
    for name, value in target.items():
        old = state[name]
        block = int(name.split(".")[1]) if name.startswith("blocks.") else None
        if block in slices and old.shape != value.shape:
            group, kept_units = slices[block]
            old = _slice(model.blocks[block], name.split(".", 2)[2], old, group, kept_units)
        value.copy_(old)
    return smaller.eval()


def _slice(module: nn.Module, key: str, tensor: torch.Tensor, group: InnerGroup,
           units: list[int]) -> torch.Tensor:  # fmt: skip
    """``tensor`` (the block's parameter or buffer ``key``) without the removed units."""
    first, second = _channels(group, units)
    if isinstance(module, MobileBottleneck):
        hidden = torch.tensor(first)
        if key.startswith(("expand.", "depthwise.")) or key == "se.fc2.bias":
            return tensor[hidden]
        if key == "project.conv.weight":
            return tensor[:, hidden]
        assert module.se is not None
        se = torch.tensor(_se_kept(module, len(units)))
        if key == "se.fc1.weight":
            return tensor[se][:, hidden]
        if key == "se.fc1.bias":
            return tensor[se]
        if key == "se.fc2.weight":
            return tensor[hidden][:, se]
        raise ValueError(f"no rule to narrow {key}")
    a, b = torch.tensor(first), torch.tensor(second)
    if key.startswith("project_in."):
        return tensor[a]
    if key == "block.expand.conv.weight":
        return tensor[b][:, a]
    if key.startswith(("block.expand.", "block.depthwise.")):
        return tensor[b]
    if key == "block.project.conv.weight":
        return tensor[:, b]
    raise ValueError(f"no rule to narrow {key}")


class InnerMacs:
    """MACs a block costs at a given inner width, counted by the profiler's own rules on
    a block built at that width (shapes only), cached."""

    def __init__(self, model: Darknet, img_size: int) -> None:
        self.model, self.img_size = model, img_size
        self._cache: dict[tuple[int, int], int] = {}

    def cost(self, group: InnerGroup, width: int) -> int:
        key = (group.block, width)
        if key not in self._cache:
            cfg, shape = self.model.cfg, self.model.shapes[group.block]
            block = _narrowed(cfg.blocks[group.block], shape.in_channels, width)
            y, x = shape.strides
            step = cast(Any, block).stride
            side_in = (
                math.ceil(self.img_size / (y // step)),
                math.ceil(self.img_size / (x // step)),
            )
            with torch.device("meta"):
                module = block.module(shape)
            self._cache[key] = module_macs(module, (1, shape.in_channels, *side_in))
        return self._cache[key]
