"""`yct <command> runs:/…/model`: a URI that names no model is one line, exit 2."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from yct.cli import main


def test_a_model_uri_that_names_nothing_is_one_line(
    tmp_path, monkeypatch, capsys, demo_spec
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("e", artifact_location=str(tmp_path / "a")))
    capsys.readouterr()  # MLflow's own log of creating the store
    for target, expected in (
        ("runs:/0123456789abcdef0123456789abcdef/model", "no model there in the MLflow store"),
        (f"runs:/{run.info.run_id}/model", "no model there in the MLflow store"),
        ("models:/m-0123456789abcdef", "no model there in the MLflow store"),
    ):
        assert main(["evaluate", target, "--data", str(demo_spec)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"yct evaluate: error: {target}: {expected} {uri}"), err
        assert "\n" not in err and "Traceback" not in err


def test_a_model_uri_without_a_store_is_one_line(tmp_path, monkeypatch, capsys, demo_spec) -> None:
    missing = tmp_path / "nowhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{missing}")
    assert main(["evaluate", "runs:/0123456789abcdef0123456789abcdef/model", "--data",
                 str(demo_spec)]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err == (f"yct evaluate: error: runs:/0123456789abcdef0123456789abcdef/model: no "
                   f"MLflow store at {missing} (MLFLOW_TRACKING_URI names the store)")  # fmt: skip
    assert not missing.exists()  # not created by looking
