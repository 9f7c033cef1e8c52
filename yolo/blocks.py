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
from yolo.head import FusedYoloHead, YoloHead
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
    SpaceToDepth,
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
        stride: total down-sampling of the output relative to the network input
            (horizontally, where darknet's ``stride_x`` / ``stride_y`` made it differ).
        sources: absolute indices of earlier blocks this block reads (route / shortcut).
        stride_y: the vertical down-sampling where it differs from ``stride``, else None.
        shares: the block whose weights this one uses (darknet's ``share_index``), or None.
        own_source: where a block reads several maps and one of them is its own (an ASFF
            ``[yolo]`` head's ``from[k]``), that map's position in ``sources``.
    """

    in_channels: int
    out_channels: int
    stride: int
    sources: tuple[int, ...] = ()
    stride_y: int | None = None
    shares: int | None = None
    own_source: int | None = None

    @property
    def strides(self) -> tuple[int, int]:
        """(vertical, horizontal) down-sampling."""
        return (self.stride if self.stride_y is None else self.stride_y), self.stride


def _shape(in_channels: int, out_channels: int, strides: tuple[int, int],
           sources: tuple[int, ...] = (), shares: int | None = None) -> BlockShape:  # fmt: skip
    """A shape from (vertical, horizontal) strides; ``stride_y`` only where they differ."""
    y, x = strides
    return BlockShape(in_channels, out_channels, x, sources, None if y == x else y, shares)


@dataclass(frozen=True)
class ShapeContext:
    """What a block's shape rule sees: the cfg's name and blocks, the shapes so far, and the
    previous block's output (or the network input)."""

    source: str
    blocks: tuple[Block, ...]
    shapes: list[BlockShape]
    channels: int
    stride: int
    stride_y: int | None = None

    @property
    def strides(self) -> tuple[int, int]:
        """(vertical, horizontal) down-sampling of the previous block's output."""
        return (self.stride if self.stride_y is None else self.stride_y), self.stride

    def output(self, out_channels: int, step: tuple[int, int] = (1, 1),
               sources: tuple[int, ...] = ()) -> BlockShape:  # fmt: skip
        """The shape of a block that reads the previous output and steps (vertical,
        horizontal) over it."""
        y, x = self.strides
        return _shape(self.channels, out_channels, (y * step[0], x * step[1]), sources)


def _steps(block: Block, ctx: ShapeContext, stride: int, sx: int | None,
           sy: int | None) -> tuple[int, int]:  # fmt: skip
    """darknet's ``stride_x`` / ``stride_y`` (each defaulting to ``stride``) as (vertical,
    horizontal) steps. A ``stride`` other than 1 beside them must agree with both: darknet
    lets them win, the ultralytics port lets ``stride`` win, so a disagreement has no one
    meaning and is refused."""
    x = stride if sx is None else sx
    y = stride if sy is None else sy
    if x < 1 or y < 1:
        raise block.fail(ctx, f"stride_x and stride_y must be >= 1, got {x} and {y}")
    if stride != 1 and (x, y) != (stride, stride):
        raise block.fail(ctx, f"stride={stride} disagrees with stride_x={x}, stride_y={y}")
    return y, x


def _torch_stride(steps: tuple[int, int]) -> int | tuple[int, int]:
    return steps[0] if steps[0] == steps[1] else steps


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
        return ctx.output(ctx.channels)

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

    def renumbered(self, moved: Callable[[int], int]) -> Block:
        """This block with every reference to another block (layers, from, share_index)
        passed through ``moved`` (a cfg edit that drops or inserts blocks)."""
        return self

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
        return ctx.output(self.filters, self.steps(ctx))

    def steps(self, ctx: ShapeContext | None = None) -> tuple[int, int]:
        """(vertical, horizontal) steps of the conv (checked where ``ctx`` is given)."""
        if ctx is not None:
            return _steps(self, ctx, self.stride, self.stride_x, self.stride_y)
        x = self.stride if self.stride_x is None else self.stride_x
        return (self.stride if self.stride_y is None else self.stride_y), x

    @property
    def step(self) -> int | tuple[int, int]:
        """The conv's stride as ``nn.Conv2d`` takes it."""
        return _torch_stride(self.steps())

    def widen(self, width: float, *, prediction: bool) -> Block:
        if prediction:
            return self
        filters = scale_channels(self.filters, width)
        # a depthwise conv (groups = filters) stays depthwise at the new width
        groups = filters if self.groups == self.filters and self.groups > 1 else self.groups
        return dataclasses.replace(self, filters=filters, groups=groups)


@dataclass(frozen=True, kw_only=True)
class ConvBlock(ConvKeysBlock):
    """darknet's ``[convolutional]``; with ``share_index`` (an absolute block index, or
    negative: counted back from this block) it uses that conv's weights, bias and BatchNorm
    (darknet shares all of them, and writes no ``.weights`` values for the sharer)."""

    section: ClassVar[str] = "convolutional"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {
        **ConvKeysBlock.keys, "share_index": parse_int,
    }  # fmt: skip
    optional: ClassVar[frozenset[str]] = ConvKeysBlock.optional | {"share_index"}
    share_index: int | None = None

    def renumbered(self, moved: Callable[[int], int]) -> Block:
        if self.share_index is None:
            return self
        return dataclasses.replace(self, share_index=moved(self.share_index))

    def shape(self, ctx: ShapeContext) -> BlockShape:
        shape = super().shape(ctx)
        if self.share_index is None:
            return shape
        owner = self.absolute(ctx, self.share_index, "share_index")
        theirs = ctx.blocks[owner]
        if type(theirs) is not ConvBlock:
            raise self.fail(ctx, f"share_index={self.share_index} points to block {owner} "
                            f"[{theirs.section}]; it must be a [convolutional] block")  # fmt: skip
        assert isinstance(theirs, ConvBlock)
        mine = {
            "input channels": ctx.channels,
            "filters": self.filters,
            "size": self.size,
            "groups": self.groups,
            "batch_normalize": self.batch_normalize,
        }
        other = {"input channels": ctx.shapes[owner].in_channels, "filters": theirs.filters,
                 "size": theirs.size, "groups": theirs.groups,
                 "batch_normalize": theirs.batch_normalize}  # fmt: skip
        for what, value in mine.items():
            if other[what] != value:
                raise self.fail(ctx, f"share_index={self.share_index}: the shared weights must "
                                f"fit both blocks, but block {owner} has {what} {other[what]} "
                                f"and this block {value} (darknet's own check reports this "
                                "too: 'nweights … don't match for the share_layer')")  # fmt: skip
        if theirs.share_index is not None:
            raise self.fail(ctx, f"share_index={self.share_index} points to block {owner}, "
                            "which shares another block's weights itself; name that "
                            "one")  # fmt: skip
        return dataclasses.replace(shape, shares=owner)

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
        return ctx.output(self.filters)

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
        return ctx.output(ctx.channels, _steps(self, ctx, self.stride, self.stride_x,
                                               self.stride_y))  # fmt: skip

    def module(self, shape: BlockShape) -> nn.Module:
        x = self.stride if self.stride_x is None else self.stride_x
        y = self.stride if self.stride_y is None else self.stride_y
        return DarknetMaxPool(self.size, _torch_stride((y, x)))  # the model sets [net] padding

    def flow(self) -> str:
        return "same"


@dataclass(frozen=True, kw_only=True)
class UpsampleBlock(Block):
    section: ClassVar[str] = "upsample"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {"stride": parse_int}
    stride: int = 2

    def shape(self, ctx: ShapeContext) -> BlockShape:
        y, x = ctx.strides
        if x % self.stride or y % self.stride:
            raise self.fail(ctx, f"stride={self.stride} would up-sample past the input size")
        return _shape(ctx.channels, ctx.channels, (y // self.stride, x // self.stride))

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

    def renumbered(self, moved: Callable[[int], int]) -> Block:
        return dataclasses.replace(self, layers=tuple(moved(r) for r in self.layers))

    def shape(self, ctx: ShapeContext) -> BlockShape:
        sources = tuple(self.absolute(ctx, ref, "layers") for ref in self.layers)
        strides = {ctx.shapes[s].strides for s in sources}
        if len(strides) > 1:
            detail = ", ".join(f"block {s} at stride {_stride_text(ctx.shapes[s])}"
                               for s in sources)  # fmt: skip
            raise self.fail(ctx, f"cannot concatenate maps of different sizes: {detail}")
        channels = sum(ctx.shapes[s].out_channels for s in sources)
        if channels % self.groups:
            raise self.fail(ctx, f"groups={self.groups} must divide the {channels} routed "
                            "channels")  # fmt: skip
        if not 0 <= self.group_id < self.groups:
            raise self.fail(ctx, f"group_id={self.group_id} out of range; allowed: "
                            f"0..{self.groups - 1}")  # fmt: skip
        return _shape(ctx.channels, channels // self.groups, strides.pop(), sources)

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

    def renumbered(self, moved: Callable[[int], int]) -> Block:
        return dataclasses.replace(self, from_=moved(self.from_))

    def flow(self) -> str:
        return "shortcut" if self.activation == "linear" else "opaque"

    def shape(self, ctx: ShapeContext) -> BlockShape:
        source = self.absolute(ctx, self.from_, "from")
        other = ctx.shapes[source]
        if (other.out_channels, other.strides) != (ctx.channels, ctx.strides):
            here = _stride_text(ctx.output(ctx.channels))
            raise self.fail(ctx, f"shortcut adds block {source} ({other.out_channels} channels, "
                            f"stride {_stride_text(other)}) to block {self.index - 1} "
                            f"({ctx.channels} channels, stride {here}); shapes must be "
                            "equal")  # fmt: skip
        return ctx.output(ctx.channels, sources=(source,))

    def module(self, shape: BlockShape) -> nn.Module:
        return Shortcut(shape.sources[0], self.activation)


@dataclass(frozen=True, kw_only=True)
class YoloBlock(Block):
    """darknet's ``[yolo]`` head over the prediction conv before it. With ``from=a,b,c``
    (the ultralytics port's ASFF heads, arXiv 1911.09516) the k-th ``[yolo]`` block of the
    cfg reads instead the prediction conv ``from[k]``, and every listed conv writes its
    head's channels plus one fusion weight per listed conv (:class:`~yolo.head.FusedYoloHead`)."""

    section: ClassVar[str] = "yolo"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {
        "mask": parse_int_list, "anchors": parse_anchors, "classes": parse_int, "num": parse_int,
        "from": parse_int_list,
    }  # fmt: skip
    required: ClassVar[frozenset[str]] = frozenset({"mask", "anchors", "classes"})
    optional: ClassVar[frozenset[str]] = frozenset({"from"})
    rename: ClassVar[dict[str, str]] = {"from": "from_"}
    # darknet's training, loss, NMS and tracking keys: kept verbatim, no effect on the model
    # (``new_coords`` and ``map`` do change what a head outputs; they are refused)
    ignored: ClassVar[frozenset[str]] = frozenset(
        "jitter ignore_thresh truth_thresh random iou_thresh iou_normalizer cls_normalizer "
        "scale_x_y iou_loss nms_kind beta_nms resize max_delta counters_per_class "
        "label_smooth_eps objectness_smooth obj_normalizer delta_normalizer iou_thresh_kind "
        "focal_loss track_history_size sim_thresh dets_for_track dets_for_show "
        "track_ciou_norm embedding_layer show_details".split()
    )
    mask: tuple[int, ...]
    anchors: tuple[tuple[float, float], ...]
    classes: int
    num: int
    from_: tuple[int, ...] | None = None

    def renumbered(self, moved: Callable[[int], int]) -> Block:
        if self.from_ is None:
            return self
        return dataclasses.replace(self, from_=tuple(moved(r) for r in self.from_))

    def prediction_channels(self) -> int:
        """Channels of each conv this head reads: its anchors' boxes, plus the fusion
        weights of a ``from`` head."""
        return len(self.mask) * (self.classes + 5) + len(self.from_ or ())

    def prediction_convs(self) -> tuple[int, ...]:
        """The blocks whose conv writes this head's channels."""
        if self.from_ is None:
            return (self.index - 1,)
        return tuple(ref if ref >= 0 else self.index + ref for ref in self.from_)

    def position(self, blocks: tuple[Block, ...] | list[Block]) -> int:
        """How many [yolo] blocks come before this one (which ``from`` entry it reads)."""
        return sum(isinstance(b, YoloBlock) for b in blocks[: self.index])

    def shape(self, ctx: ShapeContext) -> BlockShape:
        if self.num != len(self.anchors):
            raise self.fail(ctx, f"num={self.num} but {len(self.anchors)} anchor pairs are given")
        bad = [m for m in self.mask if not 0 <= m < self.num]
        if bad:
            raise self.fail(ctx, f"mask index {bad[0]} out of range; allowed: 0..{self.num - 1}")
        expected = self.prediction_channels()
        if self.from_ is None:
            previous = ctx.blocks[self.index - 1] if self.index else None
            if not isinstance(previous, ConvBlock):
                raise self.fail(ctx, "a [yolo] block must follow its prediction "
                                "[convolutional] block")  # fmt: skip
            if ctx.channels != expected:
                raise self.fail(ctx, f"the prediction conv (block {self.index - 1}) has "
                                f"{ctx.channels} filters but {len(self.mask)} anchors x "
                                f"({self.classes} classes + 5) = {expected} are "
                                "needed")  # fmt: skip
            return ctx.output(ctx.channels)
        sources = tuple(self.absolute(ctx, ref, "from") for ref in self.from_)
        position = self.position(ctx.blocks)
        if position >= len(sources):
            raise self.fail(ctx, f"this is [yolo] block {position} of the cfg, so it reads "
                            f"from[{position}], but from lists {len(sources)} blocks")  # fmt: skip
        for source in sources:
            block, shape = ctx.blocks[source], ctx.shapes[source]
            if not isinstance(block, ConvBlock) or shape.out_channels != expected:
                raise self.fail(ctx, f"from: block {source} must be a prediction "
                                f"[convolutional] with {len(self.mask)} anchors x "
                                f"({self.classes} classes + 5) + {len(sources)} fusion weights "
                                f"= {expected} filters, got [{block.section}] with "
                                f"{shape.out_channels}")  # fmt: skip
        own = ctx.shapes[sources[position]]
        boxes = expected - len(sources)
        return dataclasses.replace(_shape(expected, boxes, own.strides, sources),
                                   own_source=position)  # fmt: skip

    def module(self, shape: BlockShape) -> nn.Module:
        anchors = torch.tensor([self.anchors[m] for m in self.mask], dtype=torch.float32)
        if shape.own_source is None:
            return YoloHead(anchors, self.classes)
        return FusedYoloHead(anchors, self.classes, shape.sources, shape.own_source)


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
        return ctx.output(self.filters, (self.stride, self.stride))

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
        return ctx.output(self.filters, (self.stride, self.stride))

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
        return ctx.output(ctx.channels)

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
        return ctx.output(self.filters, (self.stride, self.stride))

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
        return ctx.output(ctx.channels)

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
        return ctx.output(ctx.channels, (self.stride, self.stride))

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

    def renumbered(self, moved: Callable[[int], int]) -> Block:
        return dataclasses.replace(self, from_=moved(self.from_))

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
        return _shape(ctx.channels, other.out_channels, other.strides, (source,))


@dataclass(frozen=True, kw_only=True)
class SamBlock(_FromBlock):
    """``[sam] from=-N``: block N's map times the previous block's, element by element
    (YOLOv4's spatial attention); both must have the same shape."""

    section: ClassVar[str] = "sam"

    def shape(self, ctx: ShapeContext) -> BlockShape:
        source, other = self._source(ctx)
        if other.strides != ctx.strides:
            raise self.fail(ctx, f"block {source} is at stride {_stride_text(other)} but the "
                            f"previous block at {_stride_text(ctx.output(ctx.channels))}; they "
                            "must be equal")  # fmt: skip
        return ctx.output(ctx.channels, sources=(source,))


@dataclass(frozen=True, kw_only=True)
class Reorg3dBlock(Block):
    """darknet's ``[reorg3d] stride=s`` (its REORG layer; ``[reorg]``, the YOLOv2 layer,
    is another): space to depth, each s x s cell's values stacked into channels, offset
    major: output channel (dy·s + dx)·C + c holds input channel c at (s·y + dy, s·x + dx).
    The ultralytics port (and so the seed thesis) builds it as a no-op that its next
    ``[route]`` cannot concatenate; darknet's meaning is the one that runs. Opaque to
    channel pruning (a channel becomes s·s of them)."""

    section: ClassVar[str] = "reorg3d"
    keys: ClassVar[dict[str, Callable[[str], Any]]] = {"stride": parse_int,
                                                       "reverse": parse_flag}  # fmt: skip
    required: ClassVar[frozenset[str]] = frozenset({"stride"})
    optional: ClassVar[frozenset[str]] = frozenset({"reverse"})
    stride: int
    reverse: int = 0

    def shape(self, ctx: ShapeContext) -> BlockShape:
        if self.reverse:
            raise self.fail(ctx, "reverse=1 (depth to space) is not supported; allowed: "
                            "reverse=0")  # fmt: skip
        return ctx.output(ctx.channels * self.stride**2, (self.stride, self.stride))

    def module(self, shape: BlockShape) -> nn.Module:
        return SpaceToDepth(self.stride)


def _stride_text(shape: BlockShape) -> str:
    y, x = shape.strides
    return str(x) if x == y else f"{x} across x {y} down"


BLOCK_TYPES: tuple[type[Block], ...] = (
    ConvBlock, MaxPoolBlock, RouteBlock, ShortcutBlock, UpsampleBlock, YoloBlock,
    PEPBlock, EPBlock, FCABlock, MobileBlock, DropoutBlock, ScaleChannelsBlock, SamBlock,
    SoftConvBlock, AvgPoolBlock, LocalAvgPoolBlock, HalfConvBlock, InceptionBlock,
    Reorg3dBlock,
)  # fmt: skip
SECTIONS: dict[str, type[Block]] = {cls.section.lower(): cls for cls in BLOCK_TYPES}
