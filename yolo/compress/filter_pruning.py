"""Structured pruning of one model: choose filters to a MACs target, remove them for real.

Which filters: every unit of every :class:`~yolo.compress.channel_groups.LayerGroup` gets a
score (:func:`~yolo.compress.channel_groups.unit_scores`). *Global* scope removes, chunk by
chunk, the cheapest chunk over all groups, where a chunk takes a group's width down to its
next multiple of ``round_to`` and costs the mean score of the units it removes (L1/L2 scores
are divided by their group's mean so that wide-fan-in layers do not look more important
than narrow ones; BN gammas are compared raw, as network slimming does). *Local* scope keeps
the same share of every group, the largest share that meets the target. Either stops at the
first plan whose MACs are at most ``target`` times the dense model's.

How: the chosen units' filters, biases and BN gamma/beta are zeroed, which makes their
channels exactly 0 (the *masked* model), then :func:`~yolo.compress.compact.compact`
removes them and checks that the smaller model computes what the masked one does.

Why the project's own cfg-level graph and not Torch-Pruning's: the deliverable is a darknet
cfg plus weights that every command loads, and the cfg graph already knows routes'
offsets and shortcuts' ties at the level the cfg writes widths; a traced torch graph would
hand back modules whose widths must be mapped back onto cfg keys, one rule per block type.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import cast

import torch

from yolo.compress.channel_groups import LayerGroup, Unprunable, layer_groups, unit_scores
from yolo.compress.compact import compact
from yolo.config import Cfg, ConvBlock
from yolo.layers import ConvBNAct
from yolo.metrics.profile import count_macs
from yolo.model import Darknet
from yolo.topology import infer_shapes

SCOPES = ("global", "local")


@dataclass(frozen=True)
class PrunePlan:
    """Per group, the units kept (indices into ``group.units``), and the MACs it leads to."""

    kept: tuple[tuple[int, ...], ...]
    macs: int
    dense_macs: int


@dataclass(frozen=True)
class PruneResult:
    model: Darknet
    masked: Darknet  # the same model before compaction: the chosen channels zeroed
    plan: PrunePlan
    groups: tuple[LayerGroup, ...]
    unprunable: tuple[Unprunable, ...]


def kept_width(width: int, share: float, round_to: int) -> int:
    """Channels a group of ``width`` keeps at ``share``: the nearest multiple of
    ``round_to``, at least ``round_to``; a group no wider than ``round_to`` keeps all."""
    if width <= round_to:
        return width
    return min(width, max(round_to, round(share * width / round_to) * round_to))


def _next_width(width: int, kept: int, round_to: int) -> int | None:
    """The next smaller allowed width below ``kept``, or None where the group cannot shrink."""
    if width <= round_to:
        return None
    lower = (kept - 1) // round_to * round_to
    return lower if lower >= round_to else None


class MacModel:
    """MACs of the model with its groups at given widths, from shapes alone (no tensors).

    Conv MACs are counted from the cfg (``k*k*in/groups*out`` per output position); what
    the rest of the model costs cannot change when only groups' widths do, so it is taken
    once from :func:`count_macs` on the model itself.
    """

    def __init__(self, model: Darknet, groups: list[LayerGroup], img_size: int) -> None:
        self.cfg: Cfg = model.cfg
        self.groups = groups
        self.img_size = img_size
        self.dense = count_macs(model, img_size).dense
        self.rest = self.dense - self._conv_macs(self.cfg)

    def _conv_macs(self, cfg: Cfg) -> int:
        total = 0
        for block, shape in zip(cfg.blocks, infer_shapes(cfg)):
            if isinstance(block, ConvBlock):
                side = math.ceil(self.img_size / shape.stride)
                per_position = block.size**2 * shape.in_channels // block.groups
                total += per_position * shape.out_channels * side * side
        return total

    def macs(self, kept_counts: list[int]) -> int:
        removed: dict[int, int] = {}
        for group, kept in zip(self.groups, kept_counts):
            for unit in group.units[kept:]:  # only the count matters here
                for index, _ in unit:
                    removed[index] = removed.get(index, 0) + 1
        blocks = list(self.cfg.blocks)
        for index, count in removed.items():
            conv = cast(ConvBlock, blocks[index])
            blocks[index] = dataclasses.replace(conv, filters=conv.filters - count)
        return self.rest + self._conv_macs(self.cfg.replace_blocks(blocks))


def unreachable(target: float, floor: float, round_to: int) -> str:
    """Why ``target`` is refused: the smallest share that works (``floor``, rounded up)."""
    smallest = math.ceil(floor * 1000) / 1000
    return (f"target_macs={target:g} cannot be reached: with every prunable layer at its "
            f"narrowest (round_to={round_to} channels) the model keeps {floor:.3f} of its "
            f"MACs; the smallest target that works is {smallest:.3f}")  # fmt: skip


def narrowest_share(model: Darknet, groups: list[LayerGroup], round_to: int,
                    img_size: int) -> float:  # fmt: skip
    """The smallest MACs share pruning can reach: every group at its narrowest width."""
    macs = MacModel(model, groups, img_size)
    return macs.macs([kept_width(g.width, 0.0, round_to) for g in groups]) / macs.dense


def plan_pruning(
    model: Darknet,
    groups: list[LayerGroup],
    *,
    target: float,
    criterion: str,
    scope: str,
    round_to: int,
    img_size: int,
) -> PrunePlan:
    """The units to keep so that MACs are at most ``target`` x the model's own.

    Raises ``ValueError`` when even the narrowest allowed widths keep more: the message
    names the smallest target that works (a lower one would empty whole layers).
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got '{scope}'")
    macs = MacModel(model, groups, img_size)
    budget = target * macs.dense
    scores = [unit_scores(model, g, criterion) for g in groups]
    order = [torch.argsort(s, descending=True, stable=True).tolist() for s in scores]
    floor = macs.macs([kept_width(g.width, 0.0, round_to) for g in groups])
    if floor > budget:
        raise ValueError(unreachable(target, floor / macs.dense, round_to))

    def counts_to_plan(counts: list[int]) -> PrunePlan:
        kept = tuple(tuple(sorted(o[:k])) for o, k in zip(order, counts))  # the best k
        return PrunePlan(kept, macs.macs(counts), macs.dense)

    if scope == "local":
        low, high = 0.0, 1.0
        for _ in range(40):
            share = (low + high) / 2
            counts = [kept_width(g.width, share, round_to) for g in groups]
            low, high = (share, high) if macs.macs(counts) <= budget else (low, share)
        return counts_to_plan([kept_width(g.width, low, round_to) for g in groups])

    normalised = [s / s.mean().clamp_min(1e-12) if criterion != "bn_gamma" else s
                  for s in scores]  # fmt: skip
    ascending = [[float(s[i]) for i in reversed(o)] for s, o in zip(normalised, order)]
    counts = [g.width for g in groups]
    current = macs.dense
    while current > budget:
        best, best_cost = -1, math.inf
        for k, group in enumerate(groups):
            lower = _next_width(group.width, counts[k], round_to)
            if lower is None:
                continue
            removed = group.width - counts[k], group.width - lower
            chunk = ascending[k][removed[0] : removed[1]]
            cost = sum(chunk) / len(chunk)
            if cost < best_cost:
                best, best_cost = k, cost
        assert best >= 0, "the floor check above guarantees a chunk is left"
        counts[best] = cast(int, _next_width(groups[best].width, counts[best], round_to))
        current = macs.macs(counts)
    return counts_to_plan(counts)


@torch.no_grad()
def masked_copy(model: Darknet, groups: list[LayerGroup], plan: PrunePlan) -> Darknet:
    """A copy of ``model`` whose removed units' channels are exactly 0: filter, bias, BN
    gamma and beta zeroed (BN's running statistics then no longer matter)."""
    masked = Darknet(model.cfg)
    masked.load_state_dict(model.state_dict())
    masked.eval()
    for group, kept in zip(groups, plan.kept):
        keep = set(kept)
        for u, unit in enumerate(group.units):
            if u in keep:
                continue
            for block, channel in unit:
                module = cast(ConvBNAct, masked.blocks[block])
                module.conv.weight[channel] = 0
                if module.conv.bias is not None:
                    module.conv.bias[channel] = 0
                if module.bn is not None:
                    module.bn.weight[channel] = 0
                    module.bn.bias[channel] = 0
    return masked


def prune_filters(
    model: Darknet,
    *,
    target: float,
    criterion: str,
    scope: str = "global",
    round_to: int = 8,
    img_size: int = 416,
    ignored_layers: tuple[int, ...] = (),
) -> PruneResult:
    """A genuinely smaller model with at most ``target`` x the MACs of ``model``.

    Raises ``ValueError`` for a target that cannot be met, or if the compacted model does
    not compute what the masked one does (to 1e-4).
    """
    model = model.eval()
    groups, unprunable = layer_groups(model, ignored_layers=ignored_layers,
                                      need_batch_norm=criterion == "bn_gamma")  # fmt: skip
    plan = plan_pruning(model, groups, target=target, criterion=criterion, scope=scope,
                        round_to=round_to, img_size=img_size)  # fmt: skip
    masked = masked_copy(model, groups, plan)
    smaller = compact(masked)
    expected = _widths_after(model, groups, plan)
    for index, width in expected.items():
        got = cast(ConvBNAct, smaller.blocks[index]).conv.out_channels
        if got != width:
            raise ValueError(f"block {index}: compaction kept {got} channels, the plan {width}")
    return PruneResult(smaller, masked, plan, tuple(groups), tuple(unprunable))


def _widths_after(model: Darknet, groups: list[LayerGroup], plan: PrunePlan) -> dict[int, int]:
    widths: dict[int, int] = {}
    for group, kept in zip(groups, plan.kept):
        for block in group.blocks:
            widths.setdefault(block, cast(ConvBNAct, model.blocks[block]).conv.out_channels)
        for u, unit in enumerate(group.units):
            if u not in set(kept):
                for block, _ in unit:
                    widths[block] -= 1
    return widths
