"""``yct detect``: boxes on images, drawn and as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "run a checkpoint on images: labelled images and a JSON of detections"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("images", nargs="+", type=Path, help="image files or folders")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--conf", type=float, default=0.3, help="score threshold (0.3)")
    parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (0.45)")
    parser.add_argument("--img-size", type=int, help="input size (default: the training size)")
    parser.add_argument("--device", default="auto")


def _expand(paths: list[Path]) -> list[Path]:
    from yolo.data.images import IMAGE_SUFFIXES

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"image not found: {path}")
    if not files:
        raise ValueError("no images found in the given paths")
    return files


def run(args: argparse.Namespace) -> int:
    import cv2

    from yolo.commands.common import check_img_size, load_trained
    from yolo.data.images import read_image, write_image
    from yolo.engine import select_device
    from yolo.inference import detect
    from yolo.resources import check_fits

    if not 0 <= args.conf <= 1 or not 0 <= args.iou <= 1:
        raise ValueError(f"--conf and --iou must be in [0, 1], got {args.conf}, {args.iou}")
    trained = load_trained(args.checkpoint)
    device = select_device(args.device)
    model = trained.model.to(device).eval()
    size = check_img_size(args.img_size or trained.img_size)
    check_fits(trained.model.cfg, size)
    args.out.mkdir(parents=True, exist_ok=True)
    report = []
    for path in _expand(args.images):
        image = read_image(path)
        boxes = detect(model, image, size, conf=args.conf, iou=args.iou, device=device)
        h, w = image.shape[:2]
        drawn = image.copy()
        items = []
        for x1, y1, x2, y2, score, cls in boxes:
            name = trained.names[int(cls)]
            items.append({"box": [x1, y1, x2, y2], "score": score, "class": int(cls), "name": name})
            p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
            cv2.rectangle(drawn, p1, p2, (255, 64, 0), max(1, round(min(h, w) / 200)))
            cv2.putText(
                drawn,
                f"{name} {score:.2f}",
                (p1[0], max(p1[1] - 3, 10)),
                cv2.FONT_HERSHEY_SIMPLEX,
                max(0.3, min(h, w) / 800),
                (255, 255, 0),
                1,
            )
        write_image(args.out / f"{path.stem}.jpg", drawn)
        report.append({"image": str(path), "width": w, "height": h, "detections": items})
        print(f"{path}: {len(items)} detections")
    (args.out / "detections.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {len(report)} images and {args.out / 'detections.json'}")
    return 0
