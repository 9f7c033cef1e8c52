"""The filters structured pruning may remove, in the groups that must go together.

A *unit* is one channel of a residual stream or of a plain conv: the conv output channels
that :mod:`yolo.compress.channel_graph` ties through linear shortcuts (one channel of one
conv where nothing ties it). Removing a unit removes the filter of every member and the
matching input column of every reader; routes only shift where a reader finds it. Units
whose members are the same conv blocks form a :class:`LayerGroup`: the units one
``round_to`` count applies to (the kept width of a layer, or of a residual stream).

A unit can only go when removing it is exact on the masked model, i.e. when a zeroed
filter makes its channel exactly 0 (filter, bias, BN gamma and beta zeroed; the activation
maps 0 to 0) and every reader is a plain conv that reads each input channel on its own. Every
conv channel that fails a rule is reported as an :class:`Unprunable` with the block, its cfg
line and the rule, so a user's cfg is never pruned less than asked without saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch

from yolo.compress.channel_graph import Channel, channel_graph, find_root
from yolo.config import ConvBlock
from yolo.layers import ConvBNAct, make_activation
from yolo.model import Darknet


@dataclass(frozen=True)
class LayerGroup:
    """Conv blocks whose output channels are removed together, unit by unit."""

    blocks: tuple[int, ...]
    units: tuple[tuple[Channel, ...], ...]  # each unit: its (block, channel) members

    @property
    def width(self) -> int:
        return len(self.units)


@dataclass(frozen=True)
class Unprunable:
    """Conv blocks whose channels stay, and the rule that keeps them."""

    blocks: tuple[int, ...]
    line: int  # the cfg line of the first block
    reason: str

    def describe(self, source: str) -> str:
        names = ", ".join(str(b) for b in self.blocks)
        return f"{source}:{self.line}: block {names}: not pruned: {self.reason}"


def _zero_preserving(activation: str) -> bool:
    return float(make_activation(activation)(torch.zeros(1)).item()) == 0.0


def layer_groups(
    model: Darknet, *, ignored_layers: tuple[int, ...] = (), need_batch_norm: bool = False
) -> tuple[list[LayerGroup], list[Unprunable]]:
    """The prunable groups of ``model`` in forward order, and what is not prunable and why.

    ``ignored_layers`` (block indices) and the prediction convs are never pruned, nor is any
    channel tied to them. ``need_batch_norm`` (the BN-gamma criterion) keeps convs without BN.
    """
    blocks = model.cfg.blocks
    graph = channel_graph(model)
    ignored = {i % len(blocks) for i in ignored_layers}
    kept = set(model.prediction_conv_indices()) | ignored
    tied = model.weight_ties()  # share_index: filters and inputs are one tensor on both sides
    why: dict[Channel, str] = {}  # root -> the first rule it breaks
    members: dict[Channel, list[Channel]] = {}
    for i, block in enumerate(blocks):
        if not isinstance(block, ConvBlock):
            continue
        width = cast(ConvBNAct, model.blocks[i]).conv.out_channels
        for c in range(width):
            root = find_root(graph.group, (i, c))
            members.setdefault(root, []).append((i, c))
            if i in kept:
                rule = "in ignored_layers" if i in ignored else "a prediction conv"
                why.setdefault(root, f"tied to block {i}, {rule}")
            elif i in tied:
                why.setdefault(root, f"block {i} shares its weights with block {tied[i]} "
                               "(share_index)")  # fmt: skip
            elif block.groups != 1:
                why.setdefault(root, f"groups={block.groups} (a grouped conv ties its channels)")
            elif not _zero_preserving(block.activation):
                why.setdefault(root, f"activation={block.activation} is not 0 at 0, so a "
                               "removed channel would leave a constant")  # fmt: skip
            elif need_batch_norm and not block.batch_normalize:
                why.setdefault(root, "no batch_normalize, so no BN gamma to rank by")
    read: set[Channel] = set()
    for consumer, position, terms in graph.readers:
        root = find_root(graph.group, next(iter(terms)))
        read.add(root)
        reader = blocks[consumer]
        if position is None or not isinstance(reader, ConvBlock):
            why.setdefault(root, f"read as a whole by block {consumer} ([{reader.section}], "
                           f"line {reader.line})")  # fmt: skip
        elif consumer in tied:
            why.setdefault(root, f"read by block {consumer}, which shares its weights with "
                           f"block {tied[consumer]} (share_index)")  # fmt: skip
    for root in members:
        if root not in read:
            why.setdefault(root, "its output is read by nothing the pruner can follow")
    by_blocks: dict[tuple[int, ...], list[tuple[Channel, ...]]] = {}
    refused: dict[tuple[tuple[int, ...], str], None] = {}
    for root, channels in members.items():
        key = tuple(sorted({b for b, _ in channels}))
        if root in why:
            if not all(b in kept for b in key):  # the prediction convs need no mention
                refused[(key, why[root])] = None
            continue
        by_blocks.setdefault(key, []).append(tuple(sorted(channels)))
    groups = [LayerGroup(key, tuple(sorted(units, key=lambda u: u[0][1])))
              for key, units in sorted(by_blocks.items())]  # fmt: skip
    unprunable = [Unprunable(key, blocks[key[0]].line, reason) for key, reason in refused]
    return groups, sorted(unprunable, key=lambda u: u.blocks)


CRITERIA = ("l1", "l2", "bn_gamma")


@torch.no_grad()
def unit_scores(model: Darknet, group: LayerGroup, criterion: str) -> torch.Tensor:
    """Importance of each unit of ``group`` (higher: kept longer), summed over its members:
    the L1 or L2 norm of the filters, or |BN gamma| (network slimming)."""
    scores = torch.zeros(group.width)
    for u, unit in enumerate(group.units):
        total = 0.0
        for block, channel in unit:
            module = cast(ConvBNAct, model.blocks[block])
            weight = module.conv.weight[channel].detach().float()
            if criterion == "l1":
                total += float(weight.abs().sum())
            elif criterion == "l2":
                total += float(weight.pow(2).sum())
            elif criterion == "bn_gamma":
                assert module.bn is not None, "layer_groups(need_batch_norm=True) keeps these"
                total += float(module.bn.weight[channel].abs())
            else:
                raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}, "
                                 f"got '{criterion}'")  # fmt: skip
        scores[u] = total**0.5 if criterion == "l2" else total
    return scores
