"""The building blocks of the zoo: conv/BN/act units and the PEP, EP, FCA and mobile modules.

Only stock ``nn.Conv2d``, ``nn.BatchNorm2d``, ``nn.Linear`` and activation modules hold
weights, so that pruning, MAC counting (ours and ``thop``'s, which dispatch on exact module
types) and darknet ``.weights`` I/O see every weight. Sub-modules are registered in forward
order: darknet weight files are read in that order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The activations a cfg may name: the one list (the parser reads its names from here).
_ACTIVATION_FACTORIES = {
    "leaky": lambda: nn.LeakyReLU(0.1, inplace=True),
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "hswish": lambda: nn.Hardswish(inplace=True),
    "swish": lambda: nn.SiLU(inplace=True),
    "mish": lambda: nn.Mish(inplace=True),
    "linear": nn.Identity,
    "sigmoid": nn.Sigmoid,
}
ACTIVATIONS: tuple[str, ...] = tuple(_ACTIVATION_FACTORIES)


def make_activation(name: str) -> nn.Module:
    """Activation module by cfg name; an unknown name is an error, never a silent 'linear'."""
    if name not in _ACTIVATION_FACTORIES:
        raise ValueError(f"unknown activation '{name}'; allowed: {', '.join(ACTIVATIONS)}")
    return _ACTIVATION_FACTORIES[name]()


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet channel rounding: nearest multiple of ``divisor``, >= divisor, >= 90% of value."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNAct(nn.Module):
    """Conv2d, then BatchNorm2d (in which case the conv has no bias), then an activation.

    The unit darknet ``.weights`` files are written in: BN (or conv bias) first, then weight.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int | tuple[int, int] = 1,
        padding: int | None = None,
        groups: int = 1,
        batch_norm: bool = True,
        activation: str = "linear",
        bias: bool | None = None,  # default: without BN only
    ) -> None:
        super().__init__()
        padding = (kernel_size - 1) // 2 if padding is None else padding
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            groups=groups,
            bias=(not batch_norm) if bias is None else bias,
        )
        self.bn = nn.BatchNorm2d(out_channels, momentum=0.03, eps=1e-4) if batch_norm else None
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)


class HalfConvBNAct(ConvBNAct):
    """The seed thesis' ``[halfconv]`` (C.ReLU, from PVANet): a conv to half the filters,
    its output and its negation concatenated, then BN and the activation over all of them.
    Half the conv's MACs and weights for the same width."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 stride: int | tuple[int, int] = 1, padding: int | None = None,
                 batch_norm: bool = True, activation: str = "linear") -> None:  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=padding, batch_norm=batch_norm, activation=activation)  # fmt: skip
        padding = (kernel_size - 1) // 2 if padding is None else padding
        self.conv = nn.Conv2d(in_channels, out_channels // 2, kernel_size, stride=stride,
                              padding=padding, bias=not batch_norm)  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = torch.cat((x, -x), 1)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)


class InceptionBNAct(nn.Module):
    """The seed thesis' ``[inception]`` (PVANet's): three branches from the input, a 1x1 conv
    to half the filters, 1x1 then 3x3 to a quarter, 1x1 then two 3x3 to a quarter (every
    conv with a bias, none with BN), concatenated, then BN and the activation. Registered
    in the thesis' order, so its checkpoints map onto it tensor by tensor."""

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool = True,
                 activation: str = "linear") -> None:  # fmt: skip
        super().__init__()
        half, quarter = out_channels // 2, out_channels // 4
        self.conv1x1 = nn.Conv2d(in_channels, half, 1)
        self.conv1x1_3x3 = nn.Sequential(nn.Conv2d(in_channels, quarter, 1),
                                         nn.Conv2d(quarter, quarter, 3, padding=1))  # fmt: skip
        self.conv1x1_3x3_3x3 = nn.Sequential(nn.Conv2d(in_channels, quarter, 1),
                                             nn.Conv2d(quarter, quarter, 3, padding=1),
                                             nn.Conv2d(quarter, quarter, 3, padding=1))  # fmt: skip
        self.out_channels = half + 2 * quarter
        self.bn = nn.BatchNorm2d(self.out_channels, momentum=0.03, eps=1e-4) if batch_norm else None
        self.act = make_activation(activation)

    def convs(self) -> list[nn.Conv2d]:
        """Every conv, in the thesis' registration (and our weights-file) order."""
        return [self.conv1x1, *self.conv1x1_3x3, *self.conv1x1_3x3_3x3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat((self.conv1x1(x), self.conv1x1_3x3(x), self.conv1x1_3x3_3x3(x)), 1)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)


class SeparableBlock(nn.Module):
    """1x1 conv c->c, 3x3 depthwise (stride s), 1x1 conv c->out; the EP module of YOLO Nano."""

    def __init__(self, channels: int, out_channels: int, stride: int, activation: str) -> None:
        super().__init__()
        self.expand = ConvBNAct(channels, channels, 1, activation=activation)
        self.depthwise = ConvBNAct(
            channels, channels, 3, stride=stride, groups=channels, activation=activation
        )
        self.project = ConvBNAct(channels, out_channels, 1, activation="linear")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.depthwise(self.expand(x)))


class EP(nn.Module):
    """YOLO Nano expansion-projection: the separable block on the input, residual if it fits."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, activation: str) -> None:
        super().__init__()
        self.block = SeparableBlock(in_channels, out_channels, stride, activation)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class PEP(nn.Module):
    """YOLO Nano projection-expansion-projection: 1x1 in->x, then the separable block x->out."""

    def __init__(
        self, in_channels: int, out_channels: int, x: int, stride: int, activation: str
    ) -> None:
        super().__init__()
        self.project_in = ConvBNAct(in_channels, x, 1, activation=activation)
        self.block = SeparableBlock(x, out_channels, stride, activation)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(self.project_in(x))
        return x + y if self.residual else y


class FCA(nn.Module):
    """YOLO Nano fully-connected attention: squeeze to c//r and back, sigmoid-gate channels."""

    def __init__(self, channels: int, reduction: int, activation: str) -> None:
        super().__init__()
        hidden = channels // reduction
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(channels, hidden, bias=False)
        self.act = make_activation(activation)
        self.fc2 = nn.Linear(hidden, channels, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.pool(x).flatten(1)
        weights = self.gate(self.fc2(self.act(self.fc1(weights))))
        return x * weights[:, :, None, None]


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-excite: h -> make_divisible(h // 4) -> h with biases, sigmoid gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = make_divisible(channels // 4, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(channels, hidden)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.gate(self.fc2(self.act(self.fc1(self.pool(x).flatten(1)))))
        return x * weights[:, :, None, None]


class MobileBottleneck(nn.Module):
    """MobileNetV3 inverted bottleneck as the ``[mobile]`` section defines it."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int,
        expansion_ratio: float,
        stride: int,
        squeeze_excite: bool,
        activation: str,
    ) -> None:
        super().__init__()
        hidden = make_divisible(in_channels * expansion_ratio, 8)
        # Without expansion the depthwise conv carries the activation; with it, the
        # activation comes after squeeze-excite (MobileNetV3's layout).
        self.expand = (
            ConvBNAct(in_channels, hidden, 1, activation=activation)
            if hidden != in_channels
            else None
        )
        self.depthwise = ConvBNAct(
            hidden,
            hidden,
            kernel_size,
            stride=stride,
            groups=hidden,
            activation=activation if self.expand is None else "linear",
        )
        self.se = SqueezeExcite(hidden) if squeeze_excite else None
        self.act = make_activation(activation) if self.expand is not None else None
        self.project = ConvBNAct(hidden, out_channels, 1, activation="linear")
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.expand is None else self.expand(x)
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        if self.act is not None:
            y = self.act(y)
        y = self.project(y)
        return x + y if self.residual else y


def darknet_pool_padding(size: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) as darknet places a pool's windows: ``size - 1`` cells of
    padding, ``(size - 1) // 2`` of them before."""
    before = (size - 1) // 2
    return before, size - 1 - before, before, size - 1 - before


class DarknetMaxPool(nn.Module):
    """Max pooling as darknet does it: pad right/bottom by ``size - 1`` with -inf.

    With size 2 / stride 1 (YOLOv3-Tiny) this keeps the spatial size; with stride 2 on an
    even input it is the plain 2x2 pool. The padding repeats the edge instead of writing
    -inf: every window that reaches into the padding also holds the edge value it repeats,
    so the maximum is the same, and the graph holds no infinity (an INT8 calibrator that
    meets -inf gives the tensor a NaN scale, and the model 0 mAP).
    """

    def __init__(self, size: int, stride: int | tuple[int, int], *,
                 zero_padding: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.pad = size - 1
        self.pool = nn.MaxPool2d(size, stride)
        # the ultralytics port (and so the seed thesis): zeros right/bottom for size 2 /
        # stride 1, else PyTorch's own symmetric (size - 1) // 2 padding
        self.zero_padding = zero_padding
        self.port_pool = nn.MaxPool2d(size, stride, padding=(size - 1) // 2)
        self.size, self.stride = size, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.zero_padding:
            if (self.size, self.stride) == (2, 1):
                return self.port_pool(F.pad(x, (0, 1, 0, 1), value=0.0))
            return self.port_pool(x)
        pads = darknet_pool_padding(self.size)
        if self.pad and (pads[0] or not self._padding_unused(x)):
            x = F.pad(x, pads, mode="replicate")
        return self.pool(x)

    def _padding_unused(self, x: torch.Tensor) -> bool:
        """Whether right/bottom padding would add no window (a size-2 stride-2 pool on an
        even map, every such pool at a multiple-of-32 input): then it is skipped, a copy of
        the map (and its backward) saved; the windows, and so the output, are the same."""
        size, pad = self.size, self.pad
        steps = self.stride if isinstance(self.stride, tuple) else (self.stride, self.stride)
        return all((n - size) // step == (n + pad - size) // step
                   for n, step in zip(x.shape[-2:], steps))  # fmt: skip


class LocalAvgPool(nn.Module):
    """darknet's ``[local_avgpool]``: the mean of each window over the cells that lie in
    the map (darknet counts only those), windows placed as its max-pool places them
    (``size - 1`` of padding, ``(size - 1) // 2`` of it before)."""

    def __init__(self, size: int, stride: int) -> None:
        super().__init__()
        self.size, self.stride = size, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = darknet_pool_padding(self.size)
        total = F.avg_pool2d(F.pad(x, pads), self.size, self.stride)
        inside = F.avg_pool2d(F.pad(torch.ones_like(x[:, :1]), pads), self.size, self.stride)
        return total / inside


class SpaceToDepth(nn.Module):
    """darknet's REORG layer (``[reorg3d]``): (B, C, H, W) -> (B, s·s·C, H/s, W/s), output
    channel (dy·s + dx)·C + c taken from input channel c at row s·y + dy, column s·x + dx
    (offset-major, unlike ``pixel_unshuffle``'s channel-major order)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s = self.stride
        x = x[:, :, : h - h % s, : w - w % s]  # darknet's integer division drops the rest
        y = x.reshape(b, c, h // s, s, w // s, s).permute(0, 3, 5, 1, 2, 4)
        return y.reshape(b, s * s * c, h // s, w // s)


def share_parameters(module: nn.Module, owner: nn.Module) -> None:
    """Make ``module`` use ``owner``'s parameters and buffers, the same tensors (darknet's
    ``share_index``: one set of weights, BatchNorm statistics included, in two places of
    the network). Both modules must have the same structure and shapes."""
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        parent_name, _, leaf = name.rpartition(".")
        parent = module.get_submodule(parent_name)
        theirs = getattr(owner.get_submodule(parent_name), leaf)
        if theirs.shape != tensor.shape:
            raise ValueError(f"cannot share {name}: shape {tuple(theirs.shape)} != "
                             f"{tuple(tensor.shape)}")  # fmt: skip
        if isinstance(theirs, nn.Parameter):
            setattr(parent, leaf, theirs)
        else:
            parent.register_buffer(leaf, theirs)


class Route(nn.Module):
    """Concatenation of earlier block outputs along channels (wiring lives in the model);
    with ``groups`` > 1, only channel group ``group_id`` of it (YOLOv4-Tiny's split)."""

    def __init__(self, sources: tuple[int, ...], groups: int = 1, group_id: int = 0) -> None:
        super().__init__()
        self.sources, self.groups, self.group_id = sources, groups, group_id

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        x = inputs[0] if len(inputs) == 1 else torch.cat(inputs, 1)
        if self.groups == 1:
            return x
        return x.chunk(self.groups, dim=1)[self.group_id]


class TwoStream(nn.Module):
    """A block that combines the previous block's output with an earlier one's
    (``source``); the model hands it both."""

    source: int

    def forward(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Shortcut(TwoStream):
    """Residual add of an earlier block's output, then the section's activation."""

    def __init__(self, source: int, activation: str) -> None:
        super().__init__()
        self.source = source
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return self.act(x + other)


class Product(TwoStream):
    """The earlier map times the previous block's output, broadcast: darknet's
    ``[scale_channels]`` (a (B, C, 1, 1) gate, squeeze-excite) and ``[sam]`` (a map of the
    same shape, YOLOv4's spatial attention) are this one operation; their blocks differ only
    in the shapes they accept."""

    def __init__(self, source: int) -> None:
        super().__init__()
        self.source = source

    def forward(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return other * x
