"""latency_ms on the runtime a study names: PyTorch eager or the model's ONNX graph on ONNX
Runtime, with the threads it names; a runtime that does not exist is refused by name."""

from __future__ import annotations

import pytest
import torch

from yolo.compress.registry import get_method
from yolo.compress.trial import build_trial
from yolo.metrics import names as m
from yolo.metrics.profile import model_costs
from yolo.zoo import create_model


@pytest.mark.parametrize("runtime", ["eager", "onnxruntime"])
def test_latency_is_measured_on_the_named_runtime(runtime) -> None:
    model = create_model("yolov3-tiny", num_classes=3, width=0.25)
    threads = torch.get_num_threads()
    costs = model_costs(model, 64, latency_runs=3, latency_runtime=runtime, latency_threads=1)
    assert 0 < costs[m.LATENCY_MS] < 5000
    assert torch.get_num_threads() == threads  # the measurement's thread count is undone
    assert m.LATENCY_MS not in model_costs(model, 64, latency_runs=0, latency_runtime=runtime)


def test_a_trial_takes_the_runtime_and_refuses_an_unknown_one(demo_spec, tmp_path) -> None:
    method = get_method("train")
    values = {"model": "yolov3-tiny", "data": str(demo_spec), "latency_runtime": "onnxruntime",
              "latency_threads": 2}  # fmt: skip
    trial = build_trial(method, values, out=str(tmp_path), where="trial")
    assert (trial.costs.latency_runtime, trial.costs.latency_threads) == ("onnxruntime", 2)
    with pytest.raises(
        ValueError, match=r"trial: latency_runtime must be one of eager, onnxruntime, got .tflite."
    ):
        build_trial(method, {**values, "latency_runtime": "tflite"}, out=str(tmp_path),
                    where="trial")  # fmt: skip
    with pytest.raises(ValueError, match=r"latency_threads"):
        build_trial(method, {**values, "latency_threads": 0}, out=str(tmp_path), where="trial")
