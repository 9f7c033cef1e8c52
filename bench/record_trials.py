"""Record a table of real trials of the demo search space, every report of each, for replay.

Hundreds of real studies do not fit on 2 cores, so ``bench/search_efficiency.py`` does what
tabular HPO benchmarks (NAS-Bench, HPOBench, Syne Tune's simulator) do: it replays studies
against a table of real trials. This script makes that table by running one real study of
``search_spaces/demo.yaml`` (the real trainables under Ray Tune, MLflow, checkpoints) with a
random sampler and no early stopping, ``--trials`` configurations, and reading every trial's
reports back from Tune's result files: the objectives and costs at every fidelity step
(``training_iteration``), with the configuration that produced them.

The table (``bench/tables/demo_trials.json``) carries its provenance: the commit, the command,
the machine, the date and the search space as loaded.

    python bench/record_trials.py [--trials 64] [--seed 1000] [--out runs/bench_record]
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from results_io import SMOKE_DIR, machine, parse_with_smoke, smoke_inputs

from search_spaces import shipped_path
from search_spaces.schema import SearchSpace, load_space
from trainables.study import StudyOptions, run_study
from yct.tune import file_front

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "bench" / "tables" / "demo_trials.json"
KEPT = ("training_iteration", "map50", "macs", "params", "storage_mb", "latency_ms", "epoch")


def recording_space(out: Path, trials: int, seed: int, smoke: dict[str, Any]) -> Path:
    """The demo space with a random sampler, no scheduler, ``trials`` samples (absolute
    paths; ``--smoke``: the tiny data, an untrained start, 1 epoch)."""
    source = shipped_path("demo")
    data = yaml.safe_load(source.read_text())
    data["data"] = str(smoke.get("data") or (source.parent / data["data"]).resolve())
    data["fixed"]["weights"] = str(
        smoke.get("weights") or (source.parent / data["fixed"]["weights"]).resolve()
    )
    if smoke:
        data["fixed"]["epochs"] = 1
    data["search"] = {
        "sampler": "random",
        "scheduler": "fifo",
        "seed": seed,
        "num_samples": trials,
        "max_concurrent": data["search"]["max_concurrent"],
        "max_failures": data["search"]["max_failures"],
    }
    path = out / "record.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def describe_params(space: SearchSpace) -> dict[str, dict[str, Any]]:
    """The searched parameters as the trial configs name them, with their domains."""
    params: dict[str, dict[str, Any]] = {}
    for param in space.shared:
        params[param.name] = param.describe()
    if space.multi_method:
        params["method"] = {"kind": "categorical", "choices": list(space.methods)}
        for method, own in space.space.items():
            for param in own:
                params[f"{method}.{param.name}"] = param.describe()
    else:
        for param in space.space[space.methods[0]]:
            params[param.name] = param.describe()
    return params


def read_trials(study: Path, params: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every trial of a finished study from Tune's result files, in start order."""
    trials = []
    for path in sorted(study.glob("*/result.json")):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if not lines:
            continue
        config = {k: v for k, v in lines[0]["config"].items() if k in params}
        reports = [{k: r[k] for k in KEPT if k in r} for r in lines]
        started = lines[0]["timestamp"] - lines[0]["time_total_s"]
        trials.append({"config": config, "reports": reports, "started": started,
                       "error": (path.parent / "error.txt").is_file()})  # fmt: skip
    trials.sort(key=lambda t: t.pop("started"))
    return trials


def commit() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    return done.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument(
        "--seed",
        type=int,
        default=1000,
        help="the recording's own seed (not one the replay's studies use)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_record",
                        help="the study's folder (emptied first)")  # fmt: skip
    parser.add_argument("--table", type=Path, default=TABLE)
    args = parse_with_smoke(parser, {"trials": 2, "table": SMOKE_DIR / "demo_trials.json"},
                            "record_trials")  # fmt: skip
    smoke: dict[str, Any] = {}
    if args.smoke:
        args.out = SMOKE_DIR / "record_trials"
        data, weights = smoke_inputs(SMOKE_DIR / "record_trials_inputs")
        smoke = {"data": data.resolve(), "weights": weights.resolve()}
    elif not (ROOT / "runs" / "demo" / "dense" / "best.pt").is_file():
        subprocess.run(["make", "-C", str(ROOT), "demo-dense"], check=True)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    space = load_space(recording_space(args.out.resolve(), args.trials, args.seed, smoke))
    options = StudyOptions(name="record", storage=str((args.out / "tune").resolve()),
                           mlflow_uri=f"sqlite:///{(args.out / 'mlruns.db').resolve()}",
                           report_dir=str(args.out / "pareto"))  # fmt: skip
    start = time.perf_counter()
    run_study(space, options, functools.partial(file_front, space, options.report_dir))
    wall = time.perf_counter() - start
    params = describe_params(space)
    trials = read_trials(args.out / "tune" / "record", params)
    table = {
        "provenance": {
            "commit": commit(),
            "command": "python bench/record_trials.py " + " ".join(sys.argv[1:]),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(),
            "space": "search_spaces/demo.yaml",
            "fixed": {k: v for k, v in space.fixed.items() if k != "weights"},
            "model": space.model,
            "wall_s": round(wall, 1),
        },
        "objectives": [{"metric": o.metric, "mode": o.mode} for o in space.objectives],
        "params": params,
        "trials": trials,
    }
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(json.dumps(table, indent=1) + "\n")
    reports = sum(len(t["reports"]) for t in trials)
    print(f"{len(trials)} trials ({sum(t['error'] for t in trials)} errored), {reports} "
          f"reports in {wall:.0f} s -> {args.table}")  # fmt: skip


if __name__ == "__main__":
    main()
