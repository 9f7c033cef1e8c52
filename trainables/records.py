"""What a trial is to the code around it: the record results are read as, and the events the
driver hears (plain types, no Ray: imported by the Ray parts and by MLflow's)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypedDict

# in every trial checkpoint: the model its report measured, without training state (what
# MLflow logs as the trial's model, trainables.logged_model)
MODEL_FILE = "model.pt"
# in the checkpoints of a trial whose architecture the study drew: the cfg it trains
ARCHITECTURE_FILE = "architecture.cfg"


class TrialRecord(TypedDict):
    """A trial run as MLflow keeps it (``mlflow_adapter.load_trial_runs`` makes them)."""

    run_id: str
    study: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    start_time: int  # ms since the epoch: the order the search proposed the trials
    experiment_id: str  # the study's MLflow experiment (links to the run in the UI)


class TrialEvents(Protocol):
    """What the driver hears about trials (the MLflow tracker implements it)."""

    def trial_started(self, trial_id: str, config: Mapping[str, Any]) -> None: ...
    def trial_result(self, trial_id: str, metrics: Mapping[str, Any], step: int) -> None: ...
    def trial_ended(self, trial_id: str, *, error: str | None = None,
                    checkpoint: Path | None = None,
                    stopped: Mapping[str, Any] | None = None) -> None: ...  # fmt: skip
    def draws_rejected(self, counts: Mapping[str, int], *, gave_up: str | None) -> None: ...
