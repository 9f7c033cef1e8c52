"""``yct pareto``: the front of a study from MLflow: plot, table, hypervolume."""

from __future__ import annotations

import argparse
from pathlib import Path

from yolo.metrics import names as m

HELP = "Pareto front of a study from MLflow: PNG plot, markdown + CSV table, hypervolume"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--experiment", metavar="NAME", help="the study (MLflow experiment)")
    which.add_argument("--all", action="store_true",
                       help="every study in the store, pooled on one front")  # fmt: skip
    parser.add_argument("--x", default=m.MACS, help=f"cost metric on the x axis ({m.MACS})")
    parser.add_argument("--y", default=m.MAP50, help=f"quality metric on the y axis ({m.MAP50})")
    parser.add_argument("--objectives", nargs="+", metavar="METRIC:MODE",
                        help="objectives of the front (default: y:max x:min)")  # fmt: skip
    parser.add_argument("--by", default="method", help="colour the plot by this tag/param")
    parser.add_argument("--out", type=Path, default=Path("runs/pareto"), help="output folder")
    parser.add_argument("--mlflow-uri", default=None, help="tracking URI (sqlite:///mlruns.db)")


def _objectives(args: argparse.Namespace) -> list[tuple[str, str]]:
    from yolo.metrics.names import HIGHER_IS_BETTER

    if not args.objectives:
        return [(args.y, "max"), (args.x, "min")]
    result = []
    for item in args.objectives:
        metric, _, mode = item.partition(":")
        mode = mode or ("max" if HIGHER_IS_BETTER.get(metric, True) else "min")
        if metric not in HIGHER_IS_BETTER or mode not in ("min", "max"):
            raise ValueError(
                f"--objectives: expected METRIC[:min|max] with a known metric, got "
                f"'{item}'; metrics: {', '.join(sorted(HIGHER_IS_BETTER))}"
            )
        result.append((metric, mode))
    if len(result) < 2:
        raise ValueError("--objectives: a front needs at least 2 objectives")
    return result


def run(args: argparse.Namespace) -> int:
    from analysis.report import front_report
    from trainables.mlflow_adapter import DEFAULT_TRACKING_URI, load_study_start, load_trial_runs

    if not args.experiment and not args.all:
        raise ValueError("give --experiment NAME (one study, with its fixed reference) or --all "
                         "(every study in the store pooled, no common reference)")  # fmt: skip
    objectives = _objectives(args)
    uri = args.mlflow_uri or DEFAULT_TRACKING_URI
    needed = {m for m, _ in objectives} | {args.x, args.y}
    trials = [t for t in load_trial_runs(uri, args.experiment) if needed <= set(t["metrics"])]
    if not trials:
        raise ValueError(f"no finished trial with metrics {', '.join(sorted(needed))} at {uri}")
    # one study: its own yardstick (the starting model); pooled studies: no common one
    start, reference = load_study_start(uri, args.experiment) if args.experiment else ({}, {})
    report = front_report(trials, objectives, args.out, x=args.x, y=args.y, by=args.by,
                          reference=reference or None, start=start or None)  # fmt: skip
    print(report.table)
    print("\n" + report.summary(len(trials)))
    print("wrote " + ", ".join(str(f) for f in report.files))
    return 0
