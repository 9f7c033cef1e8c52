"""Cost and yield of the search platform on the demo study (search_spaces/demo.yaml).

1. Overhead: the share of a study's wall time its trial slots did not spend training
   (Ray start-up and scheduling, MLflow logging, cost metrics, checkpoints, the front at the
   end): ``1 - sum(epoch train + eval time over every trial) / (wall time x concurrency)``.
   Target under 10% for short trials.
2. Search efficiency: hypervolume of (mAP50 up, MACs down) after k = 1..K trials, NSGA-II vs
   random search, same budget, several seeds, against one reference point for all studies
   (mAP 0, the dense model's MACs).

Each study runs on local Ray with its own MLflow SQLite file under --out; figures go to
``bench/results/tune_overhead.json``.

    python bench/tune_overhead.py [--trials 12] [--seeds 0 1 2] [--samplers nsga2 random]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from results_io import write_results

from analysis.pareto import hypervolume, non_dominated
from search_spaces import shipped_path
from search_spaces.schema import load_space
from trainables import ray_adapter
from trainables.mlflow_adapter import load_trial_runs, metric_sums
from trainables.study import StudyOptions, run_study
from yolo.metrics import names as m
from yolo.metrics.profile import count_macs
from yolo.zoo import create_model

ROOT = Path(__file__).resolve().parents[1]


def space_file(out: Path, sampler: str, seed: int, trials: int) -> Path:
    """The demo space with this sampler, seed and budget (paths made absolute)."""
    source = shipped_path("demo")
    data = yaml.safe_load(source.read_text())
    data["data"] = str((source.parent / data["data"]).resolve())
    data["fixed"]["weights"] = str((source.parent / data["fixed"]["weights"]).resolve())
    data["search"].update(sampler=sampler, seed=seed, num_samples=trials)
    if sampler != "nsga2":
        data["search"].pop("population_size", None)
    path = out / f"{sampler}_{seed}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def hypervolume_curve(trials: list[dict], reference: list[float]) -> list[float]:
    """Hypervolume of the front of the first k trials (in start order), k = 1..n."""
    ordered = sorted(trials, key=lambda t: t["start_time"])
    points = np.array([[t["metrics"][m.MAP50], t["metrics"][m.MACS]] for t in ordered])
    curve = []
    for k in range(1, len(points) + 1):
        front = non_dominated(points[:k], ["max", "min"])
        curve.append(hypervolume(points[:k][front], reference, ["max", "min"]))
    return curve


def time_breakdown(study: Path) -> dict[str, float]:
    """Where the trials' time went, from Tune's result files: their spans (start to last
    report), training, trial start-up before the first epoch, cost metrics, reports to Tune."""
    parts = dict.fromkeys(("trial_spans_s", "training_s", "trial_start_s", "cost_metrics_s",
                           "report_s"), 0.0)  # fmt: skip
    for path in study.glob("*/result.json"):
        results = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if not results:
            continue
        busy = [r.get(m.EPOCH_TIME_S, 0.0) + r.get(m.EVAL_TIME_S, 0.0) for r in results]
        first = results[0]
        parts["trial_spans_s"] += results[-1]["timestamp"] - first["timestamp"] + first[
            "time_total_s"]  # fmt: skip
        parts["training_s"] += sum(busy)
        parts["trial_start_s"] += first["time_total_s"] - busy[0] - first.get(m.COST_TIME_S, 0)
        parts["cost_metrics_s"] += sum(r.get(m.COST_TIME_S, 0.0) for r in results)
        parts["report_s"] += sum(r.get(m.REPORT_TIME_S, 0.0) for r in results)
    return parts


def run_one(out: Path, sampler: str, seed: int, trials: int, reference: list[float]) -> dict:
    space = load_space(space_file(out, sampler, seed, trials))
    name = f"{sampler}_{seed}"
    uri = f"sqlite:///{out / (name + '.db')}"
    options = StudyOptions(name=name, storage=str(out / "tune"), mlflow_uri=uri,
                           report_dir=str(out / "pareto" / name))  # fmt: skip
    start = time.perf_counter()
    result = run_study(space, options)
    wall = time.perf_counter() - start
    runs = load_trial_runs(uri, name)
    busy = sum(sum(metric_sums(uri, r["run_id"], [m.EPOCH_TIME_S, m.EVAL_TIME_S]).values())
               for r in runs)  # fmt: skip
    concurrency = space.search.max_concurrent
    curve = hypervolume_curve(runs, reference)
    parts = time_breakdown(out / "tune" / name)
    figures = {
        "sampler": sampler,
        "seed": seed,
        "trials": len(result.trials),
        "errored": sum(t.error is not None for t in result.trials),
        "wall_s": round(wall, 1),
        "training_s": round(busy, 1),
        "overhead_share": round(1 - busy / (wall * concurrency), 4),
        # inside trials: 1 - training / the trials' own time (start-up, cost metrics, reports)
        "in_trial_overhead_share": round(1 - busy / parts["trial_spans_s"], 4),
        "slot_seconds": {"total": round(wall * concurrency, 1), **{k: round(v, 1) for k, v in
                         {**parts, "outside_trials_s": wall * concurrency - parts[
                             "trial_spans_s"]}.items()}},
        "hypervolume_by_trial": [round(v, 1) for v in curve],
        "hypervolume": round(curve[-1], 1) if curve else 0.0,
        "front": [(t["metrics"][m.MAP50], t["metrics"][m.MACS], t["tags"].get("method"))
                  for t in runs if t["tags"].get("pareto") == "true"],
    }  # fmt: skip
    print(f"{name}: {figures['trials']} trials in {wall:.0f}s, training {busy:.0f}s over "
          f"{concurrency} slots -> overhead {figures['overhead_share']:.1%}; "
          f"hypervolume {figures['hypervolume']:.4g}", flush=True)  # fmt: skip
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samplers", nargs="+", default=["nsga2", "random"])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_tune_overhead")
    args = parser.parse_args()
    space = load_space(shipped_path("demo"))
    if not Path(space.fixed["weights"]).is_file():  # the dense model every trial prunes
        subprocess.run(["make", "-C", str(ROOT), "demo-dense"], check=True)
    fixed = space.fixed
    dense = create_model(space.model, num_classes=10, width=float(fixed["width"]))
    reference = [0.0, float(count_macs(dense, int(fixed["img_size"])).effective)]
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ray_adapter.start_ray(None)
    ray_start = time.perf_counter() - start
    studies = [run_one(args.out, sampler, seed, args.trials, reference)
               for sampler in args.samplers for seed in args.seeds]  # fmt: skip
    summary = {}
    for sampler in args.samplers:
        mine = [s for s in studies if s["sampler"] == sampler]
        volumes = np.array([s["hypervolume"] for s in mine])
        curves = np.array([s["hypervolume_by_trial"] for s in mine if
                           len(s["hypervolume_by_trial"]) == args.trials])  # fmt: skip
        summary[sampler] = {
            "hypervolume_mean": round(float(volumes.mean()), 1),
            "hypervolume_std": round(float(volumes.std()), 1),
            "hypervolume_by_trial_mean": [round(v, 1) for v in curves.mean(0)] if len(curves)
            else [],
            "overhead_share_mean": round(float(np.mean([s["overhead_share"] for s in mine])), 4),
        }  # fmt: skip
        summary[sampler]["in_trial_overhead_share_mean"] = round(float(np.mean(
            [s["in_trial_overhead_share"] for s in mine])), 4)  # fmt: skip
        print(f"{sampler}: hypervolume after {args.trials} trials "
              f"{volumes.mean():.4g} ± {volumes.std():.3g} over seeds {args.seeds}; overhead "
              f"{summary[sampler]['overhead_share_mean']:.1%}")  # fmt: skip
    write_results(
        ROOT / "bench" / "results" / "tune_overhead.json",
        "python bench/tune_overhead.py " + " ".join(sys.argv[1:]),
        {"space": "search_spaces/demo.yaml", "trials_per_study": args.trials,
         "seeds": args.seeds, "reference": {"map50": reference[0], "macs": reference[1]},
         "ray_start_s": round(ray_start, 1), "summary": summary, "studies": studies},
    )  # fmt: skip


if __name__ == "__main__":
    main()
