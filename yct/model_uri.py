"""A trial's logged model by its MLflow URI, wherever a ``yct`` command reads a model file.

``yct evaluate runs:/<run id>/model --data …`` (or ``models:/<model id>``; also ``detect``,
``export``, ``prune``, ``info``) downloads the model folder from the tracking store
(``MLFLOW_TRACKING_URI``, else the default SQLite file ``mlruns.db``) into a
temporary folder that lives as long as the command, and hands the command the file the
trial delivered (:func:`trainables.detector_model.model_file`). Here, not in the command
modules: the core (``yolo``) knows nothing of MLflow.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

PREFIXES = ("runs:/", "models:/")
MODEL_ARGUMENTS = ("checkpoint", "model")  # the positional arguments that name a model file


def is_model_uri(text: object) -> bool:
    return str(text).startswith(PREFIXES)


def download(uri: str, tracking_uri: str | None, folder: Path) -> Path:
    """The delivered model file of ``uri``, downloaded under ``folder``."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # stderr: one line
    import mlflow
    from mlflow.exceptions import MlflowException

    from trainables.detector_model import model_file
    from trainables.mlflow_adapter import DEFAULT_TRACKING_URI

    store = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if store.startswith("sqlite:///") and not Path(store.removeprefix("sqlite:///")).is_file():
        raise ValueError(f"{uri}: no MLflow store at {store.removeprefix('sqlite:///')} "
                         "(MLFLOW_TRACKING_URI names the store)")  # fmt: skip
    mlflow.set_tracking_uri(store)
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder))
    except MlflowException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{uri}: no model there in the MLflow store {store} ({first})") from None
    if not (Path(local) / "MLmodel").is_file():
        raise ValueError(f"{uri}: not a model folder (no MLmodel file) in {store}")
    return model_file(Path(local))


@contextlib.contextmanager
def resolved_models(args: argparse.Namespace) -> Iterator[None]:
    """Replace a model URI among the command's arguments by a local copy, for the
    command's duration."""
    names = [n for n in MODEL_ARGUMENTS if is_model_uri(getattr(args, n, None) or "")]
    if not names:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="yct-model-") as folder:
        for name in names:
            # Path() folds the URI's '//' (none in runs:/ or models:/ URIs)
            uri = str(getattr(args, name))
            local = download(uri, getattr(args, "mlflow_uri", None), Path(folder) / name)
            original = getattr(args, name)
            setattr(args, name, type(original)(local) if isinstance(original, Path) else str(local))
        yield
