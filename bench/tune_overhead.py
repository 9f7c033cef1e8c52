"""Cost and yield of the search platform on the demo study (search_spaces/demo.yaml).

1. Overhead: the share of a study's wall time its trial slots did not spend training
   (Ray start-up and scheduling, MLflow logging, cost metrics, checkpoints, the front at the
   end): ``1 - sum(epoch train + eval time over every trial) / (wall time x concurrency)``.
   Target under 10% for short trials.
2. Search efficiency: hypervolume of (mAP50 up, MACs down) after k = 1..K trials, NSGA-II vs
   random search, same budget, several seeds, against one reference point for all studies
   (mAP 0, the dense model's MACs).

Each study runs on local Ray and logs to one MLflow SQLite store under --out, as studies
share ``mlruns.db`` in use; Ray's start and the first open of the store (MLflow's import and
schema check; a new SQLite file is migrated too) are timed apart: once per process, not per
study. ``--img-size`` runs the demo at
another size, i.e. another epoch length (the platform's costs are per epoch, per trial and
per study, so their share falls as epochs grow). Figures go to
``bench/results/tune_overhead.json`` (``tune_overhead_img<N>.json`` with --img-size).

    python bench/tune_overhead.py [--trials 12] [--seeds 0 1 2] [--samplers nsga2 random]
                                  [--img-size N] [--reuse]
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

import numpy as np
import yaml
from results_io import SMOKE_DIR, parse_with_smoke, smoke_inputs, write_results

from analysis.pareto import hypervolume, non_dominated
from search_spaces import shipped_path
from search_spaces.schema import load_space
from trainables import ray_adapter
from trainables.mlflow_adapter import load_trial_runs, prepare_store
from trainables.study import StudyOptions, run_study
from yct.tune import file_front
from yolo.metrics import names as m
from yolo.metrics.profile import count_macs
from yolo.zoo import create_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "tune_overhead.json"


SMOKE: dict[str, Path | int] = {}  # --smoke: tiny data, an untrained start, 1 epoch


def space_file(out: Path, sampler: str, seed: int, trials: int, img_size: int | None) -> Path:
    """The demo space with this sampler, seed, budget and size (paths made absolute)."""
    source = shipped_path("demo")
    data = yaml.safe_load(source.read_text())
    data["data"] = str(SMOKE.get("data") or (source.parent / data["data"]).resolve())
    weights = SMOKE.get("weights") or (source.parent / data["fixed"]["weights"]).resolve()
    data["fixed"]["weights"] = str(weights)
    if img_size is not None:
        data["fixed"]["img_size"] = img_size
    if SMOKE:
        data["fixed"]["epochs"] = SMOKE["epochs"]
    # the overhead study: a trial count, no budget, NSGA-II with a population of 4
    data["search"] = {
        "sampler": sampler,
        "seed": seed,
        "num_samples": trials,
        "max_concurrent": 2,
        "scheduler": "fifo",
        "max_failures": 1,
        **({"population_size": 4} if sampler == "nsga2" else {}),
    }
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


def time_breakdown(study: Path, concurrency: int) -> dict[str, float]:
    """Where the slots' time went, from Tune's result files: the trials' spans (start to last
    report), training, trial start-up before the first epoch, cost metrics, reports to Tune
    (checkpoint persisted, the driver's round trip), each epoch's other bookkeeping (the
    engine's checkpoint files, callbacks), the method's work between rounds or phases (LTH
    pruning and rewinding, a new round's trainer), and the idle tail: slots left empty after
    the last trial started (nothing left to run; the workload's shape, not the platform's
    cost)."""
    parts = dict.fromkeys(("trial_spans_s", "training_s", "trial_start_s", "cost_metrics_s",
                           "report_s", "epoch_bookkeeping_s", "between_rounds_s", "idle_tail_s",
                           "epochs"), 0.0)  # fmt: skip
    spans = []
    for path in study.glob("*/result.json"):
        results = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if not results:
            continue
        busy = [r.get(m.EPOCH_TIME_S, 0.0) + r.get(m.EVAL_TIME_S, 0.0) for r in results]
        first = results[0]
        begin = first["timestamp"] - first["time_total_s"]
        spans.append((begin, results[-1]["timestamp"]))
        parts["trial_spans_s"] += results[-1]["timestamp"] - begin
        parts["training_s"] += sum(busy)
        parts["epochs"] += len(results)
        parts["trial_start_s"] += first["time_total_s"] - busy[0] - first.get(m.COST_TIME_S, 0)
        parts["cost_metrics_s"] += sum(r.get(m.COST_TIME_S, 0.0) for r in results)
        parts["report_s"] += sum(r.get(m.REPORT_TIME_S, 0.0) for r in results)
        for before, now, spent in zip(results, results[1:], busy[1:]):
            rest = (now["time_total_s"] - before["time_total_s"] - spent
                    - now.get(m.COST_TIME_S, 0.0) - now.get(m.REPORT_TIME_S, 0.0))  # fmt: skip
            new_round = now.get(m.EPOCH, 1) <= before.get(m.EPOCH, 0)  # the epoch count restarts
            parts["between_rounds_s" if new_round else "epoch_bookkeeping_s"] += rest
    if spans:
        last_start, last_end = max(b for b, _ in spans), max(e for _, e in spans)
        busy_after = sum(max(0.0, e - max(b, last_start)) for b, e in spans)
        parts["idle_tail_s"] = concurrency * (last_end - last_start) - busy_after
    return parts


def run_one(out: Path, uri: str, sampler: str, seed: int, trials: int, img_size: int | None,
            reuse: bool) -> dict:  # fmt: skip
    """Run one study (or, with ``reuse``, take the one a previous run left in ``out``)."""
    name = f"{sampler}_{seed}"
    record = out / f"{name}.json"
    if reuse and record.is_file():
        return json.loads(record.read_text())
    space = load_space(space_file(out, sampler, seed, trials, img_size))
    options = StudyOptions(name=name, storage=str(out / "tune"), mlflow_uri=uri,
                           report_dir=str(out / "pareto" / name))  # fmt: skip
    start = time.perf_counter()
    result = run_study(space, options, functools.partial(file_front, space, options.report_dir))
    run = {"name": name, "sampler": sampler, "seed": seed, "uri": uri,
           "wall_s": time.perf_counter() - start, "concurrency": space.search.max_concurrent,
           "trials": len(result.trials),
           "errored": sum(t.error is not None for t in result.trials)}  # fmt: skip
    record.write_text(json.dumps(run))
    return run


def figures_of(out: Path, run: dict, reference: list[float]) -> dict:
    name, uri, wall, concurrency = run["name"], run["uri"], run["wall_s"], run["concurrency"]
    runs = load_trial_runs(uri, name)
    curve = hypervolume_curve(runs, reference)
    parts = time_breakdown(out / "tune" / name, concurrency)  # every time figure, one source
    epochs, busy = parts.pop("epochs"), parts["training_s"]
    slots = wall * concurrency
    disk = sum(f.stat().st_size for f in (out / "tune" / name).rglob("*") if f.is_file())
    figures = {
        "sampler": run["sampler"],
        "seed": run["seed"],
        "trials": run["trials"],
        "errored": run["errored"],
        "wall_s": round(wall, 1),
        "training_s": round(busy, 1),
        "epochs": int(epochs),
        "epoch_s_mean": round(busy / max(epochs, 1), 2),  # train + evaluate, per epoch
        "study_disk_mb": round(disk / 1e6, 1),  # Tune's folder: checkpoints, results
        # the issue's measure: the share of the slots' time not spent training
        "overhead_share": round(1 - busy / slots, 4),
        # the same without the idle tail (no trial left to run: not Ray, MLflow, checkpoints)
        "platform_overhead_share": round(1 - busy / (slots - parts["idle_tail_s"]), 4),
        # inside trials only: start-up, cost metrics, checkpoints and reports
        "in_trial_overhead_share": round(1 - busy / parts["trial_spans_s"], 4),
        # what the issue names (Ray, MLflow, checkpoints): Tune's start and scheduling, the
        # driver's MLflow logging and the front at the end (outside the trials, idle tail
        # excepted), reports with their checkpoints, each epoch's checkpoint files
        "ray_mlflow_checkpoint_share": round((slots - parts["trial_spans_s"]
                                              - parts["idle_tail_s"] + parts["report_s"]
                                              + parts["epoch_bookkeeping_s"]) / slots, 4),
        "slot_seconds": {"total": round(slots, 1), **{k: round(v, 1) for k, v in
                         {**parts, "outside_trials_s": slots - parts["trial_spans_s"]}.items()}},
        "hypervolume_by_trial": [round(v, 1) for v in curve],
        "hypervolume": round(curve[-1], 1) if curve else 0.0,
        "front": [(t["metrics"][m.MAP50], t["metrics"][m.MACS], t["tags"].get("method"))
                  for t in runs if t["tags"].get("pareto") == "true"],
    }  # fmt: skip
    print(f"{name}: {figures['trials']} trials in {wall:.0f}s, training {busy:.0f}s "
          f"({epochs:.0f} epochs of {figures['epoch_s_mean']:.1f}s) over "
          f"{concurrency} slots -> overhead {figures['overhead_share']:.1%} (platform "
          f"{figures['platform_overhead_share']:.1%}, in trials "
          f"{figures['in_trial_overhead_share']:.1%}; Ray, MLflow and checkpoints "
          f"{figures['ray_mlflow_checkpoint_share']:.1%}); hypervolume "
          f"{figures['hypervolume']:.4g}", flush=True)  # fmt: skip
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samplers", nargs="+", default=["nsga2", "random"])
    parser.add_argument(
        "--img-size",
        type=int,
        default=None,
        help="train at this size instead of the demo's (longer epochs)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="studies' folder (default runs/bench_tune_overhead[_img<N>]); "
        "emptied first unless --reuse",
    )
    parser.add_argument("--reuse", action="store_true",
                        help="take the studies left in --out by a previous run")  # fmt: skip
    args = parse_with_smoke(parser, {"trials": 2, "seeds": [0], "samplers": ["random"],
                                     "img_size": 64}, "tune_overhead")  # fmt: skip
    suffix = f"_img{args.img_size}" if args.img_size else ""
    out = args.out or ROOT / "runs" / f"bench_tune_overhead{suffix}"
    results = RESULTS.with_name(f"tune_overhead{suffix}.json")
    if args.smoke:
        out = args.out = SMOKE_DIR / "tune_overhead"
        results = SMOKE_DIR / "tune_overhead.json"
        data, weights = smoke_inputs(SMOKE_DIR / "tune_overhead_inputs")
        SMOKE.update(data=data.resolve(), weights=weights.resolve(), epochs=1)
    space = load_space(shipped_path("demo"))
    if not args.smoke and not Path(space.fixed["weights"]).is_file():  # the dense start
        subprocess.run(["make", "-C", str(ROOT), "demo-dense"], check=True)
    fixed = space.fixed
    size = args.img_size or int(fixed["img_size"])
    dense = create_model(space.model, num_classes=10, width=float(fixed["width"]))
    reference = [0.0, float(count_macs(dense, size).effective)]
    if not args.reuse:
        shutil.rmtree(out, ignore_errors=True)  # a fresh store: no runs of an earlier bench
    out.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{out / 'mlruns.db'}"
    start = time.perf_counter()
    ray_adapter.start_ray(None)
    ray_start = time.perf_counter() - start
    start = time.perf_counter()
    prepare_store(uri)
    store_open = time.perf_counter() - start
    runs = [run_one(out, uri, sampler, seed, args.trials, args.img_size, args.reuse)
            for sampler in args.samplers for seed in args.seeds]  # fmt: skip
    studies = [figures_of(out, run, reference) for run in runs]
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
            **{f"{key}_mean": round(float(np.mean([s[key] for s in mine])), 4) for key in
               ("overhead_share", "platform_overhead_share", "in_trial_overhead_share",
                "ray_mlflow_checkpoint_share")},
            "epoch_s_mean": round(float(np.mean([s["epoch_s_mean"] for s in mine])), 2),
        }  # fmt: skip
        print(f"{sampler}: hypervolume after {args.trials} trials "
              f"{volumes.mean():.4g} ± {volumes.std():.3g} over seeds {args.seeds}; overhead "
              f"{summary[sampler]['overhead_share_mean']:.1%} (Ray, MLflow and checkpoints "
              f"{summary[sampler]['ray_mlflow_checkpoint_share_mean']:.1%})")  # fmt: skip
    write_results(
        results,
        "python bench/tune_overhead.py " + " ".join(sys.argv[1:]),
        {"space": "search_spaces/demo.yaml", "img_size": size, "trials_per_study": args.trials,
         "seeds": args.seeds, "reference": {"map50": reference[0], "macs": reference[1]},
         "ray_start_s": round(ray_start, 1), "mlflow_first_open_s": round(store_open, 1),
         "summary": summary, "studies": studies},
    )  # fmt: skip


if __name__ == "__main__":
    main()
