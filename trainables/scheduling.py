"""How a study spends its compute under Ray Tune: MOASHA early stopping and a budget in reports.

Three Ray parts share one :class:`Ledger`:

- :class:`StudyScheduler` (a Tune scheduler) sees every result first. It books the trial's
  reports against the budget and, with ``scheduler: moasha``, applies the rung rule of
  :mod:`trainables.moasha` on the study's objectives; it stops a trial that ranks below its
  rung's cut, or any trial once the budget is spent.
- :class:`BudgetedLimiter` (the searcher behind ``max_concurrent``) launches no trial once
  the budget is spent, so a study with early stopping and one without get the same compute.
- :class:`Ledger` (a Tune callback) holds the rung records, the reports per trial and who was
  stopped where. Ray saves a callback's state with the study (``get_state``) and restores it
  on ``Tuner.restore``; it saves neither the scheduler's nor this wrapper's, so the state
  lives here and the other two hold the same object (one pickle, ``tuner.pkl``, keeps the
  shared reference).

The budget is counted in reports (``training_iteration``): a report is one fidelity step of
the method's own unit (an epoch for train/KD and within LTH rounds or CS phases; see each
method's ``fidelity``). A trial's spend is its highest report; the study launches none once
the spend reaches the budget and stops the running ones then, so it ends within the budget
plus the reports in flight at that moment (at most ``max_concurrent - 1``).

Stopped trials and Optuna: Optuna raises on ``trial.report`` in multi-objective studies and
its multi-objective samplers (NSGA-II, TPE, GP) ignore PRUNED trials altogether, so a
stopped trial is told to Optuna as COMPLETE with the objectives measured where it stopped
(Ray's ``OptunaSearch`` does exactly that for a scheduler-stopped trial). Those values are
real measurements of the model that trial delivers, and they sit where the rung rule found
them: dominated. The sampler learns that region is poor instead of proposing it again, as it
would if the trial were dropped as PRUNED.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune
from ray.tune.result import AUTO_RESULT_KEYS
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher

from trainables.moasha import Rungs
from yolo.metrics import names as m

if TYPE_CHECKING:
    from trainables.records import TrialEvents

FIDELITY = "training_iteration"  # one report of the trial: its method's fidelity unit
# what a result holds besides the figures of the model: Ray's own bookkeeping (its list),
# the trainable's plumbing, and the platform's timings (Tune's results keep them for
# bench/tune_overhead.py); none of it goes to MLflow, where a trial is compared by its model
BOOKKEEPING = frozenset(AUTO_RESULT_KEYS) | {
    "done", "trial_id", "experiment_tag", "should_checkpoint", "restored", m.PLANNED_REPORTS,
    m.FIRST_TELLING_REPORT, m.FIRST_DELIVERING_REPORT, m.NESTED_RUN,
    m.TRAINED_EPOCHS,  # the step MLflow logs the figures at
    m.COST_TIME_S, m.REPORT_TIME_S, m.EPOCH_TIME_S, m.EVAL_TIME_S, m.TRAIN_IMAGES_PER_S,
    "eval_images_per_s",
    # the YOLO loss's parts: diagnostics of training, kept in Tune's results; MLflow shows
    # their sum (``loss``) and any penalty a method adds, so a trial's compare view stays
    # within 15 figures of its model
    m.LOSS_BOX, m.LOSS_OBJ, m.LOSS_CLS,
}  # fmt: skip


class Ledger(tune.Callback):
    """The study's compute account and rung records (see the module doc)."""

    def __init__(self, rungs: Rungs | None, budget: int | None) -> None:
        self.rungs = rungs
        self.budget = budget
        self.reported: dict[str, int] = {}  # trial id -> highest report
        self.stopped: dict[str, dict[str, Any]] = {}  # trial id -> why and where
        # draws rejected at sampling (trainables.constrained_search): constraint -> count
        self.rejected: dict[str, int] = {}
        self.gave_up: str | None = None  # why the searcher stopped launching trials

    def count_rejection(self, reason: str) -> None:
        """Count a draw that broke ``reason`` (``'max_macs: 5.1e+07 > 4e+07'``)."""
        key = reason.split(":", 1)[0]
        self.rejected[key] = self.rejected.get(key, 0) + 1

    def rejection_summary(self) -> str:
        return ", ".join(f"{key}: {count}" for key, count in sorted(self.rejected.items()))

    @property
    def spent(self) -> int:
        return sum(self.reported.values())

    def exhausted(self) -> bool:
        return self.budget is not None and self.spent >= self.budget

    def get_state(self) -> dict[str, Any]:
        return {
            "records": None if self.rungs is None else self.rungs.records,
            "reported": dict(self.reported),
            "stopped": dict(self.stopped),
            "rejected": dict(self.rejected),
            "gave_up": self.gave_up,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if self.rungs is not None and state.get("records") is not None:
            self.rungs.records = {int(k): dict(v) for k, v in state["records"].items()}
        self.reported = dict(state.get("reported", {}))
        self.stopped = dict(state.get("stopped", {}))
        self.rejected = dict(state.get("rejected", {}))
        self.gave_up = state.get("gave_up")


# the figures of a report that describe its model (accuracy and costs), as opposed to how
# training went (loss, lr, epoch, round): only a deliverable report's reach MLflow
MODEL_FIGURES = (frozenset(m.HIGHER_IS_BETTER) - {m.LOSS}) | {
    m.MACS_416, m.MAP50_BEST, m.MAP50_BEST_STEP}  # fmt: skip


def delivers(report: float, first_delivering: float | None) -> bool:
    """Whether the trial's ``report``-th report is measured on a model it could deliver:
    from its method's first delivering report on. Before it (a CS trial's search epochs) the
    figures are of the soft-gated model, which no file holds: a trial stopped there has
    nothing to show."""
    return int(report) >= int(first_delivering or 1)


def is_deliverable(result: dict[str, Any]) -> bool:
    """:func:`delivers` for a Tune result."""
    return delivers(result.get(FIDELITY, 0), result.get(m.FIRST_DELIVERING_REPORT))


def _objective(result: dict[str, Any], metric: str) -> float:
    """The objective's value in a result; absent or not a number is NaN (ranks last)."""
    value = result.get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


class StudyScheduler(FIFOScheduler):
    """FIFO order, MOASHA stops (when the ledger has rungs) and the budget stop."""

    def __init__(self, ledger: Ledger, metrics: Sequence[str]) -> None:
        super().__init__()
        self.ledger = ledger
        self.metrics = tuple(metrics)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        trial_id = str(trial.trial_id)
        fidelity = int(result.get(FIDELITY, 0))
        ledger = self.ledger
        ledger.reported[trial_id] = max(ledger.reported.get(trial_id, 0), fidelity)
        planned = result.get(m.PLANNED_REPORTS)
        finishing = planned is not None and fidelity >= int(planned)
        if ledger.rungs is not None:  # a trial at its last report is recorded, not stopped
            values = [_objective(result, metric) for metric in self.metrics]
            # rungs count telling reports: those from the method's first telling one on
            telling = int(result.get(m.FIRST_TELLING_REPORT) or 1)
            decision = ledger.rungs.on_result(trial_id, fidelity - telling + 1, values)
            if not decision.keep and not finishing:
                ledger.stopped[trial_id] = {"reason": "moasha", "rung": decision.rung,
                                            "position": decision.position,
                                            "recorded": decision.recorded}  # fmt: skip
                return str(TrialScheduler.STOP)
        if ledger.exhausted() and not finishing:
            ledger.stopped[trial_id] = {"reason": "budget", "rung": None, "at": fidelity,
                                        "deliverable": is_deliverable(result)}  # fmt: skip
            return str(TrialScheduler.STOP)
        return str(TrialScheduler.CONTINUE)

    def debug_string(self) -> str:
        ledger = self.ledger
        budget = f"/{ledger.budget}" if ledger.budget is not None else ""
        return (f"StudyScheduler: {ledger.spent}{budget} reports spent, "
                f"{len(ledger.stopped)} trials stopped early")  # fmt: skip


class BudgetedLimiter(ConcurrencyLimiter):
    """Ray's concurrency limiter that launches no trial once the ledger's budget is spent."""

    def __init__(self, searcher: Searcher, max_concurrent: int, ledger: Ledger) -> None:
        super().__init__(searcher, max_concurrent=max_concurrent)
        self.ledger = ledger

    def suggest(self, trial_id: str) -> dict | None:
        if self.ledger.exhausted():
            # Ray's own annotation says dict | None, but its searchers answer FINISHED so
            return Searcher.FINISHED  # type: ignore[return-value]
        return super().suggest(trial_id)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """A trial stopped before its first delivering report measured no model it could
        deliver: Optuna is told it failed (not COMPLETE with a soft-gated model's figures,
        which would teach the sampler a point no trial can reach)."""
        stopped = self.ledger.stopped.get(str(trial_id))
        if stopped is not None and stopped.get("deliverable") is False:
            # Ray's OptunaSearch tells COMPLETE whenever it gets a result, error or not
            result, error = None, True
        super().on_trial_complete(trial_id, result, error)

    def get_state(self) -> dict:
        state = super().get_state()
        state.pop("ledger", None)  # the shared ledger is the callback's to save
        return state

    def set_state(self, state: dict) -> None:
        ledger = self.ledger
        super().set_state(state)
        self.ledger = ledger


class ForwardTrialEvents(tune.Callback):
    """The driver-side callback that forwards trial events (to MLflow); a trial the
    scheduler stopped early ends with where and why, from the study's ledger.

    A module-level class holding its parts as attributes: a class made inside a function
    and closing over them was pickled by value, and cloudpickle, loading such a class
    again (as the pickling check before the study does), rebinds the live class's methods
    to the loaded copies, so they saw a copy of the ledger, not the scheduler's."""

    def __init__(self, events: TrialEvents, ledger: Ledger, objectives: Sequence[str] = ()) -> None:
        self.events = events
        self.ledger = ledger
        self.model_figures = MODEL_FIGURES | set(objectives)

    def on_trial_start(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        self.events.trial_started(trial.trial_id, trial.config)

    def on_trial_result(
        self, iteration: int, trials: Any, trial: Any, result: dict, **info: Any
    ) -> None:
        self.events.trial_started(trial.trial_id, trial.config)  # a resumed trial
        figures = {k: v for k, v in result.items() if k not in BOOKKEEPING}
        if not is_deliverable(result):  # training figures only: no model yet
            figures = {k: v for k, v in figures.items() if k not in self.model_figures}
        step = result.get(m.TRAINED_EPOCHS, result.get(FIDELITY, 0))  # the method's fidelity
        self.events.trial_result(trial.trial_id, figures, int(step))

    def on_trial_complete(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        stopped = self.ledger.stopped.get(str(trial.trial_id))
        if trial.checkpoint is None:
            self.events.trial_ended(trial.trial_id, checkpoint=None, stopped=stopped)
            return
        # local storage: the folder itself; s3:// or other remote storage: a local copy
        with trial.checkpoint.as_directory() as directory:
            self.events.trial_ended(trial.trial_id, checkpoint=Path(directory), stopped=stopped)

    def on_trial_error(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        self.events.trial_ended(trial.trial_id, error=str(trial.error_file or "error"))

    def on_experiment_end(self, trials: Any, **info: Any) -> None:
        ledger = self.ledger
        if ledger.rejected:  # draws the constraints rejected at sampling (never trained)
            total = sum(ledger.rejected.values())
            print(f"{total} draws broke architecture.constraints and were drawn again, not "
                  f"trained ({ledger.rejection_summary()})", file=sys.stderr)  # fmt: skip
            self.events.draws_rejected(dict(ledger.rejected), gave_up=ledger.gave_up)
