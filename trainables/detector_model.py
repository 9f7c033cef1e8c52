"""A trial's model as an MLflow pyfunc model: one call loads it, ``predict`` detects.

    import mlflow
    model = mlflow.pyfunc.load_model("runs:/<trial run id>/model")  # or "models:/<model id>"
    detections = model.predict(images)  # RGB uint8, (N, H, W, 3)

``predict`` returns one row per detection: ``image`` (its index in the batch), ``x1``,
``y1``, ``x2``, ``y2`` (image pixels), ``score``, ``class``, ``name``;
``params={"conf": 0.25, "iou": 0.45}`` set the thresholds. It runs the model the trial
delivered: the ONNX graph for a study that exports one (``export: onnx`` or ``int8``, whose
figures are the trial's), else the project checkpoint. The folder keeps that checkpoint
(``artifacts/model.pt``: cfg, weights, masks, metadata) and any ONNX file, and ``yct evaluate
runs:/<run id>/model`` (any ``yct`` command that reads a model) reads them.

Written with MLflow's ``pyfunc.save_model`` into a folder that the tracker logs as the
run's logged model (:meth:`trainables.mlflow_adapter.StudyTracker.trial_ended`).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel

CHECKPOINT = "checkpoint"  # the artifact keys in the MLmodel file
DELIVERED = "delivered"
COLUMNS = ("image", "x1", "y1", "x2", "y2", "score", "class", "name")


class YoloDetector(PythonModel):
    """Detections of the delivered model (see the module doc)."""

    def load_context(self, context):  # type: ignore[no-untyped-def]  # MLflow reads hints
        from yolo.commands.common import load_trained
        from yolo.onnx_runtime import OnnxDetector

        trained = load_trained(context.artifacts[CHECKPOINT])
        self.names, self.size = trained.names, trained.img_size
        delivered = context.artifacts.get(DELIVERED)
        self.model = OnnxDetector(delivered) if delivered else trained.model.eval()

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        import pandas as pd

        from yolo.inference import detect

        if isinstance(model_input, dict):  # a named tensor
            model_input = next(iter(model_input.values()))
        images = np.asarray(model_input)
        if images.ndim == 3:
            images = images[None]
        settings = {"conf": 0.25, "iou": 0.45, **(params or {})}
        rows = []
        for index, image in enumerate(images):
            boxes = detect(self.model, np.ascontiguousarray(image, dtype=np.uint8), self.size,
                           conf=float(settings["conf"]), iou=float(settings["iou"]))  # fmt: skip
            for x1, y1, x2, y2, score, cls in boxes:
                rows.append((index, x1, y1, x2, y2, score, int(cls), self.names[int(cls)]))
        return pd.DataFrame(rows, columns=list(COLUMNS))


def signature() -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

    inputs = Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1, 3))])
    kinds = ["long", "double", "double", "double", "double", "double", "long", "string"]
    outputs = Schema([ColSpec(kind, name) for kind, name in zip(kinds, COLUMNS)])
    params = ParamSchema([ParamSpec("conf", "double", 0.25), ParamSpec("iou", "double", 0.45)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def write_model_folder(folder: Path, checkpoint: Path, *, delivered: Path | None = None,
                       metadata: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """The pyfunc folder for ``checkpoint`` (and the ``delivered`` ONNX graph, if any).

    Requirements are stated, not inferred: MLflow's inference would load the model in a
    subprocess for every trial."""
    from importlib import metadata as package_metadata

    import torch

    artifacts = {CHECKPOINT: str(checkpoint)}
    if delivered is not None:
        artifacts[DELIVERED] = str(delivered)
    try:
        ours = f"yolo-compress-tune=={package_metadata.version('yolo-compress-tune')}"
    except package_metadata.PackageNotFoundError:
        ours = "yolo-compress-tune"
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    level = pyfunc_log.level
    # no input example (it would run the model per trial), and the class is pickled by
    # reference to this module: neither warning is the user's to act on, once per trial;
    # nor is a progress bar for copying two local files
    pyfunc_log.setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            mlflow.pyfunc.save_model(
                str(folder),
                python_model=YoloDetector(),
                artifacts=artifacts,
                signature=signature(),
                pip_requirements=[ours, f"torch=={torch.__version__.split('+')[0]}",
                                  f"mlflow=={mlflow.__version__}"],
                metadata=metadata,
            )  # fmt: skip
        finally:
            pyfunc_log.setLevel(level)
    return folder


def model_file(folder: Path) -> Path:
    """The file in a downloaded model folder that ``yct`` commands read: the delivered
    ONNX graph if the trial delivered one, else the checkpoint."""
    import yaml

    spec = yaml.safe_load((folder / "MLmodel").read_text())
    artifacts = spec["flavors"]["python_function"].get("artifacts") or {}
    chosen = artifacts.get(DELIVERED) or artifacts.get(CHECKPOINT)
    if chosen is None:
        raise ValueError(f"{folder}/MLmodel: no '{CHECKPOINT}' artifact: not a yct model")
    return folder / chosen["path"]
