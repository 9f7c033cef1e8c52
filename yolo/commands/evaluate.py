"""``yct evaluate``: mAP and the per-class table of a checkpoint on a dataset split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, cast

HELP = "evaluate a checkpoint on a dataset split: per-class AP table and mAP"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="a checkpoint (.pt) or an exported .onnx")
    parser.add_argument("--data", required=True, help="dataset spec")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--metric", default="voc07", choices=("voc07", "voc", "coco"))
    parser.add_argument("--img-size", type=int, help="input size (default: the training size)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from yolo.commands.common import check_img_size, load_trained
    from yolo.data.dataset import DetectionDataset
    from yolo.data.loader import create_dataloader
    from yolo.data.spec import load_spec
    from yolo.engine import evaluate, select_device
    from yolo.io import check_same_classes
    from yolo.resources import check_fits

    if args.checkpoint.suffix.lower() == ".onnx":
        return _evaluate_onnx(args)
    trained = load_trained(args.checkpoint)
    size = check_img_size(args.img_size or trained.img_size)
    check_fits(trained.model.cfg, size, batch=args.batch)
    spec = load_spec(args.data)
    loader = create_dataloader(spec, args.split, img_size=size,
                               batch_size=args.batch, workers=args.workers)  # fmt: skip
    dataset = cast(DetectionDataset, loader.dataset)
    check_same_classes(args.checkpoint, trained.names, dataset.names, str(args.data))
    device = select_device(args.device)
    evaluation = evaluate(trained.model.to(device), loader, metric=args.metric, device=device,
                          progress=not args.json)  # fmt: skip
    _report(args, evaluation, len(dataset))
    return 0


def _report(args: argparse.Namespace, evaluation: Any, images: int) -> None:
    from yolo.metrics.ap import format_table

    if args.json:
        print(json.dumps({**evaluation.result.as_dict(), "images_per_s": evaluation.images_per_s}))
    else:
        print(format_table(evaluation.result))
        print(f"{images} images, {evaluation.images_per_s:.1f} images/s")


def _evaluate_onnx(args: argparse.Namespace) -> int:
    """An exported ONNX model (float or INT8) on ONNX Runtime, scored like a checkpoint."""
    from yolo.data.dataset import DetectionDataset
    from yolo.data.loader import create_dataloader
    from yolo.data.spec import load_spec
    from yolo.engine import evaluate
    from yolo.io import check_same_classes
    from yolo.onnx_runtime import OnnxDetector

    if not args.checkpoint.is_file():
        raise FileNotFoundError(f"ONNX model not found: {args.checkpoint}")
    spec = load_spec(args.data)
    detector = OnnxDetector(args.checkpoint)
    img_size = args.img_size or int(detector.metadata.get("img_size") or 416)
    loader = create_dataloader(spec, args.split, img_size=img_size, batch_size=args.batch,
                               workers=args.workers)  # fmt: skip
    dataset = cast(DetectionDataset, loader.dataset)
    if detector.names is not None:
        check_same_classes(args.checkpoint, detector.names, dataset.names, str(args.data))
    evaluation = evaluate(detector, loader, metric=args.metric, progress=not args.json)
    _report(args, evaluation, len(dataset))
    return 0
