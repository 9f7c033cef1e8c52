"""The YOLOv3 loss: anchor assignment by iou_t, the GIoU objectness target, and learning."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import TINY_CFG
from yolo.loss import LossGains, YoloLoss, assign_targets
from yolo.zoo import create_model


def test_targets_go_to_every_anchor_above_iou_t() -> None:
    raw = torch.zeros(1, 3, 4, 4, 8)
    anchors = torch.tensor([[8.0, 8], [16, 16], [64, 64]])  # pixels, stride 16 -> 0.5, 1, 4 cells
    # a 1x1-cell box centred in cell (x=2, y=1): IoUs with anchors 0.25, 1.0, 1/16
    targets = torch.tensor([[0, 2, 2.5 / 4, 1.5 / 4, 1 / 4, 1 / 4]])
    a = assign_targets(targets, raw, anchors, 16.0, iou_t=0.225)
    assert a.anchor.tolist() == [0, 1] and a.gx.tolist() == [2, 2] and a.gy.tolist() == [1, 1]
    assert torch.allclose(a.box, torch.tensor([[0.5, 0.5, 1, 1]] * 2))
    assert a.cls.tolist() == [2, 2]
    assert assign_targets(targets, raw, anchors, 16.0, iou_t=0.3).anchor.tolist() == [1]
    assert len(assign_targets(torch.zeros(0, 6), raw, anchors, 16.0, 0.225).image) == 0


def test_perfect_prediction_has_no_box_loss_and_giou_objectness_target(write_cfg) -> None:
    model = create_model(write_cfg(TINY_CFG), num_classes=2, anchors=[(16, 16)] * 3)
    loss = YoloLoss(model, LossGains(giou=1, obj=1, cls=1))
    raw = [torch.zeros(1, 3, 16, 16, 7)]  # one head, stride 4 at 64 px
    # a target exactly the anchor, centred in cell (5, 2): sigmoid(0)=0.5, exp(0)*anchor fit it
    targets = torch.tensor([[0, 0, 5.5 / 16, 2.5 / 16, 16 / 64, 16 / 64]])
    _, items = loss(raw, targets)
    assert items["box"].item() < 1e-6
    # objectness target = GIoU = 1 at the 3 assigned anchors, 0 elsewhere
    expected = torch.zeros(1, 3, 16, 16)
    expected[0, :, 2, 5] = 1.0
    bce = torch.nn.functional.binary_cross_entropy_with_logits(raw[0][..., 4], expected)
    assert items["obj"].item() == pytest.approx(bce.item())
    worse = [raw[0].clone()]
    worse[0][..., 2:4] = 2.0  # predictions e^2 times too large
    assert loss(worse, targets)[1]["box"] > 0.5


def test_loss_decreases_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model = create_model(
        "yolov3-tiny",
        num_classes=3,
        width=0.25,
        anchors=[(10, 14), (23, 27), (37, 58), (81, 82), (35, 40), (20, 20)],
    )
    loss_fn = YoloLoss(model)
    images = torch.rand(4, 3, 64, 64)
    targets = torch.tensor(
        [
            [0, 1, 0.5, 0.5, 0.3, 0.4],
            [1, 0, 0.3, 0.3, 0.2, 0.2],
            [2, 2, 0.6, 0.4, 0.5, 0.5],
            [3, 1, 0.2, 0.7, 0.25, 0.3],
        ]
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    losses = []
    for _ in range(15):
        loss, _ = loss_fn(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
