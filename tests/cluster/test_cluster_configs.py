"""cluster.yaml and cluster-local.yaml: valid for the installed Ray (offline, its shipped
schema and its own config preparation), and every command in them names real things."""

from __future__ import annotations

import copy
import json
import re
import shlex
import sys
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from trainables.ray_adapter import autoscaler_capacity
from yct.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ("cluster.yaml", "cluster-local.yaml")
SCHEMA = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


@pytest.mark.parametrize("name", CONFIGS)
def test_config_validates_against_the_schema_ray_ships(name: str) -> None:
    config = _load(name)
    jsonschema.validate(config, SCHEMA)  # the file as written
    prepared = prepare_config(copy.deepcopy(config))  # merged with Ray's defaults, as `ray up`
    validate_config(prepared)
    if name == "cluster.yaml":
        workers = prepared["available_node_types"]["gpu_worker"]
        assert workers["resources"]["GPU"] >= 1 and workers["node_config"][
            "InstanceMarketOptions"]["MarketType"] == "spot"  # fmt: skip
        assert prepared["idle_timeout_minutes"] > 0


def _commands(config: dict) -> list[str]:
    keys = ("initialization_commands", "setup_commands", "head_setup_commands",
            "worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands")  # fmt: skip
    return [c for key in keys for c in config.get(key) or []]


@pytest.mark.parametrize("name", CONFIGS)
def test_every_command_names_real_things(name: str) -> None:
    text = (ROOT / name).read_text()
    config = _load(name)
    makefile = (ROOT / "Makefile").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    # `yct SUB` in the usage comments and commands: real sub-commands, real files
    for match in re.finditer(r"yct (\w+)( [^\s']+)?", text):
        assert match.group(1) in COMMANDS, match.group(0)
        argument = (match.group(2) or "").strip()
        if argument.startswith("search_spaces/"):
            assert (ROOT / argument).is_file(), argument
    for source in (config.get("file_mounts") or {}).values():  # local side of each mount
        assert (ROOT / source).exists(), f"file_mounts source {source} is not in the repository"
    for target in re.findall(r"make ([\w-]+)", text):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"no make target {target}"
    # the install is this project, with the torch the Makefile pins
    name_in_pyproject = re.search(r'^name = "([^"]+)"', pyproject, re.M).group(1)
    installs = [c for c in _commands(config) if "pip install" in c and "git+" in c]
    assert installs and all(f'"{name_in_pyproject} @ git+' in c for c in installs)
    # every node installs exactly the lock this checkout tests with: mounted, --no-deps
    assert (config.get("file_mounts") or {}).get("~/yct/requirements.lock") == "./requirements.lock"
    pip = [c for c in _commands(config) if "pip install" in c and "torch==" not in c]
    assert any("-r ~/yct/requirements.lock" in c for c in pip)
    assert pip and all("--no-deps" in c for c in pip), pip
    assert all("python3.11 -m venv" in c for c in _commands(config) if " -m venv ~/" in c)
    assert "# python: 3.11" in (ROOT / "requirements.lock").read_text()
    torch_pin = re.search(r"TORCH_SPEC \?= (\S+)", makefile).group(1)
    assert all(torch_pin in c for c in _commands(config) if "install -q torch" in c)
    # what the commands run exists in this project's environment
    bin_dir = Path(sys.executable).parent  # installing this project gives these commands
    for command in _commands(config):
        for word in shlex.split(command.replace(";", " ; ")):
            if word in ("ray", "mlflow", "yct"):
                assert (bin_dir / word).is_file(), f"{word} is not installed with the project"
    # yct tune reads the locations the head exports
    assert "YCT_STORAGE" in text and "MLFLOW_TRACKING_URI" in text
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in text
    # the MLflow server outlives the ssh session; a running one (asked on its port, not by
    # pgrep, which would match the shell running this very line) is left alone
    server = next(c for c in config["head_start_ray_commands"] if "mlflow server" in c)
    assert "127.0.0.1:5000/health" in server and "setsid nohup mlflow server" in server


def test_smoke_cluster_is_cluster_local_on_loopback(tmp_path) -> None:
    from tests.cluster.smoke_config import cluster_config

    config = cluster_config(ROOT / "cluster-local.yaml", tmp_path, Path("/venv"), 2222, 6390,
                            5999)  # fmt: skip
    jsonschema.validate(config, SCHEMA)
    assert config["provider"]["head_ip"] == "127.0.0.1" and config["provider"]["worker_ips"] == []
    assert config["auth"]["ssh_proxy_command"] == "nc 127.0.0.1 2222"
    start = " ".join(config["head_start_ray_commands"])
    assert "/venv/bin/ray start --head --port=6390" in start
    assert "--host 127.0.0.1 --port 5999" in start and "0.0.0.0" not in start
    assert "/venv/bin/python -c" in start and "127.0.0.1:5999/health" in start
    assert str(tmp_path / "mlflow" / "mlflow.db") in start and "~/mlflow" not in start


def test_autoscaler_capacity_counts_nodes_not_yet_up(tmp_path) -> None:
    config = tmp_path / "ray_bootstrap_config.yaml"
    config.write_text(yaml.safe_dump(_load("cluster.yaml")))
    capacity = autoscaler_capacity({"CPU": 4.0}, config)
    assert capacity["GPU"] == 1.0 and capacity["CPU"] == 4.0  # a g5.xlarge worker may come
    assert autoscaler_capacity({"CPU": 2.0}, tmp_path / "none.yaml") == {"CPU": 2.0}


def test_tune_reads_storage_and_mlflow_from_the_environment(monkeypatch) -> None:
    from yct.tune import locations

    monkeypatch.delenv("YCT_STORAGE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert locations(None, None) == ("runs/tune", None)
    monkeypatch.setenv("YCT_STORAGE", "s3://bucket/yct")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert locations(None, None) == ("s3://bucket/yct", "http://127.0.0.1:5000")
    assert locations("runs/x", "sqlite:///x.db") == ("runs/x", "sqlite:///x.db")


@pytest.mark.parametrize("spec", sorted((ROOT / "datasets").glob("*.yaml")))
def test_shipped_dataset_specs_are_well_formed(spec: Path) -> None:
    from yolo.data.spec import SpecError, load_spec

    # well-formed: the only complaint on this machine is that the data is not here
    with pytest.raises(SpecError, match=r"root: directory not found: /mnt/shared/"):
        load_spec(spec)
