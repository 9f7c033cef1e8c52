"""Weight inheritance: a candidate architecture starts from a trained parent of its family.

Blocks are matched structurally (:func:`match_blocks`): the parent's and the candidate's
residual stages (:func:`yolo.architecture.find_stages`) pair unit ``u`` of stage ``s`` with
unit ``u`` (a candidate keeps a stage's first units), and the blocks outside every stage
pair in order. Each pair then copies what overlaps, by the rule its block type states in
``inherit_rule`` (:mod:`yolo.blocks`, the block registry):

- ``[mobile]``: the hidden (expanded) channels in the parent's order of importance (|γ| of
  the expansion's BatchNorm, largest first): candidate channel ``j`` takes the parent's
  ``j``-th most important one through the expansion, the depthwise conv, squeeze-excite and
  the projection; a smaller depthwise kernel takes the centre of the parent's, a larger one
  holds the parent's at its centre and zeros around it; squeeze-excite's hidden units are
  the first ``m``. What the parent lacks (extra hidden channels, an SE the parent has not)
  keeps its fresh initialisation, and its weights into the projection are zero, so that a
  candidate at least as large as its parent starts computing exactly the parent's function.
- ``[PEP]``: the same rule over its projection channels ``x`` (importance: |γ| of the
  input projection's BatchNorm), through the separable block it feeds.
- every other block: its tensors must have the parent's shapes and are copied whole.

Written here: Once-for-All and NNI inherit from a supernet whose modules they own; no
library maps darknet blocks, and the rule is a few tensor slices per block type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from yolo.architecture import find_stages
from yolo.blocks import MobileBlock, PEPBlock
from yolo.config import Cfg
from yolo.layers import PEP, ConvBNAct, MobileBottleneck, SqueezeExcite
from yolo.model import Darknet


class InheritError(ValueError):
    """A candidate whose blocks do not map onto the parent's; names the block."""


def match_blocks(child: Cfg, parent: Cfg) -> tuple[int, ...]:
    """For each of ``child``'s blocks, the parent block it inherits from."""
    child_stages, parent_stages = find_stages(child), find_stages(parent)
    if len(child_stages) != len(parent_stages):
        raise InheritError(f"{child.source}: {len(child_stages)} residual stages, the "
                           f"parent {parent.source} {len(parent_stages)}: not the same "
                           "family")  # fmt: skip
    unit_of: dict[int, tuple[int, int, int]] = {}  # child block -> (stage, unit, position)
    for s, (cs, ps) in enumerate(zip(child_stages, parent_stages)):
        if cs.kind != ps.kind or cs.depth > ps.depth:
            raise InheritError(f"{child.source}: stage {cs.name} has {cs.depth} {cs.kind} "
                               f"units, the parent's {ps.depth} {ps.kind} units: a candidate "
                               "keeps a stage's first units of the parent's kind")  # fmt: skip
        for u, unit in enumerate(cs.units):
            if len(unit) != len(ps.units[u]):
                raise InheritError(f"{child.source}: stage {cs.name} unit {u + 1} has "
                                   f"{len(unit)} blocks, the parent's "
                                   f"{len(ps.units[u])}")  # fmt: skip
            for position, index in enumerate(unit):
                unit_of[index] = (s, u, position)
    in_units = {b for stage in parent_stages for unit in stage.units for b in unit}
    parent_fixed = [i for i in range(len(parent.blocks)) if i not in in_units]
    child_fixed = [i for i in range(len(child.blocks)) if i not in unit_of]
    if len(child_fixed) != len(parent_fixed):
        raise InheritError(f"{child.source}: {len(child_fixed)} blocks outside the stages, the "
                           f"parent {len(parent_fixed)}: not the same family")  # fmt: skip
    fixed = dict(zip(child_fixed, parent_fixed))
    result = []
    for i, block in enumerate(child.blocks):
        if i in unit_of:
            s, u, position = unit_of[i]
            j = parent_stages[s].units[u][position]
        else:
            j = fixed[i]
        if type(parent.blocks[j]) is not type(block):
            raise InheritError(f"{child.source}: block {i} [{block.section}] meets the "
                               f"parent's block {j} [{parent.blocks[j].section}]: not the "
                               "same family")  # fmt: skip
        result.append(j)
    return tuple(result)


@dataclass(frozen=True)
class Inherited:
    """How much of the candidate came from the parent."""

    copied: int  # parameter values taken from the parent
    total: int  # parameter values of the candidate

    @property
    def fraction(self) -> float:
        return self.copied / self.total if self.total else 0.0


def _importance(conv: ConvBNAct) -> torch.Tensor:
    """Output channels of ``conv``, most important first (|γ| of its BatchNorm)."""
    if conv.bn is None:
        return torch.arange(conv.conv.out_channels)
    return torch.argsort(conv.bn.weight.detach().abs(), descending=True, stable=True)


def _copy_bn(child: nn.BatchNorm2d | None, parent: nn.BatchNorm2d | None,
             idx: torch.Tensor) -> None:  # fmt: skip
    """BatchNorm channels ``0..k-1`` of ``child`` from the parent's channels ``idx``."""
    if child is None or parent is None:
        return
    k = len(idx)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(child, name)[:k] = getattr(parent, name)[idx]
    if child.num_batches_tracked is not None and parent.num_batches_tracked is not None:
        child.num_batches_tracked.copy_(parent.num_batches_tracked)


def _kernel_slice(child: torch.Tensor, parent: torch.Tensor) -> None:
    """``child[…, kc, kc] <- parent[…, kp, kp]``: the centre of a larger kernel, or the
    parent's kernel at the centre of a larger one, zeros around it."""
    kc, kp = child.shape[-1], parent.shape[-1]
    if kc <= kp:
        off = (kp - kc) // 2
        child.copy_(parent[..., off : off + kc, off : off + kc])
    else:
        off = (kc - kp) // 2
        child.zero_()
        child[..., off : off + kp, off : off + kp] = parent


def _same(child: nn.Module, parent: nn.Module, where: str) -> None:
    theirs = parent.state_dict()
    for name, tensor in child.state_dict().items():
        if name not in theirs or theirs[name].shape != tensor.shape:
            got = tuple(theirs[name].shape) if name in theirs else "nothing"
            raise InheritError(f"{where}: {name} is {tuple(tensor.shape)} in the candidate and "
                               f"{got} in the parent; this block type inherits only "
                               "equal shapes (same family, width and classes)")  # fmt: skip
        tensor.copy_(theirs[name])


def _same_ends(child: tuple[int, int], parent: tuple[int, int], where: str) -> None:
    """A block's input and output channels are its stage's width: they must be the parent's."""
    if child != parent:
        raise InheritError(f"{where}: {child[0]} -> {child[1]} channels in the candidate and "
                           f"{parent[0]} -> {parent[1]} in the parent; a candidate keeps its "
                           "parent's stage widths (same family and width)")  # fmt: skip


def _squeeze_excite(child: SqueezeExcite, parent: SqueezeExcite, idx: torch.Tensor) -> None:
    k = len(idx)
    m = min(child.fc1.out_features, parent.fc1.out_features)
    child.fc1.weight[:m, k:] = 0  # channels the parent lacks do not move the kept gates
    child.fc1.weight[:m, :k] = parent.fc1.weight[:m][:, idx]
    child.fc1.bias[:m] = parent.fc1.bias[:m]
    child.fc2.weight[:, m:] = 0
    child.fc2.weight[:k, :m] = parent.fc2.weight[idx][:, :m]
    child.fc2.bias[:k] = parent.fc2.bias[idx]


def _mobile(child: nn.Module, parent: nn.Module, where: str) -> None:
    assert isinstance(child, MobileBottleneck) and isinstance(parent, MobileBottleneck)

    def ends(m: MobileBottleneck) -> tuple[int, int]:
        first = m.expand if m.expand is not None else m.depthwise
        return first.conv.in_channels, m.project.conv.out_channels

    _same_ends(ends(child), ends(parent), where)
    if (child.expand is None) != (parent.expand is None):
        # the hidden channels are the block's input on one side only: nothing lines up
        # but the projection's output
        _copy_bn(child.project.bn, parent.project.bn,
                 torch.arange(child.project.conv.out_channels))  # fmt: skip
        return
    hidden_c, hidden_p = child.depthwise.conv.out_channels, parent.depthwise.conv.out_channels
    order = _importance(parent.expand) if parent.expand is not None else torch.arange(hidden_p)
    idx = order[: min(hidden_c, hidden_p)]
    k = len(idx)
    if child.expand is not None and parent.expand is not None:
        child.expand.conv.weight[:k] = parent.expand.conv.weight[idx]
        _copy_bn(child.expand.bn, parent.expand.bn, idx)
    _kernel_slice(child.depthwise.conv.weight[:k], parent.depthwise.conv.weight[idx])
    _copy_bn(child.depthwise.bn, parent.depthwise.bn, idx)
    if child.se is not None and parent.se is not None:
        _squeeze_excite(child.se, parent.se, idx)
    child.project.conv.weight.zero_()
    child.project.conv.weight[:, :k] = parent.project.conv.weight[:, idx]
    _copy_bn(child.project.bn, parent.project.bn, torch.arange(child.project.conv.out_channels))


def _pep(child: nn.Module, parent: nn.Module, where: str) -> None:
    assert isinstance(child, PEP) and isinstance(parent, PEP)
    _same_ends((child.project_in.conv.in_channels, child.block.project.conv.out_channels),
               (parent.project_in.conv.in_channels, parent.block.project.conv.out_channels),
               where)  # fmt: skip
    idx = _importance(parent.project_in)[: min(child.project_in.conv.out_channels,
                                               parent.project_in.conv.out_channels)]  # fmt: skip
    k = len(idx)
    child.project_in.conv.weight[:k] = parent.project_in.conv.weight[idx]
    _copy_bn(child.project_in.bn, parent.project_in.bn, idx)
    inner_c, inner_p = child.block, parent.block
    inner_c.expand.conv.weight[:k, k:] = 0  # channels the parent lacks do not move kept ones
    inner_c.expand.conv.weight[:k, :k] = parent.block.expand.conv.weight[idx][:, idx]
    _copy_bn(inner_c.expand.bn, inner_p.expand.bn, idx)
    inner_c.depthwise.conv.weight[:k] = inner_p.depthwise.conv.weight[idx]
    _copy_bn(inner_c.depthwise.bn, inner_p.depthwise.bn, idx)
    inner_c.project.conv.weight.zero_()
    inner_c.project.conv.weight[:, :k] = inner_p.project.conv.weight[:, idx]
    _copy_bn(inner_c.project.bn, inner_p.project.bn,
             torch.arange(inner_c.project.conv.out_channels))  # fmt: skip


# block type -> its rule (the rule's words are the block class's `inherit_rule`)
_RULES: dict[type, Callable[[nn.Module, nn.Module, str], None]] = {
    MobileBlock: _mobile,
    PEPBlock: _pep,
}


def _count_copied(child: nn.Module, before: dict[str, torch.Tensor]) -> int:
    """Parameter values that changed from their initialisation (an exact zero written where
    the init was zero, e.g. a bias, counts as kept, which can only under-count)."""
    return sum(int((p.detach() != before[n]).sum()) for n, p in child.named_parameters())


@torch.no_grad()
def inherit_weights(child: Darknet, parent: Darknet) -> Inherited:
    """Copy into ``child`` what it shares with ``parent`` (see the module doc)."""
    if child.num_classes != parent.num_classes:
        raise InheritError(f"{child.cfg.source}: the candidate predicts {child.num_classes} "
                           f"classes, the parent {parent.num_classes}")  # fmt: skip
    pairs = match_blocks(child.cfg, parent.cfg)
    before = {n: p.detach().clone() for n, p in child.named_parameters()}
    for i, j in enumerate(pairs):
        block = child.cfg.blocks[i]
        rule = _RULES.get(type(block), _same)
        rule(child.blocks[i], parent.blocks[j],
             f"{child.cfg.source}: block {i} [{block.section}] (parent block {j})")  # fmt: skip
    total = sum(p.numel() for p in child.parameters())
    return Inherited(_count_copied(child, before), total)
