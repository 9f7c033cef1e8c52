"""Resolve a cfg's wiring and infer each block's channels and stride, before any tensor exists.

Routes and shortcuts may count backwards (``-4``) or name a block (``61``); this module
turns both into absolute indices and checks that what they join fits together, so that a
bad cfg fails at load time with the block and line, not deep inside a forward pass.
"""

from __future__ import annotations

from yolo.blocks import BlockShape, ShapeContext
from yolo.config import Cfg

__all__ = ["BlockShape", "infer_shapes"]


def infer_shapes(cfg: Cfg) -> list[BlockShape]:
    """Channels and stride of every block (each block's own rule, :mod:`yolo.blocks`);
    raises ``CfgError`` where they cannot fit."""
    shapes: list[BlockShape] = []
    channels, stride, stride_y = cfg.net.channels, 1, None
    for block in cfg.blocks:
        context = ShapeContext(cfg.source, cfg.blocks, shapes, channels, stride, stride_y)
        shape = block.shape(context)
        shapes.append(shape)
        channels, stride, stride_y = shape.out_channels, shape.stride, shape.stride_y
    return shapes
