"""What is prunable, and binary masks that keep pruned weights exactly zero.

One definition of the prunable set serves every method and the cost accounting: conv and
linear *weights*; never biases or BatchNorm; by default not the prediction convolutions
right before each ``[yolo]`` block (their 3·(N+5) outputs are the detections); and never
the blocks listed in ``ignored_layers``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from yolo.callbacks import Callback
from yolo.model import Darknet

if TYPE_CHECKING:
    from yolo.engine import Trainer


def prunable_parameters(
    model: Darknet, *, ignored_layers: Iterable[int] = (), include_prediction: bool = False
) -> dict[str, nn.Parameter]:
    """Prunable weights by state-dict name, in forward order."""
    count = len(model.blocks)
    ignored = set()
    for index in ignored_layers:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"ignored_layers: expected block indices (int) but got {index!r}")
        if not -count <= index < count:
            raise ValueError(f"ignored_layers: {index} is not a block; allowed: 0..{count - 1}")
        ignored.add(index % count)
    if not include_prediction:
        ignored |= set(model.prediction_conv_indices())
    ignored |= set(model.shared_blocks())  # their weights are their owner's: masked there
    params: dict[str, nn.Parameter] = {}
    for index, block in enumerate(model.blocks):
        if index in ignored:
            continue
        for name, module in block.named_modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                prefix = f"blocks.{index}.{name}." if name else f"blocks.{index}."
                params[prefix + "weight"] = cast(nn.Parameter, module.weight)
    return params


def dense_masks(params: dict[str, nn.Parameter]) -> dict[str, torch.Tensor]:
    return {name: torch.ones_like(p, dtype=torch.bool) for name, p in params.items()}


def sparsity(model: Darknet, **prunable: Any) -> float:
    """Share of prunable weights that are exactly zero."""
    params = prunable_parameters(model, **prunable)
    total = sum(p.numel() for p in params.values())
    zeros = sum(int((p == 0).sum()) for p in params.values())
    return zeros / total if total else 0.0


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """``w <- w * m`` for every masked weight of ``model`` (by state-dict name)."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        weight = params[name]
        weight.mul_(mask.to(weight.device, weight.dtype))


class MaskCallback(Callback):
    """Keeps masked weights at exactly zero in the model and its EMA, through every step.

    Gradients of pruned entries are zeroed after backward (so momentum never moves them),
    and the mask is re-applied after each optimiser step, to the model and to the EMA.
    """

    def __init__(self, masks: dict[str, torch.Tensor]) -> None:
        self.mask_tensors = {name: m.detach().bool().clone() for name, m in masks.items()}

    def setup(self, trainer: Trainer) -> None:
        params = dict(trainer.model.named_parameters())
        unknown = sorted(set(self.mask_tensors) - set(params))
        if unknown:
            raise ValueError(f"mask for '{unknown[0]}', which the model does not have")
        for name, mask in self.mask_tensors.items():
            if mask.shape != params[name].shape:
                raise ValueError(
                    f"mask for '{name}' has shape {tuple(mask.shape)}, the weight "
                    f"{tuple(params[name].shape)}"
                )
        self.mask_tensors = {k: v.to(trainer.device) for k, v in self.mask_tensors.items()}
        self._apply(trainer)

    def _apply(self, trainer: Trainer) -> None:
        apply_masks(trainer.model, self.mask_tensors)
        if trainer.ema is not None:
            apply_masks(trainer.ema.model, self.mask_tensors)

    def after_backward(self, trainer: Trainer) -> None:
        params = dict(trainer.model.named_parameters())
        for name, mask in self.mask_tensors.items():
            grad = params[name].grad
            if grad is not None:
                grad.mul_(mask.to(grad.dtype))

    def after_step(self, trainer: Trainer) -> None:
        self._apply(trainer)

    def masks(self) -> dict[str, torch.Tensor]:
        return self.mask_tensors

    def state_dict(self) -> dict[str, Any]:
        return {"masks": {k: v.cpu() for k, v in self.mask_tensors.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = next(iter(self.mask_tensors.values())).device if self.mask_tensors else "cpu"
        self.mask_tensors = {k: v.to(device).bool() for k, v in state["masks"].items()}
