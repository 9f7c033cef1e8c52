"""A trial's ONNX deliverable: the float graph, or INT8 whose mAP, storage and latency are
measured on it, and a collapse that says so in one line instead of passing as a success."""

from __future__ import annotations

import pytest
import torch

from yolo.compress.delivery import (
    INT8_FILE,
    INT8_MAP50_DROP,
    MAP50_FLOAT,
    ONNX_FILE,
    ExportConfig,
    Int8Collapsed,
    deliver,
)
from yolo.compress.registry import get_method
from yolo.compress.trial import build_trial
from yolo.data.spec import load_spec
from yolo.io import save_checkpoint
from yolo.metrics import names as m
from yolo.train_config import TrainConfig
from yolo.zoo import create_model


@pytest.fixture(scope="module")
def parent(demo_spec, tmp_path_factory):
    names = list(load_spec(demo_spec).names)
    torch.manual_seed(0)
    model = create_model("yolov3-tiny", num_classes=len(names), width=0.25)
    path = tmp_path_factory.mktemp("deliver") / "best.pt"
    save_checkpoint(path, model, metadata={"names": names, "img_size": 64})
    train = TrainConfig(model="yolov3-tiny", data=str(demo_spec), out=str(path.parent),
                        img_size=64, batch_size=8)  # fmt: skip
    return path, train


def test_checkpoint_delivers_nothing_more(parent, tmp_path) -> None:
    path, train = parent
    assert deliver(path, tmp_path, ExportConfig(), train, float_map50=0.5,
                   latency_threads=1, latency_runs=0) == {}  # fmt: skip
    assert not list(tmp_path.iterdir())


def test_onnx_delivers_the_float_graph(parent, tmp_path) -> None:
    path, train = parent
    figures = deliver(path, tmp_path, ExportConfig(export="onnx"), train, float_map50=0.5,
                      latency_threads=1, latency_runs=0)  # fmt: skip
    assert (tmp_path / ONNX_FILE).stat().st_size / 1e6 == figures["onnx_mb"]
    assert not (tmp_path / INT8_FILE).exists()


def test_int8_figures_are_measured_on_the_int8_model(parent, tmp_path) -> None:
    path, train = parent
    config = ExportConfig(export="int8", calib_images=4)
    figures = deliver(path, tmp_path, config, train, float_map50=0.0, latency_threads=1,
                      latency_runs=2)  # fmt: skip
    int8 = tmp_path / INT8_FILE
    assert figures[m.STORAGE_MB] == int8.stat().st_size / 1e6
    assert int8.stat().st_size < (tmp_path / ONNX_FILE).stat().st_size / 2  # INT8 weights
    assert figures[m.LATENCY_MS] > 0 and 0 <= figures[m.MAP50] <= 1
    assert figures[MAP50_FLOAT] == 0.0 and figures[INT8_MAP50_DROP] == -figures[m.MAP50]


def test_a_collapsed_int8_model_fails_with_one_line(parent, tmp_path) -> None:
    path, train = parent
    config = ExportConfig(export="int8", calib_images=4, int8_max_drop=0.05)
    with pytest.raises(Int8Collapsed) as caught:  # an untrained model cannot keep 0.9
        deliver(path, tmp_path, config, train, float_map50=0.9, latency_threads=1,
                latency_runs=0)  # fmt: skip
    message = str(caught.value)
    assert "\n" not in message and message.startswith("int8 export collapsed: mAP50 0.9000")
    assert "> int8_max_drop 0.05" in message


@pytest.mark.parametrize(("values", "expected"), [
    ({"export": "tflite"}, "export must be one of checkpoint, onnx, int8, got 'tflite'"),
    ({"export": "int8", "latency_runs": 3},
     "trial.latency_runtime: export int8 delivers a model that only ONNX Runtime runs"),
    ({"export": "int8", "calib_images": 0}, "calib_images"),
    ({"export": "int8", "int8_max_drop": 1.5}, "int8_max_drop"),
])  # fmt: skip
def test_bad_export_settings_are_refused_when_the_trial_is_built(demo_spec, values,
                                                                expected) -> None:  # fmt: skip
    base = {"model": "yolov3-tiny", "data": str(demo_spec), "latency_runs": 0}
    with pytest.raises(ValueError, match=None) as caught:
        build_trial(get_method("train"), {**base, **values}, out="x", where="trial")
    assert expected in str(caught.value)


def test_int8_timed_on_onnx_runtime_is_a_valid_trial(demo_spec) -> None:
    values = {"model": "yolov3-tiny", "data": str(demo_spec), "export": "int8",
              "latency_runs": 3, "latency_runtime": "onnxruntime"}  # fmt: skip
    trial = build_trial(get_method("train"), values, out="x", where="trial")
    assert trial.export.export == "int8" and trial.costs.latency_runtime == "onnxruntime"
