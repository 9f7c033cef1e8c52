"""Which conv channels a model ties together, and who reads each channel.

A linear ``shortcut`` adds its inputs position by position, so channel c of a residual
stream is the sum of channel c of every conv that feeds the stream: those conv channels
form one *group* (a union-find over ``(block, channel)``) that can only be removed or kept
together. ``route`` concatenates (positions are offset), ``upsample`` and ``maxpool`` pass
channels through. Every other consumer is a *reader*: a plain conv reads each input
position separately (``position``), anything else (PEP/EP/FCA/mobile blocks, a depthwise
conv, a shortcut with an activation) reads the stream as a whole (``position`` None).
Compaction (:mod:`yolo.compress.compact`) and structured pruning
(:mod:`yolo.compress.structured`) both work on this graph.
"""

from __future__ import annotations

import dataclasses

from yolo.model import Darknet

Channel = tuple[int, int]  # (conv block index, output channel)
Terms = frozenset  # the conv channels summed into one stream position


@dataclasses.dataclass
class ChannelGraph:
    """Per block, per output position, the conv channels summed into it (None: not a
    conv channel); the readers of those terms; the union-find of tied channels."""

    origin: list[list[Terms | None]]  # per block, per output position: its terms
    readers: list[tuple[int, int | None, Terms]]  # (block, input position or None, terms)
    group: dict[Channel, Channel]  # union-find parent: channels tied by shortcuts


def find_root(group: dict[Channel, Channel], c: Channel) -> Channel:
    while group.setdefault(c, c) != c:
        group[c] = group[group[c]]
        c = group[c]
    return c


def channel_graph(model: Darknet) -> ChannelGraph:
    origin: list[list[Terms | None]] = []
    readers: list[tuple[int, int | None, Terms]] = []
    group: dict[Channel, Channel] = {}
    network_input: list[Terms | None] = [None] * model.cfg.net.channels
    for i, (block, shape) in enumerate(zip(model.cfg.blocks, model.shapes)):
        previous = origin[i - 1] if i else network_input
        flow = block.flow()
        if flow == "route":
            origin.append([t for s in shape.sources for t in origin[s]])
            continue
        if flow == "same":
            origin.append(list(previous))
            continue
        if flow == "shortcut":
            merged: list[Terms | None] = []
            for a, b in zip(previous, origin[shape.sources[0]]):
                if a is None or b is None:
                    for terms in (a, b):  # a live operand makes the other's channel needed
                        if terms is not None:
                            readers.append((i, None, terms))
                    merged.append(None)
                    continue
                first = next(iter(a))
                for c in (*a, *b):
                    group[find_root(group, c)] = find_root(group, first)
                merged.append(a | b)
            origin.append(merged)
            continue
        usable = block.reads_each_channel()
        streams = [previous] + [origin[s] for s in shape.sources]
        for stream in streams:
            for position, terms in enumerate(stream):
                if terms is not None:
                    readers.append((i, position if usable else None, terms))
        if flow == "conv":
            origin.append([frozenset({(i, c)}) for c in range(shape.out_channels)])
        else:
            origin.append([None] * shape.out_channels)
    return ChannelGraph(origin, readers, group)
