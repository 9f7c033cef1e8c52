"""Static INT8 quantization of an exported ONNX model with ONNX Runtime's quantizer.

QDQ format, per-channel INT8 weights, 8-bit activations whose ranges a calibrator (ORT's own:
MinMax, Entropy or Percentile) takes from N images of the data spec, letterboxed exactly as
validation does. Activations are signed (``int8``, S8S8) or unsigned (``uint8``, U8S8):
which runs faster is the CPU's matter. On a CPU with VNNI (AVX-512 VNNI, AVX-VNNI) ORT's
U8S8 kernels are the native ones (bench/real_speed.py on AVX-512 VNNI: 1.55x over the
pruned fp32 model, S8S8 1.35x); on AVX2 without VNNI S8S8 was the faster (U8S8 there is
slower still), so ``int8`` is the default and ``uint8`` the choice for VNNI machines.

Operator placement is where INT8 YOLO models usually fail (0 mAP): the box decoding after
the prediction convs concatenates pixel coordinates with probabilities, and
one INT8 scale over both rounds every probability to 0. So the prediction convs and
everything after them stay float (:func:`head_nodes`); the backbone and neck are INT8.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CALIBRATORS = ("minmax", "entropy", "percentile")
ACTIVATION_TYPES = ("int8", "uint8")
# what runs in INT8: convs and what sits between them, so that ORT keeps tensors in INT8
# from one conv to the next instead of dequantizing around every activation or concat
QUANTIZED_OPS = ["Conv", "LeakyRelu", "Relu", "MaxPool", "Add", "Concat", "Resize", "Pad"]


def head_nodes(model: Any) -> list[str]:
    """Names of the nodes from the graph's outputs back to, and including, the last convs
    (the prediction convs): the part that stays float."""
    producer = {out: node for node in model.graph.node for out in node.output}
    keep: list[str] = []
    seen: set[str] = set()
    stack = [o.name for o in model.graph.output]
    while stack:
        tensor = stack.pop()
        node = producer.get(tensor)
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        keep.append(node.name)
        if node.op_type != "Conv":
            stack.extend(node.input)
    return keep


class _Calibration:
    """ORT's ``CalibrationDataReader`` protocol over the first ``count`` images of a split."""

    def __init__(self, batches: Iterator[Any], input_name: str) -> None:
        self.batches = batches
        self.input_name = input_name

    def get_next(self) -> dict[str, Any] | None:
        batch = next(self.batches, None)
        if batch is None:
            return None
        return {self.input_name: batch.images.numpy()}

    def rewind(self) -> None:  # ORT calls it between calibration passes; one pass suffices
        return None


def calibration_batches(data: str | Path, img_size: int, count: int,
                        split: str = "train") -> Iterator[Any]:  # fmt: skip
    from yolo.data.loader import create_dataloader

    loader = create_dataloader(data, split, img_size=img_size, batch_size=1)
    for index, batch in enumerate(loader):
        if index >= count:
            return
        yield batch


def quantize_int8(float_onnx: str | Path, out: str | Path, *, data: str | Path, img_size: int,
                  images: int = 64, calibrator: str = "minmax",
                  activations: str = "int8") -> Path:  # fmt: skip
    """Write the INT8 QDQ model of ``float_onnx`` to ``out``, calibrated on ``images``
    images of ``data``'s train split, with ``activations`` (:data:`ACTIVATION_TYPES`)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibrator not in CALIBRATORS:
        raise ValueError(f"--calib-method must be one of {', '.join(CALIBRATORS)}, "
                         f"got '{calibrator}'")  # fmt: skip
    if images < 1:
        raise ValueError(f"--calib-images must be >= 1, got {images}")
    if activations not in ACTIVATION_TYPES:
        raise ValueError(f"--int8-activations must be one of {', '.join(ACTIVATION_TYPES)}, "
                         f"got '{activations}'")  # fmt: skip
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[calibrator]  # fmt: skip
    out = Path(out)
    with tempfile.TemporaryDirectory() as folder:
        prepared = Path(folder) / "prepared.onnx"
        quant_pre_process(str(float_onnx), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        reader = _Calibration(calibration_batches(data, img_size, images),
                              model.graph.input[0].name)  # fmt: skip
        quantize_static(
            str(prepared), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8 if activations == "int8" else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=QUANTIZED_OPS, nodes_to_exclude=head_nodes(model),
            calibrate_method=method,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )  # fmt: skip
    return out
