"""What a model costs: parameters, MACs (dense and effective), storage and CPU latency.

MACs follow ``thop.profile``'s rules (the seed's counting tool), re-implemented here so that
a weight that is zero can be left out: thop counts a conv as output elements x (C_in/groups)
x k x k with no bias term, a BatchNorm as 4 x elements, a Linear as in_features x output
elements, an adaptive average pool as (kernel + 1) x output elements, a nearest upsample
as output elements, and activations, max pools and element-wise ops as nothing. A test
checks that the dense count equals thop's on every zoo model.

*Effective* MACs count only multiply-accumulates with non-zero weights: a conv costs
(output positions) x (non-zero weight elements), a Linear (output rows) x (non-zero weights);
everything else is counted as dense.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from yolo.compress import sparse_format
from yolo.compress.masks import sparsity
from yolo.io import dense_model_bytes
from yolo.metrics import names as m
from yolo.model import Darknet
from yolo.zoo import ZOO_SIZE

MB = 1024 * 1024  # the seed's "MB" is MiB: yolov3 at 235.44
LATENCY_RUNS = 3  # timed runs per cost measurement of a trial (median)


@dataclass(frozen=True)
class MacCount:
    dense: int
    effective: int


@dataclass(frozen=True)
class Profile:
    """The figures ``yct info`` prints; ``latency_ms`` is None when not measured."""

    img_size: int
    params: int
    nonzero_params: int
    macs: int
    effective_macs: int
    storage_mb: float
    sparse_storage_mb: float
    latency_ms: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def count_params(model: nn.Module) -> int:
    """Trainable tensors: conv weights and biases, BN weight and bias, linear weights."""
    return sum(p.numel() for p in model.parameters())


def count_nonzero_params(model: nn.Module) -> int:
    return sum(int(torch.count_nonzero(p)) for p in model.parameters())


def _positions(y: torch.Tensor, channels: int) -> int:
    return y.numel() // channels


def _nonzero(weight: torch.Tensor) -> int:
    """Non-zero weights; all of them on the meta device (shapes only: a dense count)."""
    return weight.numel() if weight.is_meta else int(torch.count_nonzero(weight))


def _conv(m: nn.Conv2d, x: torch.Tensor, y: torch.Tensor) -> MacCount:
    dense = y.numel() * (x.shape[1] // m.groups) * m.kernel_size[0] * m.kernel_size[1]
    effective = _positions(y, m.out_channels) * _nonzero(m.weight)
    return MacCount(dense, effective)


def _linear(m: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> MacCount:
    dense = m.in_features * y.numel()
    effective = _positions(y, m.out_features) * _nonzero(m.weight)
    return MacCount(dense, effective)


def _batchnorm(m: nn.BatchNorm2d, x: torch.Tensor, y: torch.Tensor) -> MacCount:
    ops = 2 * x.numel() * (2 if m.affine else 1)
    return MacCount(ops, ops)


def _adaptive_avgpool(m: nn.AdaptiveAvgPool2d, x: torch.Tensor, y: torch.Tensor) -> MacCount:
    kernel = 1.0
    for size_in, size_out in zip(x.shape[2:], y.shape[2:]):
        kernel *= size_in / size_out
    ops = int((kernel + 1) * y.numel())
    return MacCount(ops, ops)


def _upsample(m: nn.Upsample, x: torch.Tensor, y: torch.Tensor) -> MacCount:
    if m.mode != "nearest":
        raise TypeError(f"MAC rule only for nearest upsampling, got mode '{m.mode}'")
    return MacCount(y.numel(), y.numel())


_RULES: dict[type, Callable[[Any, torch.Tensor, torch.Tensor], MacCount]] = {
    nn.Conv2d: _conv,
    nn.Linear: _linear,
    nn.BatchNorm2d: _batchnorm,
    nn.AdaptiveAvgPool2d: _adaptive_avgpool,
    nn.Upsample: _upsample,
}


def count_macs(model: nn.Module, img_size: int, *, channels: int = 3) -> MacCount:
    """Dense and effective MACs of one forward pass on a (1, channels, S, S) input.

    Raises TypeError for a leaf module that holds weights but has no rule, so new layer
    types cannot be silently counted as free.
    """
    return _count(model, (1, channels, img_size, img_size))


def module_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Dense MACs of any module (one block, say) on an input of ``input_shape``, by the same
    rules; a module on the ``meta`` device is counted from shapes alone."""
    return _count(module, input_shape).dense


def _count(model: nn.Module, input_shape: tuple[int, ...]) -> MacCount:
    totals = [0, 0]
    handles = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        count = _RULES[type(module)](module, inputs[0], output)
        totals[0] += count.dense
        totals[1] += count.effective

    for module in model.modules():
        if type(module) in _RULES:
            handles.append(module.register_forward_hook(hook))
        elif not list(module.children()) and any(True for _ in module.parameters(False)):
            for handle in handles:
                handle.remove()
            raise TypeError(f"no MAC rule for weighted module {type(module).__name__}")
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(input_shape, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return MacCount(totals[0], totals[1])


def dense_storage_mb(model: Darknet) -> float:
    """Size of the dense fp32 model file (cfg + state dict)."""
    return len(dense_model_bytes(model)) / MB


def sparse_storage_mb(model: Darknet, *, half: bool = False) -> float:
    """Size of the sparse model file of METHODS.md."""
    return len(sparse_format.encode(model.cfg_text, model.own_state_dict(), half=half)) / MB


LATENCY_RUNTIMES = ("eager", "onnxruntime")


def measure_latency_ms(
    model: nn.Module, img_size: int, *, runs: int = 10, warmup: int = 2, channels: int = 3
) -> float:
    """Median wall time of a batch-1 eval forward on CPU, after ``warmup`` untimed runs."""
    if runs < 1:
        raise ValueError(f"latency runs must be >= 1, got {runs}")
    if any(p.device.type != "cpu" for p in model.parameters()):
        model = copy.deepcopy(model).cpu()
    was_training = model.training
    model.eval()
    x = torch.zeros(1, channels, img_size, img_size)
    times = []
    try:
        with torch.no_grad():
            for i in range(warmup + runs):
                start = time.perf_counter()
                model(x)
                if i >= warmup:
                    times.append((time.perf_counter() - start) * 1000.0)
    finally:
        model.train(was_training)
    return statistics.median(times)


def profile_model(
    model: Darknet, img_size: int = ZOO_SIZE, *, latency_runs: int = 10, warmup: int = 2
) -> Profile:
    """Every figure at once (``yct info``): the dense ones, and the effective ones from
    :func:`model_costs`, the same function trials report through; ``latency_runs=0`` skips
    the timing."""
    costs = model_costs(model, img_size, latency_runs=latency_runs, warmup=warmup)
    return Profile(
        img_size=img_size,
        params=count_params(model),
        nonzero_params=int(costs[m.PARAMS]),
        macs=count_macs(model, img_size, channels=model.cfg.net.channels).dense,
        effective_macs=int(costs[m.MACS]),
        storage_mb=dense_storage_mb(model),
        sparse_storage_mb=costs[m.STORAGE_MB],
        latency_ms=costs.get(m.LATENCY_MS),
    )


def delivered_copy(model: Darknet, masks: Mapping[str, torch.Tensor] | None = None) -> Darknet:
    """The model as its checkpoint would rebuild it: from its cfg and state dict, on CPU, in
    eval mode, with ``masks`` applied. Whatever a method hooked into the training model
    (CS's soft gates, distillation taps) is not part of it."""
    plain = Darknet(model.cfg)
    plain.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    if masks:
        params = dict(plain.named_parameters())
        with torch.no_grad():
            for name, mask in masks.items():
                params[name].mul_(mask.to(torch.float32).cpu())
    return plain.eval()


def model_costs(
    model: Darknet,
    img_size: int,
    masks: Mapping[str, torch.Tensor] | None = None,
    *,
    latency_runs: int = LATENCY_RUNS,
    warmup: int = 1,
    latency_runtime: str = "eager",
    latency_threads: int | None = None,
) -> dict[str, float]:
    """What the delivered model costs, by metric name: non-zero params, effective MACs at
    ``img_size`` and at the zoo size, sparse storage, sparsity, and the CPU latency when
    ``latency_runs`` > 0 (absent otherwise: an unmeasured latency is not 0 ms), in PyTorch
    eager or on ONNX Runtime (``latency_runtime``) with ``latency_threads`` threads (None:
    torch's current count).

    The one cost function of trials, LTH and CS rounds, distillation and ``yct info``."""
    plain = delivered_copy(model, masks)
    channels = plain.cfg.net.channels
    costs = {
        m.PARAMS: float(count_nonzero_params(plain)),
        m.MACS: float(count_macs(plain, img_size, channels=channels).effective),
        m.MACS_416: float(count_macs(plain, ZOO_SIZE, channels=channels).effective),
        m.STORAGE_MB: sparse_storage_mb(plain),
        m.SPARSITY: sparsity(plain),
    }
    if latency_runs <= 0:
        return costs
    if latency_runtime not in LATENCY_RUNTIMES:
        raise ValueError(f"latency_runtime must be one of {', '.join(LATENCY_RUNTIMES)}, "
                         f"got '{latency_runtime}'")  # fmt: skip
    threads = latency_threads or torch.get_num_threads()
    if latency_runtime == "onnxruntime":
        from yolo.onnx_runtime import model_latency_ms

        costs[m.LATENCY_MS] = model_latency_ms(plain, img_size, threads=threads,
                                               runs=latency_runs, warmup=warmup,
                                               channels=channels)  # fmt: skip
        return costs
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        costs[m.LATENCY_MS] = measure_latency_ms(
            plain, img_size, runs=latency_runs, warmup=warmup, channels=channels
        )
    finally:
        torch.set_num_threads(before)
    return costs
