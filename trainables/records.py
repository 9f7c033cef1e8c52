"""What a finished trial is to everything that reads results: one small record type."""

from __future__ import annotations

from typing import TypedDict


class TrialRecord(TypedDict):
    """A trial run as MLflow keeps it (``mlflow_adapter.load_trial_runs`` makes them)."""

    run_id: str
    study: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    start_time: int  # ms since the epoch: the order the search proposed the trials
