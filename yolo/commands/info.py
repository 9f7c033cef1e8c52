"""``yct info``: what a model costs (params, MACs, storage, CPU latency)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from yolo.metrics.profile import Profile
    from yolo.model import Darknet

from yolo.zoo import ZOO_SIZE

HELP = "print params, non-zero params, dense/effective MACs, storage and CPU latency of a model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        nargs="?",
        help="zoo name (yolov3, yolov3-tiny, yolo-nano, …), a .cfg file, or a checkpoint (.pt)",
    )
    parser.add_argument("--zoo", action="store_true", help="profile every zoo model as a table")
    parser.add_argument(
        "--classes", type=int, default=None, help="number of classes (default: the cfg's; 20)"
    )
    parser.add_argument("--img-size", type=int, default=ZOO_SIZE, help="square input size (px)")
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    parser.add_argument(
        "--latency-runs", type=int, default=10, help="timed CPU runs (median; 0 skips latency)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _load(args: argparse.Namespace, name: str) -> Darknet:
    from yolo.config import YoloBlock
    from yolo.io import is_checkpoint_path, load_checkpoint
    from yolo.zoo import ZOO, create_model, resolve_cfg

    path = Path(name)
    if name not in ZOO and is_checkpoint_path(path):
        if args.classes is not None or args.width != 1.0:
            raise ValueError("--classes and --width apply to a zoo name or cfg, not a checkpoint")
        return load_checkpoint(path).model
    classes = args.classes
    if classes is None:
        cfg = resolve_cfg(name)
        classes = next(b.classes for b in cfg.blocks if isinstance(b, YoloBlock))
    return create_model(name, num_classes=classes, width=args.width)


def _check(args: argparse.Namespace) -> None:
    from yolo.commands.common import check_img_size

    check_img_size(args.img_size)
    if args.latency_runs < 0:
        raise ValueError(f"--latency-runs must be >= 0, got {args.latency_runs}")
    if args.zoo == (args.model is not None):
        raise ValueError("give either MODEL or --zoo")


def _format_profile(name: str, profile: Profile, classes: int, width: float) -> str:
    latency = (
        "not measured"
        if profile.latency_ms is None
        else f"{profile.latency_ms:.1f} ms/image (CPU, batch 1, median)"
    )
    rows = [
        ("params", f"{profile.params:,}"),
        ("non-zero params", f"{profile.nonzero_params:,}"),
        ("MACs (dense)", f"{profile.macs:,}"),
        ("MACs (effective)", f"{profile.effective_macs:,}"),
        (
            "storage",
            f"{profile.storage_mb:.2f} MB dense fp32, "
            f"{profile.sparse_storage_mb:.2f} MB sparse format",
        ),
        ("latency", latency),
    ]
    head = f"{name}: {classes} classes, {profile.img_size}x{profile.img_size}, width {width:g}"
    return "\n".join([head] + [f"  {k:<17} {v}" for k, v in rows])


def _zoo_table(args: argparse.Namespace) -> int:
    from yolo.metrics.profile import profile_model
    from yolo.resources import check_fits
    from yolo.zoo import ZOO, create_model

    classes = args.classes or 20
    results = {}
    for name in ZOO:
        model = create_model(name, num_classes=classes, width=args.width)
        check_fits(model.cfg, args.img_size)
        results[name] = profile_model(model, args.img_size, latency_runs=args.latency_runs)
    if args.json:
        print(json.dumps({k: v.as_dict() for k, v in results.items()}, indent=2))
        return 0
    print(f"zoo at {args.img_size}x{args.img_size}, {classes} classes, width {args.width:g}")
    header = ("model", "params", "MACs", "storage MB", "latency ms")
    print("| {:<20}| {:>12} | {:>16} | {:>10} | {:>10} |".format(*header))
    print(f"|{'-' * 21}|{'-' * 14}|{'-' * 18}|{'-' * 12}|{'-' * 12}|")
    for name, p in results.items():
        latency = "-" if p.latency_ms is None else f"{p.latency_ms:.1f}"
        print(
            f"| {name:<20}| {p.params:>12,} | {p.macs:>16,} | {p.storage_mb:>10.2f} | "
            f"{latency:>10} |"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    _check(args)
    if args.zoo:
        return _zoo_table(args)
    from yolo.metrics.profile import profile_model
    from yolo.resources import check_fits

    model = _load(args, args.model)
    check_fits(model.cfg, args.img_size)
    profile = profile_model(model, args.img_size, latency_runs=args.latency_runs)
    if args.json:
        print(json.dumps(profile.as_dict()))
    else:
        print(_format_profile(args.model, profile, model.num_classes, args.width))
    return 0
