"""MOASHA's rung records survive ``Tuner.restore``: Ray saves the ledger callback's state with
the study and gives it back to the one ledger the restored scheduler and limiter share."""

from __future__ import annotations

import pytest
import ray
from optuna.samplers import RandomSampler
from ray import tune

from search_spaces.sampler import RebuildableSampler
from trainables import ray_adapter

pytestmark = pytest.mark.slow


class NoEvents:
    def trial_started(self, trial_id, config) -> None: ...
    def trial_result(self, trial_id, metrics, step) -> None: ...
    def trial_ended(self, trial_id, **info) -> None: ...
    def draws_rejected(self, counts, **info) -> None: ...


def quadratic(config) -> None:
    for step in range(1, 5):
        tune.report({"a": config["x"] * step, "b": (1 - config["x"]) ** 2, "planned_reports": 4.0})


def define(trial):
    trial.suggest_float("x", 0.0, 1.0)
    return {}


def test_rung_records_come_back_with_a_restored_study(tmp_path) -> None:
    import functools

    search = ray_adapter.Search(
        define_by_run=define, metrics=["a", "b"], modes=["max", "min"],
        sampler=RebuildableSampler(functools.partial(RandomSampler, seed=0)),
        num_samples=None, max_concurrent=2, max_failures=0, scheduler="moasha", budget=14,
        rungs=(1, 2), reduction_factor=2.0)  # fmt: skip
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        parts = ray_adapter.tuner_parts(tune.with_resources(quadratic, {"cpu": 1}), search,
                                        name="r", storage=str(tmp_path), events=NoEvents())  # fmt: skip
        ledger = parts.tune_config.search_alg.ledger
        tune.Tuner(parts.trainable, tune_config=parts.tune_config,
                   run_config=parts.run_config).fit()  # fmt: skip
        assert ledger.rungs.records[1] and ledger.stopped  # it recorded and it stopped
        assert 14 <= ledger.spent <= 15
        restored = tune.Tuner.restore(str(tmp_path / "r"), parts.trainable,
                                      resume_unfinished=True)  # fmt: skip
        restored.fit()  # the study is done: restoring its state, nothing left to run
        internal = restored._local_tuner
        again = internal._run_config.callbacks[1]
        assert again is not ledger  # a new process would have nothing else
        assert again.rungs.records == ledger.rungs.records
        assert again.stopped == ledger.stopped and again.spent == ledger.spent
        assert internal._tune_config.scheduler.ledger is again
        assert internal._tune_config.search_alg.ledger is again
    finally:
        ray.shutdown()


class RecordedEvents(NoEvents):
    """What the study would hand MLflow: each report's figures and how each trial ended."""

    def __init__(self) -> None:
        self.figures: dict[str, list[dict]] = {}
        self.ended: dict[str, dict] = {}

    def trial_result(self, trial_id, metrics, step) -> None:
        self.figures.setdefault(str(trial_id), []).append(dict(metrics))

    def trial_ended(self, trial_id, **info) -> None:
        self.ended[str(trial_id)] = info


def searching_then_ticket(config) -> None:
    """A CS-like trial: reports 1-2 of its soft-gated search, 3-4 of its ticket."""
    for step in range(1, 5):
        tune.report({"map50": config["x"] + step, "macs": 1e6 / step, "loss": 1.0 / step,
                     "planned_reports": 4.0, "first_delivering_report": 3.0})  # fmt: skip


def test_a_trial_stopped_before_its_first_delivering_report_delivers_nothing(
    tmp_path, capsys
) -> None:
    """One trial at a time, a budget of 6 reports: the first trial runs its 4, the second is
    stopped by the budget at its 2nd, still in its search. Its soft-gated figures never reach
    MLflow (its loss does), it ends as stopped with nothing deliverable, and Optuna is told it
    failed, not that it reached a point no model holds; the progress line's front leaves
    search reports out too."""
    import functools

    from optuna.trial import TrialState

    search = ray_adapter.Search(
        define_by_run=define, metrics=["map50", "macs"], modes=["max", "min"],
        sampler=RebuildableSampler(functools.partial(RandomSampler, seed=0)),
        num_samples=None, max_concurrent=1, max_failures=0, scheduler="fifo", budget=6)  # fmt: skip
    events = RecordedEvents()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        parts = ray_adapter.tuner_parts(tune.with_resources(searching_then_ticket, {"cpu": 1}),
                                        search, name="t", storage=str(tmp_path),
                                        events=events)  # fmt: skip
        limiter = parts.tune_config.search_alg
        tune.Tuner(parts.trainable, tune_config=parts.tune_config,
                   run_config=parts.run_config).fit()  # fmt: skip
    finally:
        ray.shutdown()
    first, second = sorted(events.figures, key=lambda t: len(events.figures[t]), reverse=True)
    assert [("map50" in f, "macs" in f) for f in events.figures[first]] == [
        (False, False), (False, False), (True, True), (True, True)]  # fmt: skip
    assert [set(f) & {"map50", "macs", "loss"} for f in events.figures[second]] == [
        {"loss"}, {"loss"}]  # fmt: skip
    assert events.ended[first]["stopped"] is None
    assert events.ended[second]["stopped"] == {"reason": "budget", "rung": None, "at": 2,
                                               "deliverable": False}  # fmt: skip
    states = [t.state for t in limiter.searcher._ot_study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]
    import re

    shown = [float(v) for v in re.findall(r"best map50 ([0-9.]+)", capsys.readouterr().out)]
    assert shown and min(shown) >= 3  # search reports are x + 1 and x + 2, x < 1
