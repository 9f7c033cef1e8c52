"""Structured pruning of one model: choose filters to a MACs target, remove them for real.

Which filters: every unit of every :class:`~yolo.compress.channel_groups.LayerGroup` gets a
score (:func:`~yolo.compress.channel_groups.unit_scores`). *Global* scope removes, chunk by
chunk, the cheapest chunk over all groups, where a chunk takes a group's width down to its
next multiple of ``round_to`` and costs the mean score of the units it removes (L1/L2 scores
are divided by their group's mean so that wide-fan-in layers do not look more important
than narrow ones; BN gammas are compared raw, as network slimming does). *Local* scope keeps
the same share of every group, the largest share that meets the target. Either stops at the
first plan whose MACs are at most ``target`` times the dense model's.

Besides the conv channels, the channels inside a block are units too
(:mod:`yolo.compress.inner_groups`: a ``[mobile]`` block's hidden channels, a ``[PEP]``'s
projection channels), each block its own group, ranked and chunked the same way.

How: the chosen units' filters, biases and BN gamma/beta are zeroed, which makes their
channels exactly 0 (the *masked* model), then :func:`~yolo.compress.compact.compact`
removes the conv channels and :func:`~yolo.compress.inner_groups.remove_inner` the inner
ones, and the smaller model is checked to compute what the masked one does.

Why the project's own cfg-level graph and not Torch-Pruning's: the deliverable is a darknet
cfg plus weights that every command loads, and the cfg graph already knows routes'
offsets and shortcuts' ties at the level the cfg writes widths; a traced torch graph would
hand back modules whose widths must be mapped back onto cfg keys, one rule per block type.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch

from yolo.compress.channel_groups import LayerGroup, Unprunable, layer_groups, unit_scores
from yolo.compress.compact import compact
from yolo.compress.inner_groups import (
    InnerGroup,
    InnerMacs,
    inner_groups,
    inner_scores,
    remove_inner,
    zero_filters,
    zero_inner,
)
from yolo.config import Cfg, ConvBlock
from yolo.layers import ConvBNAct
from yolo.metrics.profile import count_macs
from yolo.model import Darknet
from yolo.topology import infer_shapes

SCOPES = ("global", "local")
Group = LayerGroup | InnerGroup


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
    groups: tuple[Group, ...]
    unprunable: tuple[Unprunable, ...]


def pruning_groups(model: Darknet, *, ignored_layers: tuple[int, ...] = (), criterion: str,
                   round_to: int) -> tuple[list[Group], list[Unprunable]]:  # fmt: skip
    """Every group structured pruning can shrink (conv channels through routes and
    shortcuts, then the channels inside blocks), and what stays, with why."""
    layers, refused = layer_groups(model, ignored_layers=ignored_layers,
                                   need_batch_norm=criterion == "bn_gamma")  # fmt: skip
    inner, kept = inner_groups(model, ignored_layers=ignored_layers, round_to=round_to)
    return [*layers, *inner], sorted([*refused, *kept], key=lambda u: u.blocks)


def allowed_widths(group: Group, round_to: int) -> list[int]:
    """The widths ``group`` may be pruned to, widest (its own) first."""
    if isinstance(group, InnerGroup):
        step = group.multiple
        lower = range((group.width - 1) // step * step, step - 1, -step)
        return [group.width, *(w for w in lower if group.allowed(w))]
    if group.width <= round_to:
        return [group.width]
    lower = range((group.width - 1) // round_to * round_to, round_to - 1, -round_to)
    return [group.width, *lower]


def _nearest_width(group: Group, share: float, round_to: int) -> int:
    """The width ``group`` keeps at ``share`` (local scope)."""
    if isinstance(group, LayerGroup):
        return kept_width(group.width, share, round_to)
    widths = allowed_widths(group, round_to)
    return min(widths, key=lambda w: (abs(w - share * group.width), -w))


def kept_width(width: int, share: float, round_to: int) -> int:
    """Channels a group of ``width`` keeps at ``share``: the nearest multiple of
    ``round_to``, at least ``round_to``; a group no wider than ``round_to`` keeps all."""
    if width <= round_to:
        return width
    return min(width, max(round_to, round(share * width / round_to) * round_to))


class MacModel:
    """MACs of the model with its groups at given widths, from shapes alone (no tensors).

    Conv MACs are counted from the cfg (``k*k*in/groups*out`` per output position); what
    the rest of the model costs cannot change when only groups' widths do, so it is taken
    once from :func:`count_macs` on the model itself.
    """

    def __init__(self, model: Darknet, groups: Sequence[Group], img_size: int) -> None:
        self.cfg: Cfg = model.cfg
        self.groups = groups
        self.img_size = img_size
        self.dense = count_macs(model, img_size).dense
        self.rest = self.dense - self._conv_macs(self.cfg)
        self.inner = InnerMacs(model, img_size)

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
        inner = 0
        for group, kept in zip(self.groups, kept_counts):
            if isinstance(group, InnerGroup):  # a block of its own: its cost at that width
                if kept != group.width:
                    inner += self.inner.cost(group, kept) - self.inner.cost(group, group.width)
                continue
            for unit in group.units[kept:]:  # only the count matters here
                for index, _ in unit:
                    removed[index] = removed.get(index, 0) + 1
        blocks = list(self.cfg.blocks)
        for index, count in removed.items():
            conv = cast(ConvBlock, blocks[index])
            blocks[index] = dataclasses.replace(conv, filters=conv.filters - count)
        return self.rest + inner + self._conv_macs(self.cfg.replace_blocks(blocks))


def unreachable(target: float, floor: float, round_to: int) -> str:
    """Why ``target`` is refused: the smallest share that works (``floor``, rounded up)."""
    smallest = math.ceil(floor * 1000) / 1000
    return (f"target_macs={target:g} cannot be reached: with every prunable layer at its "
            f"narrowest (round_to={round_to} channels) the model keeps {floor:.3f} of its "
            f"MACs; the smallest target that works is {smallest:.3f}")  # fmt: skip


def narrowest_share(model: Darknet, groups: Sequence[Group], round_to: int,
                    img_size: int) -> float:  # fmt: skip
    """The smallest MACs share pruning can reach: every group at its narrowest width."""
    macs = MacModel(model, groups, img_size)
    return macs.macs([allowed_widths(g, round_to)[-1] for g in groups]) / macs.dense


def _scores(model: Darknet, group: Group, criterion: str) -> torch.Tensor:
    if isinstance(group, InnerGroup):
        return inner_scores(model, group, criterion)
    return unit_scores(model, group, criterion)


def plan_pruning(
    model: Darknet,
    groups: list[Group],
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
    scores = [_scores(model, g, criterion) for g in groups]
    order = [torch.argsort(s, descending=True, stable=True).tolist() for s in scores]
    widths = [allowed_widths(g, round_to) for g in groups]
    floor = macs.macs([w[-1] for w in widths])
    if floor > budget:
        raise ValueError(unreachable(target, floor / macs.dense, round_to))

    def counts_to_plan(counts: list[int]) -> PrunePlan:
        kept = tuple(tuple(sorted(o[:k])) for o, k in zip(order, counts))  # the best k
        return PrunePlan(kept, macs.macs(counts), macs.dense)

    if scope == "local":
        low, high = 0.0, 1.0
        for _ in range(40):
            share = (low + high) / 2
            counts = [_nearest_width(g, share, round_to) for g in groups]
            low, high = (share, high) if macs.macs(counts) <= budget else (low, share)
        return counts_to_plan([_nearest_width(g, low, round_to) for g in groups])

    normalised = [s / s.mean().clamp_min(1e-12) if criterion != "bn_gamma" else s
                  for s in scores]  # fmt: skip
    ascending = [[float(s[i]) for i in reversed(o)] for s, o in zip(normalised, order)]
    counts = [g.width for g in groups]
    current = macs.dense
    while current > budget:
        best, best_cost = -1, math.inf
        for k, group in enumerate(groups):
            lower = next((w for w in widths[k] if w < counts[k]), None)
            if lower is None:
                continue
            removed = group.width - counts[k], group.width - lower
            chunk = ascending[k][removed[0] : removed[1]]
            cost = sum(chunk) / len(chunk)
            if cost < best_cost:
                best, best_cost = k, cost
        assert best >= 0, "the floor check above guarantees a chunk is left"
        counts[best] = next(w for w in widths[best] if w < counts[best])
        current = macs.macs(counts)
    return counts_to_plan(counts)


@torch.no_grad()
def masked_copy(model: Darknet, groups: list[Group], plan: PrunePlan) -> Darknet:
    """A copy of ``model`` whose removed units' channels are exactly 0: filter, bias, BN
    gamma and beta zeroed (BN's running statistics then no longer matter)."""
    masked = Darknet(model.cfg)
    masked.load_state_dict(model.state_dict())
    masked.eval()
    for group, kept in zip(groups, plan.kept):
        if isinstance(group, InnerGroup):
            zero_inner(masked, group, kept)
            continue
        keep = set(kept)
        for u, unit in enumerate(group.units):
            if u in keep:
                continue
            for block, channel in unit:
                zero_filters(cast(ConvBNAct, masked.blocks[block]), [channel])
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
    groups, unprunable = pruning_groups(model, ignored_layers=ignored_layers,
                                        criterion=criterion, round_to=round_to)  # fmt: skip
    plan = plan_pruning(model, groups, target=target, criterion=criterion, scope=scope,
                        round_to=round_to, img_size=img_size)  # fmt: skip
    masked = masked_copy(model, groups, plan)
    smaller = compact(masked)
    inner = [(g, kept) for g, kept in zip(groups, plan.kept) if isinstance(g, InnerGroup)]
    if inner:
        smaller = remove_inner(smaller, [g for g, _ in inner], [k for _, k in inner])
        _check_same(masked, smaller)
    expected = _widths_after(model, groups, plan)
    for index, width in expected.items():
        got = cast(ConvBNAct, smaller.blocks[index]).conv.out_channels
        if got != width:
            raise ValueError(f"block {index}: compaction kept {got} channels, the plan {width}")
    return PruneResult(smaller, masked, plan, tuple(groups), tuple(unprunable))


@torch.no_grad()
def _check_same(masked: Darknet, smaller: Darknet, size: int = 64, atol: float = 1e-4) -> None:
    """The smaller model computes what the masked one does (on a random input): the raw
    head maps, which stay finite where decoding a barely trained model's may overflow, to
    ``atol`` relative to their largest value (float sums in another order differ by that)."""
    x = torch.rand(1, masked.cfg.net.channels, size, size)
    device = next(masked.parameters()).device
    theirs = [m.cpu() for m in masked.eval()(x.to(device), decode=False)]
    ours = smaller.eval()(x, decode=False)
    scale = max(1.0, max(m.abs().max().item() for m in theirs))
    difference = max((a - b).abs().max().item() for a, b in zip(theirs, ours))
    if not difference <= atol * scale:
        raise ValueError(f"removing inner channels changed the outputs by {difference:.2e} "
                         f"(largest output {scale:.3g})")  # fmt: skip


def _widths_after(model: Darknet, groups: list[Group], plan: PrunePlan) -> dict[int, int]:
    widths: dict[int, int] = {}
    for group, kept in zip(groups, plan.kept):
        if isinstance(group, InnerGroup):
            continue
        for block in group.blocks:
            widths.setdefault(block, cast(ConvBNAct, model.blocks[block]).conv.out_channels)
        for u, unit in enumerate(group.units):
            if u not in set(kept):
                for block, _ in unit:
                    widths[block] -= 1
    return widths
