"""Every block type of the cfg dialect, each in one place: its parse spec, its output-shape
rule, the module it builds, how a width multiplier scales it, and how channels flow through
it when dead filters are compacted away.

A new block type is one class here, listed in :data:`BLOCK_TYPES`; the parser and writer
(:mod:`yolo.config`), the shape inference (:mod:`yolo.topology`), the model
(:mod:`yolo.model`), the width edit (:mod:`yolo.zoo`) and compaction
(:mod:`yolo.compress.compact`) read it from there and dispatch on nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from yolo.cfg_values import (
    parse_activation,
    parse_anchors,
    parse_flag,
    parse_float,
    parse_int,
    parse_int_list,
)
from yolo.errors import CfgError, cfg_error
from yolo.head import YoloHead
from yolo.layers import (
    EP,
    FCA,
    PEP,
    ConvBNAct,
    DarknetMaxPool,
    HalfConvBNAct,
    InceptionBNAct,
    LocalAvgPool,
    MobileBottleneck,
    Product,
    Route,
    Shortcut,
)

# How channels pass a block, for compaction: ``conv`` makes new channels from all its
# input, ``same`` passes them through position by position (upsample, maxpool), ``route``
# concatenates earlier blocks', ``shortcut`` adds two streams (linear only), ``opaque`` mixes
# them in a way compaction does not see through.
FLOWS = ("conv", "same", "route", "shortcut", "opaque")


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


@dataclass(frozen=True)
class ShapeContext:
    """What a block's shape rule sees: the cfg's name and blocks, the shapes so far, and the
    previous block's output (or the network input)."""

    source: str
    blocks: tuple[Block, ...]
    shapes: list[BlockShape]
    channels: int
    stride: int


def _square_stride(block: Block, ctx: ShapeContext, stride: int, sx: int | None,
                   sy: int | None) -> int:  # fmt: skip
    """darknet's ``stride_x`` / ``stride_y``: accepted when they equal each other (and
    ``stride``, if given); a non-square stride is refused (shapes here are square)."""
    if sx is None and sy is None:
        return stride
    if sx is None or sy is None or sx != sy:
        raise block.fail(ctx, f"stride_x={sx} and stride_y={sy}: only equal strides are "
                         "supported")  # fmt: skip
    if stride not in (1, sx):
        raise block.fail(ctx, f"stride={stride} disagrees with stride_x = stride_y = {sx}")
    return int(sx)


def scale_channels(channels: int, width: float) -> int:
    """Width-multiplied channel count: max(8, round(c·width/8)·8)."""
    return max(8, round(channels * width / 8) * 8)


@dataclass(frozen=True, kw_only=True)
class Block:
    """Common to every block: where it came from, so later checks can point at it."""

    index: int
    line: int = 0
    extras: tuple[tuple[str, str], ...] = ()

    section: ClassVar[str] = "block"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {}  # cfg key -> value parser
    required: ClassVar[frozenset[str]] = frozenset()
    ignored: ClassVar[frozenset[str]] = frozenset()  # darknet's own keys, kept verbatim
    rename: ClassVar[dict[str, str]] = {}  # cfg key -> field
    # keys the writer leaves out at their default (dialect keys most cfgs never write), so
    # that a cfg without them reads back to the same text
    optional: ClassVar[frozenset[str]] = frozenset()
    # what a candidate architecture's block takes from its parent's (yolo/inherit.py)
    inherit_rule: ClassVar[str] = "every tensor, whole; shapes must equal the parent's"

    def fail(self, ctx: ShapeContext, what: str) -> CfgError:
        return cfg_error(ctx.source, self.line, self.index, self.section, what)

    def shape(self, ctx: ShapeContext) -> BlockShape:
        """The output shape; raises :class:`CfgError` where the input cannot fit."""
        return BlockShape(ctx.channels, ctx.channels, ctx.stride)

    def module(self, shape: BlockShape) -> nn.Module:
        raise NotImplementedError(self.section)

    def widen(self, width: float, *, prediction: bool) -> Block:
        """This block in a model ``width`` times as wide (``prediction``: it writes a head's
        channels, which never change)."""
        return self

    def flow(self) -> str:
        """How channels pass this block (one of :data:`FLOWS`)."""
        return "opaque"

    def reads_each_channel(self) -> bool:
        """Whether a constant input channel can be folded into this block's bias."""
        return False

    def absolute(self, ctx: ShapeContext, ref: int, key: str) -> int:
        target = self.index + ref if ref < 0 else ref
        if not 0 <= target < self.index:
            allowed = f"-{self.index}..-1 or 0..{self.index - 1}"
            raise self.fail(ctx, f"{key}={ref} points to block {target}, which does not exist "
                            f"before it; allowed: {allowed}")  # fmt: skip
        return target


@dataclass(frozen=True, kw_only=True)
class ConvKeysBlock(Block):
    """What every conv-like section is written with (filters, size, stride, pad, groups,
    batch_normalize, activation); :class:`ConvBlock` is the plain conv the pruners and the
    compactor work on, the thesis' PVANet blocks share only the keys."""

    section: ClassVar[str] = "conv-like"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {
        "filters": parse_int, "size": parse_int, "stride": parse_int, "pad": parse_flag,
        "groups": parse_int, "batch_normalize": parse_flag, "activation": parse_activation,
        "stride_x": parse_int, "stride_y": parse_int,
    }  # fmt: skip
    required: ClassVar[frozenset[str]] = frozenset({"filters", "size", "activation"})
    optional: ClassVar[frozenset[str]] = frozenset({"stride_x", "stride_y"})
    # the seed thesis' YOLOv3-Mobile cfgs write squeeze_excite=1 on plain convs too; its
    # parser accepts the key and its convs never read it: kept verbatim, no effect
    ignored: ClassVar[frozenset[str]] = frozenset({"squeeze_excite"})
    conv_bias: ClassVar[bool | None] = None  # None: a bias where there is no BatchNorm
    filters: int
    size: int
    stride: int = 1
    stride_x: int | None = None
    stride_y: int | None = None
    pad: int = 0
    groups: int = 1
    batch_normalize: int = 0
    activation: str

    @property
    def padding(self) -> int:
        return (self.size - 1) // 2 if self.pad else 0

    def shape(self, ctx: ShapeContext) -> BlockShape:
        if ctx.channels % self.groups or self.filters % self.groups:
            raise self.fail(ctx, f"groups={self.groups} must divide both input channels "
                            f"({ctx.channels}) and filters ({self.filters})")  # fmt: skip
        return BlockShape(
            ctx.channels,
            self.filters,
            ctx.stride * _square_stride(self, ctx, self.stride, self.stride_x, self.stride_y),
        )

    @property
    def step(self) -> int:
        return self.stride if self.stride_x is None else self.stride_x

    def widen(self, width: float, *, prediction: bool) -> Block:
        if prediction:
            return self
        filters = scale_channels(self.filters, width)
        # a depthwise conv (groups = filters) stays depthwise at the new width
        groups = filters if self.groups == self.filters and self.groups > 1 else self.groups
        return dataclasses.replace(self, filters=filters, groups=groups)


@dataclass(frozen=True, kw_only=True)
class ConvBlock(ConvKeysBlock):
    section: ClassVar[str] = "convolutional"

    def module(self, shape: BlockShape) -> nn.Module:
        return ConvBNAct(shape.in_channels, shape.out_channels, self.size, stride=self.step,
                         padding=self.padding, groups=self.groups,
                         batch_norm=bool(self.batch_normalize), activation=self.activation,
                         bias=self.conv_bias)  # fmt: skip

    def reads_each_channel(self) -> bool:
        return self.groups == 1

    def flow(self) -> str:
        return "conv"


@dataclass(frozen=True, kw_only=True)
class SoftConvBlock(ConvBlock):
    """The seed thesis' ``[softconv]``: its Continuous-Sparsification conv, whose weights
    carry a learned soft mask while training. Trained, it is a conv whose weights are the
    masked ones, so it builds as one here; ``yct import`` turns the thesis' mask into the
    checkpoint's binary mask (:mod:`yolo.thesis`). The section name round-trips."""

    section: ClassVar[str] = "softconv"
    conv_bias: ClassVar[bool | None] = False  # its SoftMaskedConv2d has none, BN or not


@dataclass(frozen=True, kw_only=True)
class WholeConvKeysBlock(ConvKeysBlock):
    """A conv-like block whose output channels are not independent filters (the thesis'
    PVANet blocks): opaque to channel pruning, widened to a multiple of ``multiple``."""

    multiple: ClassVar[int] = 1

    def widen(self, width: float, *, prediction: bool) -> Block:
        widened = super().widen(width, prediction=prediction)
        assert isinstance(widened, WholeConvKeysBlock)
        step = self.multiple
        return dataclasses.replace(widened, filters=-(-widened.filters // step) * step, groups=1)

    def reads_each_channel(self) -> bool:
        return True

    def flow(self) -> str:
        return "opaque"


@dataclass(frozen=True, kw_only=True)
class HalfConvBlock(WholeConvKeysBlock):
    """The seed thesis' ``[halfconv]`` (:class:`~yolo.layers.HalfConvBNAct`): ``filters``
    outputs from a conv to half of them and its negation. Its output channels come in
    pairs (c, -c) of one filter, so channel pruning does not cut through it (opaque); it has
    no darknet original, and the thesis writes no ``.weights`` values for it."""

    section: ClassVar[str] = "halfconv"
    multiple: ClassVar[int] = 2

    def shape(self, ctx: ShapeContext) -> BlockShape:
        if self.filters % 2 or self.groups != 1:
            raise self.fail(ctx, f"filters must be even and groups 1 (half the filters are "
                            f"the negation of the other half), got filters={self.filters}, "
                            f"groups={self.groups}")  # fmt: skip
        return super().shape(ctx)

    def module(self, shape: BlockShape) -> nn.Module:
        return HalfConvBNAct(shape.in_channels, shape.out_channels, self.size, stride=self.step,
                             padding=self.padding, batch_norm=bool(self.batch_normalize),
                             activation=self.activation)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class InceptionBlock(WholeConvKeysBlock):
    """The seed thesis' ``[inception]`` (:class:`~yolo.layers.InceptionBNAct`): three conv
    branches to ``filters`` channels at stride 1. The thesis' parser reads ``size``,
    ``stride`` and ``pad`` and its module never uses them; they are kept verbatim here with
    the same (no) effect. Opaque to channel pruning; no ``.weights`` values in the thesis'
    files."""

    section: ClassVar[str] = "inception"
    multiple: ClassVar[int] = 4
    required: ClassVar[frozenset[str]] = frozenset({"filters", "activation"})
    size: int = 1

    def shape(self, ctx: ShapeContext) -> BlockShape:
        if self.filters % 4:
            raise self.fail(ctx, f"filters must be a multiple of 4 (a half and two quarters), "
                            f"got {self.filters}")  # fmt: skip
        return BlockShape(ctx.channels, self.filters, ctx.stride)

    def module(self, shape: BlockShape) -> nn.Module:
        return InceptionBNAct(shape.in_channels, shape.out_channels,
                              batch_norm=bool(self.batch_normalize),
                              activation=self.activation)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class MaxPoolBlock(Block):
    section: ClassVar[str] = "maxpool"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {
        "size": parse_int, "stride": parse_int, "stride_x": parse_int, "stride_y": parse_int,
    }  # fmt: skip
    required: ClassVar[frozenset[str]] = frozenset({"size"})
    optional: ClassVar[frozenset[str]] = frozenset({"stride_x", "stride_y"})
    size: int
    stride: int = 1
    stride_x: int | None = None
    stride_y: int | None = None

    def shape(self, ctx: ShapeContext) -> BlockShape:
        return BlockShape(
            ctx.channels,
            ctx.channels,
            ctx.stride * _square_stride(self, ctx, self.stride, self.stride_x, self.stride_y),
        )

    def module(self, shape: BlockShape) -> nn.Module:
        step = self.stride if self.stride_x is None else self.stride_x
        return DarknetMaxPool(self.size, step)  # the model sets [net] maxpool_padding

    def flow(self) -> str:
        return "same"


@dataclass(frozen=True, kw_only=True)
class UpsampleBlock(Block):
    section: ClassVar[str] = "upsample"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {"stride": parse_int}
    stride: int = 2

    def shape(self, ctx: ShapeContext) -> BlockShape:
        if ctx.stride % self.stride:
            raise self.fail(ctx, f"stride={self.stride} would up-sample past the input size")
        return BlockShape(ctx.channels, ctx.channels, ctx.stride // self.stride)

    def module(self, shape: BlockShape) -> nn.Module:
        return nn.Upsample(scale_factor=self.stride, mode="nearest")

    def flow(self) -> str:
        return "same"


@dataclass(frozen=True, kw_only=True)
class RouteBlock(Block):
    section: ClassVar[str] = "route"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {
        "layers": parse_int_list, "groups": parse_int, "group_id": parse_int,
    }  # fmt: skip
    required: ClassVar[frozenset[str]] = frozenset({"layers"})
    optional: ClassVar[frozenset[str]] = frozenset({"groups", "group_id"})
    layers: tuple[int, ...]
    groups: int = 1  # YOLOv4-Tiny: keep channel group group_id of groups equal parts
    group_id: int = 0

    def shape(self, ctx: ShapeContext) -> BlockShape:
        sources = tuple(self.absolute(ctx, ref, "layers") for ref in self.layers)
        strides = {ctx.shapes[s].stride for s in sources}
        if len(strides) > 1:
            detail = ", ".join(f"block {s} at stride {ctx.shapes[s].stride}" for s in sources)
            raise self.fail(ctx, f"cannot concatenate maps of different sizes: {detail}")
        channels = sum(ctx.shapes[s].out_channels for s in sources)
        if channels % self.groups:
            raise self.fail(ctx, f"groups={self.groups} must divide the {channels} routed "
                            "channels")  # fmt: skip
        if not 0 <= self.group_id < self.groups:
            raise self.fail(ctx, f"group_id={self.group_id} out of range; allowed: "
                            f"0..{self.groups - 1}")  # fmt: skip
        return BlockShape(ctx.channels, channels // self.groups, strides.pop(), sources)

    def module(self, shape: BlockShape) -> nn.Module:
        return Route(shape.sources, self.groups, self.group_id)

    def flow(self) -> str:
        return "route" if self.groups == 1 else "opaque"


@dataclass(frozen=True, kw_only=True)
class ShortcutBlock(Block):
    section: ClassVar[str] = "shortcut"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {"from": parse_int,
                                                       "activation": parse_activation}  # fmt: skip
    required: ClassVar[frozenset[str]] = frozenset({"from"})
    rename: ClassVar[dict[str, str]] = {"from": "from_"}
    from_: int
    activation: str = "linear"

    def flow(self) -> str:
        return "shortcut" if self.activation == "linear" else "opaque"

    def shape(self, ctx: ShapeContext) -> BlockShape:
        source = self.absolute(ctx, self.from_, "from")
        other = ctx.shapes[source]
        if (other.out_channels, other.stride) != (ctx.channels, ctx.stride):
            raise self.fail(ctx, f"shortcut adds block {source} ({other.out_channels} channels, "
                            f"stride {other.stride}) to block {self.index - 1} ({ctx.channels} "
                            f"channels, stride {ctx.stride}); shapes must be equal")  # fmt: skip
        return BlockShape(ctx.channels, ctx.channels, ctx.stride, (source,))

    def module(self, shape: BlockShape) -> nn.Module:
        return Shortcut(shape.sources[0], self.activation)


@dataclass(frozen=True, kw_only=True)
class YoloBlock(Block):
    section: ClassVar[str] = "yolo"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {
        "mask": parse_int_list, "anchors": parse_anchors, "classes": parse_int, "num": parse_int,
    }  # fmt: skip
    required: ClassVar[frozenset[str]] = frozenset({"mask", "anchors", "classes"})
    ignored: ClassVar[frozenset[str]] = frozenset(
        "jitter ignore_thresh truth_thresh random iou_thresh iou_normalizer cls_normalizer "
        "scale_x_y iou_loss nms_kind beta_nms".split()
    )
    mask: tuple[int, ...]
    anchors: tuple[tuple[float, float], ...]
    classes: int
    num: int

    def shape(self, ctx: ShapeContext) -> BlockShape:
        if self.num != len(self.anchors):
            raise self.fail(ctx, f"num={self.num} but {len(self.anchors)} anchor pairs are given")
        bad = [m for m in self.mask if not 0 <= m < self.num]
        if bad:
            raise self.fail(ctx, f"mask index {bad[0]} out of range; allowed: 0..{self.num - 1}")
        previous = ctx.blocks[self.index - 1] if self.index else None
        if not isinstance(previous, ConvBlock):
            raise self.fail(ctx, "a [yolo] block must follow its prediction [convolutional] block")
        expected = len(self.mask) * (self.classes + 5)
        if ctx.channels != expected:
            raise self.fail(ctx, f"the prediction conv (block {self.index - 1}) has "
                            f"{ctx.channels} filters but {len(self.mask)} anchors x "
                            f"({self.classes} classes + 5) = {expected} are needed")  # fmt: skip
        return BlockShape(ctx.channels, ctx.channels, ctx.stride)

    def module(self, shape: BlockShape) -> nn.Module:
        anchors = torch.tensor([self.anchors[m] for m in self.mask], dtype=torch.float32)
        return YoloHead(anchors, self.classes)


@dataclass(frozen=True, kw_only=True)
class PEPBlock(Block):
    section: ClassVar[str] = "PEP"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {
        "filters": parse_int, "x": parse_int, "stride": parse_int, "activation": parse_activation,
    }  # fmt: skip
    required: ClassVar[frozenset[str]] = frozenset({"filters", "x", "activation"})
    inherit_rule: ClassVar[str] = (
        "the projection channels x in the parent's order of importance (|gamma| of the input "
        "projection's BatchNorm) through the separable block; extra channels keep their init "
        "and project nothing at first; the output BatchNorm whole"
    )
    filters: int
    x: int
    stride: int = 1
    activation: str

    def shape(self, ctx: ShapeContext) -> BlockShape:
        return BlockShape(ctx.channels, self.filters, ctx.stride * self.stride)

    def module(self, shape: BlockShape) -> nn.Module:
        return PEP(shape.in_channels, shape.out_channels, self.x, self.stride, self.activation)

    def widen(self, width: float, *, prediction: bool) -> Block:
        return dataclasses.replace(self, filters=scale_channels(self.filters, width),
                                   x=scale_channels(self.x, width))  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class EPBlock(Block):
    section: ClassVar[str] = "EP"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {
        "filters": parse_int, "stride": parse_int, "activation": parse_activation,
    }  # fmt: skip
    required: ClassVar[frozenset[str]] = frozenset({"filters", "activation"})
    filters: int
    stride: int = 1
    activation: str

    def shape(self, ctx: ShapeContext) -> BlockShape:
        return BlockShape(ctx.channels, self.filters, ctx.stride * self.stride)

    def module(self, shape: BlockShape) -> nn.Module:
        return EP(shape.in_channels, shape.out_channels, self.stride, self.activation)

    def widen(self, width: float, *, prediction: bool) -> Block:
        return dataclasses.replace(self, filters=scale_channels(self.filters, width))


@dataclass(frozen=True, kw_only=True)
class FCABlock(Block):
    section: ClassVar[str] = "FCA"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {"reduction": parse_int,
                                                       "activation": parse_activation}  # fmt: skip
    required: ClassVar[frozenset[str]] = frozenset({"reduction", "activation"})
    reduction: int
    activation: str

    def shape(self, ctx: ShapeContext) -> BlockShape:
        if ctx.channels // self.reduction < 1:
            raise self.fail(ctx, f"reduction={self.reduction} leaves no channels of "
                            f"{ctx.channels}")  # fmt: skip
        return BlockShape(ctx.channels, ctx.channels, ctx.stride)

    def module(self, shape: BlockShape) -> nn.Module:
        return FCA(shape.in_channels, self.reduction, self.activation)


@dataclass(frozen=True, kw_only=True)
class MobileBlock(Block):
    section: ClassVar[str] = "mobile"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {
        "filters": parse_int, "size": parse_int, "expansion_ratio": parse_float,
        "stride": parse_int, "squeeze_excite": parse_flag, "activation": parse_activation,
    }  # fmt: skip
    required: ClassVar[frozenset[str]] = frozenset({"filters", "size", "expansion_ratio",
                                                    "activation"})  # fmt: skip
    # the seed thesis' YOLOv3-Mobile cfgs write pad=1; its parser, like this one, always pads
    # the depthwise conv by (size - 1) // 2, so the key is kept verbatim and means nothing
    ignored: ClassVar[frozenset[str]] = frozenset({"pad"})
    inherit_rule: ClassVar[str] = (
        "the hidden channels in the parent's order of importance (|gamma| of the expansion's "
        "BatchNorm) through expansion, depthwise, squeeze-excite and projection; the centre "
        "of a larger kernel, or the parent's kernel at the centre of a larger one (zeros "
        "around); squeeze-excite's first hidden units; extra channels keep their init and "
        "project nothing at first; the output BatchNorm whole"
    )
    filters: int
    size: int
    expansion_ratio: float
    stride: int = 1
    squeeze_excite: int = 0
    activation: str

    def shape(self, ctx: ShapeContext) -> BlockShape:
        if not self.expansion_ratio > 0:
            raise self.fail(ctx, f"expansion_ratio must be > 0, got {self.expansion_ratio}")
        return BlockShape(ctx.channels, self.filters, ctx.stride * self.stride)

    def module(self, shape: BlockShape) -> nn.Module:
        return MobileBottleneck(shape.in_channels, shape.out_channels, kernel_size=self.size,
                                expansion_ratio=self.expansion_ratio, stride=self.stride,
                                squeeze_excite=bool(self.squeeze_excite),
                                activation=self.activation)  # fmt: skip

    def widen(self, width: float, *, prediction: bool) -> Block:
        return dataclasses.replace(self, filters=scale_channels(self.filters, width))


@dataclass(frozen=True, kw_only=True)
class DropoutBlock(Block):
    """darknet's ``[dropout]``: zeroes activations with ``probability`` while training, the
    identity in evaluation (and so in every exported model)."""

    section: ClassVar[str] = "dropout"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {"probability": parse_float}
    ignored: ClassVar[frozenset[str]] = frozenset(
        {"dropblock", "dropblock_size_abs", "dropblock_size_rel"})  # fmt: skip
    probability: float = 0.5

    def shape(self, ctx: ShapeContext) -> BlockShape:
        if not 0 <= self.probability < 1:
            raise self.fail(ctx, f"probability must be in [0, 1), got {self.probability}")
        return BlockShape(ctx.channels, ctx.channels, ctx.stride)

    def module(self, shape: BlockShape) -> nn.Module:
        return nn.Dropout(self.probability)

    def flow(self) -> str:
        return "same"


@dataclass(frozen=True, kw_only=True)
class AvgPoolBlock(Block):
    """darknet's ``[avgpool]``: the global mean of every channel, a (B, C, 1, 1) output (the
    squeeze of squeeze-excite written as sections, before ``[scale_channels]``). Its output
    has no stride; it is recorded at its input's, and a block that joins it with a map of
    another size is refused by the size check at load."""

    section: ClassVar[str] = "avgpool"

    def module(self, shape: BlockShape) -> nn.Module:
        return nn.AdaptiveAvgPool2d(1)


@dataclass(frozen=True, kw_only=True)
class LocalAvgPoolBlock(Block):
    """darknet's ``[local_avgpool] size stride``: average pooling placed like its max-pool,
    each window averaged over the cells inside the map (:class:`~yolo.layers.LocalAvgPool`)."""

    section: ClassVar[str] = "local_avgpool"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {"size": parse_int, "stride": parse_int}
    required: ClassVar[frozenset[str]] = frozenset({"size"})
    size: int
    stride: int = 1

    def shape(self, ctx: ShapeContext) -> BlockShape:
        return BlockShape(ctx.channels, ctx.channels, ctx.stride * self.stride)

    def module(self, shape: BlockShape) -> nn.Module:
        return LocalAvgPool(self.size, self.stride)

    def flow(self) -> str:
        return "same"


@dataclass(frozen=True, kw_only=True)
class _FromBlock(Block):
    """A block that multiplies an earlier block's map (``from``) by the previous output."""

    keys: ClassVar[dict[str, Callable[[str], Any]]] = {"from": parse_int}
    required: ClassVar[frozenset[str]] = frozenset({"from"})
    rename: ClassVar[dict[str, str]] = {"from": "from_"}
    from_: int

    def _source(self, ctx: ShapeContext) -> tuple[int, BlockShape]:
        source = self.absolute(ctx, self.from_, "from")
        other = ctx.shapes[source]
        if other.out_channels != ctx.channels:
            raise self.fail(ctx, f"block {source} has {other.out_channels} channels but the "
                            f"previous block {ctx.channels}; they must be equal")  # fmt: skip
        return source, other

    def module(self, shape: BlockShape) -> nn.Module:
        return Product(shape.sources[0])


@dataclass(frozen=True, kw_only=True)
class ScaleChannelsBlock(_FromBlock):
    """``[scale_channels] from=-N``: block N's map, each channel scaled by the previous
    block's (B, C, 1, 1) output (squeeze-excite written as sections)."""

    section: ClassVar[str] = "scale_channels"

    def shape(self, ctx: ShapeContext) -> BlockShape:
        source, other = self._source(ctx)
        return BlockShape(ctx.channels, other.out_channels, other.stride, (source,))


@dataclass(frozen=True, kw_only=True)
class SamBlock(_FromBlock):
    """``[sam] from=-N``: block N's map times the previous block's, element by element
    (YOLOv4's spatial attention); both must have the same shape."""

    section: ClassVar[str] = "sam"

    def shape(self, ctx: ShapeContext) -> BlockShape:
        source, other = self._source(ctx)
        if other.stride != ctx.stride:
            raise self.fail(ctx, f"block {source} is at stride {other.stride} but the previous "
                            f"block at {ctx.stride}; they must be equal")  # fmt: skip
        return BlockShape(ctx.channels, ctx.channels, ctx.stride, (source,))


BLOCK_TYPES: tuple[type[Block], ...] = (
    ConvBlock, MaxPoolBlock, RouteBlock, ShortcutBlock, UpsampleBlock, YoloBlock,
    PEPBlock, EPBlock, FCABlock, MobileBlock, DropoutBlock, ScaleChannelsBlock, SamBlock,
    SoftConvBlock, AvgPoolBlock, LocalAvgPoolBlock, HalfConvBlock, InceptionBlock,
)  # fmt: skip
SECTIONS: dict[str, type[Block]] = {cls.section.lower(): cls for cls in BLOCK_TYPES}
