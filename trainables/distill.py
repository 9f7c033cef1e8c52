"""The distillation trainables: ``kd`` (Chen et al.) and ``kd_gan`` (Hong et al.).

The student is the trial's ``model`` at its ``width`` (or ``weights``); ``teacher`` is a
trained checkpoint of the same dataset. ``hints`` is a string of stride-matched block pairs,
``"TEACHER:STUDENT,…"`` (``yct distill pairs`` lists the candidates), so that a search space
can draw the "KD feature layers" as a categorical.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from trainables.base import MethodTrainable
from trainables.registry import register
from yolo.compress.distill import run_distill
from yolo.compress.gan_kd import GANKDConfig
from yolo.compress.kd import KDConfig
from yolo.train_config import TrainConfig


class _DistillTrainable(MethodTrainable):
    config_class: ClassVar[type]

    def execute(self, train: TrainConfig) -> None:
        teacher = self.config.get("teacher")
        if not teacher:
            raise ValueError(f"trainable '{self.name}': 'teacher' (a trained checkpoint) is "
                             "required")  # fmt: skip
        values = {k: v for k, v in self.config.items() if k in self.method_keys and k != "teacher"}
        method = self.config_class(**values)
        run_distill(train, method, teacher, callbacks=[self.reporter()], progress=False)

    def checkpoint_files(self) -> list[Path]:
        return [Path("last.pt")]


@register
class KDTrainable(_DistillTrainable):
    """Classical detection KD: soft targets, bounded regression, hints."""

    name = "kd"
    config_class = KDConfig
    method_keys: ClassVar[dict[str, type]] = {
        "teacher": str,
        "hints": str,
        "mu": float,
        "ni": float,
        "margin": float,
        "giou_reg_loss": bool,
        "cls_function": str,
        "temperature": float,
        "hint_weight": float,
    }


@register
class KDGANTrainable(_DistillTrainable):
    """GAN-based KD: a discriminator per distilled scale, then detection-only training."""

    name = "kd_gan"
    config_class = GANKDConfig
    method_keys: ClassVar[dict[str, type]] = {
        "teacher": str,
        "adv_weight": float,
        "d_lr0": float,
        "d_kernel_size": tuple,
        "d_channels": int,
        "second_stage": int,
    }
