"""``yct prune lth|cs``: Lottery-Ticket or Continuous-Sparsification pruning of a model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from yolo.commands.common import method_values
from yolo.commands.train import add_train_options, build_config, read_config_file

HELP = "prune a model: LTH (iterative magnitude, late rewinding) or Continuous Sparsification"

# flag -> method config field; None values are left at the method's (seed) default
_LTH = {"rate": "rate", "rounds": "rounds", "scope": "scope", "rewind_epoch": "rewind_epoch",
        "ignored_layers": "ignored_layers"}  # fmt: skip
_CS = {"rounds": "rounds", "final_temperature": "final_temperature", "penalty": "penalty",
       "mask_init": "mask_init", "mask_lr": "mask_lr", "rewind_epoch": "rewind_epoch",
       "retrain_epochs": "retrain_epochs", "ignored_layers": "ignored_layers"}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("method", choices=("lth", "cs"))
    parser.add_argument("model", help="zoo name, .cfg, or a trained checkpoint (.pt)")
    add_train_options(parser)
    group = parser.add_argument_group("method options (seed defaults)")
    group.add_argument("--rate", type=float, help="lth: share pruned per round (0.2)")
    group.add_argument("--rounds", type=int, help="lth: prune rounds (13); cs: rounds (3)")
    group.add_argument("--scope", choices=("local", "global"), help="lth: (global)")
    group.add_argument("--rewind-epoch", type=int, help="epoch to rewind to (10; 0 = LTH)")
    group.add_argument("--ignored-layers", type=int, nargs="+", help="blocks never pruned")
    group.add_argument("--final-temperature", type=float, help="cs: beta at round end (200)")
    group.add_argument("--lambda", dest="penalty", type=float, help="cs: L1 weight (1e-8)")
    group.add_argument("--mask-init", type=float, help="cs: initial mask score (0.0)")
    group.add_argument("--mask-lr", type=float, help="cs: mask optimiser lr (0.1)")
    group.add_argument("--retrain-epochs", type=int, help="cs: retrain the ticket (0)")


def _method_config(args: argparse.Namespace, section: dict[str, Any]) -> Any:
    from yolo.compress.cs import CSConfig
    from yolo.compress.lth import LTHConfig

    cls, fields = (LTHConfig, _LTH) if args.method == "lth" else (CSConfig, _CS)
    values = method_values(cls, args, section, fields)
    if "ignored_layers" in values:
        values["ignored_layers"] = tuple(values["ignored_layers"])
    return cls(**values)


def _table(reports: list[dict[str, float]]) -> str:
    lines = ["| round | remaining | non-zero params | MACs | MACs at 416 | mAP50 |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in reports:
        cells = (f"{int(r['round'])}", f"{r['remaining']:.4f}", f"{int(r['params']):,}",
                 f"{int(r['macs']):,}", f"{int(r['macs_416']):,}", f"{r['map50']:.4f}")  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    settings = read_config_file(args.config)
    section = settings.pop(args.method, {}) or {}
    other = "cs" if args.method == "lth" else "lth"
    settings.pop(other, None)
    if args.model.endswith((".pt", ".pth")):
        from yolo.io import load_checkpoint

        if not Path(args.model).is_file():
            raise FileNotFoundError(f"checkpoint not found: {args.model}")
        settings.setdefault("weights", args.model)
        if args.img_size is None:
            settings.setdefault(
                "img_size", load_checkpoint(args.model).metadata.get("img_size", 416)
            )
    settings.setdefault("out", f"runs/prune_{args.method}")
    method = _method_config(args, section)
    train = build_config(args, settings)
    if args.method == "lth":
        from yolo.compress.lth import run_lth

        reports = run_lth(train, method, progress=not args.quiet)
    else:
        from yolo.compress.cs import run_cs

        reports = [run_cs(train, method, progress=not args.quiet)]
    print(_table(reports))
    print(f"ticket: {Path(train.out) / 'ticket.pt'}")
    return 0
