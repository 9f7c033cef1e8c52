"""Will this model fit? Parameter and activation memory estimated before anything is allocated.

A cfg with ``filters=10000000``, ``--width 100`` or ``--img-size 100000`` would otherwise
ask the allocator for terabytes (a traceback) or swap the machine for minutes. The model is
built on PyTorch's ``meta`` device, which records shapes and allocates nothing, so the
estimate is exact about sizes and costs milliseconds; a forward pass on ``meta`` also finds
blocks whose spatial sizes do not line up at this input size (a huge stride before a
route), which the channel-level shape check cannot see, and names the block.

The estimate is deliberately rough (fp32; training keeps weights, gradients, momentum and
EMA, and about three tensors per block output for autograd); it refuses only what cannot
fit, it is no promise that everything else does. The limit is the machine's physical memory
unless ``yct --max-memory GB`` (or :func:`set_memory_limit`) sets another.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from yolo.config import Cfg
from yolo.domains import check_range
from yolo.errors import CfgError, cfg_error
from yolo.model import Darknet
from yolo.topology import infer_shapes

BYTES_PER_VALUE = 4  # fp32
TRAINING_COPIES_PER_WEIGHT = 4  # weights, gradients, SGD momentum, EMA
TRAINING_TENSORS_PER_OUTPUT = 3  # autograd keeps conv, norm and activation outputs

_limit_bytes: int | None = None


def set_memory_limit(gigabytes: float | None) -> None:
    """Refuse models estimated above ``gigabytes`` (None: the machine's physical memory)."""
    global _limit_bytes
    if gigabytes is not None:
        check_range("--max-memory", gigabytes, 0, low_open=True)
    _limit_bytes = None if gigabytes is None else int(gigabytes * 2**30)


@contextmanager
def memory_limit(gigabytes: float | None) -> Iterator[None]:
    """:func:`set_memory_limit` for the duration of one command; the previous limit after."""
    global _limit_bytes
    before = _limit_bytes
    set_memory_limit(gigabytes)
    try:
        yield
    finally:
        _limit_bytes = before


def memory_limit_bytes() -> int:
    if _limit_bytes is not None:
        return _limit_bytes
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class Estimate:
    params: int
    # per image: every block output of one forward pass, plus the largest tensor any single
    # operation makes on the way (a pool's padded copy, an expansion inside a block)
    activation_values: int
    batch: int
    training: bool

    @property
    def bytes(self) -> int:
        weights = self.params * (TRAINING_COPIES_PER_WEIGHT if self.training else 1)
        per_output = TRAINING_TENSORS_PER_OUTPUT if self.training else 1
        return BYTES_PER_VALUE * (weights + self.activation_values * self.batch * per_output)


def _gib(count: int) -> str:
    return f"{count / 2**30:,.1f} GiB"


def meta_model(cfg: Cfg) -> Darknet:
    """The cfg's model with shapes only (no storage): for counting and shape checks. A
    block whose weights are too large for a tensor to describe at all (torch's size
    arithmetic overflows even on ``meta``) is a ``CfgError`` naming it."""
    with torch.device("meta"):
        try:
            return Darknet(cfg)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())
            for block, shape in zip(cfg.blocks, infer_shapes(cfg)):
                try:
                    block.module(shape)
                except RuntimeError:
                    what = f"its weights are too large to exist ({detail})"
                    raise cfg_error(cfg.source, block.line, block.index, block.section,
                                    what) from None  # fmt: skip
            raise


def check_params_fit(cfg: Cfg) -> None:
    """Refuse a cfg whose training copies of the weights alone exceed the memory limit
    (before building it: initialising such a model would take minutes)."""
    params = sum(p.numel() for p in meta_model(cfg).parameters())
    need = params * BYTES_PER_VALUE * TRAINING_COPIES_PER_WEIGHT
    limit = memory_limit_bytes()
    if need > limit:
        raise ValueError(
            f"{cfg.source}: the model has {params:,} parameters; training it needs "
            f"{_gib(need)} for weights, gradients, momentum and EMA alone, more than the "
            f"memory limit of {_gib(limit)}; use a smaller width, filters or classes"
        )


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any operation of a (meta) forward makes, temporaries
    inside a block included (they never pass a module hook). torch's own FLOP counter
    (``torch.utils.flop_counter``) watches operations the same way; this mode is that
    mechanism reduced to one number."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:  # fmt: skip
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor):
                self.largest = max(self.largest, value.numel())
        return out


def estimate(cfg: Cfg, img_size: int, *, batch: int = 1, training: bool = False) -> Estimate:
    """Parameters and per-image activation values at ``img_size``; raises ``CfgError``
    naming the block whose inputs do not line up at that size."""
    model = meta_model(cfg).eval()
    largest = _LargestTensor()
    outputs: list[int] = []
    current: list[int] = []

    def after(_module: torch.nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor):
            outputs.append(output.numel())

    handles = []
    for index, block in enumerate(model.blocks):
        # which block runs: a failure inside it names that block
        handles.append(block.register_forward_pre_hook(
            lambda _m, _i, index=index: current.__setitem__(slice(None), [index])))  # fmt: skip
        handles.append(block.register_forward_hook(after))
    try:
        with torch.no_grad(), largest:
            model(torch.empty(1, cfg.net.channels, img_size, img_size, device="meta"),
                  decode=False)  # fmt: skip
    except RuntimeError as exc:
        index = current[0] if current else 0
        failed = cfg.blocks[index]
        detail = " ".join(str(exc).split())
        raise CfgError(
            f"{cfg.source}:{failed.line}: block {index} [{failed.section}]: its inputs do not "
            f"fit together at img size {img_size} ({detail})"
        ) from None
    finally:
        for handle in handles:
            handle.remove()
    params = sum(p.numel() for p in model.parameters())
    return Estimate(params, sum(outputs) + largest.largest, batch, training)


def check_fits(cfg: Cfg, img_size: int, *, batch: int = 1, training: bool = False) -> Estimate:
    """:func:`estimate`, refused with its figures when above the memory limit."""
    found = estimate(cfg, img_size, batch=batch, training=training)
    limit = memory_limit_bytes()
    if found.bytes > limit:
        use = "training" if training else "inference"
        raise ValueError(
            f"{cfg.source}: img size {img_size}, batch {batch}: {use} needs an estimated "
            f"{_gib(found.bytes)} ({found.params:,} parameters, "
            f"{found.activation_values * batch:,} activation values), more than the memory "
            f"limit of {_gib(limit)}; use a smaller img size, batch, width or model"
        )
    return found
