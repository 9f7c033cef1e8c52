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
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from yolo.callbacks import Callback
from yolo.compress.lth import RewindCapture, check_rewind, rewind_to, round_report
from yolo.compress.masks import MaskCallback, prunable_parameters
from yolo.compress.method import Method
from yolo.engine import Trainer
from yolo.io import save_checkpoint
from yolo.metrics import names as m
from yolo.settings import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Range, check_fields, option

if TYPE_CHECKING:
    from yolo.train_config import TrainConfig


@dataclass(frozen=True)
class CSConfig:
    """The seed's defaults: 3 rounds, final temperature 200, lambda 1e-8, rewind epoch 10."""

    rounds: int = option(3, "rounds of the temperature schedule", domain=AT_LEAST_ONE)
    final_temperature: float = option(200.0, "beta at the end of each round",
                                      domain=Range(1, None))  # fmt: skip
    penalty: float = option(1e-8, "weight of the L1 term on the soft masks ('lambda')",
                            domain=NON_NEGATIVE, label="lambda (penalty)",
                            flag="lambda")  # fmt: skip
    mask_init: float = option(0.0, "initial mask score", domain=Range())
    mask_lr: float = option(0.1, "learning rate of the mask optimiser", domain=POSITIVE)
    rewind_epoch: int = option(10, "epoch the ticket's weights are rewound to",
                               domain=NON_NEGATIVE)  # fmt: skip
    retrain_epochs: int = option(0, "epochs the ticket is retrained (0: rewound only)",
                                 domain=NON_NEGATIVE)  # fmt: skip
    ignored_layers: tuple[int, ...] = option((), "block indices never pruned")

    def __post_init__(self) -> None:
        check_fields(self)


def _gated_forward(module: nn.Module, gate: Callable[[], torch.Tensor]) -> Callable:
    if isinstance(module, nn.Conv2d):
        conv = module
        return lambda x: conv._conv_forward(x, conv.weight * gate(), conv.bias)
    linear = cast(nn.Linear, module)
    return lambda x: F.linear(x, linear.weight * gate(), linear.bias)


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
                module.forward = _gated_forward(
                    module, functools.partial(self._gate, self.scores[key], scale)
                )
        self._optimizer = torch.optim.SGD(self.scores.parameters(), lr=self.config.mask_lr,
                                          momentum=0.9, nesterov=True)  # fmt: skip

    def _gate(self, score: torch.Tensor, scale: float) -> torch.Tensor:
        return torch.sigmoid(self.beta * score) * scale

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self._optimizer] if self._optimizer is not None else []

    def loss_terms(self, trainer: Trainer, step: Any) -> dict[str, torch.Tensor]:
        if not self.config.penalty:
            return {}
        total = cast(torch.Tensor, sum(torch.sigmoid(self.beta * s).sum()
                                       for s in self.scores.values()))  # fmt: skip
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

    def delivered_masks(self) -> dict[str, torch.Tensor]:
        return self.ticket()  # the soft-gated model delivers its binary ticket

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
) -> list[dict[str, float]]:
    """Search the ticket, rewind, optionally retrain; writes ``OUT/ticket.pt``.

    The last report is always the delivered ticket's: its retraining's last epoch, or, with
    ``retrain_epochs: 0``, one more report of the rewound ticket's own validation.
    """
    check_rewind(train, cs)
    out = Path(train.out)
    search_config = dataclasses.replace(train, out=str(out / "search"))
    soft, capture = SoftMaskCallback(cs, train.epochs), RewindCapture(cs.rewind_epoch)
    trainer = Trainer.start_or_resume(search_config, callbacks=[soft, capture, *callbacks],
                                      progress=progress, log=log)  # fmt: skip
    trainer.run_to_end()
    ticket = soft.ticket()
    kept = sum(int(v.sum()) for v in ticket.values()) / sum(v.numel() for v in ticket.values())
    log(f"CS ticket keeps {kept:.4f} of the prunable weights")
    retrain_config = dataclasses.replace(
        train, out=str(out / "retrain"), epochs=max(cs.retrain_epochs, 1)
    )
    fixed = [MaskCallback(ticket), *callbacks]

    if capture.weights is None:
        raise ValueError(f"{search_config.out}: the search never reached its rewind epoch "
                         f"{cs.rewind_epoch}")  # fmt: skip
    rewind = functools.partial(rewind_to, capture.weights, fixed[0])
    final = Trainer.start_or_resume(retrain_config, callbacks=fixed, on_start=rewind,
                                    progress=progress, log=log)  # fmt: skip
    if cs.retrain_epochs > 0:
        final.run_to_end()
    elif not final.history:  # the rewound ticket, not retrained: validated and reported
        metrics = {m.EPOCH: float(train.epochs), **final.validate(),
                   m.ROUND: float(cs.rounds - 1), m.SPARSITY: 1.0 - kept}  # fmt: skip
        final.history.append(metrics)
        final.best_fitness, final.best_epoch = metrics[m.MAP50], 0
        final.save(Path(retrain_config.out) / "last.pt", 0, metrics)
        final.report(metrics)
    report = round_report(final, cs.rounds, ticket)
    save_checkpoint(out / TICKET, final.eval_model, masks=ticket,
                    metadata={**final.metadata(final.config.epochs - 1, report),
                              "method": "cs", "cs": dataclasses.asdict(cs)})  # fmt: skip
    log(
        f"CS: {report['remaining']:.4f} of prunable weights, {int(report[m.PARAMS]):,} non-zero "
        f"params, {int(report[m.MACS]):,} MACs, {m.MAP50} {report.get(m.MAP50, float('nan')):.4f}"
    )
    return [report]


TICKET = "ticket.pt"  # what `yct prune` hands over: the model and its masks, no train state

METHODS = (
    Method(
        name="cs",
        summary="Continuous Sparsification: soft masks learnt with a temperature schedule",
        command="prune",
        config=CSConfig,
        run=run_cs,
        deliverable=lambda train, cs: "retrain/last.pt",
        resume_files=lambda out: [Path("search/last.pt"), Path("retrain/last.pt")],
        fidelity="an epoch of the search, then of the retraining (or one rewound-ticket report)",
        reports=lambda train, cs: train.epochs + max(cs.retrain_epochs, 1),
        check=check_rewind,
        # the ticket's first report: the search's reports are of the soft-gated model, whose
        # mAP and sparsity say little of the rewound ticket the trial delivers
        first_telling_report=lambda train, cs: train.epochs + 1,
        first_delivering_report=lambda train, cs: train.epochs + 1,
    ),
)
