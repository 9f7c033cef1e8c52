"""Average precision: VOC2007 11-point, VOC2010+ area, and COCO through pycocotools.

Inputs are plain arrays per image: ground truth ``boxes (G, 4) xyxy, labels (G,), difficult
(G,)`` and detections ``(K, 6) x1, y1, x2, y2, score, class``, all in original pixels
(continuous coordinates, so VOC's inclusive ``+1`` is already in the widths). A detection
matching a *difficult* object is neither a true nor a false positive, as in the VOC devkit.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from yolo.metrics import names

METRICS = ("voc07", "voc", "coco")


@dataclass(frozen=True)
class GroundTruth:
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray


@dataclass(frozen=True)
class ClassResult:
    name: str
    ap: float  # NaN when the class has no (non-difficult) ground truth
    ground_truth: int
    detections: int
    precision: float  # at the best-F1 point
    recall: float


@dataclass(frozen=True)
class APResult:
    """Mean AP over the classes that have ground truth, and the per-class table."""

    metric: str
    map50: float
    per_class: list[ClassResult]
    map50_95: float | None = None
    precision: float = 0.0
    recall: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            names.MAP50: self.map50,
            names.MAP50_95: self.map50_95,
            "precision": self.precision,
            "recall": self.recall,
            "per_class": {
                c.name: {
                    "ap": None if np.isnan(c.ap) else c.ap,
                    "ground_truth": c.ground_truth,
                    "detections": c.detections,
                    "precision": c.precision,
                    "recall": c.recall,
                }
                for c in self.per_class
            },
        }


def _iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    top_left = np.maximum(box[:2], boxes[:, :2])
    bottom_right = np.minimum(box[2:4], boxes[:, 2:4])
    inter = np.clip(bottom_right - top_left, 0, None).prod(1)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, np.finfo(np.float64).tiny)


def ap_voc07(recall: np.ndarray, precision: np.ndarray) -> float:
    """11-point interpolated AP: mean of max precision at recall >= 0, 0.1, …, 1."""
    points = [precision[recall >= t].max() if np.any(recall >= t) else 0.0
              for t in np.linspace(0, 1, 11)]  # fmt: skip
    return float(np.mean(points))


def ap_area(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC2010+ AP: area under the precision envelope (precision made monotone)."""
    r = np.concatenate(([0.0], recall, [1.0]))
    p = np.concatenate(([0.0], precision, [0.0]))
    p = np.maximum.accumulate(p[::-1])[::-1]
    changes = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[changes + 1] - r[changes]) * p[changes + 1]))


def match_class(
    detections: Sequence[np.ndarray],
    truths: Sequence[GroundTruth],
    cls: int,
    iou_threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """VOC matching for one class: (scores, tp, fp) sorted by score, and the positives."""
    entries = []  # (score, image, box)
    for image, dets in enumerate(detections):
        for row in dets[dets[:, 5] == cls]:
            entries.append((row[4], image, row[:4]))
    entries.sort(key=lambda e: -e[0])
    gts = [(t.boxes[t.labels == cls], t.difficult[t.labels == cls]) for t in truths]
    used = [np.zeros(len(b), dtype=bool) for b, _ in gts]
    positives = int(sum((~d).sum() for _, d in gts))
    tp, fp = np.zeros(len(entries)), np.zeros(len(entries))
    for k, (_, image, box) in enumerate(entries):
        boxes, difficult = gts[image]
        if not len(boxes):
            fp[k] = 1
            continue
        iou = _iou_one_to_many(box, boxes)
        best = int(iou.argmax())
        if iou[best] > iou_threshold:
            if difficult[best]:
                continue  # neither true nor false positive
            if not used[image][best]:
                tp[k], used[image][best] = 1, True
            else:
                fp[k] = 1
        else:
            fp[k] = 1
    scores = np.array([e[0] for e in entries])
    return scores, tp, fp, positives


def evaluate_voc(
    detections: Sequence[np.ndarray],
    truths: Sequence[GroundTruth],
    names: Sequence[str],
    *,
    metric: str = "voc07",
    iou_threshold: float = 0.5,
) -> APResult:
    """VOC AP at one IoU threshold, per class and mean over classes with ground truth."""
    if metric not in ("voc07", "voc"):
        raise ValueError(f"VOC metric must be voc07 or voc, got '{metric}'")
    if len(detections) != len(truths):
        raise ValueError(f"{len(detections)} detection lists for {len(truths)} images")
    rule = ap_voc07 if metric == "voc07" else ap_area
    rows = []
    for cls, name in enumerate(names):
        _, tp, fp, positives = match_class(detections, truths, cls, iou_threshold)
        ctp, cfp = np.cumsum(tp), np.cumsum(fp)
        if positives == 0:
            rows.append(ClassResult(name, float("nan"), 0, len(tp), 0.0, 0.0))
            continue
        recall = ctp / positives
        precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-16)
        best = int(f1.argmax()) if len(f1) else 0
        rows.append(ClassResult(
            name, rule(recall, precision), positives, len(tp),
            float(precision[best]) if len(f1) else 0.0, float(recall[best]) if len(f1) else 0.0,
        ))  # fmt: skip
    scored = [r for r in rows if not np.isnan(r.ap)]
    mean = lambda values: float(np.mean(values)) if values else 0.0  # noqa: E731
    return APResult(
        metric=metric,
        map50=mean([r.ap for r in scored]),
        per_class=rows,
        precision=mean([r.precision for r in scored]),
        recall=mean([r.recall for r in scored]),
    )


def coco_dicts(
    detections: Sequence[np.ndarray],
    truths: Sequence[GroundTruth],
    names: Sequence[str],
    sizes: Sequence[tuple[int, int]] | None = None,
) -> tuple[dict, list[dict]]:
    """Ground truth (difficult as iscrowd) and results in COCO form; ids are 1-based."""
    images: list[dict] = []
    annotations: list[dict] = []
    results: list[dict] = []
    for i, (dets, gt) in enumerate(zip(detections, truths), start=1):
        w, h = sizes[i - 1] if sizes else (0, 0)
        images.append({"id": i, "width": w, "height": h})
        for box, label, difficult in zip(gt.boxes, gt.labels, gt.difficult):
            bw, bh = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({"id": len(annotations) + 1, "image_id": i,
                                "category_id": int(label) + 1, "iscrowd": int(difficult),
                                "bbox": [float(box[0]), float(box[1]), bw, bh],
                                "area": bw * bh})  # fmt: skip
        for row in dets:
            results.append({"image_id": i, "category_id": int(row[5]) + 1, "score": float(row[4]),
                            "bbox": [float(row[0]), float(row[1]), float(row[2] - row[0]),
                                     float(row[3] - row[1])]})  # fmt: skip
    categories = [{"id": k + 1, "name": n} for k, n in enumerate(names)]
    return {"images": images, "annotations": annotations, "categories": categories}, results


def evaluate_coco(
    detections: Sequence[np.ndarray],
    truths: Sequence[GroundTruth],
    names: Sequence[str],
) -> tuple[float, float]:
    """(AP@[.5:.95], AP50) from pycocotools' COCOeval (its printing silenced)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_dict, results = coco_dicts(detections, truths, names)
    if not results or not gt_dict["annotations"]:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = gt_dict
        gt.createIndex()
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0]), float(evaluator.stats[1])


def evaluate_detections(
    detections: Sequence[np.ndarray],
    truths: Sequence[GroundTruth],
    names: Sequence[str],
    metric: str = "voc07",
) -> APResult:
    """The chosen metric's AP50 table; ``coco`` adds AP@[.5:.95] (its AP50 is COCO's)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got '{metric}'")
    if metric != "coco":
        return evaluate_voc(detections, truths, names, metric=metric)
    table = evaluate_voc(detections, truths, names, metric="voc")
    map50_95, map50 = evaluate_coco(detections, truths, names)
    return APResult("coco", map50, table.per_class, map50_95, table.precision, table.recall)


def format_table(result: APResult) -> str:
    width = max([len(c.name) for c in result.per_class] + [5])
    lines = [f"{'class':<{width}}  {'gt':>6}  {'dets':>7}  {'P':>6}  {'R':>6}  {'AP50':>6}"]
    for c in result.per_class:
        ap = "-" if np.isnan(c.ap) else f"{c.ap:.4f}"
        lines.append(f"{c.name:<{width}}  {c.ground_truth:>6}  {c.detections:>7}  "
                     f"{c.precision:>6.3f}  {c.recall:>6.3f}  {ap:>6}")  # fmt: skip
    summary = f"mAP50 ({result.metric}) {result.map50:.4f}"
    if result.map50_95 is not None:
        summary += f", mAP50-95 {result.map50_95:.4f}"
    return "\n".join([*lines, summary])
