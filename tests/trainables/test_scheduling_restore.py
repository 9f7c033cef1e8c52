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
