"""The method trainables: ``train`` (any zoo model at any width), ``lth`` and ``cs``."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from trainables.base import MethodTrainable
from trainables.registry import register
from yolo.compress.cs import CSConfig, run_cs
from yolo.compress.lth import LTHConfig, run_lth
from yolo.engine import Trainer
from yolo.train_config import TrainConfig


@register
class TrainTrainable(MethodTrainable):
    """Plain training: how the zoo and NAS-derived architectures are evaluated."""

    name = "train"

    def execute(self, train: TrainConfig) -> None:
        last = self.work / "last.pt"
        callbacks = [self.reporter()]
        if last.is_file():
            trainer = Trainer.resume(last, callbacks=callbacks, progress=False)
        else:
            trainer = Trainer(train, callbacks=callbacks, progress=False)
        trainer.fit()

    def checkpoint_files(self) -> list[Path]:
        return [Path("last.pt")]


@register
class LTHTrainable(MethodTrainable):
    """Lottery-Ticket pruning; one Tune result per epoch, ``round`` in each."""

    name = "lth"
    method_keys: ClassVar[dict[str, type]] = {
        "rate": float,
        "rounds": int,
        "scope": str,
        "rewind_epoch": int,
        "ignored_layers": tuple,
    }

    def execute(self, train: TrainConfig) -> None:
        lth = self.method_config(LTHConfig)
        run_lth(train, lth, callbacks=[self.reporter()], progress=False)

    def checkpoint_files(self) -> list[Path]:
        rounds = sorted(p.name for p in self.work.glob("round_*") if p.is_dir())
        current = [Path(rounds[-1]) / "last.pt"] if rounds else []
        return [Path("lth_state.pt"), *current]


@register
class CSTrainable(MethodTrainable):
    """Continuous Sparsification; ``sparsity`` is the ticket's share of zeros each epoch."""

    name = "cs"
    method_keys: ClassVar[dict[str, type]] = {
        "rounds": int,
        "final_temperature": float,
        "penalty": float,
        "mask_init": float,
        "mask_lr": float,
        "rewind_epoch": int,
        "retrain_epochs": int,
        "ignored_layers": tuple,
    }

    def execute(self, train: TrainConfig) -> None:
        cs = self.method_config(CSConfig)
        run_cs(train, cs, callbacks=[self.reporter()], progress=False)

    def checkpoint_files(self) -> list[Path]:
        return [Path("search/last.pt"), Path("retrain/last.pt")]
