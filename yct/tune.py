"""``yct tune``: run a search space as a Ray Tune + Optuna study."""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from yolo.metrics import names as m

if TYPE_CHECKING:
    from analysis.report import FrontReport
    from search_spaces.schema import SearchSpace
    from trainables.mlflow_adapter import StudyTracker

HELP = "run a multi-objective search (Ray Tune + Optuna) from a search-space YAML"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", type=Path, help="search-space YAML (search_spaces/*.yaml)")
    parser.add_argument("--data", help="dataset spec (overrides the YAML's data)")
    parser.add_argument("--num-samples", type=int, help="trials (overrides search.num_samples)")
    parser.add_argument("--max-concurrent", type=int, help="trials at once")
    parser.add_argument("--address", help="Ray cluster address ('auto' on a cluster node)")
    parser.add_argument("--storage", help="results folder or URI, s3://… on a multi-node cluster "
                        "(default: $YCT_STORAGE, else runs/tune)")  # fmt: skip
    parser.add_argument("--name", help="study name (default: the YAML's file name)")
    parser.add_argument("--mlflow-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                        "else sqlite:///mlruns.db)")  # fmt: skip
    parser.add_argument(
        "--report-dir", type=Path, help="front plot, table and CSV go here (runs/pareto/NAME)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted study (same --name)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Ray Tune's trial table "
                        "instead of one progress line per event")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="check everything, print the "
                        "resolved study and exit without starting Ray")  # fmt: skip


def locations(storage: str | None, mlflow_uri: str | None) -> tuple[str, str | None]:
    """Results storage and MLflow URI: the flags, else what cluster.yaml exports on the head
    (``YCT_STORAGE``, ``MLFLOW_TRACKING_URI``), else a local folder and SQLite file."""
    return (storage or os.environ.get("YCT_STORAGE") or "runs/tune",
            mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or None)  # fmt: skip


def file_front(space: SearchSpace, report_dir: str | None,
               tracker: StudyTracker) -> tuple[FrontReport | None, int]:  # fmt: skip
    """The front of the study's finished trials, read back from MLflow (the one record),
    filed on the parent run: (front, how many trials it was drawn from)."""
    from analysis.report import front_report
    from trainables.mlflow_adapter import load_trial_runs

    objectives = [(o.metric, o.mode) for o in space.objectives]
    needed = {metric for metric, _ in objectives} | {m.MACS, m.MAP50}
    trials = [t for t in load_trial_runs(tracker.tracking_uri, tracker.study,
                                         parent=tracker.parent)
              if needed <= set(t["metrics"])]  # fmt: skip
    if not trials:  # nothing to draw a front from: the study failed
        tracker.abort("no trial finished with every objective")
        return None, 0
    with tempfile.TemporaryDirectory() as folder:
        x = next((metric for metric, mode in objectives if mode == "min"), m.MACS)
        y = next((metric for metric, mode in objectives if mode == "max"), m.MAP50)
        report = front_report(trials, objectives, Path(report_dir or folder), x=x, y=y,
                              reference=tracker.reference or None,
                              start=tracker.start or None)  # fmt: skip
        front = [t["run_id"] for t, on in zip(trials, report.on_front) if on]
        tracker.finish(front, hypervolume=report.hypervolume, reference=report.reference,
                       artifacts=report.files)  # fmt: skip
    return report, len(trials)


def run(args: argparse.Namespace) -> int:
    from search_spaces.schema import load_space
    from trainables.mlflow_adapter import DEFAULT_TRACKING_URI
    from trainables.study import StudyOptions, run_study

    space = load_space(args.space)
    for flag in ("num_samples", "max_concurrent"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.data is not None and not Path(args.data).is_file():
        raise FileNotFoundError(f"dataset spec not found: {args.data}")
    name = args.name or args.space.stem
    report_dir = args.report_dir or Path("runs/pareto", name)
    storage, mlflow_uri = locations(args.storage, args.mlflow_uri)
    options = StudyOptions(name=name, storage=storage,
                           data=str(Path(args.data).resolve()) if args.data else None,
                           num_samples=args.num_samples, max_concurrent=args.max_concurrent,
                           address=args.address, resume=args.resume,
                           mlflow_uri=mlflow_uri, report_dir=str(report_dir),
                           verbose=args.verbose)  # fmt: skip
    if args.dry_run:
        from search_spaces.describe import describe_space
        from search_spaces.schema import check_files

        check_files(space, options.data)
        print(describe_space(space, options.data, num_samples=args.num_samples,
                             max_concurrent=args.max_concurrent))  # fmt: skip
        return 0
    result = run_study(space, options, functools.partial(file_front, space, options.report_dir))
    front, finished = result.summary
    errored = [t for t in result.trials if t.error is not None]
    print(f"\n{len(result.trials)} trials ({len(errored)} errored) in "
          f"{options.storage}/{options.name}")  # fmt: skip
    for trial in errored:
        print(f"  errored {trial.trial_id or '?'}: {trial.error}")
    if front is not None:
        print("\nPareto front (MLflow parent run of the study has the plot and table):\n")
        print(front.table)
        print("\n" + front.summary(finished))
        print("wrote " + ", ".join(str(f) for f in front.files))
    uri = options.mlflow_uri or DEFAULT_TRACKING_URI
    print(f"\nMLflow UI: mlflow ui --backend-store-uri {uri}   (then http://127.0.0.1:5000,"
          f" experiment '{options.name}')")  # fmt: skip
    if finished == 0:
        distinct = sorted({t.error for t in errored if t.error})
        print(f"yct tune: error: no trial of {len(result.trials)} finished with every "
              "objective", file=sys.stderr)  # fmt: skip
        for error in distinct:
            print(f"yct tune: error: {error}", file=sys.stderr)
        return 1
    return 0
