"""A trial's cost metrics: recomputed when the zero pattern changes, reused while it holds."""

from __future__ import annotations

from types import SimpleNamespace

import torch

import trainables.base as base
from trainables.methods import TrainTrainable
from yolo.metrics import names as m
from yolo.zoo import create_model


def test_cost_metrics_follow_the_zero_pattern(monkeypatch) -> None:
    model = create_model("yolov3-tiny", num_classes=3, width=0.25)
    trainer = SimpleNamespace(eval_model=model, callbacks=[], config=SimpleNamespace(img_size=64))
    calls = []
    real = base.count_macs
    monkeypatch.setattr(base, "count_macs", lambda *a, **k: calls.append(1) or real(*a, **k))
    trainable = TrainTrainable()
    trainable.config = {"latency_runs": 1}
    dense = trainable.cost_metrics(trainer)
    assert len(calls) == 2  # at the trial's size and at 416
    with torch.no_grad():
        model.blocks[2].conv.weight.mul_(1.5)  # other values, same zeros: nothing to recompute
    assert trainable.cost_metrics(trainer) == dense and len(calls) == 2
    with torch.no_grad():
        model.blocks[2].conv.weight[: model.blocks[2].conv.weight.shape[0] // 2] = 0
    pruned = trainable.cost_metrics(trainer)
    assert len(calls) == 4
    assert pruned[m.PARAMS] < dense[m.PARAMS] and pruned[m.MACS] < dense[m.MACS]
    assert pruned[m.SPARSITY] > dense[m.SPARSITY]
