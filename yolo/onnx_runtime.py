"""Models on ONNX Runtime: the one ONNX graph of a model (:func:`write_onnx`), an exported
file (float or INT8) run as the rest of the code sees a model (``OnnxDetector(images) ->
decoded boxes``, so ``yct evaluate`` scores it exactly as it scores a checkpoint), and its
batch-1 latency on the runtime a device would use.

The export writes the training metadata (class names, image size) into the ONNX file's
``metadata_props`` under :data:`METADATA_KEY`, so the file alone says what it detects.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

METADATA_KEY = "yct"
OPSET = 17


class _Decoded(nn.Module):
    """The model with one tensor in, decoded boxes out: what an ONNX graph should be."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images, decode=True)


def write_onnx(model: nn.Module, out: str | Path, img_size: int,
               channels: int = 3) -> None:  # fmt: skip
    """The model's ONNX graph (opset 17, dynamic batch): images in, decoded boxes out."""
    import warnings

    example = torch.zeros(1, channels, img_size, img_size)
    with warnings.catch_warnings():  # the legacy exporter's notices are not the user's
        warnings.simplefilter("ignore")
        torch.onnx.export(_Decoded(model).eval(), (example,), str(out),
                          input_names=["images"], output_names=["detections"],
                          dynamic_axes={"images": {0: "batch"}, "detections": {0: "batch"}},
                          opset_version=OPSET, dynamo=False)  # fmt: skip


def session(path: str | Path, *, threads: int) -> Any:
    """An ORT CPU session with ``threads`` intra-op threads (1 inter-op: batch-1 inference)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's
    # no busy-waiting between runs: an idle session's spinning threads would steal the
    # cores from the one being timed (several sessions live side by side when interleaved)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The training metadata the export stored, or {} for a foreign ONNX file."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return dict(json.loads(prop.value))
    return {}


def write_metadata(path: str | Path, metadata: dict[str, Any]) -> None:
    import onnx

    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.save(model, str(path))


class OnnxDetector(nn.Module):
    """The ONNX graph as a module: images (B, 3, S, S) in, decoded (B, N, 5 + C) out."""

    def __init__(self, path: str | Path, *, threads: int = 2) -> None:
        super().__init__()
        self.path = Path(path)
        self.session = session(self.path, threads=threads)
        self.input_name = self.session.get_inputs()[0].name
        self.metadata = read_metadata(self.path)

    @property
    def names(self) -> tuple[str, ...] | None:
        names = self.metadata.get("names")
        return tuple(names) if names else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        array = images.detach().cpu().float().numpy()
        (output,) = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(np.asarray(output))


def model_latency_ms(model: nn.Module, img_size: int, *, threads: int, runs: int,
                     warmup: int = 3, channels: int = 3) -> float:  # fmt: skip
    """Median batch-1 latency of ``model``'s ONNX graph on ORT CPU (a model's
    ``latency_ms`` when a study says ``latency_runtime: onnxruntime``)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        write_onnx(model, path, img_size, channels)
        return ort_latency_ms(path, img_size, threads=threads, runs=runs, warmup=warmup)


def ort_latency_ms(path: str | Path, img_size: int, *, threads: int, runs: int,
                   warmup: int = 3) -> float:  # fmt: skip
    """Median batch-1 latency of an ONNX file on ORT CPU after ``warmup`` runs."""
    if runs < 1:
        raise ValueError(f"latency runs must be >= 1, got {runs}")
    runner = session(path, threads=threads)
    name = runner.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 3, img_size, img_size), dtype=np.float32)
    for _ in range(warmup):
        runner.run(None, {name: x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.run(None, {name: x})
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
