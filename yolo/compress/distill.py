"""Train a student from a teacher: ``kd`` (Chen et al.) or ``kd_gan`` (Hong et al.).

The student is any zoo model at any width (or a checkpoint to start from); the teacher any
trained checkpoint of the same dataset. The engine trains the student with the method's
callback; ``OUT/best.pt`` and ``OUT/last.pt`` hold the student alone (adaptation layers and
discriminators live in the callback's state inside ``last.pt`` only), and a run resumes from
``OUT/last.pt``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from yolo.callbacks import Callback
from yolo.compress.gan_kd import GANKDCallback, GANKDConfig
from yolo.compress.kd import KDCallback, KDConfig
from yolo.compress.teacher import load_teacher
from yolo.data.spec import load_spec
from yolo.train_config import TrainConfig

METHODS = ("kd", "kd_gan")


def distill_callback(config: KDConfig | GANKDConfig, teacher_path: str | Path,
                     train: TrainConfig) -> Callback:  # fmt: skip
    """The method's callback with its teacher, checked against the student's dataset."""
    names = load_spec(train.data).names
    teacher = load_teacher(teacher_path, names, str(train.data))
    if isinstance(config, KDConfig):
        return KDCallback(config, teacher)
    return GANKDCallback(config, teacher)


def run_distill(
    train: TrainConfig,
    config: KDConfig | GANKDConfig,
    teacher_path: str | Path,
    *,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Train (or resume) the student; returns the last epoch's metrics."""
    from yolo.engine import Trainer

    method = distill_callback(config, teacher_path, train)
    last = Path(train.out) / "last.pt"
    every = [method, *callbacks]
    if last.is_file():
        trainer = Trainer.resume(last, callbacks=every, progress=progress, log=log)
    else:
        trainer = Trainer(train, callbacks=every, progress=progress, log=log)
    if trainer.start_epoch < train.epochs:
        return trainer.fit()
    return trainer.history[-1] if trainer.history else {}
