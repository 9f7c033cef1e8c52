"""``yct evaluate``: mAP and the per-class table of a checkpoint on a dataset split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import cast

HELP = "evaluate a checkpoint on a dataset split: per-class AP table and mAP"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data", required=True, help="dataset spec")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--metric", default="voc07", choices=("voc07", "voc", "coco"))
    parser.add_argument("--img-size", type=int, help="input size (default: the training size)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from yolo.commands.common import load_trained
    from yolo.data.dataset import DetectionDataset
    from yolo.data.loader import create_dataloader
    from yolo.data.spec import load_spec
    from yolo.engine import evaluate, select_device
    from yolo.io import check_same_classes
    from yolo.metrics.ap import format_table

    trained = load_trained(args.checkpoint)
    spec = load_spec(args.data)
    loader = create_dataloader(spec, args.split, img_size=args.img_size or trained.img_size,
                               batch_size=args.batch, workers=args.workers)  # fmt: skip
    dataset = cast(DetectionDataset, loader.dataset)
    check_same_classes(args.checkpoint, trained.names, dataset.names, str(args.data))
    device = select_device(args.device)
    evaluation = evaluate(trained.model.to(device), loader, metric=args.metric, device=device,
                          progress=not args.json)  # fmt: skip
    if args.json:
        print(json.dumps({**evaluation.result.as_dict(), "images_per_s": evaluation.images_per_s}))
    else:
        print(format_table(evaluation.result))
        print(f"{len(dataset)} images, {evaluation.images_per_s:.1f} images/s")
    return 0
