"""Structured (filter) pruning: a genuinely smaller model, fine-tuned step by step.

Optionally a slimming phase first trains with an L1 penalty on the BN gammas (network
slimming, arXiv 1708.06519) so that unimportant channels announce themselves; without
``weights`` that phase (or a plain one of ``epochs``) is where the dense model is trained.
Then ``steps`` times: prune the current model to the step's MACs share (the shares go
geometrically from 1 to ``target_macs`` of the starting model, so each step removes the
same fraction), which yields a new cfg and weights
(:func:`~yolo.compress.filter_pruning.prune_filters`), and fine-tune it for ``epochs``.

State: ``OUT/structured_state.pt`` (step, the starting MACs, reports); the slimming run in
``OUT/slim``, each step's pruned model and fine-tuning in ``OUT/step_NN``. An interrupted
run resumes mid-step; the delivered model is the last step's ``last.pt``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from yolo.callbacks import Callback, Step
from yolo.compress.channel_groups import CRITERIA
from yolo.compress.filter_pruning import (
    SCOPES,
    narrowest_share,
    prune_filters,
    pruning_groups,
    unreachable,
)
from yolo.compress.lth import TICKET, RoundTag, round_summary
from yolo.compress.method import Method
from yolo.engine import Trainer
from yolo.io import atomic_save, load_checkpoint, save_checkpoint
from yolo.metrics.profile import count_macs
from yolo.settings import AT_LEAST_ONE, NON_NEGATIVE, UNIT_OPEN, OneOf, check_fields, option
from yolo.train_config import TrainConfig

STATE = "structured_state.pt"
PRUNED = "pruned.pt"  # a step's compacted model, where its fine-tuning starts


@dataclass(frozen=True)
class StructuredConfig:
    """Defaults: one L1 step to half the MACs, widths in multiples of 8, no slimming."""

    target_macs: float = option(0.5, "share of the starting model's MACs the pruned model "
                                "keeps", domain=UNIT_OPEN, label="target MACs share")  # fmt: skip
    criterion: str = option("l1", "filter importance: L1 or L2 norm of the filter, or |BN "
                            "gamma| (network slimming)", domain=OneOf(CRITERIA))  # fmt: skip
    scope: str = option("global", "rank filters over all layers (global) or keep the same "
                        "share of every layer (local)", domain=OneOf(SCOPES))  # fmt: skip
    steps: int = option(1, "prune steps, each followed by `epochs` of fine-tuning",
                        domain=AT_LEAST_ONE)  # fmt: skip
    round_to: int = option(8, "kept channels per layer are a multiple of this (runtimes are "
                           "fastest at such widths)", domain=AT_LEAST_ONE)  # fmt: skip
    slimming_epochs: int = option(0, "epochs trained with the BN-gamma penalty before the "
                                  "first prune", domain=NON_NEGATIVE)  # fmt: skip
    slimming_penalty: float = option(1e-4, "weight of sum |gamma| in the loss while slimming",
                                     domain=NON_NEGATIVE)  # fmt: skip
    ignored_layers: tuple[int, ...] = option((), "block indices never pruned")

    def __post_init__(self) -> None:
        check_fields(self)


class SlimmingPenalty(Callback):
    """Network slimming's sparsity term: ``penalty * sum |gamma|`` over every BN layer."""

    def __init__(self, penalty: float) -> None:
        self.penalty = penalty

    def loss_terms(self, trainer: Trainer, step: Step) -> dict[str, torch.Tensor]:
        gammas = [mod.weight for mod in trainer.model.modules() if isinstance(mod, nn.BatchNorm2d)]
        if not gammas or self.penalty == 0:
            return {}
        return {"slim": self.penalty * torch.stack([g.abs().sum() for g in gammas]).sum()}


def start_epochs(train: TrainConfig, config: StructuredConfig) -> int:
    """Epochs before the first prune: the slimming phase, or dense training without weights."""
    if config.slimming_epochs:
        return config.slimming_epochs
    return 0 if train.weights else train.epochs


def step_share(config: StructuredConfig, step: int) -> float:
    """MACs share of the starting model after step ``step`` (0-based)."""
    return config.target_macs ** ((step + 1) / config.steps)


def run_structured(
    train: TrainConfig,
    config: StructuredConfig,
    *,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict[str, float]]:
    """Run (or resume) structured pruning; one report per step. Writes ``OUT/ticket.pt``."""
    out = Path(train.out)
    state_path = out / STATE
    state: dict[str, Any] = {"step": 0, "start_macs": None, "reports": []}
    if state_path.is_file():
        state = torch.load(state_path, weights_only=True)
        log(f"resuming structured pruning at step {state['step']} of {config.steps}")
    source = Path(train.weights) if train.weights else None
    epochs = start_epochs(train, config)
    if epochs:
        slim = dataclasses.replace(train, out=str(out / "slim"), epochs=epochs)
        extra = [SlimmingPenalty(config.slimming_penalty)] if config.slimming_epochs else []
        trainer = Trainer.start_or_resume(slim, callbacks=[*extra, *callbacks],
                                          progress=progress, log=log)  # fmt: skip
        trainer.run_to_end()
        source = out / "slim" / "last.pt"
    assert source is not None
    while state["step"] < config.steps:
        step = state["step"]
        folder = out / f"step_{step:02d}"
        pruned = folder / PRUNED
        if not pruned.is_file():
            previous = source if step == 0 else out / f"step_{step - 1:02d}" / "last.pt"
            checkpoint = load_checkpoint(previous)
            if state["start_macs"] is None:
                state["start_macs"] = count_macs(checkpoint.model, train.img_size).dense
            current = count_macs(checkpoint.model, train.img_size).dense
            share = step_share(config, step) * state["start_macs"] / current
            result = prune_filters(checkpoint.model, target=min(share, 1.0),
                                   criterion=config.criterion, scope=config.scope,
                                   round_to=config.round_to, img_size=train.img_size,
                                   ignored_layers=config.ignored_layers)  # fmt: skip
            for refused in result.unprunable:
                log(refused.describe(checkpoint.model.cfg.source))
            names = checkpoint.metadata.get("names")
            save_checkpoint(pruned, result.model, metadata={
                "names": names, "img_size": train.img_size, "method": "structured",
                "structured": dataclasses.asdict(config), "step": step})  # fmt: skip
            log(f"step {step + 1}/{config.steps}: pruned to "
                f"{result.plan.macs / result.plan.dense_macs:.3f} of its MACs")  # fmt: skip
        tune = dataclasses.replace(train, out=str(folder), model=str(pruned), weights=str(pruned))
        trainer = Trainer.start_or_resume(tune, callbacks=[RoundTag(step), *callbacks],
                                          progress=progress, log=log)  # fmt: skip
        trainer.run_to_end()
        share = count_macs(trainer.eval_model, train.img_size).dense / state["start_macs"]
        report = round_summary(trainer, step, share)  # remaining: the MACs share
        state["reports"].append(report)
        if step == config.steps - 1:
            save_checkpoint(out / TICKET, trainer.eval_model,
                            metadata={**trainer.metadata(trainer.config.epochs - 1, report),
                                      "method": "structured",
                                      "structured": dataclasses.asdict(config)})  # fmt: skip
        state["step"] = step + 1
        atomic_save(state, state_path)
    return state["reports"]


@functools.cache
def _reachable_floor(model: str, weights: str | None, data: str, width: float, img_size: int,
                     criterion: str, round_to: int, ignored: tuple[int, ...]) -> float:  # fmt: skip
    """The smallest MACs share pruning can reach on this architecture, built untrained."""
    from yolo.data.spec import load_spec
    from yolo.engine import build_model

    train = TrainConfig(model=model, weights=weights, data=data, out="", width=width,
                        img_size=img_size)  # fmt: skip
    dense = build_model(train, None, list(load_spec(data).names)).eval()
    groups, _ = pruning_groups(dense, ignored_layers=ignored, criterion=criterion,
                               round_to=round_to)  # fmt: skip
    return narrowest_share(dense, groups, round_to, img_size)


def check_structured(train: TrainConfig, config: StructuredConfig) -> None:
    """A target below what the architecture allows is refused before anything trains, with
    the smallest target that works (a lower one would remove whole layers)."""
    try:
        floor = _reachable_floor(train.model, train.weights, str(train.data), train.width,
                                 train.img_size, config.criterion, config.round_to,
                                 tuple(config.ignored_layers))  # fmt: skip
    except (OSError, ValueError):
        return  # a missing or bad model/data file is reported by its own check, with its name
    if config.target_macs < floor:
        why = unreachable(config.target_macs, floor, config.round_to)
        raise ValueError(f"{train.model}: {why}")


def _resume_files(out: Path) -> list[Path]:
    steps = sorted(p.name for p in out.glob("step_*") if p.is_dir())
    files = [Path(STATE), Path("slim") / "last.pt"]
    if steps:
        files += [Path(steps[-1]) / PRUNED, Path(steps[-1]) / "last.pt"]
    return files


METHODS = (
    Method(
        name="structured",
        summary="structured (filter) pruning to a MACs target: a smaller cfg, fine-tuned",
        command="prune",
        config=StructuredConfig,
        run=run_structured,
        deliverable=lambda train, config: f"step_{config.steps - 1:02d}/last.pt",
        resume_files=_resume_files,
        fidelity="an epoch of the slimming (or dense) training, then of each step's fine-tuning",
        reports=lambda train, config: start_epochs(train, config) + config.steps * train.epochs,
        check=check_structured,
        first_telling_report=lambda train, config: start_epochs(train, config) + 1,
    ),
)
