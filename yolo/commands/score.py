"""``yct score``: score COCO-format detections against COCO-format ground truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from yolo.metrics.ap import GroundTruth

HELP = "score COCO-format detections (VOC07, VOC area or COCO AP) against COCO ground truth"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", type=Path, required=True, help="COCO instances json")
    parser.add_argument("--pred", type=Path, required=True, help="COCO results json (a list)")
    parser.add_argument("--metric", default="voc07", choices=("voc07", "voc", "coco"))
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _box(value: object, where: str) -> tuple[float, float, float, float]:
    """A COCO ``[x, y, w, h]``: four finite numbers, width and height > 0."""
    import math

    if not isinstance(value, list) or len(value) != 4:
        raise ValueError(f"{where}: must be [x, y, w, h], got {value!r}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{where}: must be four numbers, got {value!r}")
    x, y, w, h = (float(v) for v in value)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        raise ValueError(f"{where}: must be finite with width and height > 0, got {value!r}")
    return x, y, w, h


def load_ground_truth(path: Path) -> tuple[list, list[GroundTruth], tuple[str, ...], dict]:
    import numpy as np

    from yolo.data.formats.coco import load_coco_json
    from yolo.metrics.ap import GroundTruth

    data = load_coco_json(path, need_sizes=False)
    categories = sorted(data["categories"], key=lambda c: c["id"])
    index = {c["id"]: i for i, c in enumerate(categories)}
    images = [img["id"] for img in data["images"]]
    rows: dict = {i: [] for i in images}
    if not data["annotations"]:
        raise ValueError(f"{path}: annotations: a score needs ground truth, got an empty list")
    for n, ann in enumerate(data["annotations"]):
        if ann["category_id"] not in index:
            raise ValueError(f"{path}: annotations[{n}].category_id: names no category in "
                             f"'categories', got {ann['category_id']!r}")  # fmt: skip
        x, y, w, h = _box(ann.get("bbox"), f"{path}: annotations[{n}].bbox")
        difficult = bool(ann.get("iscrowd", 0)) or bool(ann.get("ignore", 0))
        rows[ann["image_id"]].append((x, y, x + w, y + h, index[ann["category_id"]], difficult))
    truths = []
    for image in images:
        r = np.array(rows[image], dtype=np.float64).reshape(-1, 6)
        truths.append(GroundTruth(r[:, :4], r[:, 4].astype(np.int64), r[:, 5].astype(bool)))
    return images, truths, tuple(c["name"] for c in categories), index


def load_predictions(path: Path, images: list, index: dict) -> list[np.ndarray]:
    import numpy as np

    if not path.is_file():
        raise FileNotFoundError(f"detections file not found: {path}")
    from yolo.safe_json import load_json

    results = load_json(path)
    if not isinstance(results, list):
        raise ValueError(f"{path}: expected a list of {{image_id, category_id, bbox, score}}")
    position = {image: k for k, image in enumerate(images)}
    rows: list[list] = [[] for _ in images]
    for n, r in enumerate(results):
        try:
            k, cls, score = position[r["image_id"]], index[r["category_id"]], float(r["score"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"{path}: result {n} needs a known image_id and category_id, "
                "bbox [x, y, w, h] and score"
            ) from None
        x, y, w, h = _box(r.get("bbox"), f"{path}: [{n}].bbox")
        if not 0 <= score <= 1:
            raise ValueError(f"{path}: [{n}].score: must be in [0, 1], got {r['score']!r}")
        rows[k].append((x, y, x + w, y + h, score, cls))
    return [np.array(r, dtype=np.float64).reshape(-1, 6) for r in rows]


def run(args: argparse.Namespace) -> int:
    from yolo.metrics.ap import evaluate_detections, format_table

    images, truths, names, index = load_ground_truth(args.gt)
    detections = load_predictions(args.pred, images, index)
    result = evaluate_detections(detections, truths, names, metric=args.metric)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(format_table(result))
    return 0
