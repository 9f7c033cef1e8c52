"""A trial's cost metrics: recomputed when the zero pattern changes, reused while it holds;
measured on the model the trial would deliver, latency absent when not measured."""

from __future__ import annotations

from types import SimpleNamespace

import torch

import trainables.trainable as trainable_module
from trainables.trainable import StudyTrainable
from yolo.compress.registry import get_method
from yolo.compress.trial import CostConfig, Trial
from yolo.metrics import names as m
from yolo.zoo import create_model


def _trainable(latency_runs: int) -> StudyTrainable:
    trainable = StudyTrainable("train")
    trainable.trial = Trial(get_method("train"), None, None, CostConfig(latency_runs))
    return trainable


def _trainer(model, masks=None):
    return SimpleNamespace(eval_model=model, delivered_masks=lambda: dict(masks or {}),
                           config=SimpleNamespace(img_size=64))  # fmt: skip


def test_cost_metrics_follow_the_zero_pattern(monkeypatch) -> None:
    model = create_model("yolov3-tiny", num_classes=3, width=0.25)
    trainer = _trainer(model)
    calls = []
    real = trainable_module.model_costs
    monkeypatch.setattr(trainable_module, "model_costs",
                        lambda *a, **k: calls.append(1) or real(*a, **k))  # fmt: skip
    trainable = _trainable(1)
    dense = trainable.cost_metrics(trainer)
    assert len(calls) == 1 and m.LATENCY_MS in dense
    with torch.no_grad():
        model.blocks[2].conv.weight.mul_(1.5)  # other values, same zeros: nothing to recompute
    assert trainable.cost_metrics(trainer) == dense and len(calls) == 1
    with torch.no_grad():
        model.blocks[2].conv.weight[: model.blocks[2].conv.weight.shape[0] // 2] = 0
    pruned = trainable.cost_metrics(trainer)
    assert len(calls) == 2
    assert pruned[m.PARAMS] < dense[m.PARAMS] and pruned[m.MACS] < dense[m.MACS]
    assert pruned[m.SPARSITY] > dense[m.SPARSITY]


def test_costs_are_those_of_the_delivered_masks_and_latency_is_absent_unmeasured() -> None:
    model = create_model("yolov3-tiny", num_classes=3, width=0.25)
    name = "blocks.2.conv.weight"
    weight = dict(model.named_parameters())[name]
    mask = torch.ones_like(weight, dtype=torch.bool)
    mask[: weight.shape[0] // 2] = False
    dense = _trainable(0).cost_metrics(_trainer(model))
    masked = _trainable(0).cost_metrics(_trainer(model, {name: mask}))
    assert m.LATENCY_MS not in dense and m.LATENCY_MS not in masked
    assert masked[m.PARAMS] == dense[m.PARAMS] - weight.numel() // 2
    assert masked[m.MACS] < dense[m.MACS]
    assert bool((weight != 0).all())  # the training model itself is untouched
