"""`yct tune`: a real multi-method NSGA-II study on local Ray, and bad input before Ray."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import ray
import yaml

from yct.cli import main

pytestmark = pytest.mark.slow


def _space(tmp_path, demo_spec, **search):
    data = {
        "method": ["lth", "cs"],
        "model": "yolov3-tiny",
        "data": str(demo_spec),
        "objectives": [{"metric": "map50", "mode": "max"}, {"metric": "macs", "mode": "min"}],
        "fixed": {"width": 0.25, "img_size": 64, "epochs": 1, "batch_size": 8, "rewind_epoch": 0,
                  "latency_runs": 0, "warmup_epochs": 0.0},
        "space": {"lr0": {"type": "loguniform", "low": 1e-3, "high": 1e-2},
                  "lth": {"rate": {"type": "float", "low": 0.2, "high": 0.6},
                          "rounds": {"type": "int", "low": 1, "high": 1}},
                  "cs": {"penalty": {"type": "loguniform", "low": 1e-5, "high": 1e-3},
                         "rounds": {"type": "int", "low": 1, "high": 1}}},
        "search": {"sampler": "nsga2", "num_samples": 4, "max_concurrent": 2, "seed": 0, **search},
        "resources": {"cpu": 1, "gpu": 0},
    }  # fmt: skip
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def fresh_ray():
    yield
    ray.shutdown()


def test_a_real_multi_method_study(tmp_path, demo_spec, capsys, monkeypatch, fresh_ray) -> None:
    space = _space(tmp_path, demo_spec)
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    assert main(["tune", str(space), "--storage", str(tmp_path / "runs"), "--name", "s",
                 "--mlflow-uri", uri]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "4 trials (0 errored)" in out
    # one progress line per event instead of Ray's trial table (that is `yct tune -v`)
    assert "[s] 4 trials: 4 done (0 stopped early), 0 running, 0 errored; " in out
    assert "; front: " in out and "best map50 " in out and "Trial status" not in out
    from ray import tune

    trials = tune.ExperimentAnalysis(str(tmp_path / "runs" / "s")).trials
    by_id = {t.trial_id: t for t in trials}
    assert len(trials) == 4
    assert {t.config["method"] for t in trials} <= {"lth", "cs"}
    for t in trials:
        assert t.status == "TERMINATED"
        assert t.last_result["map50"] >= 0 and t.last_result["macs"] > 0
        # of the checkpoints reported every epoch, only the newest stays once the study ends
        kept = [c.name for c in Path(t.path).glob("checkpoint_*")]
        assert kept == [Path(t.checkpoint.path).name]
        # working files live outside the folder Tune syncs to storage, and are gone
        assert not {"work", "snapshots"} & {p.name for p in Path(t.path).iterdir()}
        own = [k for k in t.config if "." in k]
        assert own and all(k.startswith(t.config["method"] + ".") for k in own)
    assert max(t.last_result["training_iteration"] for t in trials) > 1  # some deleted
    # MLflow: one parent run, four nested trial runs with per-epoch metrics and tags
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("s")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("kind") == "study"]
    children = [r for r in runs if r.data.tags.get("kind") == "trial"]
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert all(c.data.tags["method"] in ("lth", "cs") and c.data.tags["model"] == "yolov3-tiny"
               for c in children)  # fmt: skip
    assert all("map50" in c.data.metrics and "macs" in c.data.metrics for c in children)
    # the model's figures only: none of Ray's bookkeeping, none of the trainable's plumbing
    from trainables.scheduling import BOOKKEEPING

    assert all(not set(c.data.metrics) & BOOKKEEPING for c in children)
    assert all(len(c.data.metrics) <= 15 for c in children), [
        sorted(c.data.metrics) for c in children
    ]
    # units beside the numbers: MACs at the trial's size, latency on its runtime
    assert all(c.data.tags["unit.macs"] == "multiply-accumulates per 64x64 image; zero weights "
               "not counted" and "unit.latency_ms" in c.data.tags for c in children)  # fmt: skip
    assert "time_this_iter_s" in BOOKKEEPING and "training_iteration" in BOOKKEEPING
    history = client.get_metric_history(children[0].info.run_id, "map50")
    assert len(history) >= 1
    # the step is the method's fidelity (epochs trained, over rounds and phases), and the
    # best mAP50 stands beside the latest, with the step it came at as a tag
    for child in children:
        history = client.get_metric_history(child.info.run_id, "map50")
        steps = [h.step for h in history]
        assert steps == sorted(steps) and steps[0] >= 1, steps
        round_history = client.get_metric_history(child.info.run_id, "round")
        rounds = {h.step for h in round_history}
        # round is a metric at every step; the model's figures start at the method's first
        # delivering report: at once for LTH (its dense round measures the dense model it
        # saves), at the ticket for CS (its search epochs measure the soft-gated model)
        assert set(steps) == rounds
        result_file = Path(by_id[child.data.tags["trial_id"]].path) / "result.json"
        reports = [json.loads(line) for line in result_file.read_text().splitlines()]
        delivering = [r["map50"] for r in reports
                      if r["training_iteration"] >= r["first_delivering_report"]]  # fmt: skip
        assert [h.value for h in history] == delivering
        if child.data.tags["method"] == "cs":  # its search epoch's figures stayed in Tune
            assert len(delivering) < len(reports)
        best = child.data.metrics["map50_best"]
        assert best == max(h.value for h in history) >= child.data.metrics["map50"]
        at = int(child.data.tags["map50_best_step"])
        assert any(h.step == at and h.value == best for h in history)
        # the data the trial trained on, as an MLflow dataset input
        (used,) = child.inputs.dataset_inputs
        assert used.dataset.name == demo_spec.parent.name and used.dataset.source_type == "local"
        assert [(t.key, t.value) for t in used.tags] == [("mlflow.data.context", "training")]
    on_front = [c for c in children if c.data.tags.get("pareto") == "true"]
    assert 1 <= len(on_front) <= 4
    # the starting model, a child run of its own beside the trials, with their metric names
    (baseline,) = [r for r in runs if r.data.tags.get("role") == "baseline"]
    assert baseline.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert baseline.info.run_name == "baseline-yolov3-tiny" and "pareto" not in baseline.data.tags
    assert baseline.data.metrics["macs"] == parent.data.metrics["start.macs"]
    # every other trial says it is not on the front, so that can be filtered too
    assert all(c.data.tags.get("pareto") == "false" for c in children if c not in on_front)
    assert parent.data.metrics["hypervolume"] > 0 and parent.info.status == "FINISHED"
    # the fixed yardstick: the starting model, measured once, is the reference (mAP 0, its
    # MACs), the same for every study of this model, data and size
    from yolo.metrics.profile import count_macs
    from yolo.zoo import create_model

    dense_macs = count_macs(create_model("yolov3-tiny", num_classes=10, width=0.25), 64).effective
    assert parent.data.metrics["start.macs"] == dense_macs
    assert float(parent.data.params["reference.macs"]) == dense_macs
    assert (
        float(parent.data.params["reference.map50"]) == 0.0 and "start.map50" in parent.data.metrics
    )
    assert "(reference map50=0, macs=" in out and ": the starting model)" in out
    # files: the front on the parent, checkpoint + per-class AP on trials, beside the database
    parent_files = {f.path for f in client.list_artifacts(parent.info.run_id, "pareto")}
    assert parent_files == {"pareto/front.png", "pareto/front.html", "pareto/front.md",
                            "pareto/trials.csv"}  # fmt: skip
    assert "| yolov3-tiny |" in parent.data.tags["mlflow.note.content"]  # the run description
    trial_files = {f.path for f in client.list_artifacts(on_front[0].info.run_id)}
    assert trial_files == {"per_class_ap.json"}  # the training state stays in Tune's storage
    # the deliverable as a logged model: the front's are kept (keep: front), the rest deleted
    for child in children:
        model_id = child.data.tags["model_id"]
        if child in on_front:
            logged = client.get_logged_model(model_id)
            assert logged.source_run_id == child.info.run_id and logged.name == "model"
        else:
            assert model_id == "deleted (keep: front)"
    import mlflow
    import numpy as np

    mlflow.set_tracking_uri(uri)
    best = max(on_front, key=lambda c: c.data.metrics["map50"])
    detector = mlflow.pyfunc.load_model(f"runs:/{best.info.run_id}/model")
    image = (np.random.default_rng(0).random((1, 80, 100, 3)) * 255).astype(np.uint8)
    detections = detector.predict(image, params={"conf": 0.001})
    assert list(detections.columns) == ["image", "x1", "y1", "x2", "y2", "score", "class", "name"]
    assert len(detections) and detections["x2"].max() <= 100 and detections["y2"].max() <= 80
    # `yct evaluate runs:/<id>/model` scores the model the trial logged: its own mAP50
    capsys.readouterr()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["evaluate", f"runs:/{best.info.run_id}/model", "--data", str(demo_spec),
                 "--split", "val", "--batch", "8", "--json"]) == 0  # fmt: skip
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scored["map50"] == pytest.approx(best.data.metrics["map50"], abs=1e-9)
    assert (tmp_path / "mlartifacts" / "s").is_dir() and not (tmp_path / "mlruns").exists()
    assert "Pareto front" in out and "| yolov3-tiny |" in out and "mlflow ui" in out
    # one id: the Tune trial id ends the run name (after the method and what it drew) and
    # names the trial in the front table
    for child in children:
        trial_id, method = child.data.tags["trial_id"], child.data.tags["method"]
        assert child.info.run_name.startswith(f"{method}-") and child.info.run_name.endswith(
            f"-{trial_id}") and "lr0=" in child.info.run_name  # fmt: skip
    assert all(c.data.tags["trial_id"] in out for c in on_front)


def test_bad_space_fails_before_ray(tmp_path, demo_spec, capsys) -> None:
    space = _space(tmp_path, demo_spec)
    text = space.read_text().replace("rate:", "rat:")
    space.write_text(text)
    assert main(["tune", str(space)]) == 2
    err = capsys.readouterr().err
    assert "space.lth.rat: method lth does not take it" in err and "\n" not in err.strip()
    assert not ray.is_initialized()
    assert main(["tune", str(space), "--num-samples", "0"]) == 2


def _finished_trial_runs(uri: str, study: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        return []
    return client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.kind = 'trial' and attributes.status = 'FINISHED'",
    )


def test_a_killed_driver_resumes_to_exactly_num_samples(tmp_path, demo_spec, capsys,
                                                        fresh_ray) -> None:  # fmt: skip
    import os
    import signal
    import subprocess
    import sys
    import time

    space = _space(tmp_path, demo_spec, num_samples=4)
    text = space.read_text().replace("epochs: 1", "epochs: 2")
    space.write_text(text)
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    args = ["tune", str(space), "--storage", str(tmp_path / "runs"), "--name", "r",
            "--mlflow-uri", uri]  # fmt: skip
    driver = subprocess.Popen([sys.executable, "-m", "yct.cli", *args], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not _finished_trial_runs(uri, "r"):
            assert driver.poll() is None, "the study ended before it could be killed"
            assert time.monotonic() < deadline, "no trial finished in 240 s"
            time.sleep(0.5)
    finally:  # the driver and everything it started (Ray's processes, running trials)
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    time.sleep(2)
    assert len(_finished_trial_runs(uri, "r")) < 4  # killed mid-study
    assert main([*args, "--resume"]) == 0
    assert "4 trials (0 errored)" in capsys.readouterr().out
    from ray import tune

    trials = tune.ExperimentAnalysis(str(tmp_path / "runs" / "r")).trials
    assert len(trials) == 4 and all(t.status == "TERMINATED" for t in trials)
    # every trial ran its 2 epochs (CS then reported its rewound ticket as epoch 2)
    assert all(t.last_result["epoch"] == (2 if t.config["method"] == "cs" else 1) for t in trials)
    # every epoch's checkpoint was kept while the study ran (the kill could come at any
    # moment), only the newest once it ended
    assert all(len(list(Path(t.path).glob("checkpoint_*"))) == 1 for t in trials)
    finished = _finished_trial_runs(uri, "r")
    assert sorted(r.data.tags["trial_id"] for r in finished) == sorted(t.trial_id for t in trials)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("r")
    parents = client.search_runs([experiment.experiment_id], "tags.kind = 'study'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert any(r.data.tags.get("pareto") == "true" for r in finished)


BEFORE_RAY = {
    "a rate beyond its domain": (lambda d: d["space"]["lth"].update(
        rate={"type": "float", "low": 0.3, "high": 1.5}),
        "space.lth.rate.high: prune rate must be in (0, 1), got 1.5"),
    "a missing data file": (lambda d: d.update(data="nowhere/data.yaml"),
                            "data: dataset spec not found: "),
    "an unknown model": (lambda d: d.update(model="yolov9"), "model: unknown model 'yolov9'"),
    "an unknown key": (lambda d: d["fixed"].update(bogus=1),
                       "fixed.bogus: no method of this study takes it"),
    "an objective no trial reports": (lambda d: d["objectives"].append(
        {"metric": "latency_ms", "mode": "min"}),
        "objectives[2].metric: latency_ms cannot be an objective: latency is not measured"),
    "a fixed img size no model takes": (lambda d: d["fixed"].update(img_size=50),
                                        "img_size must be a multiple of 32, got 50"),
    "a fixed value of the wrong type": (lambda d: d["fixed"].update(img_size="abc"),
                                        "fixed.img_size: expected int but got 'abc'"),
    "a hyper-parameter outside its domain": (lambda d: d["fixed"].update(momentum=1.5),
                                             "momentum must be in [0, 1), got 1.5"),
    "a model too large for the machine": (lambda d: d["fixed"].update(width=16.0, img_size=8192),
                                          "fixed: the starting model: yolov3-tiny.cfg: the "
                                          "model has "),
    "an int8 delivery timed on eager": (lambda d: d["fixed"].update(
        export="int8", latency_runs=3), "latency_runtime: export int8 delivers a model that "
        "only ONNX Runtime runs"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BEFORE_RAY))
def test_bad_input_exits_2_in_seconds_without_ray_or_mlflow(case, tmp_path, demo_spec,
                                                           capsys) -> None:  # fmt: skip
    import time

    change, expected = BEFORE_RAY[case]
    path = _space(tmp_path, demo_spec)
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    started = time.perf_counter()
    assert main(["tune", str(path), "--storage", str(tmp_path / "runs"),
                 "--mlflow-uri", f"sqlite:///{tmp_path / 'm.db'}"]) == 2  # fmt: skip
    assert time.perf_counter() - started < 10
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err and err.startswith(f"yct tune: error: {path}")
    assert not ray.is_initialized()
    assert not (tmp_path / "m.db").exists() and not (tmp_path / "runs").exists()


def test_dry_run_prints_the_resolved_study_without_ray(tmp_path, demo_spec, capsys) -> None:
    assert main(["tune", str(_space(tmp_path, demo_spec)), "--dry-run",
                 "--mlflow-uri", f"sqlite:///{tmp_path / 'm.db'}"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "method lth:" in out and "method cs:" in out
    assert "rate: float [0.2, 0.6]" in out and "lr0: loguniform [0.001, 0.01]" in out
    assert "rewind_epoch: fixed 0" in out and "4 trials, 2 at a time" in out
    assert not ray.is_initialized() and not (tmp_path / "m.db").exists()


def _parent(uri: str, study: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(study)
    (parent,) = client.search_runs([experiment.experiment_id], "tags.kind = 'study'")
    return parent


def test_a_study_without_a_finished_trial_exits_1_and_fails_its_run(tmp_path, demo_spec, capsys,
                                                                    fresh_ray) -> None:  # fmt: skip
    path = _space(tmp_path, demo_spec, num_samples=2, max_failures=0)
    data = yaml.safe_load(path.read_text())
    # the largest lr0 the domain allows, no warm-up: every trial's weights or loss turn NaN
    # in the first epoch
    data["fixed"].update(lr0=10.0, batch_size=2, warmup_epochs=0.0)
    data["space"].pop("lr0")
    path.write_text(yaml.safe_dump(data))
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    assert main(["tune", str(path), "--storage", str(tmp_path / "runs"), "--name", "nan",
                 "--mlflow-uri", uri]) == 1  # fmt: skip
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("yct tune")]
    assert err[0] == "yct tune: error: no trial of 2 finished with every objective"
    # one line per distinct error (an LTH and a CS trial fail differently; equal ones merge)
    assert 2 <= len(err) <= 3
    assert all(re.search(r"non-finite (loss at|\(.*\) after the optimiser step at) epoch 1 ", line)
               for line in err[1:]), err  # fmt: skip
    assert len(set(err)) == len(err)
    parent = _parent(uri, "nan")
    assert parent.info.status == "FAILED" and "no trial finished" in parent.data.tags["error"]


def test_a_study_that_raises_mid_way_leaves_its_run_failed(tmp_path, demo_spec, monkeypatch,
                                                           fresh_ray) -> None:  # fmt: skip
    from trainables import ray_adapter

    def broken(*args, **kwargs):
        raise RuntimeError("the driver lost its cluster")

    monkeypatch.setattr(ray_adapter, "run_tuner", broken)
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    with pytest.raises(RuntimeError):
        main(["--traceback", "tune", str(_space(tmp_path, demo_spec)), "--storage",
              str(tmp_path / "runs"), "--name", "boom", "--mlflow-uri", uri])  # fmt: skip
    parent = _parent(uri, "boom")
    assert parent.info.status == "FAILED"
    assert parent.data.tags["error"] == "RuntimeError: the driver lost its cluster"


def test_a_moasha_study_stops_trials_early_and_keeps_its_budget(tmp_path, demo_spec, capsys,
                                                                  fresh_ray) -> None:  # fmt: skip
    """Two objectives, MOASHA rungs at 1 and 2 epochs (η 2), a budget of 10 trial-epochs and
    no trial count: trials stop at rungs or at the budget, and MLflow says so."""
    data = yaml.safe_load(_space(tmp_path, demo_spec).read_text())
    data.update(method="train", space={
        "lr0": {"type": "loguniform", "low": 1e-3, "high": 1e-2},
        "width": {"type": "categorical", "choices": [0.125, 0.25]}})  # fmt: skip
    data["fixed"] = {k: v for k, v in data["fixed"].items() if k != "rewind_epoch"}
    data["fixed"]["epochs"] = 3
    data["search"] = {
        "sampler": "tpe",
        "scheduler": "moasha",
        "min_resource": 1,
        "reduction_factor": 2,
        "budget": 10,
        "max_concurrent": 2,
        "seed": 0,
    }
    space = tmp_path / "moasha.yaml"
    space.write_text(yaml.safe_dump(data))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    assert main(["tune", str(space), "--storage", str(tmp_path / "runs"), "--name", "m",
                 "--mlflow-uri", uri]) == 0  # fmt: skip
    from ray import tune

    trials = tune.ExperimentAnalysis(str(tmp_path / "runs" / "m")).trials
    spent = [int(t.last_result["training_iteration"]) for t in trials]
    assert 10 <= sum(spent) <= 10 + 1  # the budget, plus at most max_concurrent - 1 in flight
    assert min(spent) < 3  # some trial stopped before its third epoch
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("m")
    runs = client.search_runs([experiment.experiment_id], "tags.kind = 'trial'")
    assert len(runs) == len(trials)
    stopped = [r for r in runs if r.data.tags.get("trial_status") == "stopped"]
    assert stopped and all(r.info.status == "FINISHED" for r in stopped)
    assert {r.data.tags["stopped_reason"] for r in stopped} <= {"moasha", "budget"}
    assert any(r.data.tags.get("stopped_at_rung") in ("1", "2") for r in stopped)
    # stopped trials still count: every run has its measured objectives
    assert all("map50" in r.data.metrics and "macs" in r.data.metrics for r in runs)


def test_an_int8_study_delivers_and_measures_the_int8_model(tmp_path, demo_spec, capsys,
                                                             fresh_ray) -> None:  # fmt: skip
    """``fixed: {export: int8}``: each finished trial's last report is measured on its INT8
    graph (mAP50, storage, latency on ONNX Runtime) and both graphs ride in its checkpoint."""
    data = yaml.safe_load(_space(tmp_path, demo_spec).read_text())
    data.update(method="train", space={"lr0": {"type": "loguniform", "low": 1e-3, "high": 1e-2}},
                objectives=[{"metric": "map50", "mode": "max"},
                            {"metric": "latency_ms", "mode": "min"}])  # fmt: skip
    data["fixed"] = {"width": 0.25, "img_size": 64, "epochs": 1, "batch_size": 8,
                     "warmup_epochs": 0.0, "latency_runs": 2, "latency_runtime": "onnxruntime",
                     "export": "int8", "calib_images": 4}  # fmt: skip
    data["search"] = {"sampler": "random", "num_samples": 2, "max_concurrent": 2, "seed": 0}
    space = tmp_path / "int8.yaml"
    space.write_text(yaml.safe_dump(data))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    assert main(["tune", str(space), "--storage", str(tmp_path / "runs"), "--name", "q",
                 "--mlflow-uri", uri]) == 0  # fmt: skip
    from ray import tune

    trials = tune.ExperimentAnalysis(str(tmp_path / "runs" / "q")).trials
    assert len(trials) == 2
    for t in trials:
        result = t.last_result
        assert result["map50"] == pytest.approx(result["map50_float"] - result["int8_map50_drop"])
        assert result["latency_ms"] > 0
        files = {p.name for p in Path(t.checkpoint.path).rglob("*.onnx")}
        assert files == {"model.onnx", "model_int8.onnx"}
        int8 = next(Path(t.checkpoint.path).rglob("model_int8.onnx"))
        assert result["storage_mb"] == int8.stat().st_size / 1e6
    # the yardstick's latency is measured the way the trials measure theirs (ONNX Runtime),
    # not in PyTorch eager, which on a model this small is several times slower
    parent = _parent(uri, "q")
    start, fastest = (
        parent.data.metrics["start.latency_ms"],
        min(t.last_result["latency_ms"] for t in trials),
    )
    assert start < 3 * fastest, (start, fastest)
