"""The one trainable every study runs: a trial of any registered method under Ray Tune.

It restores the trial's working files from Tune's checkpoint (when the trial is restarted),
builds the trial's settings from the flat config (:func:`yolo.compress.trial.build_trial`,
the same checks the search-space loader ran), and runs the method with a reporter among its
callbacks. Each report adds what the delivered model costs (:func:`model_costs` on the
model with the masks it would deliver) and registers a checkpoint of the method's resume
files and deliverable. The last report of a trial is measured on its deliverable.

In a multi-method study the config carries ``method`` and ``<method>.<key>`` keys; a fixed
setting that only another method of the study takes is left out.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from search_spaces.architecture import split_drawn, trial_cfg
from search_spaces.optuna_space import method_config
from trainables import ray_adapter
from trainables.mlflow_adapter import PER_CLASS_AP
from trainables.nested_runs import nested_run_marks
from trainables.records import ARCHITECTURE_FILE, MODEL_FILE
from trainables.scheduling import delivers
from trainables.tally import TALLY_FILE, Tally
from yolo.callbacks import Callback
from yolo.compress.delivery import INT8_FILE, ONNX_FILE, deliver
from yolo.compress.registry import get_method
from yolo.compress.trial import Trial, build_trial
from yolo.io import save_checkpoint
from yolo.metrics import names as m
from yolo.metrics.profile import model_costs
from yolo.zoo import resolve_cfg


class Reporter(Callback):
    """Hands each report of the engine to the trainable."""

    def __init__(self, trainable: StudyTrainable) -> None:
        self.trainable = trainable

    def on_report(self, trainer: Any, metrics: dict[str, float]) -> None:
        self.trainable.report(trainer, dict(metrics))


class StudyTrainable:
    """A Ray Tune function trainable over the methods of a study."""

    def __init__(self, methods: tuple[str, ...] | str) -> None:
        self.methods = (methods,) if isinstance(methods, str) else tuple(methods)
        for name in self.methods:
            get_method(name)  # unknown names fail here, before any trial
        self.__name__ = "+".join(self.methods)  # the trial names Ray shows
        self.work = Path("runs/trial")
        self.trial: Trial | None = None
        self.restored = False
        self.started = time.perf_counter()
        self.context: dict[str, float] = {}  # added to every report
        # report number -> the cheaper run it ends, as config keys (trainables.nested_runs)
        self.nested: dict[int, dict[str, Any]] = {}
        self.last_report_s = 0.0
        self._cost_key: tuple | None = None
        self._costs: dict[str, float] = {}
        self.tally = Tally()  # by this trial, across restarts (in its checkpoints)

    def __call__(self, config: dict[str, Any]) -> None:
        name, values = method_config(config, self.methods)
        method = get_method(name)
        out = values.pop("out", "runs/trial")
        self.started = time.perf_counter()
        self.restored, self.context = False, {}  # a reused worker starts each trial afresh
        self.last_report_s, self._cost_key, self.tally = 0.0, None, Tally()
        scratch = ray_adapter.scratch_dir()
        self.work = (scratch or Path(out)) / "work"
        drawn = split_drawn(values)
        architecture = None
        if drawn:  # the study draws the architecture: the trial trains the cfg it makes
            architecture = trial_cfg(resolve_cfg(values["model"]), None, drawn)
            values["model"] = str(self.work / ARCHITECTURE_FILE)
        self.trial = build_trial(method, values, out=str(self.work), where="trial config")
        self.nested = nested_run_marks(self.trial, config)
        if scratch is not None:  # a trial starts from its checkpoint or from nothing
            shutil.rmtree(scratch, ignore_errors=True)
        self.work.mkdir(parents=True, exist_ok=True)
        if architecture is not None:
            (self.work / ARCHITECTURE_FILE).write_text(architecture, encoding="utf-8")
        with ray_adapter.restored_checkpoint() as restored:
            if restored is not None:
                shutil.copytree(restored, self.work, dirs_exist_ok=True)
                self.restored = True
        self.tally = Tally.load(self.work)
        self.context["restored"] = float(self.restored)
        # the scheduler's yardstick: a report at this count is the trial's last
        self.context[m.PLANNED_REPORTS] = float(method.reports(self.trial.train, self.trial.config))
        # and where its MOASHA rungs start counting (the first report that tells anything)
        self.context[m.FIRST_TELLING_REPORT] = float(
            method.first_telling_report(self.trial.train, self.trial.config)
        )
        # and the first whose figures are of a model it could deliver (CS: its ticket)
        self.context[m.FIRST_DELIVERING_REPORT] = float(
            method.first_delivering_report(self.trial.train, self.trial.config)
        )
        try:
            self.execute(self.trial)
        finally:  # every report's files reached storage as checkpoints
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

    def execute(self, trial: Trial) -> None:
        """Run (or resume, from the files in ``self.work``) the trial's method."""
        trial.method.run(trial.train, trial.config, callbacks=[Reporter(self)], progress=False)

    # ------------------------------------------------------------------ reporting

    def cost_metrics(self, trainer: Any) -> dict[str, float]:
        """What the model this run would deliver now costs (:func:`model_costs`)."""
        assert self.trial is not None
        model, masks = trainer.eval_model, trainer.delivered_masks()
        size = trainer.config.img_size
        # The figures depend only on the architecture and which weights are zero: while
        # that pattern holds (dense training, an LTH round), the last figures stand.
        with torch.no_grad():
            params = dict(model.named_parameters())
            key = (size, tuple(sorted((name, int(mask.sum())) for name, mask in masks.items())),
                   tuple(int(torch.count_nonzero(p)) for p in params.values()))  # fmt: skip
        if key != self._cost_key:
            costs = self.trial.costs
            self._cost_key, self._costs = key, model_costs(
                model, size, masks, latency_runs=costs.latency_runs,
                latency_runtime=costs.latency_runtime, latency_threads=costs.latency_threads,
            )  # fmt: skip
        return dict(self._costs)

    def delivered_figures(self, metrics: dict[str, float]) -> dict[str, float]:
        """At the trial's last report, the ONNX deliverable the study asked for
        (:func:`deliver`) and the figures measured on it; nothing before."""
        assert self.trial is not None
        trial = self.trial
        if self.tally.reports != self.context[m.PLANNED_REPORTS]:
            return {}
        checkpoint = self.work / trial.method.deliverable(trial.train, trial.config)
        return deliver(checkpoint, self.work, trial.export, trial.train,
                       float_map50=metrics.get(m.MAP50),
                       latency_threads=trial.costs.latency_threads,
                       latency_runs=trial.costs.latency_runs)  # fmt: skip

    def report(self, trainer: Any, metrics: dict[str, float]) -> None:
        started = time.perf_counter()
        self.tally.count(metrics)
        costs = {**self.cost_metrics(trainer), **self.delivered_figures(metrics)}
        result = {
            **self.context,
            **metrics,
            **costs,  # an INT8 delivery's mAP50 replaces the float model's
            "time_total_s": time.perf_counter() - self.started,
            # where a trial's time goes besides training (bench/tune_overhead.py adds them up)
            m.COST_TIME_S: time.perf_counter() - started,
            m.REPORT_TIME_S: self.last_report_s,
        }
        deliverable = delivers(self.tally.reports, self.context[m.FIRST_DELIVERING_REPORT])
        result.update(self.tally.figures(result, deliverable=deliverable))
        self.tally.save(self.work)
        if not ray_adapter.in_session():
            return
        evaluation = getattr(trainer, "last_evaluation", None)
        if evaluation is not None:  # per-class AP of this epoch, shipped with the checkpoint
            (self.work / PER_CLASS_AP).write_text(json.dumps(evaluation.result.as_dict()))
        # the model this report measured, without training state: what MLflow logs as the
        # trial's model when it ends here (finished, or stopped early at this report)
        assert self.trial is not None
        about = {**trainer.metadata(int(metrics.get(m.EPOCH, 0)), result),
                 "method": self.trial.method.name, "report": self.tally.reports}  # fmt: skip
        save_checkpoint(self.work / MODEL_FILE, trainer.eval_model,
                        masks=trainer.delivered_masks(), metadata=about)  # fmt: skip
        snapshot = self.snapshot()
        try:
            marks = {}  # the whole of a cheaper run here: for the sampler (trainables.nested_runs)
            if self.tally.reports in self.nested:
                marks[m.NESTED_RUN] = dict(self.nested[self.tally.reports])
            ray_adapter.report({**result, **marks}, snapshot)  # Tune persists it before returning
        finally:
            shutil.rmtree(snapshot, ignore_errors=True)
            self.last_report_s = time.perf_counter() - started - result[m.COST_TIME_S]

    def checkpoint_files(self) -> list[Path]:
        """The method's resume files, its deliverable once written (before the last
        report), the per-class AP."""
        assert self.trial is not None
        trial = self.trial
        delivered = Path(trial.method.deliverable(trial.train, trial.config))
        exported = [Path(ONNX_FILE), Path(INT8_FILE)]  # where the study asked for them
        return [*trial.method.resume_files(self.work), delivered, Path(PER_CLASS_AP),
                Path(TALLY_FILE), Path(MODEL_FILE), Path(ARCHITECTURE_FILE),
                *exported]  # fmt: skip

    def snapshot(self) -> Path:
        """The checkpoint files in a fresh folder that Tune takes over: hard links where the
        file system allows (the engine replaces checkpoint files atomically, so a link keeps
        this epoch's version), else copies."""
        target = self.work.parent / "snapshots" / f"{time.time_ns()}"
        for relative in dict.fromkeys(self.checkpoint_files()):
            source = self.work / relative
            if source.is_file():
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, target / relative)
                except OSError:
                    shutil.copy2(source, target / relative)
        target.mkdir(parents=True, exist_ok=True)
        return target
