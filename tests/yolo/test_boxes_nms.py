"""Box maths and NMS against hand-computed cases and a slow reference loop."""

from __future__ import annotations

import pytest
import torch

from yolo.boxes import box_iou, generalized_iou, wh_iou, xywh_to_xyxy, xyxy_to_xywh
from yolo.nms import batched_nms, nms, postprocess


def test_iou_and_giou_by_hand() -> None:
    a = torch.tensor([[0.0, 0, 2, 2]])
    b = torch.tensor([[1.0, 1, 3, 3], [4, 4, 5, 5]])
    assert torch.allclose(box_iou(a, b), torch.tensor([[1 / 7, 0.0]]))
    # disjoint: IoU 0, hull 5x5=25, union 5 -> GIoU = 0 - 20/25
    assert generalized_iou(a, b[1:]).item() == pytest.approx(-0.8)
    assert generalized_iou(a, a).item() == pytest.approx(1.0)
    assert torch.allclose(wh_iou(torch.tensor([[2.0, 2]]), torch.tensor([[1.0, 4]])),
                          torch.tensor([[2 / 6]]))  # fmt: skip
    boxes = torch.tensor([[1.0, 2, 5, 10]])
    assert torch.equal(xywh_to_xyxy(xyxy_to_xywh(boxes)), boxes)


def reference_nms(boxes, scores, classes, threshold):
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    kept = []
    for i in order:
        if all(
            classes[i] != classes[j]
            or box_iou(boxes[i : i + 1], boxes[j : j + 1]).item() <= threshold
            for j in kept
        ):
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("num_classes", [1, 3])
def test_batched_nms_matches_the_reference_loop(seed: int, num_classes: int) -> None:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(60, 2, generator=g) * 50
    boxes = torch.cat((xy, xy + 5 + torch.rand(60, 2, generator=g) * 20), 1)
    scores = torch.rand(60, generator=g)
    classes = torch.randint(0, num_classes, (60,), generator=g)
    for threshold in (0.3, 0.5, 0.7):
        ours = batched_nms(boxes, scores, classes, threshold).tolist()
        assert ours == reference_nms(boxes, scores, classes, threshold)


def test_box_exactly_at_the_threshold_survives() -> None:
    boxes = torch.tensor([[0.0, 0, 4, 1], [0, 0, 2, 1]])  # IoU exactly 0.5
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.49).tolist() == [0]


def test_empty_and_class_awareness() -> None:
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8])
    assert batched_nms(boxes, scores, torch.tensor([0, 1]), 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, torch.tensor([1, 1]), 0.5).tolist() == [0]


def test_postprocess_scores_thresholds_and_limits() -> None:
    # two boxes: obj 0.9 with class probs (0.5, 0.9); obj 0.2 with (0.9, 0.1)
    decoded = torch.tensor([[[10.0, 10, 4, 4, 0.9, 0.5, 0.9],
                             [30.0, 30, 4, 4, 0.2, 0.9, 0.1]]])  # fmt: skip
    (multi,) = postprocess(decoded, conf_threshold=0.1, iou_threshold=0.5)
    assert sorted((round(r[4].item(), 2), int(r[5])) for r in multi) == [
        (0.18, 0),
        (0.45, 0),
        (0.81, 1),
    ]
    (single,) = postprocess(decoded, conf_threshold=0.3, iou_threshold=0.5, multi_label=False)
    assert single.tolist() == [pytest.approx([8, 8, 12, 12, 0.81, 1])]
    (capped,) = postprocess(decoded, conf_threshold=0.1, iou_threshold=0.5, max_detections=1)
    assert len(capped) == 1
    (none,) = postprocess(torch.zeros(1, 0, 7), conf_threshold=0.1, iou_threshold=0.5)
    assert none.shape == (0, 6)
