"""``train``: plain training of any zoo model or cfg at any width, the uncompressed baseline
and how the NAS-derived small architectures are compared with compressed ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from yolo.callbacks import Callback
from yolo.compress.method import Method
from yolo.engine import Trainer
from yolo.train_config import TrainConfig


def run_train(
    train: TrainConfig,
    config: Any = None,
    *,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict[str, float]]:
    """Train (or resume) ``train``; returns the last epoch's metrics (``OUT/last.pt``)."""
    trainer = Trainer.start_or_resume(train, callbacks=callbacks, progress=progress, log=log)
    trainer.run_to_end()
    return trainer.history[-1:]


TRAIN = Method(
    name="train",
    summary="plain training: any zoo model or cfg at any width",
    command="train",
    config=None,
    run=run_train,
    deliverable=lambda train, config: "last.pt",
    resume_files=lambda out: [Path("last.pt")],
    fidelity="an epoch",
    reports=lambda train, config: train.epochs,
)
METHODS = (TRAIN,)
