"""Every MLflow tracking call of the project, in one module: a study's parent run and its
trials (the model flavor is :mod:`trainables.detector_model`, URIs on the command line
:mod:`yct.model_uri`).

One parent run per study (the search-space YAML, the search settings, at the end the front,
its hypervolume, reference point, plot and table), one nested run per trial (its parameters,
every reported metric by step, its error if it failed, its logged model and per-class AP),
tagged ``method``/``model``/``dataset``/``study``; front members get ``pareto=true``, every
other trial ``pareto=false``. Uses the
explicit client API (no global active run), so the driver can track many trials at once.

With a SQLite store, artifacts go to ``mlartifacts/`` beside the database file (MLflow's own
default is ``./mlruns`` in whatever directory the driver happens to run in).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainables.records import ARCHITECTURE_FILE, TrialRecord
from yolo.metrics import names as m

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
PER_CLASS_AP = "per_class_ap.json"  # written by a trial beside its checkpoint files
MODEL_ID_TAG = "model_id"  # a trial run's logged model (models:/<id>)
START_PREFIX = "start."  # the parent run's metrics of the study's starting (dense) model
REFERENCE_PREFIX = "reference."  # the parent run's params: the hypervolume reference


def study_start(data: Any) -> tuple[dict[str, float], dict[str, float]]:
    """(start metrics, reference) from a parent run's data (empty if it has none)."""
    start = {k.removeprefix(START_PREFIX): float(v) for k, v in data.metrics.items()
             if k.startswith(START_PREFIX)}  # fmt: skip
    reference = {k.removeprefix(REFERENCE_PREFIX): float(v) for k, v in data.params.items()
                 if k.startswith(REFERENCE_PREFIX)}  # fmt: skip
    return start, reference


def load_study_start(tracking_uri: str, experiment: str) -> tuple[dict[str, float],
                                                                    dict[str, float]]:  # fmt: skip
    """The newest study run of ``experiment``: its start metrics and reference (or empty)."""
    client = _client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return {}, {}
    parents = client.search_runs(
        [found.experiment_id], filter_string="tags.kind = 'study'",
        order_by=["attributes.start_time DESC"], max_results=1,
    )  # fmt: skip
    return study_start(parents[0].data) if parents else ({}, {})


def _flat(config: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v)[:500] for k, v in config.items()}


def dataset_record(spec_path: str) -> dict[str, str]:
    """The study's data as MLflow shows a dataset (the runs table's "Datasets used"): the
    spec's name, a digest of its text, its path, the class names as its schema and what it
    holds (format, classes, split entries) as its profile. Plain strings, so the tracker
    that holds it pickles."""
    from yolo.data.spec import load_spec

    path = Path(spec_path).resolve()
    spec = load_spec(path)
    profile = {"format": spec.format, "classes": len(spec.names),
               "splits": {k: list(v) for k, v in spec.splits.items()}}  # fmt: skip
    return {
        "name": path.parent.name if path.stem == "data" else path.stem,
        "digest": hashlib.sha256(path.read_bytes()).hexdigest()[:8],
        "source_type": "local",
        "source": str(path),
        "schema": json.dumps({"names": list(spec.names)}),
        "profile": json.dumps(profile),
    }


def artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """``mlartifacts/<experiment>`` beside a SQLite database; None (the server decides)
    for any other store."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///")).resolve()
    return (database.parent / "mlartifacts" / experiment).as_uri()


def wait_for_server(tracking_uri: str, timeout_s: float = 120.0) -> None:
    """An http(s) tracking server may still be starting (on a fresh cluster head it takes
    tens of seconds): wait for its /health, then fail with one line naming the URI."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=5):
                return
        except (urllib.error.URLError, OSError) as error:
            if time.monotonic() > deadline:
                raise ConnectionError(f"MLflow server {tracking_uri} not reachable after "
                                      f"{timeout_s:.0f} s ({error})") from None  # fmt: skip
            time.sleep(1.0)


def _client(tracking_uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def prepare_store(tracking_uri: str) -> None:
    """Open the tracking store once, so that a fresh SQLite file gets its tables now (MLflow
    migrates a new database in seconds; an existing one opens in milliseconds)."""
    wait_for_server(tracking_uri)
    _client(tracking_uri).search_experiments(max_results=1)


_NOT_DRAWN = frozenset({"model", "data", "method"})


def _short_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2g}"
    return str(value)


def run_name(method: str, config: Mapping[str, Any], trial_id: str, *,
             fixed: frozenset[str] = frozenset()) -> str:  # fmt: skip
    """``<method>-<what it drew>-<trial id>``, e.g. ``lth-global-rate=0.62-rounds=2-
    7f3a1_00002``: choices as themselves, numbers with their key, so a run is recognisable
    in a list without opening it; the Tune trial id, the one id the plot and the front table
    use too, ends it."""
    drawn = []
    for key in sorted(k for k in config if k not in fixed and k not in _NOT_DRAWN):
        value = config[key]
        if isinstance(value, (dict, list, tuple)) or value is None:
            continue
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        name = key.split(".")[-1]
        drawn.append(f"{name}={_short_value(value)}" if is_number else str(value))
    middle = "-".join(drawn)
    middle = middle if len(middle) <= 60 else middle[:59] + "…"
    return "-".join(part for part in (method, middle, trial_id) if part)


def method_prefixed(method: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with the method's own settings named ``<method>.<key>`` (as a
    multi-method study's already are), so the same parameter has the same name in every
    study and fronts of different studies line up in a compare view."""
    from yolo.compress.registry import get_method

    try:
        own = {setting.name for setting in get_method(method).settings}
    except ValueError:  # not a method of the registry (a test's own trainable)
        return dict(config)
    return {f"{method}.{k}" if k in own else k: v for k, v in config.items()}


class StudyTracker:
    """Parent run of one study; ``trial_*`` methods manage its nested runs.

    Picklable: Ray keeps the driver's callbacks in the study's state, and a resumed study
    reconnects to the same parent run and finds its trials' runs again.
    """

    def __init__(self, tracking_uri: str, study: str, *, tags: Mapping[str, str],
                 params: Mapping[str, Any], space_text: str, keep: str = "front",
                 dataset: Mapping[str, str] | None = None,
                 resume: bool = False) -> None:  # fmt: skip
        wait_for_server(tracking_uri)
        self.client = _client(tracking_uri)
        self.tracking_uri, self.study, self.tags = tracking_uri, study, dict(tags)
        self.keep = keep  # the trials whose models stay logged once the study has ended
        self.dataset = dict(dataset) if dataset else None  # :func:`dataset_record`
        self.steps: dict[str, int] = {}  # a trial's latest step: where its model is logged
        self.best_steps: dict[str, int] = {}  # the map50_best_step tag each trial has now
        self.trials: dict[str, str] = {}  # Tune trial id -> MLflow run id
        self.start: dict[str, float] = {}  # the starting (dense) model's metrics
        self.reference: dict[str, float] = {}  # the hypervolume's reference point
        # what every trial shares: a run name shows only what its trial drew
        self.fixed = frozenset(k.removeprefix("fixed.") for k in params if k.startswith("fixed."))
        experiment = self.client.get_experiment_by_name(study)
        if resume:
            parents = [] if experiment is None else self.client.search_runs(
                [experiment.experiment_id], filter_string="tags.kind = 'study'",
                order_by=["attributes.start_time DESC"], max_results=1)  # fmt: skip
            if not parents:
                raise FileNotFoundError(
                    f"no MLflow study run '{study}' to resume at {tracking_uri}"
                )
            self.experiment_id, self.parent = experiment.experiment_id, parents[0].info.run_id
            self.client.update_run(self.parent, status="RUNNING")
            self.trials = self._find_trials()
            self.start, self.reference = study_start(parents[0].data)
            return
        if experiment is None:
            location = artifact_location(tracking_uri, study)
            self.experiment_id = self.client.create_experiment(study, artifact_location=location)
        else:
            self.experiment_id = experiment.experiment_id
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{study} (study)",
            tags={**self.tags, "study": study, "kind": "study"},
        )
        self.parent = run.info.run_id
        self._log_params(self.parent, params)
        self._log_dataset(self.parent)
        self.client.log_text(self.parent, space_text, "search_space.yaml")
        self.trials = {}

    def record_start(self, start: Mapping[str, float], reference: Mapping[str, float]) -> None:
        """The starting model's metrics (``start.<metric>``) and the hypervolume reference
        (``reference.<metric>`` params) on the parent run, once, before any trial; and the
        starting model as a child run of its own (``role=baseline``, the trials' metric
        names), so a compare view shows beside the trials what compression cost."""
        from mlflow.entities import Metric, Param

        self.start, self.reference = dict(start), dict(reference)
        stamp = int(time.time() * 1000)
        self.client.log_batch(
            self.parent,
            metrics=[Metric(f"{START_PREFIX}{k}", float(v), stamp, 0) for k, v in start.items()],
            params=[Param(f"{REFERENCE_PREFIX}{k}", repr(float(v))) for k, v in reference.items()],
        )
        baseline = self.client.create_run(
            self.experiment_id,
            run_name=f"baseline-{self.tags.get('model', 'start')}",
            tags={**self.tags, "study": self.study, "kind": "baseline", "role": "baseline",
                  "mlflow.parentRunId": self.parent},
        )  # fmt: skip
        self.client.log_batch(
            baseline.info.run_id,
            metrics=[Metric(k, float(v), stamp, 0) for k, v in start.items()],
        )
        self._log_dataset(baseline.info.run_id, context="evaluation")
        self.client.set_terminated(baseline.info.run_id, "FINISHED")

    def _find_trials(self) -> dict[str, str]:
        query = f"tags.mlflow.parentRunId = '{self.parent}' and tags.kind = 'trial'"
        runs = self.client.search_runs([self.experiment_id], max_results=50_000,
                                       filter_string=query)  # fmt: skip
        return {r.data.tags["trial_id"]: r.info.run_id for r in runs if "trial_id" in r.data.tags}

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("client", "trials")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a tracker pickled by a study of an earlier version: the settings it did not have
        state = {
            "keep": "front",
            "steps": {},
            "best_steps": {},
            "fixed": frozenset(),
            "dataset": None,
            **state,
        }
        self.__dict__.update(state)
        self.client = _client(self.tracking_uri)
        self.trials = self._find_trials()

    def trial_started(self, trial_id: str, config: Mapping[str, Any]) -> None:
        if trial_id in self.trials:  # a retried or resumed trial keeps its run
            return
        from yolo.metrics.names import units

        method = str(config.get("method", self.tags.get("method", "")))
        unit_tags = {f"unit.{k}": v for k, v in units(dict(config)).items()}
        run = self.client.create_run(
            self.experiment_id,
            run_name=run_name(method, config, trial_id, fixed=self.fixed),
            tags={**self.tags, "method": method, "study": self.study, "trial_id": trial_id,
                  "mlflow.parentRunId": self.parent, "kind": "trial", **unit_tags},
        )  # fmt: skip
        self.trials[trial_id] = run.info.run_id
        self._log_params(run.info.run_id, method_prefixed(method, config))
        self._log_dataset(run.info.run_id)

    def _log_dataset(self, run: str, context: str = "training") -> None:
        """The study's data as the run's input (MLflow's ``mlflow.data.context`` tag says
        what the run did with it)."""
        if self.dataset is None:
            return
        from mlflow.entities import Dataset, DatasetInput, InputTag

        tag = InputTag("mlflow.data.context", context)
        self.client.log_inputs(run, datasets=[DatasetInput(Dataset(**self.dataset), [tag])])

    def _log_params(self, run: str, params: Mapping[str, Any]) -> None:
        """One batch (Tune waits for the driver's callbacks before it starts a trial)."""
        from mlflow.entities import Param

        flat = [Param(k, v) for k, v in _flat(params).items()]
        for start in range(0, len(flat), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(run, params=flat[start : start + 100])

    def trial_result(self, trial_id: str, metrics: Mapping[str, Any], step: int) -> None:
        from mlflow.entities import Metric

        run = self.trials.get(trial_id)
        if run is None:
            return
        self.steps[trial_id] = step
        metrics = dict(metrics)
        best_step = metrics.pop(m.MAP50_BEST_STEP, None)  # a tag: where map50_best came
        values = [
            Metric(k, float(v), 0, step)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ]
        if values:
            self.client.log_batch(run, metrics=values)
        if best_step is not None and self.best_steps.get(trial_id) != int(best_step):
            self.best_steps[trial_id] = int(best_step)
            self.client.set_tag(run, m.MAP50_BEST_STEP, str(int(best_step)))

    def trial_ended(self, trial_id: str, *, error: str | None = None,
                    checkpoint: Path | None = None,
                    stopped: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        """Close the trial's run: FAILED with its error, else FINISHED; a trial the
        scheduler stopped early is FINISHED (what it measured counts) and tagged
        ``trial_status=stopped`` with the reason (moasha, budget) and the rung; one stopped
        before its method's first delivering report has no model figures and logs no model
        (tag ``delivered``)."""
        run = self.trials.get(trial_id)
        if run is None:
            return
        if error:
            self.client.set_tag(run, "error", error[:5000])
        status = "failed" if error else ("stopped" if stopped else "completed")
        self.client.set_tag(run, "trial_status", status)
        nothing_delivered = stopped is not None and stopped.get("deliverable") is False
        if stopped and not error:
            self.client.set_tag(run, "stopped_reason", str(stopped.get("reason", "")))
            if stopped.get("rung") is not None:
                self.client.set_tag(run, "stopped_at_rung", str(stopped["rung"]))
            if nothing_delivered:  # its model figures never reached the run: off the front
                self.client.set_tag(run, "delivered", "nothing: stopped before the method's "
                                    "first delivering report")  # fmt: skip
        if checkpoint is not None and checkpoint.is_dir():
            for name in (PER_CLASS_AP, ARCHITECTURE_FILE):
                if (checkpoint / name).is_file():
                    self.client.log_artifact(run, str(checkpoint / name))
            if not error and not nothing_delivered and self.keep != "none":
                self._log_model(run, trial_id, checkpoint)
        self.client.set_terminated(run, "FAILED" if error else "FINISHED")

    def draws_rejected(self, counts: Mapping[str, int], *, gave_up: str | None) -> None:
        """Draws the space's constraints rejected at sampling, on the parent run: metrics
        ``rejected_draws`` (all) and ``rejected_draws.<constraint>``; ``search_stopped`` tags
        why the searcher stopped launching trials, if it did."""
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric("rejected_draws", float(sum(counts.values())), stamp, 0)]
        metrics += [Metric(f"rejected_draws.{k}", float(v), stamp, 0) for k, v in counts.items()]
        self.client.log_batch(self.parent, metrics=metrics)
        if gave_up:
            self.client.set_tag(self.parent, "search_stopped", gave_up)

    def _log_model(self, run: str, trial_id: str, checkpoint: Path) -> None:
        """The model the trial's last report measured as the run's logged model (``runs:/<run
        id>/model``, :mod:`trainables.detector_model`); its training state stays in Tune's
        checkpoint storage, not copied here."""
        import tempfile

        from mlflow.entities import LoggedModelOutput

        from trainables.detector_model import write_model_folder
        from trainables.records import MODEL_FILE
        from yolo.compress.delivery import INT8_FILE, ONNX_FILE

        source = checkpoint / MODEL_FILE
        if not source.is_file():
            return
        delivered = next((checkpoint / name for name in (INT8_FILE, ONNX_FILE)
                          if (checkpoint / name).is_file()), None)  # fmt: skip
        step = self.steps.get(trial_id, 0)
        with tempfile.TemporaryDirectory() as folder:
            about = {"trial_id": trial_id, "study": self.study}
            local = write_model_folder(Path(folder) / "model", source, delivered=delivered,
                                       metadata=about)  # fmt: skip
            logged = self.client.create_logged_model(
                self.experiment_id, name="model", source_run_id=run, model_type="yolo-detector",
                tags={"trial_id": trial_id, "study": self.study},
            )  # fmt: skip
            self.client.log_model_artifacts(logged.model_id, str(local))
        self.client.finalize_logged_model(logged.model_id, "READY")
        self.client.log_outputs(run, [LoggedModelOutput(logged.model_id, step)])
        self.client.set_tag(run, MODEL_ID_TAG, logged.model_id)

    def _drop_models(self, runs: Sequence[Any]) -> None:
        """``keep: front``: the logged models of the trials off the front are deleted, their
        files too (the runs keep their metrics and say where the model went)."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        for run in runs:
            model_id = run.data.tags.get(MODEL_ID_TAG)
            if not model_id:
                continue
            logged = self.client.get_logged_model(model_id)
            repository = get_artifact_repository(
                logged.artifact_location, tracking_uri=self.tracking_uri
            )
            repository.delete_artifacts()
            self.client.delete_logged_model(model_id)
            self.client.set_tag(run.info.run_id, MODEL_ID_TAG, "deleted (keep: front)")

    def finish(self, front_runs: Sequence[str], *, hypervolume: float,
               reference: Mapping[str, float], artifacts: Sequence[Path] = ()) -> None:  # fmt: skip
        """Tag the front's runs (by run id), log the hypervolume, reference and files.

        Every trial Tune knows has ended by now; a trial run still RUNNING belonged to a
        trial the driver had started but not yet saved in the study's state when it died
        (Tune saves that state every ~10 s); the resumed search drew it again under a new
        id, so the lost run is closed as KILLED with a ``lost`` tag, not left dangling."""
        for run in self.client.search_runs(
            [self.experiment_id], max_results=50_000,
            filter_string=f"tags.mlflow.parentRunId = '{self.parent}' and "
                          "attributes.status = 'RUNNING'",
        ):  # fmt: skip
            self.client.set_tag(run.info.run_id, "lost", "driver died before Tune saved it")
            self.client.set_terminated(run.info.run_id, "KILLED")
        front = set(front_runs)
        off_front = []
        for run in self.client.search_runs(
            [self.experiment_id],
            max_results=50_000,
            filter_string=f"tags.mlflow.parentRunId = '{self.parent}' and tags.kind = 'trial'",
        ):  # every trial says whether it is on the front (so "not on it" can be filtered);
            # a resumed study recomputes its front
            on_front = "true" if run.info.run_id in front else "false"
            if run.data.tags.get("pareto") != on_front:
                self.client.set_tag(run.info.run_id, "pareto", on_front)
            if on_front == "false":
                off_front.append(run)
        if self.keep == "front":
            self._drop_models(off_front)
        self.client.log_metric(self.parent, "hypervolume", hypervolume)
        if not self.reference:  # a study from before the fixed reference: the front's own
            for key, value in reference.items():
                self.client.log_param(self.parent, f"{REFERENCE_PREFIX}{key}", value)
        trial_ids = {run: tid for tid, run in self.trials.items()}
        self.client.set_tag(self.parent, "front", ",".join(trial_ids.get(r, r) for r in front_runs))
        for path in artifacts:
            self.client.log_artifact(self.parent, str(path), "pareto")
            if path.name == "front.md":  # the study's description in the UI: its front table
                self.client.set_tag(self.parent, "mlflow.note.content", path.read_text())
        self.client.set_terminated(self.parent, "FINISHED")

    def abort(self, error: str, *, interrupted: bool = False) -> None:
        """The study stopped before its end: the parent run ends FAILED (KILLED on Ctrl-C)
        with the error as a tag, and its trial runs still open end KILLED."""
        for run in self.client.search_runs(
            [self.experiment_id], max_results=50_000,
            filter_string=f"tags.mlflow.parentRunId = '{self.parent}' and "
                          "attributes.status = 'RUNNING'",
        ):  # fmt: skip
            self.client.set_terminated(run.info.run_id, "KILLED")
        self.client.set_tag(self.parent, "error", error[:5000] or "interrupted")
        self.client.set_terminated(self.parent, "KILLED" if interrupted else "FAILED")


def load_trial_runs(tracking_uri: str, experiment: str | None, *,
                    parent: str | None = None) -> list[TrialRecord]:  # fmt: skip
    """Finished trial runs of a study (or of every study; or of one study run ``parent``)
    as plain dicts: ``{"run_id", "study", "params", "metrics", "tags", "start_time"}``
    (start in ms since the epoch, the order the search proposed them)."""
    client = _client(tracking_uri)
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            names = sorted(e.name for e in client.search_experiments())
            raise ValueError(f"no MLflow experiment '{experiment}' at {tracking_uri}; "
                             f"experiments: {', '.join(names) or 'none'}")  # fmt: skip
        ids = [found.experiment_id]
    else:
        ids = [e.experiment_id for e in client.search_experiments()]
    query = "tags.kind = 'trial'"
    if parent is not None:
        query += f" and tags.mlflow.parentRunId = '{parent}'"
    runs = client.search_runs(ids, filter_string=query, max_results=50_000)
    return [
        TrialRecord(
            run_id=r.info.run_id,
            study=r.data.tags.get("study", ""),
            params=dict(r.data.params),
            metrics=dict(r.data.metrics),
            tags=dict(r.data.tags),
            start_time=r.info.start_time,
            experiment_id=r.info.experiment_id,
        )
        for r in runs
        if r.info.status == "FINISHED"
    ]
