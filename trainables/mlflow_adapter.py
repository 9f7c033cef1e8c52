"""Every MLflow call of the project, in one module: a study's parent run and its trials.

One parent run per study (the search-space YAML, the search settings, at the end the front,
its hypervolume and reference point), one nested run per trial (its parameters, every
reported metric by step, its error if it failed, its checkpoint), tagged
``method``/``model``/``dataset``/``study``; front members get ``pareto=true``. Uses the
explicit client API (no global active run), so the driver can track many trials at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"


def _flat(config: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v)[:500] for k, v in config.items()}


class StudyTracker:
    """Parent run of one study; ``trial_*`` methods manage its nested runs."""

    def __init__(self, tracking_uri: str, study: str, *, tags: Mapping[str, str],
                 params: Mapping[str, Any], space_text: str) -> None:  # fmt: skip
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.tracking_uri = tracking_uri
        experiment = self.client.get_experiment_by_name(study)
        self.experiment_id = (experiment.experiment_id if experiment is not None
                              else self.client.create_experiment(study))  # fmt: skip
        self.study, self.tags = study, dict(tags)
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{study} (study)",
            tags={**self.tags, "study": study, "kind": "study"},
        )
        self.parent = run.info.run_id
        for key, value in _flat(params).items():
            self.client.log_param(self.parent, key, value)
        self.client.log_text(self.parent, space_text, "search_space.yaml")
        self.trials: dict[str, str] = {}

    def trial_started(self, trial_id: str, config: Mapping[str, Any]) -> None:
        if trial_id in self.trials:  # a retried trial keeps its run
            return
        method = str(config.get("method", self.tags.get("method", "")))
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{self.study}/{trial_id}",
            tags={**self.tags, "method": method, "study": self.study, "trial_id": trial_id,
                  "mlflow.parentRunId": self.parent, "kind": "trial"},
        )  # fmt: skip
        self.trials[trial_id] = run.info.run_id
        for key, value in _flat(config).items():
            self.client.log_param(run.info.run_id, key, value)

    def trial_result(self, trial_id: str, metrics: Mapping[str, Any], step: int) -> None:
        from mlflow.entities import Metric

        run = self.trials.get(trial_id)
        if run is None:
            return
        now = 0
        values = [
            Metric(k, float(v), now, step)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ]
        if values:
            self.client.log_batch(run, metrics=values)

    def trial_ended(self, trial_id: str, *, error: str | None = None,
                    checkpoint: Path | None = None) -> None:  # fmt: skip
        run = self.trials.get(trial_id)
        if run is None:
            return
        if error:
            self.client.set_tag(run, "error", error[:5000])
        if checkpoint is not None and checkpoint.is_dir():
            self.client.log_artifacts(run, str(checkpoint), "checkpoint")
        self.client.set_terminated(run, "FAILED" if error else "FINISHED")

    def finish(self, front: Sequence[str], *, hypervolume: float,
               reference: Mapping[str, float], artifacts: Sequence[Path] = ()) -> None:  # fmt: skip
        for trial_id in front:
            if trial_id in self.trials:
                self.client.set_tag(self.trials[trial_id], "pareto", "true")
        self.client.log_metric(self.parent, "hypervolume", hypervolume)
        for key, value in reference.items():
            self.client.log_param(self.parent, f"reference.{key}", value)
        self.client.set_tag(self.parent, "front", ",".join(front))
        for path in artifacts:
            self.client.log_artifact(self.parent, str(path))
        self.client.set_terminated(self.parent, "FINISHED")


def load_trial_runs(tracking_uri: str, experiment: str | None) -> list[dict[str, Any]]:
    """Finished trial runs of a study (or of every study) as plain dicts:
    ``{"run_id", "study", "params", "metrics", "tags"}``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            names = sorted(e.name for e in client.search_experiments())
            raise ValueError(f"no MLflow experiment '{experiment}' at {tracking_uri}; "
                             f"experiments: {', '.join(names) or 'none'}")  # fmt: skip
        ids = [found.experiment_id]
    else:
        ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, filter_string="tags.kind = 'trial'", max_results=50_000)
    return [
        {
            "run_id": r.info.run_id,
            "study": r.data.tags.get("study", ""),
            "params": dict(r.data.params),
            "metrics": dict(r.data.metrics),
            "tags": dict(r.data.tags),
        }
        for r in runs
        if r.info.status == "FINISHED"
    ]
