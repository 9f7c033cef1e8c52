"""Classical detection distillation (Chen et al., NeurIPS 2017), adapted to YOLO.

The frozen teacher runs on the student's (augmented) batch, once, without gradients. Three
terms join the detection loss:

- Soft objectness and classes. At the locations the loss assigns a target to (the
  *positive* locations) the student's objectness and class logits are pulled to the
  teacher's prediction there: the same cell of the teacher's head of the same stride,
  through the teacher anchor most like the student's (the same one when the anchors agree;
  a yolov3-tiny teacher's anchors differ from a YOLO Nano student's). The hard objectness
  and class terms are scaled by ``mu``, the soft ones by ``1 - mu``. Soft terms are KL
  divergences (cross-entropy minus the teacher's entropy: the same gradient, and zero when
  the student matches the teacher), with temperature T (sigmoid per output, or softmax over
  classes; x T², as Hinton et al.), normalised like the hard terms they stand beside.
- Bounded regression. The student's box error on a target is added, with weight ``ni``, only
  where it exceeds the teacher's by more than ``margin``; the error is 1 - GIoU when
  ``giou_reg_loss`` (else the squared L2 distance of xywh in grid units).
- Hints. For each (teacher block, student block) pair of the same stride, a 1x1 adaptation
  conv maps the student's feature to the teacher's channels and an L2 loss (mean over
  elements, weight ``hint_weight``) pulls it to the teacher's. Adaptation layers train with
  the student and are not part of the exported model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from yolo.boxes import generalized_iou, wh_iou, xywh_to_xyxy
from yolo.callbacks import Callback, Step
from yolo.compress.teacher import AdapterSet, Pair, check_pairs, parse_pairs, prediction_pairs
from yolo.loss import Assignment, decode_assigned
from yolo.model import Darknet
from yolo.settings import NON_NEGATIVE, POSITIVE, UNIT, OneOf, check_fields, option

if TYPE_CHECKING:
    from yolo.engine import Trainer

CLS_FUNCTIONS = ("sigmoid", "softmax")


@dataclass(frozen=True)
class KDConfig:
    """The seed's defaults: mu 0.7, ni 0.5, margin 1e-5, GIoU regression, no hints."""

    teacher: str = option("", "trained teacher checkpoint (.pt) of the same dataset", file=True)
    hints: tuple[Pair, ...] = option(
        (),
        "teacher:student block pairs, e.g. '36:12,61:21' (yct distill pairs lists them)",
        kind=str,
    )  # given as a string ('36:12,61:21') or pairs, kept as pairs
    mu: float = option(0.7, "weight of the hard obj/cls terms (1 - mu: the soft ones)",
                       domain=UNIT)  # fmt: skip
    ni: float = option(0.5, "weight of the bounded regression", domain=NON_NEGATIVE)
    margin: float = option(1e-5, "bounded-regression margin", domain=NON_NEGATIVE)
    giou_reg_loss: bool = option(True, "GIoU regression error, else L2")
    cls_function: str = option("sigmoid", "soft class targets per output or over classes",
                               domain=OneOf(CLS_FUNCTIONS))  # fmt: skip
    temperature: float = option(1.0, "soft-target temperature T", domain=POSITIVE)
    hint_weight: float = option(1.0, "weight of the hint L2", domain=NON_NEGATIVE)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hints", parse_pairs(self.hints))
        check_fields(self)
        if len({s for _, s in self.hints}) != len(self.hints):
            raise ValueError(f"hints: a student block appears twice in {list(self.hints)}")


# ---------------------------------------------------------------------- the loss terms


def bernoulli_kl(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """KL(sigmoid(t/T) || sigmoid(s/T)) per element, x T²; gradient sigmoid(s/T) - p."""
    target = torch.sigmoid(teacher / temperature)
    cross = F.binary_cross_entropy_with_logits(student / temperature, target, reduction="none")
    entropy = F.binary_cross_entropy_with_logits(teacher / temperature, target, reduction="none")
    return (cross - entropy) * temperature**2


def categorical_kl(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """KL(softmax(t/T) || softmax(s/T)) per row (last dim), x T²."""
    log_p = F.log_softmax(teacher / temperature, -1)
    log_q = F.log_softmax(student / temperature, -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1) * temperature**2


def box_error(predicted: torch.Tensor, target: torch.Tensor, giou: bool = True) -> torch.Tensor:
    """Per-box regression error of xywh boxes: 1 - GIoU, or squared L2 of xywh."""
    if giou:
        return 1.0 - generalized_iou(xywh_to_xyxy(predicted), xywh_to_xyxy(target))
    return ((predicted - target) ** 2).sum(-1)


def bounded_regression(student_error: torch.Tensor, teacher_error: torch.Tensor,
                       margin: float) -> torch.Tensor:  # fmt: skip
    """Mean of the student's error where it exceeds the teacher's by more than ``margin``."""
    if not len(student_error):
        return student_error.sum()
    gate = (student_error - teacher_error.detach()) > margin
    return (student_error * gate).mean()


def teacher_anchor(assignment: Assignment, teacher_anchors_grid: torch.Tensor) -> torch.Tensor:
    """For each positive: the teacher anchor (of its head) most like the student's anchor
    there (by width/height IoU): the same anchor when both use the same anchors."""
    if not len(assignment.image):
        return assignment.anchor
    return wh_iou(teacher_anchors_grid, assignment.anchor_wh).argmax(0)


def student_raw(step: Step) -> list[torch.Tensor]:
    """The student's raw head maps of this step (the engine sets them before any loss)."""
    if step.raw is None:
        raise RuntimeError("a loss term was asked for before the student's forward")
    return step.raw


@dataclass
class HeadTerms:
    """Unweighted KD terms of one head (obj normalised by the head's cells, like hard obj)."""

    obj: torch.Tensor
    cls: torch.Tensor
    reg: torch.Tensor


def head_terms(student_raw: torch.Tensor, teacher_raw: torch.Tensor, assignment: Assignment,
               teacher_anchors_grid: torch.Tensor, config: KDConfig) -> HeadTerms:  # fmt: skip
    """Soft objectness / class and bounded-regression terms at one head's positives."""
    zero = student_raw.sum() * 0.0
    a = assignment
    if not len(a.image):
        return HeadTerms(zero, zero, zero)
    anchor = teacher_anchor(a, teacher_anchors_grid)
    s = student_raw[a.image, a.anchor, a.gy, a.gx]
    t = teacher_raw[a.image, anchor, a.gy, a.gx].detach()
    cells = student_raw[..., 4].numel()
    obj = bernoulli_kl(s[:, 4], t[:, 4], config.temperature).sum() / cells
    cls = zero
    if s.shape[1] > 6:  # more than one class
        if config.cls_function == "softmax":
            cls = categorical_kl(s[:, 5:], t[:, 5:], config.temperature).mean()
        else:
            cls = bernoulli_kl(s[:, 5:], t[:, 5:], config.temperature).mean()
    student_box = decode_assigned(student_raw, a)
    teacher_box = torch.cat(
        (t[:, :2].sigmoid(), t[:, 2:4].exp().clamp(max=1e3) * teacher_anchors_grid[anchor]), 1
    )
    reg = bounded_regression(box_error(student_box, a.box, config.giou_reg_loss),
                             box_error(teacher_box, a.box, config.giou_reg_loss),
                             config.margin)  # fmt: skip
    return HeadTerms(obj, cls, reg)


def hint_loss(adapted: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(adapted.float(), teacher.detach().float())


# ---------------------------------------------------------------------- the callback


class TeacherForward(Callback):
    """Runs the frozen teacher on each batch: raw maps and tapped blocks in ``step.context``.

    Shared by both distillation callbacks (the teacher runs once even when both are used).
    """

    def __init__(self, teacher: Darknet) -> None:
        self.teacher = teacher
        self.teacher_taps: tuple[int, ...] = ()

    def setup(self, trainer: Trainer) -> None:
        if self.teacher.num_classes != trainer.model.num_classes:
            raise ValueError(f"the teacher predicts {self.teacher.num_classes} classes but the "
                             f"student {trainer.model.num_classes}")  # fmt: skip
        self.teacher.to(trainer.device).eval()

    def before_forward(self, trainer: Trainer, step: Step) -> None:
        known = step.context.get("teacher_features", {})
        if "teacher_raw" in step.context and all(t in known for t in self.teacher_taps):
            return
        with torch.no_grad():
            raw, features = self.teacher(step.images.float(), taps=self.teacher_taps,
                                         decode=False)  # fmt: skip
        step.context["teacher_raw"] = raw
        step.context["teacher_features"] = {**known, **dict(zip(self.teacher_taps, features))}


class KDCallback(TeacherForward):
    """Soft targets, bounded regression and hints from a frozen teacher."""

    def __init__(self, config: KDConfig, teacher: Darknet) -> None:
        super().__init__(teacher)
        self.config = config
        self.teacher_taps = tuple(t for t, _ in config.hints)
        self.taps = tuple(s for _, s in config.hints)
        self.adapters = AdapterSet({})
        self.heads: list[tuple[int, int, int]] = []

    def setup(self, trainer: Trainer) -> None:
        super().setup(trainer)
        student = trainer.model
        check_pairs(self.teacher, student, self.config.hints, trainer.config.img_size)
        self.heads = prediction_pairs(self.teacher, student)
        if not self.heads:
            raise ValueError(f"teacher heads (strides {self.teacher.head_strides}) and student "
                             f"heads ({student.head_strides}) share no stride")  # fmt: skip
        channels = {f"{t}_{s}": (student.shapes[s].out_channels,
                                 self.teacher.shapes[t].out_channels)
                    for t, s in self.config.hints}  # fmt: skip
        self.adapters = AdapterSet(channels).to(trainer.device)
        self.adapters.build_optimizer(trainer.hyp.lr0, trainer.hyp.momentum)

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.adapters.optimizer] if self.adapters.optimizer is not None else []

    def before_forward(self, trainer: Trainer, step: Step) -> None:
        super().before_forward(trainer, step)
        self.adapters.follow(trainer.optimizer)

    def detection_weights(self, trainer: Trainer, step: Step) -> dict[str, float]:
        return {"obj": self.config.mu, "cls": self.config.mu}

    def loss_terms(self, trainer: Trainer, step: Step) -> dict[str, torch.Tensor]:
        config, gains = self.config, trainer.loss.gains
        teacher_raw = step.context["teacher_raw"]
        raw = student_raw(step)
        size = (step.images.shape[-2], step.images.shape[-1])
        assignments = trainer.loss.assignments(raw, step.targets, size)
        zero = raw[0].float().sum() * 0.0
        obj, cls, reg = zero, zero, zero
        for ti, si, stride in self.heads:
            anchors = self.teacher.heads[ti].anchors.to(zero.device) / stride
            terms = head_terms(raw[si].float(), teacher_raw[ti].float(), assignments[si],
                               anchors, config)  # fmt: skip
            obj, cls, reg = obj + terms.obj, cls + terms.cls, reg + terms.reg
        result = {
            "kd_soft": (1.0 - config.mu) * (gains.obj * obj + gains.cls * cls),
            "kd_reg": config.ni * gains.giou * reg,
        }
        if config.hints:
            teacher_features = step.context["teacher_features"]
            hint = zero
            for t, s in config.hints:
                hint = hint + hint_loss(self.adapters(f"{t}_{s}", step.features[s].float()),
                                        teacher_features[t])  # fmt: skip
            result["kd_hint"] = config.hint_weight * hint
        return result

    def state_dict(self) -> dict[str, Any]:
        return {"adapters": self.adapters.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.adapters.load_state_dict(state["adapters"])
