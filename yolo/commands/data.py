"""``yct data``: build the demo set, check a dataset, convert between formats."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "datasets: build the offline demo set, check a dataset spec, convert formats"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    demo = sub.add_parser(
        "demo",
        help="build the demo set (sklearn digits on sklearn photos) in VOC layout",
        description="Build the demo detection set offline, in VOC layout, with OUT/data.yaml.",
    )
    demo.add_argument("out", type=Path, help="output folder")
    demo.add_argument("--images", type=int, default=500, help="number of images (default 500)")
    demo.add_argument("--size", type=int, default=128, help="image side in px (default 128)")
    demo.add_argument("--low-light", action="store_true", help="darken and add sensor noise")
    demo.add_argument("--seed", type=int, default=0)

    check = sub.add_parser(
        "check",
        help="report images, objects per class, box sizes and every problem",
        description="Read every split of a dataset spec (decoding every image) and report.",
    )
    check.add_argument("spec", type=Path, help="dataset spec (YAML, .data)")
    check.add_argument("--split", action="append", choices=("train", "val", "test"),
                       help="split(s) to check (default: all given)")  # fmt: skip
    check.add_argument("--no-decode", action="store_true", help="skip decoding the images")

    convert = sub.add_parser(
        "convert",
        help="write a dataset as YOLO-txt or COCO json (with its own data.yaml)",
        description="Convert every split of a dataset spec; images are hard-linked or copied.",
    )
    convert.add_argument("spec", type=Path, help="dataset spec (YAML, .data)")
    convert.add_argument("--to", required=True, choices=("yolo", "coco"), help="target format")
    convert.add_argument("out", type=Path, help="output folder")
    convert.add_argument("--on-bad-sample", choices=("error", "skip"), default="error")


def _demo(args: argparse.Namespace) -> int:
    from yolo.data.demo import DemoConfig, build_demo_set

    config = DemoConfig(images=args.images, size=args.size, low_light=args.low_light,
                        seed=args.seed)  # fmt: skip
    spec = build_demo_set(args.out, config)
    print(f"wrote {args.images} images ({args.size} px) in VOC layout; dataset spec: {spec}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from yolo.data.check import check_dataset, format_report
    from yolo.data.formats.coco import coco_names, load_coco_json
    from yolo.data.spec import load_spec

    spec = load_spec(args.spec)
    splits = tuple(args.split) if args.split else None
    reports = check_dataset(spec, splits, decode=not args.no_decode)
    names = spec.names
    if not names and spec.format == "coco":
        first = next(s for s in reports)
        names = coco_names(load_coco_json(spec.root / spec.entries(first.split)[0]))
    for report in reports:
        print(format_report(spec, report, names))
    broken = [r for r in reports if r.structural]
    if broken:  # bad input: one line, exit 2 (sample defects are findings: exit 1)
        raise ValueError(f"{spec.source} [{broken[0].split}]: {broken[0].structural}")
    bad = sum(len(r.problems) for r in reports)
    return 1 if bad else 0


def _convert(args: argparse.Namespace) -> int:
    from yolo.data.convert import convert
    from yolo.data.loader import load_records
    from yolo.data.spec import SPLITS, load_spec

    spec = load_spec(args.spec)
    splits, names = {}, spec.names
    for split in SPLITS:
        if spec.splits.get(split):
            splits[split], names, _ = load_records(spec, split, on_bad_sample=args.on_bad_sample)
    notes = convert(splits, names, args.to, args.out)
    for kind, count in notes.items():
        print(f"note: {count} × {kind}")
    total = sum(len(r) for r in splits.values())
    spec_path = args.out / "data.yaml"
    print(f"wrote {total} images as {args.to} under {args.out}; dataset spec: {spec_path}")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"demo": _demo, "check": _check, "convert": _convert}[args.data_command](args)
