"""A real architecture-search study: a yolov3-mobile parent trained here, two candidates drawn
by Optuna under a MACs cap, each inheriting the parent's weights, trained on local Ray, and
logged to MLflow with the cfg it trained as an artifact that ``yct info`` loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray
import yaml

from yct.cli import main
from yolo.config import parse_cfg

pytestmark = pytest.mark.slow

ARCHITECTURE = {
    "all": {"kernel": {"type": "categorical", "choices": [3, 5]}},
    "s3": {"depth": {"type": "int", "low": 1, "high": 4}, "per_unit": ["kernel"]},
    "s4": {"depth": {"type": "int", "low": 1, "high": 3},
           "expansion": {"type": "categorical", "choices": [2, 4]}},
    "s5": {"se": 0},
    "constraints": {"max_macs": 7.6e6},  # the space spans 6.8e6 to 8.5e6
}  # fmt: skip


@pytest.fixture
def fresh_ray():
    yield
    ray.shutdown()


def test_a_real_nas_study_logs_each_trials_cfg(tmp_path, demo_spec, capsys, fresh_ray) -> None:
    parent = tmp_path / "parent"
    assert main(["train", "yolov3-mobile", "--data", str(demo_spec), "--img-size", "64",
                 "--width", "0.25", "--epochs", "1", "--batch", "8", "--out", str(parent),
                 "--quiet"]) == 0  # fmt: skip
    space = tmp_path / "nas.yaml"
    space.write_text(yaml.safe_dump({
        "method": "train",
        "model": "yolov3-mobile",
        "data": str(demo_spec),
        "objectives": [{"metric": "map50", "mode": "max"}, {"metric": "macs", "mode": "min"}],
        "fixed": {"inherit": str(parent / "best.pt"), "width": 0.25, "img_size": 64,
                  "epochs": 1, "batch_size": 8, "latency_runs": 0, "warmup_epochs": 0.0},
        "architecture": ARCHITECTURE,
        "search": {"sampler": "random", "num_samples": 2, "max_concurrent": 2, "seed": 0},
        "resources": {"cpu": 1, "gpu": 0},
    }))  # fmt: skip
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    assert main(["tune", str(space), "--storage", str(tmp_path / "runs"), "--name", "nas",
                 "--mlflow-uri", uri]) == 0  # fmt: skip
    assert "2 trials (0 errored)" in capsys.readouterr().out
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("nas")
    runs = client.search_runs([experiment.experiment_id], "tags.kind = 'trial'")
    assert len(runs) == 2
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.metrics["macs"] <= ARCHITECTURE["constraints"]["max_macs"]
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert "architecture.cfg" in names
        local = client.download_artifacts(run.info.run_id, "architecture.cfg", str(tmp_path))
        cfg = parse_cfg(Path(local).read_text(), source="architecture.cfg")
        # the drawn depth of s3 is the number of its units in the logged cfg
        depth = int(run.data.params["arch.s3.depth"])
        from yolo.architecture import find_stages

        assert find_stages(cfg)[2].depth == depth
        assert main(["info", local, "--img-size", "64"]) == 0  # the zoo's loader takes it
    parent_run = client.search_runs([experiment.experiment_id], "tags.kind = 'study'")[0]
    rejected = parent_run.data.metrics.get("rejected_draws", 0.0)
    assert rejected == sum(v for k, v in parent_run.data.metrics.items()
                           if k.startswith("rejected_draws."))  # fmt: skip
