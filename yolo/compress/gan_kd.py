"""GAN-based knowledge distillation (Hong et al., arXiv 1906.08467), adapted to YOLO.

For each scale the teacher and the student share (matched by stride), a small
discriminator D looks at the output of the prediction conv (the A·(5+N) channels the
``[yolo]`` head reads): the teacher's map is *real*, the student's *fake*. The student adds
``adv_weight`` x the adversarial loss (make D call its map real) to its detection loss; D
is trained with its own optimiser (SGD, lr ``d_lr0``) on the detached maps after each
student backward. From epoch ``second_stage`` on, the adversarial term and D's training
stop and detection-only training follows. A 1x1 adaptation conv maps the student's map to
the teacher's channels where they differ (other anchor counts). D, its optimiser and the
adaptation layers are checkpointed with the student.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from yolo.callbacks import Step
from yolo.compress.kd import TeacherForward, student_raw
from yolo.compress.teacher import AdapterSet, prediction_pairs
from yolo.model import Darknet
from yolo.settings import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, check_fields, option

if TYPE_CHECKING:
    from yolo.engine import Trainer


@dataclass(frozen=True)
class GANKDConfig:
    """The seed's defaults: D lr 0.01, kernel sizes [1, 1], second stage at epoch 200."""

    teacher: str = option("", "trained teacher checkpoint (.pt) of the same dataset", file=True)
    adv_weight: float = option(1.0, "weight of the adversarial term", domain=NON_NEGATIVE)
    d_lr0: float = option(0.01, "discriminator learning rate ('Dlr0')", domain=POSITIVE,
                          label="d_lr0 (Dlr0)")  # fmt: skip
    d_kernel_size: tuple[int, int] = option((1, 1), "the discriminator's two odd kernel sizes",
                                            domain=AT_LEAST_ONE)  # fmt: skip
    d_channels: int = option(64, "the discriminator's hidden channels", domain=AT_LEAST_ONE)
    second_stage: int = option(200, "epoch from which training is detection-only",
                               domain=NON_NEGATIVE)  # fmt: skip

    def __post_init__(self) -> None:
        object.__setattr__(self, "d_kernel_size", tuple(self.d_kernel_size))  # YAML gives lists
        check_fields(self)
        kernels = self.d_kernel_size
        if len(kernels) != 2 or any(k % 2 == 0 for k in kernels):
            raise ValueError(f"d_kernel_size must be two odd sizes >= 1, got {list(kernels)}")


class Discriminator(nn.Module):
    """conv k1 -> LeakyReLU -> conv k2: one real/fake logit per cell.

    Both convs are spectrally normalised: D then cannot grow steep, so the adversarial
    gradient it sends into the student's raw head logits stays bounded (without it, D
    trained at the seed's lr 0.01 drove the student to NaN within a few epochs).
    """

    def __init__(self, channels: int, hidden: int, kernels: tuple[int, int]) -> None:
        super().__init__()
        k1, k2 = (int(k) for k in kernels)
        norm = nn.utils.parametrizations.spectral_norm
        self.net = nn.Sequential(
            norm(nn.Conv2d(channels, hidden, k1, padding=k1 // 2)),
            nn.LeakyReLU(0.2),
            norm(nn.Conv2d(hidden, 1, k2, padding=k2 // 2)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def prediction_map(raw: torch.Tensor) -> torch.Tensor:
    """(B, A, H, W, 5+N) raw head output -> the (B, A·(5+N), H, W) conv map it came from."""
    b, a, h, w, c = raw.shape
    return raw.permute(0, 1, 4, 2, 3).reshape(b, a * c, h, w)


def generator_loss(scores: torch.Tensor) -> torch.Tensor:
    """The student's adversarial loss: D should call its map real."""
    return F.binary_cross_entropy_with_logits(scores, torch.ones_like(scores))


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) +
            F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))) / 2  # fmt: skip


class GANKDCallback(TeacherForward):
    """The adversarial term for the student, and D's own training."""

    def __init__(self, config: GANKDConfig, teacher: Darknet) -> None:
        super().__init__(teacher)
        self.config = config
        self.heads: list[tuple[int, int, int]] = []
        self.discriminators = nn.ModuleList()
        self.adapters = AdapterSet({})
        self.d_optimizer: torch.optim.Optimizer | None = None
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._d_loss_sum, self._d_steps = 0.0, 0

    def setup(self, trainer: Trainer) -> None:
        super().setup(trainer)
        student, teacher = trainer.model, self.teacher
        self.heads = prediction_pairs(teacher, student)
        if not self.heads:
            raise ValueError(f"teacher heads (strides {teacher.head_strides}) and student "
                             f"heads ({student.head_strides}) share no stride")  # fmt: skip
        channels = {}
        for ti, si, _ in self.heads:
            t_ch = teacher.shapes[teacher.head_indices[ti]].in_channels
            s_ch = student.shapes[student.head_indices[si]].in_channels
            if t_ch != s_ch:
                channels[str(si)] = (s_ch, t_ch)
            self.discriminators.append(
                Discriminator(t_ch, self.config.d_channels, self.config.d_kernel_size)
            )
        self.discriminators.to(trainer.device)
        self.adapters = AdapterSet(channels).to(trainer.device)
        self.adapters.build_optimizer(trainer.hyp.lr0, trainer.hyp.momentum)
        self.d_optimizer = torch.optim.SGD(self.discriminators.parameters(),
                                           lr=self.config.d_lr0, momentum=0.9)  # fmt: skip

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.adapters.optimizer] if self.adapters.optimizer is not None else []

    def adversarial(self, epoch: int) -> bool:
        return epoch < self.config.second_stage

    def before_forward(self, trainer: Trainer, step: Step) -> None:
        if self.adversarial(step.epoch):
            super().before_forward(trainer, step)
        self.adapters.follow(trainer.optimizer)

    def _student_map(self, si: int, raw: torch.Tensor) -> torch.Tensor:
        fake = prediction_map(raw.float())
        return self.adapters(str(si), fake) if str(si) in self.adapters.convs else fake

    def loss_terms(self, trainer: Trainer, step: Step) -> dict[str, torch.Tensor]:
        if not self.adversarial(step.epoch):
            # still reported (a trial's metric keys stay fixed), and touching the adaptation
            # layers so that their optimiser sees (zero) gradients, as AMP's scaler requires
            zero = student_raw(step)[0].float().sum().detach() * 0.0
            return {"gan_adv": zero + sum((p * 0.0).sum() for p in self.adapters.parameters())}
        teacher_raw = step.context["teacher_raw"]
        raw = student_raw(step)
        adv = raw[0].float().sum() * 0.0
        self._pending = []
        for d_index, (ti, si, _) in enumerate(self.heads):
            fake = self._student_map(si, raw[si])
            real = prediction_map(teacher_raw[ti].float())
            d = self.discriminators[d_index]
            frozen = {k: v.detach() for k, v in d.named_parameters()}  # no gradient into D here
            adv = adv + generator_loss(functional_call(d, frozen, (fake,)))
            self._pending.append((real.detach(), fake.detach()))
        return {"gan_adv": self.config.adv_weight * adv}

    def after_backward(self, trainer: Trainer) -> None:
        """One D step on the maps of the batch the student just learned from."""
        if not self._pending or self.d_optimizer is None:
            return
        loss = cast(torch.Tensor, sum(discriminator_loss(d(real), d(fake)) for d, (real, fake)
                                      in zip(self.discriminators, self._pending)))  # fmt: skip
        self.d_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.d_optimizer.step()
        self._d_loss_sum += float(loss.detach())
        self._d_steps += 1
        self._pending = []

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        metrics["loss_d"] = self._d_loss_sum / max(self._d_steps, 1)
        metrics["gan_stage"] = 1.0 if self.adversarial(epoch) else 2.0
        self._d_loss_sum, self._d_steps = 0.0, 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "discriminators": self.discriminators.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict() if self.d_optimizer else None,
            "adapters": self.adapters.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.discriminators.load_state_dict(state["discriminators"])
        if self.d_optimizer is not None and state["d_optimizer"] is not None:
            self.d_optimizer.load_state_dict(state["d_optimizer"])
        self.adapters.load_state_dict(state["adapters"])
