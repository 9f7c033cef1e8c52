"""`yct pareto` over MLflow runs written by the study tracker (SQLite, no Ray needed)."""

from __future__ import annotations

import pytest

from trainables.mlflow_adapter import StudyTracker
from yct.cli import main


@pytest.fixture
def study(tmp_path) -> str:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    tracker = StudyTracker(uri, "demo", tags={"model": "yolov3-tiny"}, params={"x": 1},
                           space_text="method: [lth, cs]\n")  # fmt: skip
    points = {  # trial -> (method, seed, map50, macs)
        "a": ("lth", 0, 0.70, 8e7), "b": ("lth", 1, 0.72, 8e7), "c": ("cs", 0, 0.55, 4e7),
        "d": ("cs", 0, 0.50, 9e7), "e": ("lth", 0, 0.75, 2e8),
    }  # fmt: skip
    for trial, (method, seed, map50, macs) in points.items():
        rate = 0.3 if trial in "ab" else 0.5
        tracker.trial_started(
            trial,
            {
                "method": method,
                "seed": seed,
                "rate": rate if method == "lth" else 0,
                "penalty": trial if method == "cs" else 0,
            },
        )
        tracker.trial_result(
            trial, {"map50": map50, "macs": macs, "params": 1e6, "storage_mb": 4.0}, 1
        )
        tracker.trial_ended(trial)
    front = [tracker.trials[t] for t in "bce"]
    tracker.finish(front, hypervolume=1.0, reference={"map50": 0.0})
    return uri


def test_pareto_command_writes_plot_table_and_csv(study, tmp_path, capsys) -> None:
    out = tmp_path / "pareto"
    assert main(["pareto", "--experiment", "demo", "--mlflow-uri", study, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    # a (0.70 @ 8e7) is dominated by b; d by c; trials a and b share a configuration
    assert "3 of 5 trials on the front" in text
    assert (out / "front.png").stat().st_size > 10_000
    table = (out / "front.md").read_text()
    assert table.count("| yolov3-tiny |") == 3 and "0.720" in table
    csv_text = (out / "trials.csv").read_text()
    assert "0.71" in csv_text  # a and b grouped: mean of 0.70 and 0.72
    # the interactive page: self-contained (plotly.js inlined), a hover text and a link to
    # the MLflow run for every trial
    page = (out / "front.html").read_text()
    assert len(page) > 1_000_000 and "<script src=" not in page  # plotly.js inside
    from trainables.mlflow_adapter import load_trial_runs

    for trial in load_trial_runs(study, "demo"):
        link = f"/#/experiments/{trial['experiment_id']}/runs/{trial['run_id']}"
        assert link.replace("/", "\\u002f") in page  # plotly's JSON escapes '/' in HTML


def test_pareto_command_bad_input(study, tmp_path, capsys) -> None:
    assert main(["pareto", "--experiment", "nope", "--mlflow-uri", study]) == 2
    assert "no MLflow experiment 'nope'" in capsys.readouterr().err
    assert main(["pareto", "--mlflow-uri", study]) == 2
    assert "give --experiment NAME (one study" in capsys.readouterr().err
    assert main(["pareto", "--all", "--mlflow-uri", study, "--objectives", "map50:max"]) == 2
    assert "at least 2 objectives" in capsys.readouterr().err
    assert main(["pareto", "--all", "--mlflow-uri", study, "--objectives", "mAP:max",
                 "macs:min"]) == 2  # fmt: skip
    assert "--objectives: expected METRIC" in capsys.readouterr().err
