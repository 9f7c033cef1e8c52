"""Search spaces: shipped YAMLs validate, bad ones fail with file/key/allowed, and the
Optuna define-by-run draws in bounds, conditionally on the method."""

from __future__ import annotations

import re

import optuna
import pytest
import yaml

from search_spaces import SHIPPED, shipped_path
from search_spaces.optuna_space import define_by_run, method_config
from search_spaces.schema import SpaceError, check_files, check_fits, load_space

GOOD = {
    "method": "lth",
    "model": "yolov3-tiny",
    "data": "data.yaml",
    "objectives": [{"metric": "map50", "mode": "max"}, {"metric": "macs", "mode": "min"}],
    "fixed": {"epochs": 2, "rewind_epoch": 0},
    "space": {"rate": {"type": "float", "low": 0.1, "high": 0.5},
              "lr0": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
}  # fmt: skip


def _write(tmp_path, data) -> str:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_spaces_validate(name: str) -> None:
    space = load_space(shipped_path(name))
    assert space.objectives[0].metric == "map50"
    if name == "demo":  # the search that did best in bench/search_efficiency.py
        assert space.search.sampler == "tpe" and space.search.budget == 240
    elif name.startswith("nas_"):  # short MOASHA-weeded fine-tunes of inherited candidates
        assert space.architecture is not None and space.search.scheduler == "moasha"
        assert space.search.sampler == "tpe" and space.fixed["inherit"].endswith("best.pt")
    else:
        assert space.search.sampler == "nsga2" and space.search.num_samples >= 8


def _bad(**changes):
    data = {**GOOD, **changes}
    return {k: v for k, v in data.items() if v is not None}


BAD = {
    "unknown method": (_bad(method="prune"), r"method: unknown method 'prune'; valid methods: cs, kd, kd_gan, lth, structured, train"),
    "parameter the trainable does not accept": (
        _bad(space={"rat": {"type": "float", "low": 0, "high": 1}}),
        r"space\.rat: method lth does not take it; allowed: .*rate"),
    "low > high": (_bad(space={"rate": {"type": "float", "low": 0.5, "high": 0.1}}),
                   r"space\.rate: low must be <= high, got low=0.5 > high=0.1"),
    "unknown metric": (_bad(objectives=[{"metric": "mAP", "mode": "max"}]),
                       r"objectives\[0\]\.metric: unknown metric 'mAP'; allowed: .*map50"),
    "bad mode": (_bad(objectives=[{"metric": "map50", "mode": "up"}]), r"objectives\[0\]\.mode: must be min or max"),
    "unknown kind": (_bad(space={"rate": {"type": "normal", "low": 0, "high": 1}}), r"space\.rate\.type: must be one of float, int"),
    "loguniform at zero": (_bad(space={"lr0": {"type": "loguniform", "low": 0, "high": 1}}), r"loguniform needs low > 0"),
    "unknown top key": (_bad(trials=3), r"trials: unknown key; allowed:"),
    "unknown sampler": (_bad(search={"sampler": "cmaes"}), r"search\.sampler: must be one of random, tpe, nsga2, gp, got 'cmaes'"),
    "unknown scheduler": (_bad(search={"scheduler": "hyperband"}),
                          r"search\.scheduler: must be one of fifo, moasha, asha \('none' is fifo\), got 'hyperband'"),
    "reduction factor of one": (_bad(search={"scheduler": "moasha", "reduction_factor": 1}),
                                r"search\.reduction_factor: must be a number > 1, got 1"),
    "min_resource above max_resource": (_bad(search={"scheduler": "moasha", "min_resource": 5, "max_resource": 3}),
                                        r"search\.min_resource: must be below max_resource \(3 reports\), got 5"),
    "first rung past the longest trial": (_bad(search={"scheduler": "moasha", "min_resource": 40, "max_resource": 60}),
                                          r"search\.min_resource: no trial of this space makes more than 26 telling reports"),
    "unknown keep": (_bad(search={"keep": "best"}),
                     r"search\.keep: must be one of front, all, none \(whose logged models the MLflow store keeps\), got 'best'"),
    "rungs without moasha": (_bad(search={"min_resource": 2}), r"search\.min_resource: only the moasha scheduler has rungs"),
    "budget below one trial": (_bad(search={"budget": 3}),
                               r"search\.budget: must be an integer of at least one trial's minimum \(28 reports\), got 3"),
    "budget below the first rung": (_bad(search={"scheduler": "moasha", "min_resource": 2, "budget": 1}),
                                    r"search\.budget: .*\(2 reports, the first rung\), got 1"),
    "startup trials of nsga2": (_bad(search={"sampler": "nsga2", "startup_trials": 4}),
                                r"search\.startup_trials: only the tpe and gp samplers have startup trials"),
    "asha with two objectives": (_bad(search={"scheduler": "asha"}), r"search\.scheduler: asha ranks trials by one metric"),
    "population without nsga2": (_bad(search={"sampler": "tpe", "population_size": 4}), r"search\.population_size: only the nsga2 sampler"),
    "population of one": (_bad(search={"population_size": 1}), r"search\.population_size: must be an integer >= 2"),
    "list as a categorical choice": (_bad(space={"scope": {"type": "categorical", "choices": [[1, 2]]}}),
                                     r"space\.scope\.choices: \[1, 2\]: a choice must be a number, string"),
    "rate beyond its domain": (_bad(space={"rate": {"type": "float", "low": 0.3, "high": 1.5}}),
                               r"space\.rate\.high: prune rate must be in \(0, 1\), got 1\.5"),
    "choice beyond its domain": (_bad(space={"scope": {"type": "categorical", "choices": ["local", "all"]}}),
                                 r"space\.scope\.choices\[1\]: scope must be one of local, global, got 'all'"),
    "fixed value beyond its domain": (_bad(fixed={"epochs": 2, "rewind_epoch": 0, "momentum": 1.0}),
                                      r"fixed\.momentum: momentum must be in \[0, 1\), got 1\.0"),
    "a default rewind past the last epoch": (_bad(fixed={"epochs": 2}),
                                             r"fixed\.epochs: rewind_epoch must be < epochs \(2\), got 10"),
    "rewind past the last epoch": (_bad(fixed={"epochs": 1, "rewind_epoch": 10}),
                                   r"fixed\.rewind_epoch: rewind_epoch must be < epochs \(1\), got 10"),
    "bound beyond a training rule": (_bad(space={"img_size": {"type": "int", "low": 64, "high": 100}}),
                                     r"space\.img_size\.high: img_size must be a multiple of 32, got 100"),
    "float drawing an int": (_bad(space={"rounds": {"type": "float", "low": 1, "high": 3}}),
                             r"space\.rounds\.type: rounds takes an integer; a float parameter cannot draw it"),
    "wrong type of a fixed value": (_bad(fixed={"epochs": "two"}), r"fixed\.epochs: expected int but got 'two'"),
    "unknown model": (_bad(model="yolov9"), r"model: unknown model 'yolov9'; valid models: yolov3, "),
    "missing cfg": (_bad(model="nets/mine.cfg"), r"model: cfg file not found: .*nets/mine\.cfg"),
    "unmeasured latency as an objective": (
        _bad(objectives=[{"metric": "map50", "mode": "max"}, {"metric": "latency_ms", "mode": "min"}],
             fixed={"epochs": 2, "rewind_epoch": 0, "latency_runs": 0}),
        r"objectives\[1\]\.metric: latency_ms cannot be an objective: latency is not measured "
        r"\(fixed\.latency_runs is 0\)"),
    "mAP@.5:.95 without the coco metric": (
        _bad(objectives=[{"metric": "map50_95", "mode": "max"}, {"metric": "macs", "mode": "min"}]),
        r"objectives\[0\]\.metric: map50_95 cannot be an objective: .*metric coco"),
    "fixed key nobody accepts": (_bad(fixed={"penalty": 1e-8}), r"fixed\.penalty: no method of this study takes it"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spaces(tmp_path, case: str) -> None:
    data, pattern = BAD[case]
    with pytest.raises(SpaceError) as info:
        load_space(_write(tmp_path, data))
    message = str(info.value)
    assert re.search(pattern, message), message
    assert message.startswith(str(tmp_path / "space.yaml")) and "\n" not in message


def test_start_checkpoint_resolved_beside_the_file_and_checked(tmp_path, demo_spec) -> None:
    space = load_space(_write(tmp_path, {**GOOD, "fixed": {"weights": "nowhere/best.pt"}}))
    assert space.fixed["weights"] == str(tmp_path / "nowhere" / "best.pt")
    with pytest.raises(SpaceError, match=r"space\.yaml: fixed\.weights: checkpoint not found: "):
        check_files(space, str(demo_spec))
    (tmp_path / "nowhere").mkdir()
    (tmp_path / "nowhere" / "best.pt").write_bytes(b"x")
    check_files(space, str(demo_spec))
    with pytest.raises(
        SpaceError, match=r"space\.yaml: data: dataset spec not found: .*data\.yaml"
    ):
        check_files(space)


def test_hint_pairs_checked_against_teacher_and_student_before_ray(tmp_path, demo_spec) -> None:
    from yolo.io import save_checkpoint
    from yolo.zoo import create_model

    save_checkpoint(tmp_path / "teacher.pt", create_model("yolov3-tiny", num_classes=3, width=0.25))
    data = {**GOOD, "method": "kd", "model": "yolo-nano-leaky",
            "fixed": {"teacher": "teacher.pt", "width": 0.25, "img_size": 96},
            "space": {"hints": {"type": "categorical", "choices": ["", "13:27", "6:27"]}}}  # fmt: skip
    space = load_space(_write(tmp_path, data))
    assert space.fixed["teacher"] == str(tmp_path / "teacher.pt")
    with pytest.raises(SpaceError, match=r"space\.yaml: space\.hints: hint pair 6:27: teacher "
                                         r"block 6 is \d+x12x12 but student block 27 is"):  # fmt: skip
        check_files(space, str(demo_spec))
    data["space"]["hints"]["choices"] = ["", "13:27", "8:21,13:27"]
    check_files(load_space(_write(tmp_path, data)), str(demo_spec))
    (tmp_path / "teacher.pt").unlink()
    with pytest.raises(SpaceError, match=r"fixed\.teacher: checkpoint not found"):
        check_files(space, str(demo_spec))


def test_resources_larger_than_the_cluster(tmp_path) -> None:
    space = load_space(_write(tmp_path, {**GOOD, "resources": {"cpu": 4, "gpu": 0.25}}))
    with pytest.raises(
        SpaceError, match=r"resources\.cpu: a trial asks for 4 but the cluster has 2"
    ):
        check_fits(space, {"CPU": 2.0})
    with pytest.raises(
        SpaceError, match=r"resources\.gpu: a trial asks for 0\.25 but the cluster has 0"
    ):
        check_fits(space, {"CPU": 8.0})
    check_fits(space, {"CPU": 8.0, "GPU": 1.0})


@pytest.mark.parametrize("sampler", [optuna.samplers.NSGAIISampler, optuna.samplers.TPESampler])
def test_define_by_run_draws_in_bounds(tmp_path, sampler) -> None:
    space = load_space(_write(tmp_path, GOOD))
    suggest = define_by_run(space)
    study = optuna.create_study(directions=["maximize", "minimize"] if sampler is optuna.samplers.NSGAIISampler else ["maximize"],
                                sampler=sampler(seed=0))  # fmt: skip
    seen = []

    def objective(trial):
        constants = suggest(trial)
        params = trial.params
        assert 0.1 <= params["rate"] <= 0.5 and 1e-4 <= params["lr0"] <= 1e-2
        assert constants == {
            "model": "yolov3-tiny",
            "data": str(tmp_path / "data.yaml"),
            "epochs": 2,
            "rewind_epoch": 0,
        }
        seen.append(params["rate"])
        return (params["rate"], params["lr0"]) if len(study.directions) == 2 else params["rate"]

    study.optimize(objective, n_trials=6)
    assert len(set(seen)) == 6


def test_multi_method_space_is_conditional(tmp_path) -> None:
    space = load_space(shipped_path("demo"))
    assert space.multi_method and space.methods == ("lth", "cs")
    suggest = define_by_run(space, data=str(tmp_path / "d.yaml"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    methods = set()
    for _ in range(12):
        trial = study.ask()
        suggest(trial)
        method = trial.params["method"]
        methods.add(method)
        other = "cs" if method == "lth" else "lth"
        assert any(k.startswith(f"{method}.") for k in trial.params)
        assert not any(k.startswith(f"{other}.") for k in trial.params)
        chosen, config = method_config({**trial.params, "epochs": 3}, space.methods)
        assert chosen == method and "method" not in config and config["epochs"] == 3
        assert all("." not in k for k in config)
        study.tell(trial, 0.0)
    assert methods == {"lth", "cs"}


def test_missing_and_malformed_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="search space not found"):
        load_space(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("method: [lth\n")
    with pytest.raises(SpaceError, match=r"bad\.yaml:\d+: malformed YAML"):
        load_space(tmp_path / "bad.yaml")


def test_moasha_defaults_come_from_the_methods(tmp_path) -> None:
    """Rungs count telling reports, from each method's first telling report on (LTH: the
    first epoch after its first prune, epochs + 1): the first rung is 1, the last the most
    telling reports a trial of the space makes."""
    data = _bad(search={"scheduler": "moasha", "budget": 40})
    data["space"] = {**data["space"], "rounds": {"type": "int", "low": 1, "high": 3}}
    space = load_space(_write(tmp_path, data))
    search = space.search
    assert search.min_resource == 1 and search.max_resource == 2 * (3 + 1) - (2 + 1) + 1
    assert search.reports == (2 * 2, 2 * 4) and search.reduction_factor == 3.0
    assert search.rungs() == (1, 3) and search.num_samples is None and search.budget == 40
