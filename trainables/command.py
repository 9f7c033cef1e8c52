"""``yct tune``: run a search space as a Ray Tune + Optuna study."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "run a multi-objective search (Ray Tune + Optuna) from a search-space YAML"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", type=Path, help="search-space YAML (search_spaces/*.yaml)")
    parser.add_argument("--data", help="dataset spec (overrides the YAML's data)")
    parser.add_argument("--num-samples", type=int, help="trials (overrides search.num_samples)")
    parser.add_argument("--max-concurrent", type=int, help="trials at once")
    parser.add_argument("--address", help="Ray cluster address ('auto' on a cluster node)")
    parser.add_argument("--storage", default="runs/tune", help="results folder or URI (s3://…)")
    parser.add_argument("--name", help="study name (default: the YAML's file name)")
    parser.add_argument("--mlflow-uri", help="MLflow tracking URI (sqlite:///mlruns.db)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted study")


def run(args: argparse.Namespace) -> int:
    from search_spaces.schema import load_space
    from trainables.study import StudyOptions, run_study

    space = load_space(args.space)
    for flag in ("num_samples", "max_concurrent"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.data is not None and not Path(args.data).is_file():
        raise FileNotFoundError(f"dataset spec not found: {args.data}")
    options = StudyOptions(name=args.name or args.space.stem, storage=args.storage,
                           data=str(Path(args.data).resolve()) if args.data else None,
                           num_samples=args.num_samples, max_concurrent=args.max_concurrent,
                           address=args.address, resume=args.resume,
                           mlflow_uri=args.mlflow_uri)  # fmt: skip
    results = run_study(space, options)
    metrics = [o.metric for o in space.objectives]
    errored = sum(1 for r in results if r.error is not None)
    print(f"{len(results)} trials ({errored} errored) in {options.storage}/{options.name}")
    for r in results:
        if r.error is None and r.metrics:
            values = "  ".join(f"{k} {r.metrics.get(k, float('nan')):.4g}" for k in metrics)
            print(f"  {r.metrics.get('trial_id', '?')}: {values}")
    return 0
