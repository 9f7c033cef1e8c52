"""Helpers of ``cluster_smoke.sh``: the cluster YAML it brings up, its study, its checks.

smoke_config.py cluster-local.yaml OUT.yaml --work W --venv V --ssh-port P ...
smoke_config.py --space OUT.yaml --data DATA.yaml
smoke_config.py --check MLFLOW_URI --storage DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml


def cluster_config(source: Path, work: Path, venv: Path, ssh_port: int, ray_port: int,
                   mlflow_port: int) -> dict:  # fmt: skip
    """cluster-local.yaml with the head on 127.0.0.1 through this run's sshd, no workers,
    nothing installed (this checkout's venv is the install) and nothing written outside
    ``work``: the shipped start commands with this run's ports and paths."""
    config = yaml.safe_load(source.read_text())
    user = __import__("getpass").getuser()
    config["cluster_name"] = f"yct-smoke-{work.name.rsplit('.', 1)[-1]}"
    config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    config["auth"] = {"ssh_user": user, "ssh_private_key": str(work / "id_ed25519"),
                      "ssh_proxy_command": f"nc 127.0.0.1 {ssh_port}"}  # fmt: skip
    config["max_workers"] = 0
    config["file_mounts"] = {}
    config["setup_commands"] = []
    config["head_setup_commands"] = []
    bin_dir = f"{venv}/bin"
    start = []
    for command in config["head_start_ray_commands"]:
        command = command.replace("ray stop", f"{bin_dir}/ray stop")
        command = command.replace("ray start --head --port=6379",
                                  f"{bin_dir}/ray start --head --port={ray_port} --num-cpus=2 "
                                  "--include-dashboard=false")  # fmt: skip
        command = command.replace("~/mlflow", str(work / "mlflow"))
        command = command.replace("$HOME/mlflow/mlflow.db", str(work / "mlflow" / "mlflow.db"))
        command = command.replace("/mnt/shared/mlflow", str(work / "mlartifacts"))
        command = command.replace("nohup mlflow server", f"nohup {bin_dir}/mlflow server")
        assert "setsid nohup" in command or "mlflow" not in command, "the server must outlive ssh"
        command = command.replace("python -c", f"{bin_dir}/python -c")
        command = command.replace("127.0.0.1:5000/health", f"127.0.0.1:{mlflow_port}/health")
        command = command.replace("--host 0.0.0.0 --port 5000", f"--host 127.0.0.1 --port "
                                  f"{mlflow_port}")  # fmt: skip
        start.append(command)
    config["head_start_ray_commands"] = start
    config["worker_start_ray_commands"] = []
    return config


def space(data: Path) -> dict:
    return {
        "method": "train",
        "model": "yolov3-tiny",
        "data": str(data),
        "objectives": [{"metric": "map50", "mode": "max"}, {"metric": "macs", "mode": "min"}],
        "fixed": {"img_size": 64, "epochs": 1, "batch_size": 8, "accumulate": 1,
                  "warmup_epochs": 0.0, "latency_runs": 1},
        "space": {"width": {"type": "categorical", "choices": [0.25, 0.5]}},
        "search": {"sampler": "random", "num_samples": 2, "max_concurrent": 2, "seed": 0},
        "resources": {"cpu": 1, "gpu": 0},
    }  # fmt: skip


def check(uri: str, storage: Path) -> None:
    """Two finished trial runs and a finished parent with its front, in the head's MLflow;
    the Tune results under the storage that YCT_STORAGE named."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("smoke")
    assert experiment is not None, f"no MLflow experiment 'smoke' at {uri}"
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    trials = [r for r in runs if r.data.tags.get("kind") == "trial"]
    baselines = [r for r in runs if r.data.tags.get("role") == "baseline"]
    assert len(baselines) == 1 and "map50" in baselines[0].data.metrics, baselines
    assert len(parents) == 1 and parents[0].info.status == "FINISHED", parents
    assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials), trials
    assert all("map50" in r.data.metrics and "macs" in r.data.metrics for r in trials)
    files = {f.path for f in client.list_artifacts(parents[0].info.run_id, "pareto")}
    assert "pareto/front.png" in files, files
    assert (storage / "smoke").is_dir(), f"no Tune results under {storage}"
    print(f"cluster-smoke: MLflow at {uri}: 1 study run, 2 finished trial runs, front filed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", nargs="?", type=Path)
    parser.add_argument("out", nargs="?", type=Path)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--venv", type=Path)
    for port in ("ssh", "ray", "mlflow"):
        parser.add_argument(f"--{port}-port", type=int)
    parser.add_argument("--space", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--check")
    parser.add_argument("--storage", type=Path)
    args = parser.parse_args()
    if args.check:
        check(args.check, args.storage)
    elif args.space:
        args.space.write_text(yaml.safe_dump(space(args.data)))
    else:
        config = cluster_config(args.source, args.work, args.venv, args.ssh_port,
                                args.ray_port, args.mlflow_port)  # fmt: skip
        args.out.write_text(yaml.safe_dump(config, sort_keys=False))


if __name__ == "__main__":
    sys.exit(main())
