"""Lottery-Ticket iterative magnitude pruning with late rewinding (arXiv 1903.01611).

Round 0 trains the dense model and keeps the weights (and BN statistics) of epoch
``rewind_epoch``. A run that starts from trained weights may skip it (``dense_round:
false``): the first prune ranks the starting weights themselves and every round rewinds to
them, so no epoch is spent retraining a model that is already trained, and every report is
of a pruned model (what early stopping needs to compare). Each later round prunes
``floor(rate * remaining)`` of the remaining prunable weights by magnitude (per tensor or
pooled), resets every weight to the kept ones, applies the new mask, and trains again with a
fresh optimiser and schedule. After k prunes ``(1 - rate)^k`` of the prunable weights
remain.

The driver keeps its state (round, masks, rewind weights, reports) in ``OUT/lth_state.pt``
and each round's run in ``OUT/round_NN``, so an interrupted run resumes mid-round.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from yolo.callbacks import Callback
from yolo.compress.masks import MaskCallback, dense_masks, prunable_parameters
from yolo.compress.method import Method
from yolo.engine import Trainer
from yolo.io import atomic_save, save_checkpoint
from yolo.metrics import names as m
from yolo.metrics.profile import model_costs
from yolo.settings import AT_LEAST_ONE, NON_NEGATIVE, UNIT_OPEN, OneOf, check_fields, option

if TYPE_CHECKING:
    from yolo.train_config import TrainConfig

SCOPES = ("local", "global")


@dataclass(frozen=True)
class LTHConfig:
    """The seed's defaults: 13 rounds at rate 0.2, late rewinding to epoch 10."""

    rate: float = option(0.2, "share of the remaining prunable weights pruned per round",
                         domain=UNIT_OPEN, label="prune rate")  # fmt: skip
    rounds: int = option(13, "prune rounds after the dense round 0", domain=AT_LEAST_ONE)
    scope: str = option("global", "rank weights per tensor (local) or over all (global)",
                        domain=OneOf(SCOPES))  # fmt: skip
    rewind_epoch: int = option(10, "epoch whose weights each round restarts from (0: LTH)",
                               domain=NON_NEGATIVE)  # fmt: skip
    dense_round: bool = option(True, "train the dense model first (round 0); false: prune "
                               "the starting weights as they are (a trained start)")  # fmt: skip
    ignored_layers: tuple[int, ...] = option((), "block indices never pruned")

    def __post_init__(self) -> None:
        check_fields(self)


def check_rewind(train: TrainConfig, config: LTHConfig | Any) -> None:
    """The rewind epoch is one the run reaches (LTH: of every round; CS: of the search)."""
    if config.rewind_epoch >= train.epochs:
        raise ValueError(f"rewind_epoch must be < epochs ({train.epochs}), "
                         f"got {config.rewind_epoch}")  # fmt: skip


def check_lth(train: TrainConfig, config: LTHConfig) -> None:
    """:func:`check_rewind`; without the dense round the start must be trained weights and
    is itself the rewind point."""
    check_rewind(train, config)
    if not config.dense_round:
        if not train.weights:
            raise ValueError("dense_round: false prunes the starting weights as they are, "
                             "so it needs weights (a trained start), got none")  # fmt: skip
        if config.rewind_epoch != 0:
            raise ValueError("rewind_epoch must be 0 with dense_round: false (every round "
                             "rewinds to the starting weights), "
                             f"got {config.rewind_epoch}")  # fmt: skip


def _pruned_start(train: TrainConfig, lth: LTHConfig) -> dict[str, Any]:
    """The driver's state without a dense round: round 1 next, its masks from the starting
    weights' magnitudes, and those weights as the rewind point."""
    from yolo.data.spec import load_spec
    from yolo.engine import build_model

    spec = load_spec(train.data)
    model = build_model(train, spec.anchors, list(spec.names))
    params = prunable_parameters(model, ignored_layers=lth.ignored_layers)
    masks = prune_by_magnitude({k: p.detach().cpu() for k, p in params.items()},
                               dense_masks(params), lth.rate, lth.scope)  # fmt: skip
    rewind = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {"round": 1, "masks": masks, "rewind": rewind, "reports": []}


def _order_to_prune(values: torch.Tensor, count: int) -> torch.Tensor:
    """Positions of the ``count`` smallest values; ties go to the lower position.

    A selection, not a sort: everything below the count-th smallest value, then the lowest
    positions holding exactly that value (a full YOLOv3 pools 62M weights in global scope).
    """
    if count <= 0:
        return torch.zeros(0, dtype=torch.long)
    threshold = torch.kthvalue(values, count).values
    below = (values < threshold).nonzero().squeeze(1)
    at = (values == threshold).nonzero().squeeze(1)[: count - below.numel()]
    return torch.cat([below, at])


def prune_by_magnitude(
    weights: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    rate: float,
    scope: str,
) -> dict[str, torch.Tensor]:
    """New masks with ``floor(rate * remaining)`` more weights removed.

    Local scope removes that many per tensor, global scope that many over all tensors
    pooled (in the order of ``weights``, then flat position), always the smallest |w| among
    the remaining ones, ties broken by position.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got '{scope}'")
    new = {name: mask.clone().bool() for name, mask in masks.items()}
    if scope == "local":
        for name, weight in weights.items():
            flat_mask = new[name].view(-1)
            alive = flat_mask.nonzero().squeeze(1)
            count = math.floor(rate * alive.numel())
            drop = alive[_order_to_prune(weight.detach().abs().view(-1)[alive], count)]
            flat_mask[drop] = False
        return new
    kept = [new[name].view(-1).nonzero().squeeze(1) for name in weights]
    values = torch.cat([w.detach().abs().view(-1)[a].float().cpu()
                        for w, a in zip(weights.values(), kept)])  # fmt: skip
    count = math.floor(rate * values.numel())
    chosen = _order_to_prune(values, count)
    offsets = torch.cumsum(torch.tensor([0] + [a.numel() for a in kept]), 0)
    for k, name in enumerate(weights):
        local = chosen[(chosen >= offsets[k]) & (chosen < offsets[k + 1])] - offsets[k]
        new[name].view(-1)[kept[k][local.to(kept[k].device)]] = False
    return new


class RewindCapture(Callback):
    """Keeps a copy of the model's weights and buffers at the start of ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.weights: dict[str, torch.Tensor] | None = None

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        if epoch == self.epoch:
            self.weights = {
                k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()
            }

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = state["weights"]


class RoundTag(Callback):
    """Adds the round index to every epoch's metrics."""

    def __init__(self, round_index: int) -> None:
        self.round_index = round_index

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        metrics[m.ROUND] = float(self.round_index)


def rewind_to(weights: dict[str, torch.Tensor], masks: Callback, trainer: Trainer) -> None:
    """A fresh run starts from the rewound weights (model and EMA), masked again."""
    trainer.model.load_state_dict(weights)
    if trainer.ema is not None:
        trainer.ema.model.load_state_dict(weights)
    masks.setup(trainer)


def round_report(
    trainer: Trainer, round_index: int, masks: dict[str, torch.Tensor]
) -> dict[str, float]:
    """What an LTH round ends with: remaining share of the prunable weights, then
    :func:`round_summary`."""
    total = sum(v.numel() for v in masks.values())
    remaining = sum(int(v.sum()) for v in masks.values())
    return round_summary(trainer, round_index, remaining / total if total else 1.0, masks)


def round_summary(
    trainer: Trainer, round_index: int, remaining: float,
    masks: dict[str, torch.Tensor] | None = None,
) -> dict[str, float]:  # fmt: skip
    """A pruning round's (or step's) summary, the rows of ``yct prune``'s table: what
    remains, the costs (:func:`model_costs`), the best and last mAP."""
    last = trainer.history[-1] if trainer.history else {}
    report = {
        m.ROUND: float(round_index),
        "remaining": remaining,
        **model_costs(trainer.eval_model, trainer.config.img_size, masks, latency_runs=0),
        "best_map50": float(trainer.best_fitness),
    }
    if m.MAP50 in last:
        report[m.MAP50] = float(last[m.MAP50])
    return report


def run_lth(
    train: TrainConfig,
    lth: LTHConfig,
    *,
    callbacks: Sequence[Callback] = (),
    on_round: Callable[[dict[str, float]], None] | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict[str, float]]:
    """Run (or resume) LTH; returns one report per round. Writes ``OUT/ticket.pt``."""
    check_lth(train, lth)
    out = Path(train.out)
    state_path = out / "lth_state.pt"
    state: dict[str, Any] = {"round": 0, "masks": None, "rewind": None, "reports": []}
    if state_path.is_file():
        state = torch.load(state_path, weights_only=True)
        log(f"resuming LTH at round {state['round']} of {lth.rounds}")
    elif not lth.dense_round:
        state = _pruned_start(train, lth)
        log(f"no dense round: the first prune ranks the starting weights ({train.weights})")
    while state["round"] <= lth.rounds:
        r = state["round"]
        config = dataclasses.replace(train, out=str(out / f"round_{r:02d}"))
        capture = RewindCapture(lth.rewind_epoch) if r == 0 else None
        extra = [c for c in (capture,) if c is not None] + [RoundTag(r), *callbacks]
        masks = state["masks"]
        if masks is not None:
            extra.insert(0, MaskCallback(masks))

        rewind = None
        if state["rewind"] is not None:
            rewind = functools.partial(rewind_to, state["rewind"], extra[0])
        trainer = Trainer.start_or_resume(config, callbacks=extra, on_start=rewind,
                                          progress=progress, log=log)  # fmt: skip
        trainer.run_to_end()
        params = prunable_parameters(trainer.model, ignored_layers=lth.ignored_layers)
        current = masks if masks is not None else dense_masks(params)
        report = round_report(trainer, r, current)
        log(f"round {r}/{lth.rounds}: {report['remaining']:.4f} of prunable weights, "
            f"{int(report[m.PARAMS]):,} non-zero params, {int(report[m.MACS]):,} MACs, "
            f"{m.MAP50} {report.get(m.MAP50, float('nan')):.4f}")  # fmt: skip
        if on_round is not None:
            on_round(report)
        state["reports"].append(report)
        if capture is not None:
            state["rewind"] = capture.weights
        if r == lth.rounds:
            masks_out = {k: v.cpu() for k, v in current.items()}
            save_checkpoint(out / TICKET, trainer.eval_model, masks=masks_out,
                            metadata={**trainer.metadata(trainer.config.epochs - 1, report),
                                      "method": "lth", "lth": dataclasses.asdict(lth)})  # fmt: skip
        else:
            state["masks"] = prune_by_magnitude(
                {k: p.detach().cpu() for k, p in params.items()},
                {k: v.cpu() for k, v in current.items()}, lth.rate, lth.scope,
            )  # fmt: skip
        state["round"] = r + 1
        atomic_save(state, state_path)
    return state["reports"]


TICKET = "ticket.pt"  # what `yct prune` hands over: the model and its masks, no train state


def _resume_files(out: Path) -> list[Path]:
    """The driver's state and the current round's run."""
    rounds = sorted(p.name for p in out.glob("round_*") if p.is_dir())
    return [Path("lth_state.pt"), *([Path(rounds[-1]) / "last.pt"] if rounds else [])]


METHODS = (
    Method(
        name="lth",
        summary="Lottery-Ticket iterative magnitude pruning with late rewinding",
        command="prune",
        config=LTHConfig,
        run=run_lth,
        deliverable=lambda train, lth: f"round_{lth.rounds:02d}/last.pt",
        resume_files=_resume_files,
        fidelity="an epoch of a round (round 0 dense unless dense_round is false, then one round "
        "per prune)",
        reports=lambda train, lth: train.epochs * (lth.rounds + int(lth.dense_round)),
        check=check_lth,
        # round 1's first epoch: the first report of a pruned model
        first_telling_report=lambda train, lth: train.epochs * int(lth.dense_round) + 1,
        # round k's last epoch is where a `rounds: k` run ends (same masks, same rewind,
        # same training: nothing in a round depends on the rounds after it)
        nested_runs=lambda train, lth: {
            train.epochs * (k + int(lth.dense_round)): {"rounds": k} for k in range(1, lth.rounds)
        },
    ),
)
