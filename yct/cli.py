"""The ``yct`` command: one sub-command per module, imported only when it runs.

Each command module exposes ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Heavy imports (torch, Ray, MLflow) happen inside ``run``, so
``yct --help`` and ``yct info`` start fast and the core never imports Ray.

Bad input anywhere becomes one line on stderr (``yct <command>: error: …``) and exit 2; a
dependency that fails in its own machinery (:class:`~yolo.errors.DependencyError`) one line
naming it and its version, exit 1. ``--traceback`` shows the full trace for debugging.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from yolo.errors import DependencyError

# name -> module; each imports its heavy dependencies (Ray, MLflow) only inside ``run``
COMMANDS: dict[str, str] = {
    "info": "yolo.commands.info",
    "data": "yolo.commands.data",
    "train": "yolo.commands.train",
    "evaluate": "yolo.commands.evaluate",
    "detect": "yolo.commands.detect",
    "score": "yolo.commands.score",
    "prune": "yolo.commands.prune",
    "distill": "yolo.commands.distill",
    "export": "yolo.commands.export",
    "import": "yolo.commands.import_thesis",
    "tune": "yct.tune",  # imports Ray only when it runs
    "pareto": "yct.pareto",
}


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("yolo-compress-tune")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


# what an option's value is, where argparse would print its name in capitals (LR0, IMG_SIZE)
METAVARS = {
    "accumulate": "N", "address": "HOST:PORT", "batch": "N", "by": "TAG", "calib": "DIR",
    "calib_images": "N", "classes": "N", "conf": "0..1", "config": "CONFIG.yaml",
    "data": "DATA.yaml", "device": "cpu|cuda[:i]|auto", "epochs": "N",
    "eval_interval": "EPOCHS", "gt": "GT.json", "hyp": "HYP.yaml", "img_size": "PX",
    "iou": "0..1", "latency_runs": "N", "max_concurrent": "N", "mlflow_uri": "URI",
    "name": "NAME", "num_samples": "N", "out": "DIR", "patience": "EPOCHS",
    "pred": "PRED.json", "report_dir": "DIR", "seed": "N", "storage": "PATH|URI",
    "student": "MODEL", "time_budget": "SECONDS", "weights": "FILE", "width": "X",
    "inherit": "CHECKPOINT",
    "workers": "N", "x": "METRIC", "y": "METRIC",
}  # fmt: skip


def _readable_metavars(parser: argparse.ArgumentParser) -> None:
    """Options whose value argparse would show by its name: what the value is instead
    (:data:`METAVARS`; otherwise N for an integer, X for a number)."""
    for action in parser._actions:
        if not action.option_strings or action.metavar is not None or action.nargs == 0:
            continue
        if action.choices is not None:  # argparse lists them
            continue
        if action.dest in METAVARS:
            action.metavar = METAVARS[action.dest]
        elif action.type is int:
            action.metavar = "N"
        elif action.type is float:
            action.metavar = "X"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yct",
        description="Find the best compressed YOLO detector for a budget.",
    )
    parser.add_argument("--version", action="version", version=f"yct {_version()}")
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback on errors"
    )
    parser.add_argument(
        "--max-memory", type=float, metavar="GB", default=None,
        help="refuse models estimated to need more memory than this (default: the machine's)",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        _readable_metavars(command)
        command.set_defaults(run=module.run)
    return parser


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and text.startswith("'"):
        text = text.strip("'")
    return text or type(exc).__name__


def _run(args: argparse.Namespace) -> int:
    from yct.model_uri import resolved_models

    with resolved_models(args):  # runs:/… or models:/… -> a local copy, for this command
        if args.max_memory is None:  # torch is imported only where a command needs it
            return int(args.run(args) or 0)
        from yolo.resources import memory_limit

        with memory_limit(args.max_memory):  # this command's limit, not the process'
            return int(args.run(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, TypeError, OSError, KeyError) as exc:
        if args.traceback:
            raise
        print(f"yct {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except DependencyError as exc:  # not the input's fault: exit 1, the library named
        if args.traceback:
            raise
        print(f"yct {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"yct {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
