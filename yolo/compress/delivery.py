"""What a run hands over besides its checkpoint: its ONNX graph, float or INT8.

A study that says ``export: onnx`` or ``export: int8`` gets, with every finished trial, the
graph a device runs (:func:`yolo.onnx_runtime.write_onnx`, the one graph export and timing
share) and, for INT8, the QDQ model of :func:`yolo.compress.quantize.quantize_int8`. The
INT8 model's mAP is measured on the run's own validation loader through ONNX Runtime, the
same scoring as the checkpoint, so its loss is a figure, not an assumption; and since the
trial delivers that model, its mAP, storage and (on ONNX Runtime) latency are the ones the
trial reports. A loss beyond ``int8_max_drop`` is a collapse (ORT users report INT8 YOLO
models at 0 mAP when calibration or operator placement goes wrong): :class:`Int8Collapsed`
says so in one line instead of a success with a useless model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from yolo.compress.export import export_model
from yolo.compress.quantize import ACTIVATION_TYPES, CALIBRATORS, quantize_int8
from yolo.data.spec import load_spec
from yolo.engine import validation_loader
from yolo.evaluation import evaluate
from yolo.io import load_checkpoint
from yolo.metrics import names as m
from yolo.onnx_runtime import OnnxDetector, ort_latency_ms
from yolo.settings import AT_LEAST_ONE, UNIT, OneOf, check_fields, option
from yolo.train_config import TrainConfig

EXPORTS = ("checkpoint", "onnx", "int8")
ONNX_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
MAP50_FLOAT = "map50_float"  # the float model's mAP50, beside an INT8 delivery's
INT8_MAP50_DROP = "int8_map50_drop"


@dataclass(frozen=True)
class ExportConfig:
    """What a trial delivers besides its checkpoint."""

    export: str = option("checkpoint", "what a finished trial delivers: its PyTorch "
                         "checkpoint only, also its ONNX graph (onnx), or also an INT8 ONNX "
                         "graph calibrated on training images (int8; its mAP, storage and "
                         "latency are then the trial's)", domain=OneOf(EXPORTS))  # fmt: skip
    calib_images: int = option(64, "int8: training images the calibrator sees",
                               domain=AT_LEAST_ONE)  # fmt: skip
    calib_method: str = option("minmax", "int8: ONNX Runtime's calibrator",
                               domain=OneOf(CALIBRATORS))  # fmt: skip
    int8_activations: str = option("int8", "int8: signed activations (S8S8, fastest on "
                                   "AVX2) or unsigned (U8S8, for CPUs with VNNI)",
                                   domain=OneOf(ACTIVATION_TYPES))  # fmt: skip
    int8_max_drop: float = option(0.05, "int8: the largest mAP50 loss against the float "
                                  "model that is not a collapse", domain=UNIT)  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)


class Int8Collapsed(ValueError):
    """The INT8 model lost more mAP than ``int8_max_drop`` allows."""


def deliver(checkpoint: str | Path, out: str | Path, config: ExportConfig, train: TrainConfig,
            *, float_map50: float | None, latency_threads: int,
            latency_runs: int) -> dict[str, float]:  # fmt: skip
    """Write the ONNX deliverable of ``checkpoint`` into the folder ``out``; returns the
    figures that replace or join the run's last report (empty for ``checkpoint``)."""
    if config.export == "checkpoint":
        return {}
    out = Path(out)
    trained = load_checkpoint(checkpoint)
    float_path = out / ONNX_FILE
    size = export_model(trained.model, float_path, "onnx", img_size=train.img_size,
                        metadata=trained.metadata)  # fmt: skip
    if config.export == "onnx":
        return {"onnx_mb": size / 1e6}
    int8_path = quantize_int8(float_path, out / INT8_FILE, data=train.data,
                              img_size=train.img_size, images=config.calib_images,
                              calibrator=config.calib_method,
                              activations=config.int8_activations)  # fmt: skip
    loader = validation_loader(train, load_spec(train.data))
    int8_map50 = evaluate(OnnxDetector(int8_path, threads=latency_threads), loader,
                          metric=train.metric, progress=False).result.map50  # fmt: skip
    figures = {m.MAP50: float(int8_map50), m.STORAGE_MB: int8_path.stat().st_size / 1e6}
    if float_map50 is not None:
        drop = float_map50 - float(int8_map50)
        if drop > config.int8_max_drop:
            raise Int8Collapsed(
                f"int8 export collapsed: mAP50 {float_map50:.4f} as float, {int8_map50:.4f} "
                f"as INT8 ({config.calib_method}, {config.calib_images} calibration images): "
                f"a loss of {drop:.4f} > int8_max_drop {config.int8_max_drop}"
            )
        figures[MAP50_FLOAT] = float_map50
        figures[INT8_MAP50_DROP] = drop
    if latency_runs:
        figures[m.LATENCY_MS] = ort_latency_ms(
            int8_path, train.img_size, threads=latency_threads, runs=latency_runs
        )
    return figures
