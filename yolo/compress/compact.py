"""Compaction: remove conv filters that pruning zeroed, for a smaller dense model.

A filter whose weights (and bias) are all zero makes its output channel a constant
``a = act(BN(0))`` over the whole map; a consumer conv sees that constant, so the channel can
go if its contribution can be folded into the consumer exactly:

- a 1x1 (or unpadded) consumer conv: ``W[:, c] * a`` summed over the kernel is added to the
  consumer's bias, or subtracted from its BN running mean;
- a padded k x k consumer: only when ``a == 0`` (at the border the zero padding would
  otherwise differ from the constant).

Channels are followed through ``route`` (concatenation offsets), ``upsample`` and
``maxpool``. A channel read by anything else (shortcut, PEP/EP/mobile/FCA, a head, a
depthwise conv) stays. The result is checked: :func:`compact` raises if the compacted
model's outputs differ from the original's.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from yolo.config import ConvBlock, MaxPoolBlock, RouteBlock, UpsampleBlock
from yolo.model import Darknet

Channel = tuple[int, int]  # (conv block index, output channel)


def _provenance(model: Darknet) -> tuple[list[list[Channel | None]], dict[Channel, list]]:
    """For every block, where each output channel comes from; and who reads each conv
    channel as ``(consumer block, input position)`` or ``(block, None)`` for non-conv readers."""
    origin: list[list[Channel | None]] = []
    readers: dict[Channel, list] = {}
    channels = [None] * model.cfg.net.channels
    for i, (block, shape) in enumerate(zip(model.cfg.blocks, model.shapes)):
        previous = origin[i - 1] if i else channels
        if isinstance(block, RouteBlock):
            origin.append([c for s in shape.sources for c in origin[s]])
            continue
        if isinstance(block, (UpsampleBlock, MaxPoolBlock)):
            origin.append(list(previous))
            continue
        inputs = [previous] + [origin[s] for s in shape.sources]
        usable = isinstance(block, ConvBlock) and block.groups == 1
        for stream in inputs:
            for position, source in enumerate(stream):
                if source is not None:
                    readers.setdefault(source, []).append((i, position if usable else None))
        if isinstance(block, ConvBlock):
            origin.append([(i, c) for c in range(shape.out_channels)])
        else:
            origin.append([None] * shape.out_channels)
    return origin, readers


@torch.no_grad()
def _constant(module: nn.Module, channel: int) -> float:
    """The value a dead filter's channel takes everywhere (eval-mode BN, then activation)."""
    conv, bn, act = module.conv, module.bn, module.act
    value = (
        conv.bias[channel].view(1, 1, 1, 1).clone()
        if conv.bias is not None
        else torch.zeros(1, 1, 1, 1)
    )
    if bn is not None:
        scale = bn.weight[channel] / torch.sqrt(bn.running_var[channel] + bn.eps)
        value = (value - bn.running_mean[channel]) * scale + bn.bias[channel]
    return float(act(value).item())


def dead_channels(model: Darknet) -> dict[Channel, float]:
    """Conv channels whose filter is all zero, with their constant value."""
    prediction = set(model.prediction_conv_indices())
    dead: dict[Channel, float] = {}
    for i, block in enumerate(model.cfg.blocks):
        if not isinstance(block, ConvBlock) or i in prediction:
            continue
        module = model.blocks[i]
        weight = module.conv.weight.detach().flatten(1)
        zero = (weight == 0).all(1)
        if module.conv.bias is not None:
            zero &= module.conv.bias.detach() == 0
        for c in zero.nonzero().flatten().tolist():
            dead[(i, c)] = _constant(module, c)
    return dead


def removable_channels(model: Darknet) -> dict[Channel, float]:
    """Dead channels whose every reader can absorb them exactly."""
    _, readers = _provenance(model)
    keep: dict[Channel, float] = {}
    for channel, value in dead_channels(model).items():
        ok = bool(readers.get(channel))
        for consumer, position in readers.get(channel, []):
            block = model.cfg.blocks[consumer]
            if position is None or not isinstance(block, ConvBlock):
                ok = False
            elif block.padding and value != 0.0:
                ok = False
        if ok:
            keep[channel] = value
    return keep


@torch.no_grad()
def compact(model: Darknet, *, check_size: int = 64, atol: float = 1e-4) -> Darknet:
    """A smaller dense model with the same outputs (checked on a random input)."""
    model = model.eval()
    removed = removable_channels(model)
    origin, _ = _provenance(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    keep_out = {i: torch.ones(s.out_channels, dtype=torch.bool) for i, s in enumerate(model.shapes)}
    for i, c in removed:
        keep_out[i][c] = False
    blocks = list(model.cfg.blocks)
    for i, block in enumerate(model.cfg.blocks):
        if not isinstance(block, ConvBlock):
            continue
        prefix = f"blocks.{i}."
        weight = state[prefix + "conv.weight"]
        stream = origin[i - 1] if i else [None] * model.cfg.net.channels
        keep_in = torch.tensor([src is None or src not in removed for src in stream])
        shift = torch.zeros(weight.shape[0])
        for position, src in enumerate(stream):
            if src is not None and src in removed:
                shift += weight[:, position].sum((1, 2)) * removed[src]
        if prefix + "bn.running_mean" in state:
            state[prefix + "bn.running_mean"] -= shift
        elif prefix + "conv.bias" in state:
            state[prefix + "conv.bias"] += shift
        rows = keep_out[i]
        state[prefix + "conv.weight"] = weight[rows][:, keep_in].contiguous()
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
