"""A report that ends a cheaper run (an LTH round before the last) is told to Optuna as that
run's trial: the method says where (``Method.nested_runs``), the trainable marks it under
the study's config keys, the searcher adds it to the Optuna study once, with real values."""

from __future__ import annotations

import math
import pickle

import optuna
import pytest
from ray.tune.utils import flatten_dict

from search_spaces.sampler import build_sampler
from trainables.nested_runs import nested_run, nested_run_marks
from trainables.study_searcher import StudyOptunaSearch
from yolo.compress.registry import get_method
from yolo.compress.trial import build_trial
from yolo.metrics.names import NESTED_RUN

BASE = {"model": "yolov3-tiny", "data": "demo_data/data.yaml", "epochs": 4}


def lth_trial(**own):
    own = {"rewind_epoch": 1, **own}
    return build_trial(get_method("lth"), {**BASE, **own}, out="runs/x", where="test")


def test_lth_rounds_before_the_last_are_nested_runs() -> None:
    lth = get_method("lth")
    with_dense = lth_trial(rounds=3)
    assert lth.nested_runs(with_dense.train, with_dense.config) == {8: {"rounds": 1},
                                                                    12: {"rounds": 2}}  # fmt: skip
    one = lth_trial(rounds=1)
    assert lth.nested_runs(one.train, one.config) == {}
    # the reports a run makes agree: a `rounds: k` run ends where the mark is
    for rounds in (1, 2):
        shorter = lth_trial(rounds=rounds)
        assert lth.reports(shorter.train, shorter.config) in lth.nested_runs(
            with_dense.train, with_dense.config)  # fmt: skip


def test_methods_whose_prefix_depends_on_the_total_have_none() -> None:
    cs = get_method("cs")
    trial = build_trial(cs, {**BASE, "rounds": 2, "rewind_epoch": 1}, out="runs/x",
                        where="test")  # fmt: skip
    assert cs.nested_runs(trial.train, trial.config) == {}


def test_marks_use_the_study_config_keys() -> None:
    trial = lth_trial(rounds=3)
    multi = {"method": "lth", "lth.rounds": 3, "lr0": 0.01}
    assert nested_run_marks(trial, multi) == {8: {"lth.rounds": 1}, 12: {"lth.rounds": 2}}
    assert nested_run_marks(trial, {"rounds": 3}) == {8: {"rounds": 1}, 12: {"rounds": 2}}
    assert nested_run_marks(trial, {"lr0": 0.01}) == {}  # not a key of this study
    int8 = build_trial(get_method("lth"), {**BASE, "rounds": 3, "export": "int8", "rewind_epoch": 1,
                                           "latency_runtime": "onnxruntime"},
                       out="runs/x", where="test")  # fmt: skip
    assert nested_run_marks(int8, {"rounds": 3}) == {}  # its last report is the INT8 model's


def test_a_flattened_result_gives_its_nested_run_back() -> None:
    result = {"map50": 0.3, NESTED_RUN: {"lth.rounds": 2}}
    assert nested_run(result) == {"lth.rounds": 2}
    assert nested_run(flatten_dict(result)) == {"lth.rounds": 2}
    assert nested_run({"map50": 0.3}) == {}


def define(trial):
    trial.suggest_float("lr0", 1e-4, 1e-1, log=True)
    if trial.suggest_categorical("method", ["lth", "cs"]) == "lth":
        trial.suggest_int("lth.rounds", 1, 3)
    else:
        trial.suggest_float("cs.penalty", 1e-8, 1e-2, log=True)
    return {"epochs": 4}


def searcher(sampler: str = "tpe") -> StudyOptunaSearch:
    return StudyOptunaSearch(space=define, metric=["map50", "macs"], mode=["max", "min"],
                             sampler=build_sampler(sampler, seed=0))  # fmt: skip


def an_lth_trial(search: StudyOptunaSearch, start: int = 0) -> tuple[str, dict]:
    for number in range(start, start + 50):
        config = search.suggest(f"t{number}")
        if config["method"] == "lth" and config["lth.rounds"] == 3:
            return f"t{number}", config
        search.on_trial_complete(f"t{number}", {"map50": 0.1, "macs": 1e7})
    raise AssertionError("no three-round LTH draw in 50")


def told(search: StudyOptunaSearch) -> list[optuna.trial.FrozenTrial]:
    return [t for t in search._ot_study.trials if "nested_run_of" in t.user_attrs]


def result(report: int, map50: float, macs: float, rounds: int | None) -> dict:
    marks = {} if rounds is None else {NESTED_RUN: {"lth.rounds": rounds}}
    return flatten_dict({"training_iteration": report, "map50": map50, "macs": macs, **marks})


def test_the_searcher_tells_each_nested_run_once_as_a_trial_of_its_settings() -> None:
    search = searcher()
    trial_id, config = an_lth_trial(search)
    search.on_trial_result(trial_id, result(7, 0.2, 9e6, None))
    assert told(search) == []
    search.on_trial_result(trial_id, result(8, 0.31, 8e6, 1))
    search.on_trial_result(trial_id, result(8, 0.31, 8e6, 1))  # a repeated report: once
    search.on_trial_result(trial_id, result(12, 0.12, 2e6, 2))
    nested = told(search)
    assert [t.params["lth.rounds"] for t in nested] == [1, 2]
    assert [t.values for t in nested] == [[0.31, 8e6], [0.12, 2e6]]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in nested)
    for t in nested:  # the other parameters are the trial's own
        assert t.params["lr0"] == config["lr0"] and t.params["method"] == "lth"
        assert t.user_attrs == {"nested_run_of": trial_id, "report": t.user_attrs["report"]}
    search.on_trial_complete(trial_id, result(16, 0.02, 1e6, None))
    finished = search._ot_study.trials
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in finished) >= 3
    assert sum(t.params.get("lth.rounds") == 3 and t.values == [0.02, 1e6]
               for t in finished) == 1  # fmt: skip
    # the searcher's state survives Ray's save and restore (a resumed study tells no twice)
    again = pickle.loads(pickle.dumps(search))
    again.on_trial_result(trial_id, result(8, 0.31, 8e6, 1))
    assert len(told(again)) == 2


def test_a_trial_stopped_at_a_nested_run_tells_it_from_its_last_result() -> None:
    search = searcher()
    trial_id, _ = an_lth_trial(search)
    # the scheduler stopped it at round 1's end: Tune gives that report to on_trial_complete
    search.on_trial_complete(trial_id, result(8, 0.3, 8e6, 1))
    assert [t.params["lth.rounds"] for t in told(search)] == [1]


@pytest.mark.parametrize(
    "marks, map50",
    [
        ({"lth.rounds": 5}, 0.3),  # outside the searched range
        ({"lth.rate": 0.5}, 0.3),  # a setting the study does not search
        ({"lth.rounds": 1}, math.nan),  # no measurement: absent is absent
    ],
)
def test_what_is_not_a_point_of_the_space_with_real_values_is_not_told(marks, map50) -> None:
    search = searcher()
    trial_id, _ = an_lth_trial(search)
    flat = flatten_dict({"training_iteration": 8, "map50": map50, "macs": 8e6,
                         NESTED_RUN: marks})  # fmt: skip
    assert search.tell_nested_run(trial_id, flat) is False
    assert told(search) == []


@pytest.mark.parametrize("sampler", ["random", "tpe", "nsga2", "gp"])
def test_every_sampler_goes_on_suggesting_after_nested_runs(sampler) -> None:
    search = searcher(sampler)
    start = 0
    for _ in range(3):
        trial_id, _ = an_lth_trial(search, start)
        start = int(trial_id[1:]) + 1
        search.on_trial_result(trial_id, result(8, 0.3, 8e6, 1))
        search.on_trial_complete(trial_id, result(16, 0.1, 1e6, None))
    for number in range(start, start + 5):
        assert isinstance(search.suggest(f"t{number}"), dict)
        search.on_trial_complete(f"t{number}", {"map50": 0.2, "macs": 5e6})
    assert len(told(search)) == 3


@pytest.mark.slow
def test_a_real_lth_study_tells_the_sampler_its_earlier_rounds(tmp_path, demo_spec) -> None:
    """The real trainable under real Ray Tune: a two-round LTH trial marks round 1's last
    report, and the study's searcher holds a one-round trial with exactly its figures."""
    import json
    from pathlib import Path

    import ray
    import yaml
    from ray import tune

    from search_spaces.schema import load_space
    from trainables import ray_adapter
    from trainables.study import StudyOptions, build_trainable, study_search

    data = {
        "method": "lth", "model": "yolov3-tiny", "data": str(demo_spec),
        "objectives": [{"metric": "map50", "mode": "max"}, {"metric": "macs", "mode": "min"}],
        "fixed": {"width": 0.25, "img_size": 64, "epochs": 1, "batch_size": 8,
                  "rewind_epoch": 0, "latency_runs": 0, "warmup_epochs": 0.0},
        "space": {"rate": {"type": "float", "low": 0.3, "high": 0.6},
                  "rounds": {"type": "int", "low": 1, "high": 2}},
        "search": {"sampler": "tpe", "num_samples": 3, "max_concurrent": 1, "seed": 0},
        "resources": {"cpu": 1, "gpu": 0},
    }  # fmt: skip
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    space = load_space(path)
    search = study_search(space, StudyOptions(name="n", storage=str(tmp_path / "runs")))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        parts = ray_adapter.tuner_parts(build_trainable(space), search, name="n",
                                        storage=str(tmp_path / "runs"), events=NoEvents())  # fmt: skip
        searcher = parts.tune_config.search_alg.searcher
        grid = tune.Tuner(parts.trainable, tune_config=parts.tune_config,
                          run_config=parts.run_config).fit()  # fmt: skip
    finally:
        ray.shutdown()
    two_rounds = [r for r in grid if r.config["rounds"] == 2]
    assert two_rounds and not any(r.error for r in grid)  # seed 0 draws one
    nested = told(searcher)
    assert len(nested) == len(two_rounds)
    for result in two_rounds:
        reports = [json.loads(line) for line in (Path(result.path) / "result.json").open()]
        # dense round 0 and rounds 1, 2 of one epoch each: round 1 ends at report 2
        marked = [r for r in reports if NESTED_RUN in r]
        assert [(r["training_iteration"], r[NESTED_RUN]) for r in marked] == [(2, {"rounds": 1})]
        (one_round,) = [t for t in nested if t.params["rate"] == result.config["rate"]]
        assert one_round.params["rounds"] == 1
        assert one_round.values == [marked[0]["map50"], marked[0]["macs"]]


class NoEvents:
    def trial_started(self, trial_id, config) -> None: ...
    def trial_result(self, trial_id, metrics, step) -> None: ...
    def trial_ended(self, trial_id, **info) -> None: ...
    def draws_rejected(self, counts, **info) -> None: ...
