"""A trial the budget stopped during its search (before its method's first delivering report)
delivers nothing in MLflow: its run says so and logs no model, where a trial stopped after
it logs the model its last report measured (real SQLite store, real checkpoint files)."""

from __future__ import annotations

from trainables.mlflow_adapter import MODEL_ID_TAG, StudyTracker, load_trial_runs
from trainables.records import MODEL_FILE
from yolo.io import save_checkpoint
from yolo.zoo import create_model


def test_only_a_trial_stopped_after_its_first_delivering_report_logs_a_model(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    tracker = StudyTracker(uri, "s", tags={"model": "yolov3-tiny"}, params={"x": 1},
                           space_text="method: cs\n", keep="all")  # fmt: skip
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    save_checkpoint(checkpoint / MODEL_FILE, create_model("yolov3-tiny", num_classes=2,
                                                          width=0.125))  # fmt: skip
    for trial, deliverable in (("searching", False), ("retraining", True)):
        tracker.trial_started(trial, {"x": 1})
        figures = {"loss": 1.0} | ({"map50": 0.1, "macs": 1e6} if deliverable else {})
        tracker.trial_result(trial, figures, 2)
        tracker.trial_ended(trial, checkpoint=checkpoint,
                            stopped={"reason": "budget", "rung": None, "at": 2,
                                     "deliverable": deliverable})  # fmt: skip
    runs = {r["tags"]["trial_id"]: r for r in load_trial_runs(uri, "s")}
    searching, retraining = runs["searching"], runs["retraining"]
    assert searching["tags"]["trial_status"] == retraining["tags"]["trial_status"] == "stopped"
    assert searching["tags"]["delivered"].startswith("nothing: stopped before")
    assert MODEL_ID_TAG not in searching["tags"] and "map50" not in searching["metrics"]
    assert "delivered" not in retraining["tags"] and MODEL_ID_TAG in retraining["tags"]
