"""Hook points of the trainer. Compression methods plug in here, never by editing it.

A callback overrides only what it needs. Order within one optimisation step::

    before_forward(step)        e.g. a teacher's forward on the same batch
    detection_weights(step)     multipliers of the detection terms (box / obj / cls)
    loss_terms(step) -> dict    extra loss terms, added to the detection loss
    after_backward()            e.g. zero the gradients of pruned weights
    (optimiser steps, EMA update)
    after_step()                e.g. re-apply masks to the model and its EMA

and per epoch ``on_epoch_start(epoch)``, ``on_epoch_end(epoch, metrics)`` (may add
metrics), ``on_report(metrics)``. ``optimizers()`` returns extra optimisers stepped with the
main one (mask scores, discriminators); ``state_dict`` / ``load_state_dict`` put a callback's
state in the checkpoint, ``masks()`` what the checkpoint stores as masks and
``delivered_masks()`` those of the model the run would deliver now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from yolo.data.loader import Batch

# The engine's Trainer. Named, not imported: the engine imports this module, and a hook's
# subclass annotates ``trainer: Trainer`` itself where it needs the attributes.
Trainer = Any


@dataclass
class Step:
    """One forward/backward on a batch, shared with callbacks."""

    epoch: int
    index: int  # batch index within the epoch
    batch: Batch
    images: torch.Tensor
    targets: torch.Tensor
    raw: list[torch.Tensor] | None = None
    features: dict[int, torch.Tensor] = field(default_factory=dict)
    loss_items: dict[str, torch.Tensor] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)  # what callbacks share


class Callback:
    """Base class: every hook does nothing."""

    #: block indices of the trained model whose outputs ``Step.features`` should hold
    taps: tuple[int, ...] = ()

    def setup(self, trainer: Trainer) -> None:
        """Called once the model, EMA and optimiser exist (before any resume)."""

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return []

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None: ...

    def before_forward(self, trainer: Trainer, step: Step) -> None: ...

    def detection_weights(self, trainer: Trainer, step: Step) -> dict[str, float]:
        """E.g. distillation's ``mu`` on the hard objectness and class terms."""
        return {}

    def loss_terms(self, trainer: Trainer, step: Step) -> dict[str, torch.Tensor]:
        return {}

    def after_backward(self, trainer: Trainer) -> None: ...

    def after_step(self, trainer: Trainer) -> None: ...

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None: ...

    def on_report(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...

    def masks(self) -> dict[str, torch.Tensor]:
        return {}

    def delivered_masks(self) -> dict[str, torch.Tensor]:
        """The masks of the model this run would deliver now; what the cost figures are
        measured on (CS: the binary ticket of its current soft masks)."""
        return self.masks()

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
