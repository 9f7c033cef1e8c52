"""Compaction: remove conv filters that pruning zeroed, for a smaller dense model.

A filter whose weights (and bias) are all zero makes its output channel a constant
``a = act(BN(0))`` over the whole map. A linear ``shortcut`` adds channels position by
position, so channel c of a residual stream is the sum of the channels c of every conv that
feeds the stream: those convs form a *group*, removed together or not at all. A group can go
when all its filters are dead and every reader can absorb the stream's constant (the sum of
its members' constants) exactly:

- a 1x1 (or unpadded) conv folds ``W[:, c] * a`` (summed over the kernel) into its bias or
  its BN running mean;
- a padded k x k conv only when the constant is 0 (at the border the zero padding would
  otherwise differ from the constant).

Channels are followed through ``route`` (concatenation offsets), ``upsample``, ``maxpool``
and linear ``shortcut``. A channel read by anything else (PEP/EP/mobile/FCA, a head, a
depthwise conv, a shortcut with an activation) stays. :func:`compact` checks its result and
raises if the compacted model's outputs differ from the original's.
"""

from __future__ import annotations

import dataclasses
from typing import cast

import torch

from yolo.compress.channel_graph import Channel, ChannelGraph, channel_graph, find_root
from yolo.config import ConvBlock
from yolo.layers import ConvBNAct
from yolo.model import Darknet


def _unit(model: Darknet, index: int) -> ConvBNAct:
    """The conv/BN/act module of a [convolutional] block."""
    return cast(ConvBNAct, model.blocks[index])


@torch.no_grad()
def _constant(module: ConvBNAct, channel: int) -> float:
    """The value a dead filter's channel takes everywhere (eval-mode BN, then activation)."""
    conv, bn, act = module.conv, module.bn, module.act
    value = torch.zeros(1, 1, 1, 1)
    if conv.bias is not None:
        value = value + conv.bias[channel].cpu()
    if bn is not None:
        mean, var = cast(torch.Tensor, bn.running_mean), cast(torch.Tensor, bn.running_var)
        scale = bn.weight[channel] / torch.sqrt(var[channel] + bn.eps)
        value = (value - mean[channel].cpu()) * scale.cpu() + bn.bias[channel].cpu()
    return float(act(value).item())


def dead_channels(model: Darknet) -> dict[Channel, float]:
    """Conv channels whose filter is all zero, with their constant value."""
    # prediction convs keep their outputs; a conv sharing weights (share_index) keeps them
    # too, since removing a channel from one copy would untie the other
    kept = set(model.prediction_conv_indices()) | set(model.weight_ties())
    dead: dict[Channel, float] = {}
    for i, block in enumerate(model.cfg.blocks):
        if not isinstance(block, ConvBlock) or i in kept:
            continue
        module = _unit(model, i)
        zero = (module.conv.weight.detach().flatten(1) == 0).all(1)
        if module.conv.bias is not None:
            zero &= module.conv.bias.detach() == 0
        for c in zero.nonzero().flatten().tolist():
            dead[(i, c)] = _constant(module, c)
    return dead


def removable_channels(model: Darknet, graph: ChannelGraph | None = None) -> dict[Channel, float]:
    """Dead channels whose whole shortcut group can go, with their constants."""
    graph = graph or channel_graph(model)
    dead = dead_channels(model)
    members: dict[Channel, list[Channel]] = {}
    for channel in list(dead) + list(graph.group):
        members.setdefault(find_root(graph.group, channel), []).append(channel)
    ok = {root: all(c in dead for c in cs) for root, cs in members.items()}
    tied = model.weight_ties()
    read = set()
    for consumer, position, terms in graph.readers:
        root = find_root(graph.group, next(iter(terms)))
        read.add(root)
        block = model.cfg.blocks[consumer]
        value = sum(dead.get(t, 0.0) for t in terms)
        if position is None or not isinstance(block, ConvBlock) or consumer in tied:
            ok[root] = False
        elif block.padding and value != 0.0:
            ok[root] = False
    while True:  # a conv keeps one channel however dead: a layer of width 0 cannot run
        roots = {c: find_root(graph.group, c) for c in dead}
        removed = {c: dead[c] for c in dead if ok.get(roots[c]) and roots[c] in read}
        convs = [i for i, block in enumerate(model.cfg.blocks) if isinstance(block, ConvBlock)]
        widths = {i: _unit(model, i).conv.out_channels for i in convs}
        emptied = [i for i in convs if all((i, c) in removed for c in range(widths[i]))]
        if not emptied:
            return removed
        for i in emptied:
            ok[find_root(graph.group, (i, 0))] = False


@torch.no_grad()
def compact(model: Darknet, *, check_size: int = 64, atol: float = 1e-4) -> Darknet:
    """A smaller dense model with the same outputs (checked on a random input)."""
    model = model.eval()
    graph = channel_graph(model)
    removed = removable_channels(model, graph)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    blocks = list(model.cfg.blocks)
    for i, block in enumerate(model.cfg.blocks):
        if not isinstance(block, ConvBlock):
            continue
        prefix = f"blocks.{i}."
        weight = state[prefix + "conv.weight"]
        stream = graph.origin[i - 1] if i else [None] * model.cfg.net.channels
        gone = [terms is not None and all(t in removed for t in terms) for terms in stream]
        shift = torch.zeros(weight.shape[0])
        for position, terms in enumerate(stream):
            if gone[position]:
                shift += weight[:, position].sum((1, 2)) * sum(removed[t] for t in terms or ())
        if prefix + "bn.running_mean" in state:
            state[prefix + "bn.running_mean"] -= shift
        else:
            state[prefix + "conv.bias"] += shift
        rows = torch.tensor([(i, c) not in removed for c in range(weight.shape[0])])
        state[prefix + "conv.weight"] = weight[rows][:, ~torch.tensor(gone)].contiguous()
        for key in ("conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"):
            if prefix + key in state:
                state[prefix + key] = state[prefix + key][rows].contiguous()
        if not rows.all():
            blocks[i] = dataclasses.replace(block, filters=int(rows.sum()))
    smaller = Darknet(model.cfg.replace_blocks(blocks))
    smaller.load_state_dict(state)
    smaller.eval()
    x = torch.rand(1, model.cfg.net.channels, check_size, check_size)
    device = next(model.parameters()).device
    difference = (model(x.to(device)).cpu() - smaller(x)).abs().max().item()
    if difference > atol:
        raise ValueError(f"compaction changed the outputs by {difference:.3g} (> {atol}); not used")
    return smaller
