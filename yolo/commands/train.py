"""``yct train``: train a zoo model (or any cfg) on a dataset spec."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from yolo.zoo import ZOO_SIZE

HELP = "train a detector (SGD, the seed's schedule, EMA, checkpoints every epoch, --resume)"

# CLI flag -> TrainConfig field, for options that map one to one
_FIELDS = {
    "img_size": "img_size", "epochs": "epochs", "batch": "batch_size",
    "accumulate": "accumulate", "width": "width", "weights": "weights", "device": "device",
    "inherit": "inherit",
    "workers": "workers", "seed": "seed", "patience": "patience", "metric": "metric",
    "time_budget": "time_budget_s", "eval_interval": "eval_interval",
}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="zoo name or .cfg file (omit with --resume)")
    add_train_options(parser)
    parser.add_argument(
        "--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
        help="continue a run exactly: its last.pt (default: OUT/last.pt)",
    )  # fmt: skip


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """The training options shared by ``train``, ``prune`` and ``distill``."""
    parser.add_argument("--data", help="dataset spec (YAML or .data)")
    parser.add_argument("--config", type=Path, help="YAML of train settings (flags override)")
    parser.add_argument("--hyp", type=Path, help="YAML of hyper-parameters (seed defaults)")
    parser.add_argument("--img-size", type=int, help=f"input size, a multiple of 32 ({ZOO_SIZE})")
    parser.add_argument("--epochs", type=int, help="epochs (100)")
    parser.add_argument("--batch", type=int, help="batch size (8)")
    parser.add_argument("--accumulate", type=int, help="batches per optimiser step (8)")
    parser.add_argument("--width", type=float, help="channel width multiplier (1.0)")
    parser.add_argument("--weights", help="start from a checkpoint or darknet .weights")
    parser.add_argument("--inherit", metavar="CHECKPOINT",
                        help="start from the overlapping weights of a trained model of the "
                             "same family (another depth, expansion, kernel…)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="output folder (runs/train)")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N (auto)")
    parser.add_argument("--workers", type=int, help="data loader workers (0)")
    parser.add_argument("--seed", type=int, help="random seed (0)")
    parser.add_argument("--patience", type=int, help="early stop after N epochs without gain (75)")
    parser.add_argument("--metric", choices=("voc07", "voc", "coco"), help="mAP form (voc07)")
    parser.add_argument("--eval-interval", type=int, help="evaluate every N epochs (1)")
    parser.add_argument("--time-budget", type=float, help="stop after the epoch past N seconds")
    parser.add_argument("--multi-scale", action="store_true", help="sizes 2/3x..3/2x per batch")
    parser.add_argument("--cache", action="store_true", help="cache decoded images in RAM")
    parser.add_argument("--no-ema", action="store_true", help="evaluate raw weights, not EMA")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def read_config_file(path: Path | None) -> dict[str, Any]:
    """The ``--config`` YAML as a mapping (empty when not given)."""
    from yolo.train_config import read_yaml_mapping

    return read_yaml_mapping(path, "config") if path is not None else {}


def build_config(args: argparse.Namespace, settings: dict[str, Any] | None = None) -> Any:
    """A TrainConfig from ``--config`` (or ``settings``) overridden by the flags."""
    from yolo.train_config import TrainConfig, load_hyp

    settings = dict(read_config_file(args.config) if settings is None else settings)
    hyp_overrides = settings.pop("hyp", None)
    for flag, name in _FIELDS.items():
        value = getattr(args, flag)
        if value is not None:
            settings[name] = value
    settings["model"] = args.model or settings.get("model")
    settings["data"] = args.data or settings.get("data")
    settings["out"] = str(args.out or settings.get("out") or "runs/train")
    for flag, name in (("multi_scale", "multi_scale"), ("cache", "cache")):
        if getattr(args, flag):
            settings[name] = True
    if args.no_ema:
        settings["ema"] = False
    if not settings["model"]:
        raise ValueError("MODEL is required (a zoo name or a .cfg), unless --resume")
    if not settings["data"]:
        raise ValueError("--data is required (a dataset spec)")
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(
            f"{args.config}: unknown key '{unknown[0]}'; allowed: {', '.join(sorted(known))}"
        )
    hyp = load_hyp(args.hyp, hyp_overrides)
    return TrainConfig(**settings, hyp=hyp)


def run(args: argparse.Namespace) -> int:
    from yolo.engine import Trainer

    if args.resume is not None:
        path = (
            Path(args.out or "runs/train") / "last.pt" if args.resume is True else Path(args.resume)
        )
        trainer = Trainer.resume(path, progress=not args.quiet)
        if trainer.start_epoch >= trainer.config.epochs:
            print(f"{path}: the run already finished its {trainer.config.epochs} epochs")
            return 0
        print(f"resuming {path} at epoch {trainer.start_epoch + 1}/{trainer.config.epochs}")
    else:
        trainer = Trainer(build_config(args), progress=not args.quiet)
    trainer.fit()
    print(f"best map50 {trainer.best_fitness:.4f} at epoch {trainer.best_epoch + 1}; "
          f"weights: {trainer.out / 'best.pt'}, {trainer.out / 'last.pt'}")  # fmt: skip
    return 0
