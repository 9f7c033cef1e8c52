"""Resolve a cfg's wiring and infer each block's channels and stride, before any tensor exists.

Routes and shortcuts may count backwards (``-4``) or name a block (``61``); this module
turns both into absolute indices and checks that what they join fits together, so that a
bad cfg fails at load time with the block and line, not deep inside a forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from yolo.config import (
    Block,
    Cfg,
    ConvBlock,
    EPBlock,
    FCABlock,
    MaxPoolBlock,
    MobileBlock,
    PEPBlock,
    RouteBlock,
    ShortcutBlock,
    UpsampleBlock,
    YoloBlock,
    cfg_error,
)


@dataclass(frozen=True)
class BlockShape:
    """What a block consumes and produces.

    Attributes:
        in_channels: channels of the block's input (the previous block's output).
        out_channels: channels of the block's output.
        stride: total down-sampling of the output relative to the network input.
        sources: absolute indices of earlier blocks this block reads (route / shortcut).
    """

    in_channels: int
    out_channels: int
    stride: int
    sources: tuple[int, ...] = ()


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet channel rounding: nearest multiple of ``divisor``, >= divisor, >= 90% of value."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _absolute(block: Block, cfg: Cfg, ref: int, key: str) -> int:
    target = block.index + ref if ref < 0 else ref
    if not 0 <= target < block.index:
        raise cfg_error(
            cfg.source,
            block.line,
            block.index,
            block.section,
            f"{key}={ref} points to block {target}, which does not exist before it; "
            f"allowed: -{block.index}..-1 or 0..{block.index - 1}",
        )
    return target


def route_sources(block: RouteBlock | ShortcutBlock, cfg: Cfg) -> tuple[int, ...]:
    if isinstance(block, RouteBlock):
        return tuple(_absolute(block, cfg, ref, "layers") for ref in block.layers)
    return (_absolute(block, cfg, block.from_, "from"),)


def _fail(cfg: Cfg, block: Block, what: str) -> None:
    raise cfg_error(cfg.source, block.line, block.index, block.section, what)


def infer_shapes(cfg: Cfg) -> list[BlockShape]:
    """Channels and stride of every block; raises ``CfgError`` where they cannot fit."""
    shapes: list[BlockShape] = []
    channels, stride = cfg.net.channels, 1
    for block in cfg.blocks:
        in_channels, sources = channels, ()
        if isinstance(block, ConvBlock):
            if channels % block.groups or block.filters % block.groups:
                _fail(
                    cfg,
                    block,
                    f"groups={block.groups} must divide both input channels ({channels}) "
                    f"and filters ({block.filters})",
                )
            channels, stride = block.filters, stride * block.stride
        elif isinstance(block, MaxPoolBlock):
            stride *= block.stride
        elif isinstance(block, UpsampleBlock):
            if stride % block.stride:
                _fail(cfg, block, f"stride={block.stride} would up-sample past the input size")
            stride //= block.stride
        elif isinstance(block, (PEPBlock, EPBlock, MobileBlock)):
            channels, stride = block.filters, stride * block.stride
        elif isinstance(block, FCABlock):
            if channels // block.reduction < 1:
                _fail(cfg, block, f"reduction={block.reduction} leaves no channels of {channels}")
        elif isinstance(block, RouteBlock):
            sources = route_sources(block, cfg)
            strides = {shapes[s].stride for s in sources}
            if len(strides) > 1:
                detail = ", ".join(f"block {s} at stride {shapes[s].stride}" for s in sources)
                _fail(cfg, block, f"cannot concatenate maps of different sizes: {detail}")
            channels = sum(shapes[s].out_channels for s in sources)
            stride = strides.pop()
        elif isinstance(block, ShortcutBlock):
            sources = route_sources(block, cfg)
            other = shapes[sources[0]]
            if (other.out_channels, other.stride) != (channels, stride):
                _fail(
                    cfg,
                    block,
                    f"shortcut adds block {sources[0]} ({other.out_channels} channels, stride "
                    f"{other.stride}) to block {block.index - 1} ({channels} channels, stride "
                    f"{stride}); shapes must be equal",
                )
        elif isinstance(block, YoloBlock):
            _check_yolo(cfg, block, shapes)
        shapes.append(BlockShape(in_channels, channels, stride, sources))
    return shapes


def _check_yolo(cfg: Cfg, block: YoloBlock, shapes: list[BlockShape]) -> None:
    if block.num != len(block.anchors):
        _fail(cfg, block, f"num={block.num} but {len(block.anchors)} anchor pairs are given")
    bad = [m for m in block.mask if not 0 <= m < block.num]
    if bad:
        _fail(cfg, block, f"mask index {bad[0]} out of range; allowed: 0..{block.num - 1}")
    previous = cfg.blocks[block.index - 1] if block.index else None
    if not isinstance(previous, ConvBlock):
        _fail(cfg, block, "a [yolo] block must follow its prediction [convolutional] block")
    expected = len(block.mask) * (block.classes + 5)
    if shapes[-1].out_channels != expected:
        _fail(
            cfg,
            block,
            f"the prediction conv (block {block.index - 1}) has {shapes[-1].out_channels} "
            f"filters but {len(block.mask)} anchors x ({block.classes} classes + 5) = "
            f"{expected} are needed",
        )
