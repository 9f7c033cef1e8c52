"""``yct export``: a checkpoint as a sparse file, a dense checkpoint or ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path

from yolo.zoo import ZOO_SIZE

HELP = "export a checkpoint: sparse (METHODS.md format), dense fp32, or ONNX"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path, help="output file")
    parser.add_argument("--format", default="sparse", choices=("sparse", "dense", "onnx"))
    parser.add_argument("--half", action="store_true", help="sparse: store values as fp16")
    parser.add_argument("--img-size", type=int, help="onnx: example input size (training size)")
    parser.add_argument(
        "--compact", action="store_true",
        help="first remove all-zero filters (exactly, outputs checked): a smaller dense model",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from yolo.compress.export import export_model
    from yolo.io import load_checkpoint

    checkpoint = load_checkpoint(args.checkpoint)
    img_size = args.img_size or int(checkpoint.metadata.get("img_size", ZOO_SIZE))
    model = checkpoint.model
    if args.compact:
        from yolo.compress.compact import compact
        from yolo.metrics.profile import count_macs

        before = count_macs(model, img_size).dense
        model = compact(model)
        after = count_macs(model, img_size).dense
        print(f"compacted: dense MACs at {img_size} {before:,} -> {after:,}")
    size = export_model(model, args.out, args.format, img_size=img_size,
                        half=args.half, metadata=checkpoint.metadata)  # fmt: skip
    print(f"wrote {args.out} ({args.format}, {size / 2**20:.3f} MB)")
    return 0
