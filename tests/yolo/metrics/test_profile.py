"""Cost accounting: hand-computed MACs for dense and half-pruned models, storage, latency."""

from __future__ import annotations

import pytest
import torch

from yolo.config import parse_cfg
from yolo.metrics.profile import (
    MB,
    count_macs,
    count_nonzero_params,
    count_params,
    measure_latency_ms,
    profile_model,
)
from yolo.model import Darknet
from yolo.zoo import create_model

HAND_CFG = """
[net]
width=32
height=32
channels=3

[convolutional]
filters=4
size=3
stride=1
pad=1
batch_normalize=1
activation=leaky

[convolutional]
filters=6
size=1
stride=1
activation=linear

[yolo]
mask=0
anchors=10,10
classes=1
num=1
"""


def _hand_model() -> Darknet:
    return Darknet(parse_cfg(HAND_CFG))


def test_dense_macs_by_hand() -> None:
    model = _hand_model()
    conv0 = 32 * 32 * 4 * (3 * 3 * 3)  # output elements x (C_in x k x k)
    bn0 = 4 * (4 * 32 * 32)  # thop: 2 x elements, x2 for the affine part
    conv1 = 32 * 32 * 6 * 4  # bias is not counted
    macs = count_macs(model, 32)
    assert macs.dense == conv0 + bn0 + conv1 == 151_552
    assert macs.effective == macs.dense  # no weight is zero at init


def test_effective_macs_of_a_half_pruned_model_by_hand() -> None:
    model = _hand_model()
    weight = model.blocks[0].conv.weight
    with torch.no_grad():
        flat = weight.view(-1)
        flat[: flat.numel() // 2] = 0  # 54 of the 108 weights of the prunable conv
    macs = count_macs(model, 32)
    assert macs.effective == 32 * 32 * 54 + 4 * 4 * 32 * 32 + 32 * 32 * 6 * 4 == 96_256
    assert macs.dense == 151_552
    assert count_nonzero_params(model) == count_params(model) - 54 - 4  # the 4 BN biases start at 0


def test_effective_macs_halve_the_conv_share_of_a_zoo_model() -> None:
    model = create_model("yolov3-tiny", num_classes=2, width=0.25)
    dense = count_macs(model, 128)
    conv_macs = 0
    prediction = set(model.prediction_conv_indices())
    with torch.no_grad():
        for index, block in enumerate(model.blocks):
            conv = getattr(block, "conv", None)
            if conv is None or index in prediction:
                continue
            mask = torch.ones(conv.weight.numel())
            mask[::2] = 0  # exactly half when numel is even (it is for every conv here)
            conv.weight.mul_(mask.view_as(conv.weight))
            stride = model.shapes[index].stride
            conv_macs += (128 // stride) ** 2 * conv.weight.numel()
    macs = count_macs(model, 128)
    assert macs.dense == dense.dense
    assert macs.effective == dense.dense - conv_macs // 2


def test_unknown_weighted_module_is_not_silently_free() -> None:
    model = _hand_model()
    model.blocks[0].extra = torch.nn.Conv1d(1, 1, 1)
    with pytest.raises(TypeError, match="no MAC rule for weighted module Conv1d"):
        count_macs(model, 32)


def test_profile_figures() -> None:
    model = create_model("yolo-nano", num_classes=20, width=0.25)
    profile = profile_model(model, 64, latency_runs=3, warmup=1)
    assert profile.params == count_params(model)
    assert profile.storage_mb * MB > profile.params * 4
    assert profile.sparse_storage_mb < profile.storage_mb
    assert profile.latency_ms is not None and profile.latency_ms > 0
    assert set(profile.as_dict()) >= {
        "params",
        "nonzero_params",
        "macs",
        "effective_macs",
        "storage_mb",
        "sparse_storage_mb",
        "latency_ms",
    }
    assert profile_model(model, 64, latency_runs=0).latency_ms is None


def test_latency_rejects_zero_runs() -> None:
    with pytest.raises(ValueError, match="latency runs must be >= 1, got 0"):
        measure_latency_ms(_hand_model(), 32, runs=0)
