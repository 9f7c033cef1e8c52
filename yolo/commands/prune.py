"""``yct prune lth|cs``: Lottery-Ticket or Continuous-Sparsification pruning of a model."""

from __future__ import annotations

import argparse
from pathlib import Path

from yolo.commands.common import add_method_options, method_config
from yolo.commands.run_settings import check_or_record
from yolo.commands.train import add_train_options, build_config, read_config_file
from yolo.compress.lth import TICKET
from yolo.compress.registry import get_method, methods_of_command
from yolo.metrics import names as m
from yolo.zoo import ZOO_SIZE

HELP = "prune a model: LTH (iterative magnitude, late rewinding) or Continuous Sparsification"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    methods = methods_of_command("prune")
    parser.add_argument("method", choices=[method.name for method in methods])
    parser.add_argument("model", help="zoo name, .cfg, or a trained checkpoint (.pt)")
    add_train_options(parser)
    add_method_options(parser, methods)


def _table(reports: list[dict[str, float]]) -> str:
    lines = [f"| round | remaining | non-zero params | MACs | MACs at {ZOO_SIZE} | mAP50 |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in reports:
        cells = (f"{int(r[m.ROUND])}", f"{r['remaining']:.4f}", f"{int(r[m.PARAMS]):,}",
                 f"{int(r[m.MACS]):,}", f"{int(r[m.MACS_416]):,}",
                 f"{r[m.MAP50]:.4f}" if m.MAP50 in r else "-")  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    settings = read_config_file(args.config)
    method = get_method(args.method)
    section = settings.pop(args.method, {}) or {}
    for other in methods_of_command("prune"):
        settings.pop(other.name, None)
    from yolo.io import is_checkpoint_path, load_checkpoint

    if is_checkpoint_path(args.model):
        if not Path(args.model).is_file():
            raise FileNotFoundError(f"checkpoint not found: {args.model}")
        settings.setdefault("weights", args.model)
        if args.img_size is None:
            settings.setdefault(
                "img_size", load_checkpoint(args.model).metadata.get("img_size", ZOO_SIZE)
            )
    settings.setdefault("out", f"runs/prune_{args.method}")
    config = method_config(method, args, section)
    train = build_config(args, settings)
    method.validate(train, config)
    check_or_record(train.out, method.name, train, config)
    reports = method.run(train, config, progress=not args.quiet)
    print(_table(reports))
    print(f"ticket: {Path(train.out) / TICKET}")
    return 0
