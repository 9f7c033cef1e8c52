"""ONNX as a deliverable: float export equals the checkpoint on ONNX Runtime, INT8 (QDQ)
keeps its head float, and ``yct evaluate model.onnx`` scores it like a checkpoint."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
import torch

from yct.cli import main
from yolo.compress.quantize import head_nodes
from yolo.data.spec import load_spec
from yolo.io import save_checkpoint
from yolo.onnx_runtime import OnnxDetector, read_metadata
from yolo.zoo import create_model


@pytest.fixture(scope="module")
def checkpoint(demo_spec, tmp_path_factory):
    names = list(load_spec(demo_spec).names)
    torch.manual_seed(0)
    model = create_model("yolov3-tiny", num_classes=len(names), width=0.25)
    path = tmp_path_factory.mktemp("quant") / "model.pt"
    save_checkpoint(path, model, metadata={"names": names, "img_size": 64})
    return path, model, names


def test_the_float_onnx_computes_what_the_checkpoint_does(checkpoint, tmp_path) -> None:
    path, model, names = checkpoint
    out = tmp_path / "model.onnx"
    assert main(["export", str(path), str(out), "--format", "onnx", "--img-size", "64"]) == 0
    assert read_metadata(out) == {"names": names, "img_size": 64, "method": None}
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = model.eval()(x, decode=True)
    assert (OnnxDetector(out)(x) - expected).abs().max().item() < 1e-3


def test_the_graph_holds_no_infinity_for_a_calibrator_to_meet(checkpoint, tmp_path) -> None:
    """Darknet's max-pool padding is -inf; as an ONNX constant it gave INT8 a NaN scale and
    0 mAP. The edge-repeating padding computes the same maximum with finite values only."""
    path, _, _ = checkpoint
    out = tmp_path / "model.onnx"
    assert main(["export", str(path), str(out), "--format", "onnx", "--img-size", "64"]) == 0
    graph = onnx.load(str(out)).graph
    values = [onnx.numpy_helper.to_array(t) for t in graph.initializer]
    values += [onnx.numpy_helper.to_array(a.t) for n in graph.node if n.op_type == "Constant"
               for a in n.attribute if a.name == "value"]  # fmt: skip
    assert all(np.isfinite(v).all() for v in values if v.dtype.kind == "f")
    pads = [n for n in graph.node if n.op_type == "Pad"]
    assert pads and all(onnx.helper.get_attribute_value(a) == b"edge"
                        for n in pads for a in n.attribute if a.name == "mode")  # fmt: skip


def _evaluate_json(target, data, capsys) -> dict:
    capsys.readouterr()
    assert main(["evaluate", str(target), "--data", str(data), "--split", "train", "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_int8_is_qdq_with_a_float_head_and_evaluates_like_a_checkpoint(
    checkpoint, demo_spec, tmp_path, capsys
) -> None:
    path, _, names = checkpoint
    out = tmp_path / "int8.onnx"
    assert main(["export", str(path), str(out), "--format", "onnx", "--img-size", "64",
                 "--int8", "--calib", str(demo_spec), "--calib-images", "4"]) == 0  # fmt: skip
    graph = onnx.load(str(out)).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("QuantizeLinear") > 10 and "DequantizeLinear" in ops
    convs = [n for n in graph.node if n.op_type == "Conv"]
    quantized_inputs = {i for n in graph.node if n.op_type == "DequantizeLinear" for i in n.output}
    head = set(head_nodes(onnx.load(str(out))))
    for conv in convs:  # backbone convs read dequantized INT8 weights, prediction convs float
        weight_is_int8 = conv.input[1] in quantized_inputs
        assert weight_is_int8 != (conv.name in head), conv.name
    assert read_metadata(out)["int8"] is True and read_metadata(out)["names"] == names
    assert OnnxDetector(out)(torch.rand(1, 3, 64, 64)).isfinite().all()
    onnx_map = _evaluate_json(out, demo_spec, capsys)["map50"]
    assert 0.0 <= onnx_map <= 1.0


def test_float_onnx_and_checkpoint_score_the_same(checkpoint, demo_spec, tmp_path,
                                                  capsys) -> None:  # fmt: skip
    path, _, _ = checkpoint
    out = tmp_path / "model.onnx"
    assert main(["export", str(path), str(out), "--format", "onnx", "--img-size", "64"]) == 0
    from_onnx = _evaluate_json(out, demo_spec, capsys)
    from_checkpoint = _evaluate_json(path, demo_spec, capsys)
    assert from_onnx["map50"] == pytest.approx(from_checkpoint["map50"], abs=1e-3)


def test_bad_int8_and_onnx_input_gets_one_line(checkpoint, demo_spec, tmp_path, capsys) -> None:
    path, _, _ = checkpoint
    out = tmp_path / "int8.onnx"
    assert main(["export", str(path), str(out), "--format", "onnx", "--int8"]) == 2
    assert "--int8 needs --format onnx and --calib DATA" in capsys.readouterr().err
    assert main(["export", str(path), str(out), "--format", "onnx", "--int8", "--calib",
                 str(demo_spec), "--calib-images", "0"]) == 2  # fmt: skip
    assert "--calib-images must be >= 1, got 0" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "none.onnx"), "--data", str(demo_spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert "ONNX model not found" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("activations", "zero_point_type"),
    [("int8", onnx.TensorProto.INT8), ("uint8", onnx.TensorProto.UINT8)],
)
def test_activations_are_signed_or_unsigned_as_asked(checkpoint, demo_spec, tmp_path,
                                                     activations, zero_point_type) -> None:  # fmt: skip
    """S8S8 (AVX2's faster) or U8S8 (ORT's native kernels with VNNI); weights stay INT8."""
    path, _, _ = checkpoint
    out = tmp_path / "int8.onnx"
    assert main(["export", str(path), str(out), "--format", "onnx", "--img-size", "64",
                 "--int8", "--calib", str(demo_spec), "--calib-images", "2",
                 "--int8-activations", activations]) == 0  # fmt: skip
    model = onnx.load(str(out))
    types = {t.name: t.data_type for t in model.graph.initializer}
    first = next(n for n in model.graph.node if n.op_type == "QuantizeLinear"
                 and n.input[0] == model.graph.input[0].name)  # fmt: skip
    assert types[first.input[2]] == zero_point_type  # the image's quantization
    stored = [types[n.input[0]] for n in model.graph.node  # weights (int8) and biases (int32)
              if n.op_type == "DequantizeLinear" and n.input[0] in types]  # fmt: skip
    assert onnx.TensorProto.INT8 in stored
    assert set(stored) <= {onnx.TensorProto.INT8, onnx.TensorProto.INT32}
    assert read_metadata(out)["activations"] == activations
