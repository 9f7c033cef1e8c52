"""The study tracker against a real ``mlflow server`` on 127.0.0.1 (HTTP, proxied artifacts)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from trainables.mlflow_adapter import (
    PER_CLASS_AP,
    StudyTracker,
    load_trial_runs,
    wait_for_server,
)

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", (tmp_path / "artifacts").as_uri(), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited: {process.stderr.read()[-2000:]}")
            assert time.monotonic() < deadline, "mlflow server did not answer in 120 s"
            time.sleep(0.5)
        yield uri, tmp_path / "artifacts"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_tracker_logs_a_study_to_a_server(server, tmp_path) -> None:
    uri, artifacts = server
    tracker = StudyTracker(uri, "remote", tags={"model": "yolov3-tiny", "method": "lth"},
                           params={"search.sampler": "nsga2"}, space_text="method: lth\n")  # fmt: skip
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "last.pt").write_bytes(b"training state")
    from trainables.records import MODEL_FILE
    from yolo.io import save_checkpoint
    from yolo.zoo import create_model

    save_checkpoint(checkpoint / MODEL_FILE, create_model("yolov3-tiny", num_classes=2, width=0.25),
                    metadata={"names": ["a", "b"], "img_size": 64})  # fmt: skip
    (checkpoint / PER_CLASS_AP).write_text(json.dumps({"per_class": {"one": {"ap": 0.5}}}))
    for trial, (map50, macs) in {"t1": (0.6, 2e8), "t2": (0.4, 1e8), "t3": (0.3, 3e8)}.items():
        tracker.trial_started(trial, {"rate": 0.2, "lr0": 0.01})
        for epoch in range(2):
            tracker.trial_result(trial, {"map50": map50 * (epoch + 1) / 2, "macs": macs}, epoch)
        tracker.trial_ended(trial, checkpoint=checkpoint)
    front = [tracker.trials["t1"], tracker.trials["t2"]]
    table = tmp_path / "front.md"
    table.write_text("| model |\n")
    tracker.finish(front, hypervolume=0.1, reference={"map50": 0.0, "macs": 3.3e8},
                   artifacts=[table])  # fmt: skip

    runs = load_trial_runs(uri, "remote")
    assert sorted(r["tags"]["trial_id"] for r in runs) == ["t1", "t2", "t3"]
    assert {r["tags"]["trial_id"] for r in runs if r["tags"].get("pareto") == "true"} == {
        "t1",
        "t2",
    }
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    history = client.get_metric_history(tracker.trials["t1"], "map50")
    assert [h.step for h in history] == [0, 1] and history[-1].value == pytest.approx(0.6)
    files = {f.path for f in client.list_artifacts(tracker.trials["t3"])}
    assert files == {PER_CLASS_AP}  # the training state (last.pt) is not copied to MLflow
    # the model as a logged model, through the server; keep: front deletes t3's, files too
    kept = client.get_logged_model(client.get_run(tracker.trials["t1"]).data.tags["model_id"])
    assert kept.source_run_id == tracker.trials["t1"]
    assert {f.path for f in client.list_logged_model_artifacts(kept.model_id)} >= {"MLmodel"}
    assert client.get_run(tracker.trials["t3"]).data.tags["model_id"] == "deleted (keep: front)"
    holding = {p.relative_to(artifacts).parts for p in artifacts.rglob("MLmodel")}
    assert len(holding) == 2 and any(kept.model_id in parts for parts in holding)  # t1, t2
    parent_files = {f.path for f in client.list_artifacts(tracker.parent, "pareto")}
    assert parent_files == {"pareto/front.md"}
    assert client.get_run(tracker.parent).data.metrics["hypervolume"] == pytest.approx(0.1)
    assert client.get_run(tracker.parent).data.params["search.sampler"] == "nsga2"
    # the method's own setting is named by method, as in a multi-method study; lr0 is shared
    assert client.get_run(tracker.trials["t2"]).data.params == {"lth.rate": "0.2", "lr0": "0.01"}
    assert client.get_run(tracker.trials["t2"]).data.tags["unit.macs"].startswith("multiply-acc")
    # proxied artifacts land where the server was told to put them, not beside the client
    assert any(p.name == PER_CLASS_AP for p in artifacts.rglob("*"))
    assert not (tmp_path / "mlartifacts").exists()


def test_an_unreachable_server_is_one_line_naming_it() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match=rf"MLflow server http://127.0.0.1:{port} not "
                                              r"reachable after 1 s"):  # fmt: skip
        wait_for_server(f"http://127.0.0.1:{port}", timeout_s=1.0)
    wait_for_server("sqlite:///x.db", timeout_s=0.0)  # a file store: nothing to wait for


def test_params_beyond_one_batch_are_all_logged(tmp_path) -> None:
    """Params go in batches (MLflow takes 100 at a time): a study with many fixed settings."""
    params = {f"fixed.setting_{i:03d}": i for i in range(230)}
    tracker = StudyTracker(f"sqlite:///{tmp_path / 'm.db'}", "many", tags={}, params=params,
                           space_text="")  # fmt: skip
    tracker.trial_started("t", {f"k{i}": i for i in range(120)})
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracker.tracking_uri)
    assert client.get_run(tracker.parent).data.params == {k: str(v) for k, v in params.items()}
    assert len(client.get_run(tracker.trials["t"]).data.params) == 120
