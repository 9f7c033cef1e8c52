"""Train a student from a teacher: ``kd`` (Chen et al.) or ``kd_gan`` (Hong et al.).

The student is any zoo model at any width (or a checkpoint to start from); the teacher any
trained checkpoint of the same dataset. The engine trains the student with the method's
callback; ``OUT/best.pt`` and ``OUT/last.pt`` hold the student alone (adaptation layers and
discriminators live in the callback's state inside ``last.pt`` only), and a run resumes from
``OUT/last.pt``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from yolo.callbacks import Callback
from yolo.compress.dense import TRAIN, run_train
from yolo.compress.gan_kd import GANKDCallback, GANKDConfig
from yolo.compress.kd import KDCallback, KDConfig
from yolo.compress.method import Method
from yolo.compress.teacher import load_teacher
from yolo.data.spec import load_spec
from yolo.train_config import TrainConfig


def distill_callback(config: KDConfig | GANKDConfig, teacher_path: str | Path,
                     train: TrainConfig) -> Callback:  # fmt: skip
    """The method's callback with its teacher, checked against the student's dataset."""
    names = load_spec(train.data).names
    teacher = load_teacher(teacher_path, names, str(train.data))
    if isinstance(config, KDConfig):
        return KDCallback(config, teacher)
    return GANKDCallback(config, teacher)


def check_teacher(train: TrainConfig, config: KDConfig | GANKDConfig) -> None:
    if not config.teacher:
        raise ValueError("teacher: required: a trained checkpoint (.pt) of the same dataset")


def run_distill(
    train: TrainConfig,
    config: KDConfig | GANKDConfig,
    *,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict[str, float]]:
    """Train (or resume) the student from ``config.teacher``; returns the last epoch's
    metrics. The student alone is delivered (``OUT/last.pt``, the last epoch's model)."""
    check_teacher(train, config)
    method = distill_callback(config, config.teacher, train)
    return run_train(train, callbacks=[method, *callbacks], progress=progress, log=log)


def _method(name: str, summary: str, config: type, fidelity: str) -> Method:
    """A distillation method: one training run of the student, delivered as its last.pt."""
    return dataclasses.replace(TRAIN, name=name, summary=summary, command="distill",
                               config=config, run=run_distill, fidelity=fidelity,
                               check=check_teacher)  # fmt: skip


METHODS = (
    _method("kd", "classical detection distillation: soft targets, bounded regression, hints",
            KDConfig, "an epoch"),
    _method("kd_gan", "GAN-based distillation: a discriminator per distilled scale",
            GANKDConfig, "an epoch (adversarial, then detection-only from second_stage)"),
)  # fmt: skip
