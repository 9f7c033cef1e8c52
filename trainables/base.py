"""The template trainable: the loop, timing, metrics, checkpoints; a method adds what differs.

A trainable is a callable class that Ray Tune runs as a function trainable. ``__call__``
restores the trial's working files from Tune's checkpoint (if the trial is restarted),
builds the :class:`~yolo.train_config.TrainConfig`, and hands over to :meth:`execute`, which
a method implements by driving the engine with :meth:`reporter` among its callbacks. The
reporter adds the cost metrics every trial reports (``macs``, ``params``, ``storage_mb``,
``sparsity``, ``latency_ms`` …) and reports them to Tune with a checkpoint made of the
method's :meth:`checkpoint_files`.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from trainables import ray_adapter
from trainables.mlflow_adapter import PER_CLASS_AP
from yolo.callbacks import Callback
from yolo.compress.masks import apply_masks, sparsity
from yolo.data.transforms import AugmentConfig
from yolo.metrics import names as m
from yolo.metrics.profile import (
    count_macs,
    count_nonzero_params,
    measure_latency_ms,
    sparse_storage_mb,
)
from yolo.train_config import Hyp, TrainConfig

# config keys every trainable accepts, with their types (bool is checked before int)
COMMON_KEYS: dict[str, type] = {
    "model": str,
    "data": str,
    "width": float,
    "img_size": int,
    "epochs": int,
    "batch_size": int,
    "accumulate": int,
    "lr0": float,
    "lrf": float,
    "schedule": str,
    "momentum": float,
    "weight_decay": float,
    "warmup_epochs": float,
    "warmup_min_iters": int,
    "mosaic": float,
    "seed": int,
    "workers": int,
    "cache": bool,
    "metric": str,
    "device": str,
    "weights": str,
    "latency_runs": int,
    "out": str,
}
_HYP_KEYS = ("lr0", "lrf", "schedule", "momentum", "weight_decay", "warmup_epochs",
             "warmup_min_iters")  # fmt: skip


def check_config(config: Mapping[str, Any], allowed: Mapping[str, type], where: str) -> None:
    """Unknown keys and wrong types are one-line errors naming the key and what is allowed."""
    for key, value in config.items():
        if key not in allowed:
            raise ValueError(
                f"{where}: unknown parameter '{key}'; allowed: {', '.join(sorted(allowed))}"
            )
        expected = allowed[key]
        ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if expected is tuple and isinstance(value, list):
            ok = True
        if not ok:
            raise ValueError(f"{where}: {key}: expected {expected.__name__} but got {value!r}")


class Reporter(Callback):
    """Adds cost metrics to each epoch's metrics and hands them to the trainable."""

    def __init__(self, trainable: MethodTrainable) -> None:
        self.trainable = trainable

    def on_report(self, trainer: Any, metrics: dict[str, float]) -> None:
        self.trainable.report(trainer, dict(metrics))


class MethodTrainable(ABC):
    """Base of every method's trainable (registered by name in :mod:`trainables.registry`)."""

    name: ClassVar[str]
    #: the method's own config keys and their types (the search space validates against these)
    method_keys: ClassVar[dict[str, type]] = {}

    def __init__(self) -> None:
        self.__name__ = self.name  # the trial names Ray shows
        self.work = Path("runs/trial")
        self.restored = False
        self.started = time.perf_counter()
        self.config: dict[str, Any] = {}
        self.context: dict[str, float] = {}  # e.g. the current round, added to every report
        self.last_report_s = 0.0
        self._cost_key: tuple | None = None
        self._costs: dict[str, float] = {}

    @classmethod
    def allowed_keys(cls) -> dict[str, type]:
        return {**COMMON_KEYS, **cls.method_keys}

    def __call__(self, config: dict[str, Any]) -> None:
        check_config(config, self.allowed_keys(), f"trainable '{self.name}'")
        self.config = dict(config)
        self.started = time.perf_counter()
        self.restored, self.context = False, {}  # a reused worker starts each trial afresh
        self.last_report_s, self._cost_key = 0.0, None
        scratch = ray_adapter.scratch_dir()
        self.work = (scratch or Path(config.get("out", "runs/trial"))) / "work"
        if scratch is not None:  # a trial starts from its checkpoint or from nothing
            shutil.rmtree(scratch, ignore_errors=True)
        self.work.mkdir(parents=True, exist_ok=True)
        with ray_adapter.restored_checkpoint() as restored:
            if restored is not None:
                shutil.copytree(restored, self.work, dirs_exist_ok=True)
                self.restored = True
        self.context["restored"] = float(self.restored)
        try:
            self.execute(self.train_config(config))
        finally:  # every epoch's files reached storage as checkpoints
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

    def train_config(self, config: Mapping[str, Any]) -> TrainConfig:
        hyp = Hyp(
            **{k: config[k] for k in _HYP_KEYS if k in config},
            augment=AugmentConfig(mosaic=float(config.get("mosaic", 0.0))),
        )
        keys = ("model", "data", "width", "img_size", "epochs", "batch_size", "accumulate",
                "seed", "workers", "cache", "metric", "device", "weights")  # fmt: skip
        settings = {k: config[k] for k in keys if k in config}
        if "model" not in settings or "data" not in settings:
            raise ValueError(f"trainable '{self.name}': 'model' and 'data' are required")
        return TrainConfig(out=str(self.work), hyp=hyp, **settings)

    def method_config(self, cls: type) -> Any:
        """The method's config dataclass from this trial's method keys."""
        values = {k: v for k, v in self.config.items() if k in self.method_keys}
        if "ignored_layers" in values:
            values["ignored_layers"] = tuple(values["ignored_layers"])
        return cls(**values)

    @abstractmethod
    def execute(self, train: TrainConfig) -> None:
        """Run (or resume, from the files in ``self.work``) the method."""

    @abstractmethod
    def checkpoint_files(self) -> list[Path]:
        """Working files (relative to ``self.work``) that let a restarted trial resume."""

    def reporter(self) -> Reporter:
        return Reporter(self)

    # ------------------------------------------------------------------ reporting

    def cost_metrics(self, trainer: Any) -> dict[str, float]:
        """Params, effective MACs (trial size and 416), storage, sparsity, latency."""
        model = trainer.eval_model
        ticket = next((cb.ticket() for cb in trainer.callbacks if hasattr(cb, "ticket")), None)
        if ticket is not None:  # soft masks: what the binary ticket would cost
            model = copy.deepcopy(model)
            for module in model.modules():
                module.__dict__.pop("forward", None)
            apply_masks(model, ticket)
        size = trainer.config.img_size
        # Every figure here depends only on the architecture and which weights are zero:
        # while that pattern holds (dense training, an LTH round), reuse the last figures.
        with torch.no_grad():
            key = (size, tuple(int(torch.count_nonzero(p)) for p in model.parameters()))
        if key == self._cost_key:
            return dict(self._costs)
        runs = int(self.config.get("latency_runs", 3))
        self._cost_key, self._costs = (
            key,
            {
                m.PARAMS: float(count_nonzero_params(model)),
                m.MACS: float(count_macs(model, size).effective),
                m.MACS_416: float(count_macs(model, 416).effective),
                m.STORAGE_MB: sparse_storage_mb(model),
                m.SPARSITY: sparsity(model),
                m.LATENCY_MS: measure_latency_ms(model, size, runs=runs, warmup=1) if runs else 0.0,
            },
        )
        return dict(self._costs)

    def report(self, trainer: Any, metrics: dict[str, float]) -> None:
        started = time.perf_counter()
        costs = self.cost_metrics(trainer)
        if m.SPARSITY in metrics:  # a method that knows its sparsity better (CS) keeps it
            costs.pop(m.SPARSITY)
        result = {
            **costs,
            **self.context,
            **metrics,
            "time_total_s": time.perf_counter() - self.started,
            # where a trial's time goes besides training (bench/tune_overhead.py adds them up)
            m.COST_TIME_S: time.perf_counter() - started,
            m.REPORT_TIME_S: self.last_report_s,
        }
        result.setdefault(m.MAP50, 0.0)
        if not ray_adapter.in_session():
            return
        evaluation = getattr(trainer, "last_evaluation", None)
        if evaluation is not None:  # per-class AP of this epoch, shipped with the checkpoint
            (self.work / PER_CLASS_AP).write_text(json.dumps(evaluation.result.as_dict()))
        snapshot = self.snapshot()
        try:
            ray_adapter.report(result, snapshot)  # Tune persists the folder before returning
        finally:
            shutil.rmtree(snapshot, ignore_errors=True)
            self.last_report_s = time.perf_counter() - started - result[m.COST_TIME_S]

    def snapshot(self) -> Path:
        """The checkpoint files in a fresh folder that Tune takes over: hard links where the
        file system allows (the engine replaces checkpoint files atomically, so a link keeps
        this epoch's version), else copies."""
        target = self.work.parent / "snapshots" / f"{time.time_ns()}"
        for relative in [*self.checkpoint_files(), Path(PER_CLASS_AP)]:
            source = self.work / relative
            if source.is_file():
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, target / relative)
                except OSError:
                    shutil.copy2(source, target / relative)
        target.mkdir(parents=True, exist_ok=True)
        return target
