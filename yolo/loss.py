"""The YOLOv3 loss as the seed trained it (ultralytics/yolov3, early 2020).

Each target is assigned to every anchor of its grid cell whose width/height IoU with it
exceeds ``iou_t``; box loss is 1 - GIoU; objectness is BCE against the GIoU (clamped at 0)
at assigned cells and 0 elsewhere; class loss is BCE against one-hot targets. The three
terms are means, multiplied by their gains. Everything is vectorised over the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from yolo.boxes import generalized_iou, wh_iou, xywh_to_xyxy
from yolo.domains import check_range

if TYPE_CHECKING:
    from yolo.model import Darknet


@dataclass(frozen=True)
class LossGains:
    """The seed's gains and anchor-assignment threshold."""

    giou: float = 3.54
    obj: float = 64.3
    cls: float = 37.4
    iou_t: float = 0.225

    def __post_init__(self) -> None:
        for name in ("giou", "obj", "cls"):
            check_range(f"loss {name}", getattr(self, name), 0, 10_000)
        check_range("loss iou_t", self.iou_t, 0, 1)


@dataclass
class Assignment:
    """Targets matched to one head: which prediction cell, and what it should say.

    ``image, anchor, gy, gx`` index the (B, A, H, W, 5+N) raw map; ``box`` is the target
    xywh in grid units relative to the cell's corner; ``cls`` the class; ``anchor_wh`` the
    matched anchor in grid units; ``target`` the row of the (M, 6) targets it came from.
    """

    image: torch.Tensor
    anchor: torch.Tensor
    gy: torch.Tensor
    gx: torch.Tensor
    box: torch.Tensor
    cls: torch.Tensor
    anchor_wh: torch.Tensor
    target: torch.Tensor


def assign_targets(
    targets: torch.Tensor,
    raw: torch.Tensor,
    anchors_px: torch.Tensor,
    stride: float | tuple[float, float],
    iou_t: float,
) -> Assignment:
    """Match (M, 6) targets ``image, class, cx, cy, w, h`` (normalised) to one head.

    Args:
        raw: (B, A, H, W, 5+N) the head's raw output (for its grid size).
        anchors_px: (A, 2) the head's anchors in input pixels.
        stride: input pixels per cell, or (vertical, horizontal) where they differ.
    """
    _, num_anchors, h, w, _ = raw.shape
    step_y, step_x = stride if isinstance(stride, tuple) else (stride, stride)
    steps = torch.tensor([step_x, step_y], device=raw.device, dtype=torch.float32)
    anchors = anchors_px.to(raw.device, torch.float32) / steps  # grid units
    scale = torch.tensor([w, h, w, h], device=raw.device, dtype=torch.float32)
    boxes = targets[:, 2:6].float() * scale
    matches = (
        wh_iou(anchors, boxes[:, 2:4]) > iou_t
        if len(targets)
        else torch.zeros(num_anchors, 0, dtype=torch.bool, device=raw.device)
    )
    anchor_index, target_index = matches.nonzero(as_tuple=True)
    t = boxes[target_index]
    cell = t[:, :2].long()
    cell[:, 0].clamp_(0, w - 1)
    cell[:, 1].clamp_(0, h - 1)
    return Assignment(
        image=targets[target_index, 0].long(),
        anchor=anchor_index,
        gy=cell[:, 1],
        gx=cell[:, 0],
        box=torch.cat((t[:, :2] - cell, t[:, 2:4]), 1),
        cls=targets[target_index, 1].long(),
        anchor_wh=anchors[anchor_index],
        target=target_index,
    )


def decode_assigned(raw: torch.Tensor, a: Assignment) -> torch.Tensor:
    """Predicted xywh (grid units, relative to the cell) at the assigned positions."""
    p = raw[a.image, a.anchor, a.gy, a.gx]
    return torch.cat((p[:, :2].sigmoid(), p[:, 2:4].exp().clamp(max=1e3) * a.anchor_wh), 1)


class YoloLoss:
    """Callable: ``loss, items = YoloLoss(model)(raw_maps, targets)``.

    ``items`` holds the detached terms ``box, obj, cls, total`` for logging.
    """

    def __init__(self, model: Darknet, gains: LossGains = LossGains()) -> None:
        self.gains = gains
        self.anchors = [head.anchors for head in model.heads]
        self.strides = [model.shapes[i].strides for i in model.head_indices]
        self.num_classes = model.num_classes

    def assignments(self, raw_maps: list[torch.Tensor], targets: torch.Tensor,
                    input_size: tuple[int, int] | None = None) -> list[Assignment]:  # fmt: skip
        """Targets matched to every head; ``input_size`` (H, W) of the images places the
        anchors on each grid as darknet does (input over grid size: the stride wherever the
        input is a multiple of it); without it, the heads' strides."""
        matched = []
        for raw, anchors, stride in zip(raw_maps, self.anchors, self.strides):
            steps = self._steps(raw, stride, input_size)
            matched.append(assign_targets(targets, raw, anchors, steps, self.gains.iou_t))
        return matched

    @staticmethod
    def _steps(raw: torch.Tensor, stride: tuple[int, int],
               input_size: tuple[int, int] | None) -> tuple[float, float]:  # fmt: skip
        if input_size is None:
            return float(stride[0]), float(stride[1])
        return input_size[0] / raw.shape[2], input_size[1] / raw.shape[3]

    def __call__(
        self,
        raw_maps: list[torch.Tensor],
        targets: torch.Tensor,
        weights: Mapping[str, float] | None = None,
        input_size: tuple[int, int] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``weights`` multiply the gained ``box`` / ``obj`` / ``cls`` terms (default 1);
        ``input_size``: the images' (H, W) (see :meth:`assignments`)."""
        unknown = set(weights or {}) - {"box", "obj", "cls"}
        if unknown:
            raise ValueError(
                f"unknown detection loss terms {sorted(unknown)}; allowed: box, obj, cls"
            )
        device = raw_maps[0].device
        zero = torch.zeros((), device=device)
        box_loss, obj_loss, cls_loss = zero, zero, zero
        for raw, a in zip(raw_maps, self.assignments(raw_maps, targets, input_size)):
            raw = raw.float()
            objectness = torch.zeros_like(raw[..., 4])
            if len(a.image):
                predicted = decode_assigned(raw, a)
                giou = generalized_iou(xywh_to_xyxy(predicted), xywh_to_xyxy(a.box))
                box_loss = box_loss + (1.0 - giou).mean()
                objectness[a.image, a.anchor, a.gy, a.gx] = giou.detach().clamp(min=0)
                if self.num_classes > 1:
                    logits = raw[a.image, a.anchor, a.gy, a.gx, 5:]
                    onehot = F.one_hot(a.cls, self.num_classes).to(logits.dtype)
                    cls_loss = cls_loss + F.binary_cross_entropy_with_logits(logits, onehot)
            obj_loss = obj_loss + F.binary_cross_entropy_with_logits(raw[..., 4], objectness)
        weights = weights or {}
        box_loss = box_loss * self.gains.giou * weights.get("box", 1.0)
        obj_loss = obj_loss * self.gains.obj * weights.get("obj", 1.0)
        cls_loss = cls_loss * self.gains.cls * weights.get("cls", 1.0)
        total = box_loss + obj_loss + cls_loss
        items = {"box": box_loss, "obj": obj_loss, "cls": cls_loss}
        return total, {k: v.detach() for k, v in {**items, "total": total}.items()}
