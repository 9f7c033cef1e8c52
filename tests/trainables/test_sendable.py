"""What ``yct tune`` hands to Ray Tune survives pickling, for every sampler and scheduler.

Ray pickles the searcher (Optuna's study and sampler inside), the scheduler, the trainable
and the callbacks when it builds the Tuner and at every experiment checkpoint; optuna 5.1.0
added a lock to NSGAIISampler and broke that. These tests build exactly the parts the study
builds, pickle them as Ray does, and check that the sampler still samples afterwards.
"""

from __future__ import annotations

import functools
import pickle
import threading
from pathlib import Path

import optuna
import pytest
import yaml
from ray import cloudpickle

from search_spaces.sampler import RebuildableSampler, build_sampler
from search_spaces.schema import SAMPLERS, SCHEDULERS, load_space
from trainables import ray_adapter
from trainables.study import StudyOptions, _tracker, build_trainable, study_search
from yolo.errors import DependencyError


def _space_file(tmp_path: Path, demo_spec: Path, sampler: str, scheduler: str) -> Path:
    data = {
        "method": ["lth", "cs"], "model": "yolov3-tiny", "data": str(demo_spec),
        "objectives": [{"metric": "map50", "mode": "max"}, {"metric": "macs", "mode": "min"}],
        "fixed": {"width": 0.25, "img_size": 64, "epochs": 1, "rewind_epoch": 0},
        "space": {"lr0": {"type": "loguniform", "low": 1e-3, "high": 1e-2},
                  "lth": {"rate": {"type": "float", "low": 0.2, "high": 0.6}},
                  "cs": {"rounds": {"type": "int", "low": 1, "high": 2}}},
        "search": {"sampler": sampler, "num_samples": 4, "scheduler": scheduler, "seed": 0},
    }  # fmt: skip
    if scheduler == "asha":  # single-objective only
        data["objectives"] = data["objectives"][:1]
    path = tmp_path / f"{sampler}-{scheduler}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def tracker(tmp_path_factory, demo_spec):
    """One real MLflow study tracker (SQLite) shared by the cases: what the callback holds."""
    folder = tmp_path_factory.mktemp("sendable")
    space = load_space(_space_file(folder, demo_spec, "nsga2", "none"))
    options = StudyOptions(name="sendable", storage=str(folder / "runs"),
                           mlflow_uri=f"sqlite:///{folder / 'mlruns.db'}")  # fmt: skip
    return _tracker(space, options)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_what_the_study_hands_to_ray_pickles(tmp_path, demo_spec, tracker, sampler,
                                             scheduler) -> None:  # fmt: skip
    space = load_space(_space_file(tmp_path, demo_spec, sampler, scheduler))
    options = StudyOptions(name="s", storage=str(tmp_path / "runs"))
    parts = ray_adapter.tuner_parts(build_trainable(space), study_search(space, options),
                                    name="s", storage=options.storage, events=tracker)  # fmt: skip
    ray_adapter.check_sendable(parts)  # raises DependencyError naming the part otherwise
    # checking did not cut the live parts apart (a class made in a function and pickled by
    # value had its methods rebound to a copy of the ledger by cloudpickle)
    forward, ledger, progress = parts.run_config.callbacks  # the progress line reads it too
    assert forward.ledger is ledger and parts.tune_config.search_alg.ledger is ledger
    assert progress.ledger is ledger
    assert scheduler == "asha" or parts.tune_config.scheduler.ledger is ledger
    for part in (parts.trainable, parts.tune_config, parts.run_config):
        cloudpickle.loads(cloudpickle.dumps(part))
    # the searcher as Ray restores it from a checkpoint still suggests configurations
    searcher = cloudpickle.loads(cloudpickle.dumps(parts.tune_config.search_alg))
    config = searcher.suggest("trial-1")
    assert config["method"] in ("lth", "cs") and 1e-3 <= config["lr0"] <= 1e-2
    # the scheduler, the searcher and the callback share one ledger, in one pickle too
    # (Tune's tuner.pkl): what the callback's saved state restores, the others see
    config_copy, run_copy = cloudpickle.loads(
        cloudpickle.dumps((parts.tune_config, parts.run_config))
    )
    ledger = run_copy.callbacks[1]
    assert config_copy.search_alg.ledger is ledger and run_copy.callbacks[2].ledger is ledger
    if scheduler != "asha":
        assert config_copy.scheduler.ledger is ledger
    # and the Tuner Ray builds from them (it pickles them into its own state file)
    from ray import tune

    tune.Tuner(parts.trainable, tune_config=parts.tune_config, run_config=parts.run_config)


def test_the_rebuilt_sampler_keeps_its_random_state() -> None:
    """A resumed study goes on drawing where it stopped: the RNG state travels, the lock is
    rebuilt."""
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=build_sampler("nsga2", seed=3, population_size=4))  # fmt: skip

    def objective(trial):
        return trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=6)
    copy = pickle.loads(pickle.dumps(study))
    assert isinstance(copy.sampler, RebuildableSampler)
    study.optimize(objective, n_trials=4)
    copy.optimize(objective, n_trials=4)
    assert [t.params for t in study.trials] == [t.params for t in copy.trials]


class _SamplerWithHandles(optuna.samplers.RandomSampler):
    """Stands for whatever a future release adds: a lock and an open file."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self._lock = threading.Lock()
        self._log = open(__file__)  # closed with the test process


def test_unpicklable_state_is_dropped_and_rebuilt() -> None:
    sampler = RebuildableSampler(functools.partial(_SamplerWithHandles, seed=0))
    with pytest.raises(TypeError):  # the bare sampler cannot travel
        pickle.dumps(sampler.sampler)
    copy = pickle.loads(pickle.dumps(sampler))
    assert set(copy.dropped) == {"_lock", "_log"}
    assert isinstance(copy.sampler._lock, type(threading.Lock())) and not copy.sampler._log.closed


def test_a_part_that_cannot_be_sent_is_named_with_versions(tmp_path, demo_spec, tracker) -> None:
    space = load_space(_space_file(tmp_path, demo_spec, "random", "none"))
    options = StudyOptions(name="s", storage=str(tmp_path / "runs"))
    search = study_search(space, options)
    bare = functools.partial(_SamplerWithHandles, seed=0)()  # not wrapped: cannot pickle
    search = ray_adapter.Search(**{**search.__dict__, "sampler": bare})
    parts = ray_adapter.tuner_parts(build_trainable(space), search, name="s",
                                    storage=options.storage, events=tracker)  # fmt: skip
    with pytest.raises(DependencyError) as caught:
        ray_adapter.check_sendable(parts)
    message = str(caught.value)
    assert message.startswith(f"the Optuna sampler (optuna {optuna.__version__}, ray ")
    assert "cannot be sent to Ray: TypeError: cannot pickle '_thread.lock' object" in message
