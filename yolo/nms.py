"""Non-maximum suppression and the decoded-output -> detections step, in pure torch.

torchvision is not a dependency (its wheels here pull a CUDA build), so NMS is written
out: greedy, exact, and tested against a slow reference loop.
"""

from __future__ import annotations

import numpy as np
import torch

from yolo.boxes import box_iou, xywh_to_xyxy


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS.

    Args:
        boxes: (N, 4) xyxy. scores: (N,).
        iou_threshold: a box is suppressed by a higher-scoring kept box when their IoU is
            strictly greater than this (a box exactly at the threshold survives).

    Returns:
        Indices of kept boxes, by decreasing score (ties: lower index first).
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes[order], boxes[order]).cpu().numpy()
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed[i + 1 :] |= iou[i, i + 1 :] > iou_threshold
    return order[torch.as_tensor(keep, dtype=torch.long, device=order.device)]


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Class-aware NMS: boxes of different classes never suppress each other."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    # shift each class into its own region of the plane; exact because it is a translation
    offset = classes.to(boxes.dtype)[:, None] * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offset, scores, iou_threshold)


def postprocess(
    decoded: torch.Tensor,
    *,
    conf_threshold: float,
    iou_threshold: float,
    max_detections: int = 300,
    multi_label: bool = True,
    max_candidates: int = 3_000,
) -> list[torch.Tensor]:
    """Decoded model output -> detections per image.

    Args:
        decoded: (B, boxes, 5+N) as the model returns in eval (xywh input pixels,
            objectness, class probabilities).
        conf_threshold: minimum objectness x class probability.
        multi_label: one detection per (box, class) above the threshold (evaluation),
            or only the best class per box (``detect``).

    Returns:
        B tensors of (K, 6): x1, y1, x2, y2 (input pixels), score, class.
    """
    results = []
    for prediction in decoded:
        prediction = prediction[prediction[:, 4] > conf_threshold]
        scores = prediction[:, 5:] * prediction[:, 4:5]
        boxes = xywh_to_xyxy(prediction[:, :4])
        if multi_label:
            rows, cls = (scores > conf_threshold).nonzero(as_tuple=True)
            boxes, score = boxes[rows], scores[rows, cls]
        else:
            score, cls = scores.max(1) if len(scores) else (scores.sum(1), scores.sum(1).long())
            keep = score > conf_threshold
            boxes, score, cls = boxes[keep], score[keep], cls[keep]
        if len(score) > max_candidates:
            top = score.topk(max_candidates).indices
            boxes, score, cls = boxes[top], score[top], cls[top]
        kept = batched_nms(boxes, score, cls, iou_threshold)[:max_detections]
        results.append(
            torch.cat((boxes[kept], score[kept, None], cls[kept, None].to(boxes.dtype)), 1)
        )
    return results
