"""Continuous Sparsification (arXiv 1912.04427): learn the ticket with soft masks.

Every prunable weight gets a real-valued score s (same shape, initialised to ``mask_init``);
the forward pass uses ``w * sigmoid(beta * s) / sigmoid(mask_init)``. The loss adds
``lambda * sum(sigmoid(beta * s))``. The scores have their own optimiser (SGD, lr
``mask_lr``, momentum 0.9, Nesterov). beta starts at 1 and is multiplied every epoch by
``final_temperature ** (1 / epochs_per_round)``; after each round but the last,
``s <- min(beta * s, mask_init)`` and beta returns to 1. The ticket is ``s > 0``; the weights
are rewound to epoch ``rewind_epoch`` and, if ``retrain_epochs > 0``, retrained with the
ticket fixed.

The gate is applied by replacing the ``forward`` of each gated conv/linear module (the same
gates on the model and its EMA), so the state dict keeps the plain cfg layout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from yolo.callbacks import Callback
from yolo.compress.lth import RewindCapture, round_report
from yolo.compress.masks import MaskCallback, prunable_parameters
from yolo.io import save_checkpoint
from yolo.metrics import names as m

if TYPE_CHECKING:
    from yolo.engine import Trainer
    from yolo.train_config import TrainConfig


@dataclass(frozen=True)
class CSConfig:
    """The seed's defaults: 3 rounds, final temperature 200, lambda 1e-8, rewind epoch 10."""

    rounds: int = 3
    final_temperature: float = 200.0
    penalty: float = 1e-8  # 'lambda'
    mask_init: float = 0.0
    mask_lr: float = 0.1
    rewind_epoch: int = 10
    retrain_epochs: int = 0
    ignored_layers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 1:
            raise ValueError(f"rounds must be an integer >= 1, got {self.rounds!r}")
        if not self.final_temperature >= 1:
            raise ValueError(f"final_temperature must be >= 1, got {self.final_temperature}")
        if self.penalty < 0:
            raise ValueError(f"lambda (penalty) must be >= 0, got {self.penalty}")
        if not self.mask_lr > 0:
            raise ValueError(f"mask_lr must be > 0, got {self.mask_lr}")
        if self.rewind_epoch < 0 or self.retrain_epochs < 0:
            raise ValueError("rewind_epoch and retrain_epochs must be >= 0")


def _gated_forward(module: nn.Module, gate: Callable[[], torch.Tensor]) -> Callable:
    if isinstance(module, nn.Conv2d):
        return lambda x: module._conv_forward(x, module.weight * gate(), module.bias)
    return lambda x: F.linear(x, module.weight * gate(), module.bias)


class SoftMaskCallback(Callback):
    """Soft masks, their optimiser, the L1 penalty and the temperature schedule."""

    def __init__(self, config: CSConfig, epochs: int) -> None:
        self.config = config
        self.epochs_per_round = max(1, epochs // config.rounds)
        self.beta = 1.0
        self.scores = nn.ParameterDict()
        self._optimizer: torch.optim.Optimizer | None = None
        self._names: dict[str, str] = {}  # ParameterDict key -> weight name

    def setup(self, trainer: Trainer) -> None:
        params = prunable_parameters(trainer.model, ignored_layers=self.config.ignored_layers)
        for name, weight in params.items():
            key = name.replace(".", "__")
            self._names[key] = name
            self.scores[key] = nn.Parameter(torch.full_like(weight, self.config.mask_init))
        scale = 1.0 / torch.sigmoid(torch.tensor(self.config.mask_init)).item()
        for model in [trainer.model] + ([trainer.ema.model] if trainer.ema is not None else []):
            modules = dict(model.named_modules())
            for key, name in self._names.items():
                module = modules[name.removesuffix(".weight")]
                score = self.scores[key]
                module.forward = _gated_forward(
                    module, lambda score=score: torch.sigmoid(self.beta * score) * scale
                )
        self._optimizer = torch.optim.SGD(self.scores.parameters(), lr=self.config.mask_lr,
                                          momentum=0.9, nesterov=True)  # fmt: skip

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self._optimizer] if self._optimizer is not None else []

    def loss_terms(self, trainer: Trainer, step: Any) -> dict[str, torch.Tensor]:
        if not self.config.penalty:
            return {}
        total = sum(torch.sigmoid(self.beta * s).sum() for s in self.scores.values())
        return {"mask_l1": self.config.penalty * total}

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        self.beta *= self.config.final_temperature ** (1.0 / self.epochs_per_round)
        round_index = epoch // self.epochs_per_round
        end_of_round = (epoch + 1) % self.epochs_per_round == 0
        if end_of_round and round_index < self.config.rounds - 1:
            with torch.no_grad():
                for s in self.scores.values():
                    s.copy_(torch.clamp(self.beta * s, max=self.config.mask_init))
            self.beta = 1.0
        metrics[m.ROUND] = float(min(round_index, self.config.rounds - 1))
        metrics["temperature"] = self.beta
        metrics[m.SPARSITY] = 1.0 - self.kept_fraction()

    def kept_fraction(self) -> float:
        total = sum(s.numel() for s in self.scores.values())
        return sum(int((s > 0).sum()) for s in self.scores.values()) / max(total, 1)

    def ticket(self) -> dict[str, torch.Tensor]:
        """The binary mask ``s > 0`` by weight name."""
        return {self._names[k]: (s.detach() > 0).cpu() for k, s in self.scores.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"beta": self.beta, "scores": {k: v.detach().cpu() for k, v in self.scores.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.beta = float(state["beta"])
        with torch.no_grad():
            for key, value in state["scores"].items():
                self.scores[key].copy_(value)


def run_cs(
    train: TrainConfig,
    cs: CSConfig,
    *,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Search the ticket, rewind, optionally retrain; writes ``OUT/ticket.pt``."""
    from yolo.engine import Trainer

    if cs.rewind_epoch >= train.epochs:
        raise ValueError(f"rewind_epoch ({cs.rewind_epoch}) must be < epochs ({train.epochs})")
    out = Path(train.out)
    search_config = dataclasses.replace(train, out=str(out / "search"))
    soft, capture = SoftMaskCallback(cs, train.epochs), RewindCapture(cs.rewind_epoch)
    search_callbacks = [soft, capture, *callbacks]
    last = out / "search" / "last.pt"
    if last.is_file():
        trainer = Trainer.resume(last, callbacks=search_callbacks, progress=progress, log=log)
    else:
        trainer = Trainer(search_config, callbacks=search_callbacks, progress=progress, log=log)
    if trainer.start_epoch < train.epochs:
        trainer.fit()
    ticket = soft.ticket()
    kept = sum(int(v.sum()) for v in ticket.values()) / sum(v.numel() for v in ticket.values())
    log(f"CS ticket keeps {kept:.4f} of the prunable weights")
    retrain_config = dataclasses.replace(
        train, out=str(out / "retrain"), epochs=max(cs.retrain_epochs, 1)
    )
    retrain_last = out / "retrain" / "last.pt"
    fixed = [MaskCallback(ticket), *callbacks]
    if retrain_last.is_file():
        final = Trainer.resume(retrain_last, callbacks=fixed, progress=progress, log=log)
    else:
        final = Trainer(retrain_config, callbacks=fixed, progress=progress, log=log)
        final.model.load_state_dict(capture.weights)
        if final.ema is not None:
            final.ema.model.load_state_dict(capture.weights)
        fixed[0].setup(final)
    if cs.retrain_epochs > 0 and final.start_epoch < retrain_config.epochs:
        final.fit()
    elif not final.history:
        final.history.append(final.validate())  # the rewound ticket, not retrained
    report = round_report(final, cs.rounds, ticket)
    save_checkpoint(out / "ticket.pt", final.eval_model, masks=ticket,
                    metadata={**final.metadata(final.config.epochs - 1, report),
                              "method": "cs", "cs": dataclasses.asdict(cs)})  # fmt: skip
    log(f"CS: {report['remaining']:.4f} of prunable weights, {int(report[m.PARAMS]):,} non-zero "
        f"params, {int(report[m.MACS]):,} MACs, {m.MAP50} {report[m.MAP50]:.4f}")  # fmt: skip
    return report
