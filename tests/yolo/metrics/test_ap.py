"""AP: a hand-computed VOC case (difficult, duplicates), forms, and COCO vs pycocotools."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from yct.cli import main
from yolo.metrics.ap import (
    GroundTruth,
    ap_area,
    ap_voc07,
    coco_dicts,
    evaluate_coco,
    evaluate_detections,
)

G1 = [10, 10, 50, 50]
G2 = [100, 100, 150, 160]
G3 = [0, 0, 30, 30]  # difficult

TRUTHS = [
    GroundTruth(np.array([G1], float), np.array([0]), np.array([False])),
    GroundTruth(np.array([G2, G3], float), np.array([0, 0]), np.array([False, True])),
]
DETECTIONS = [
    np.array([[*G1, 0.9, 0], [*G1, 0.5, 0]], float),  # a hit, then a duplicate (FP)
    np.array([[*G3, 0.8, 0], [200, 200, 220, 220, 0.7, 0], [*G2, 0.6, 0]], float),
]
# ranked after ignoring the difficult hit: TP, FP, TP, FP(dup) with 2 positives
VOC07 = (6 * 1.0 + 5 * (2 / 3)) / 11
AREA = 0.5 * 1.0 + 0.5 * (2 / 3)


def test_voc_ap_by_hand() -> None:
    voc07 = evaluate_detections(DETECTIONS, TRUTHS, ["thing"], metric="voc07")
    area = evaluate_detections(DETECTIONS, TRUTHS, ["thing"], metric="voc")
    assert voc07.map50 == pytest.approx(VOC07)
    assert area.map50 == pytest.approx(AREA)
    row = voc07.per_class[0]
    assert (row.ground_truth, row.detections) == (2, 5)
    assert row.recall == pytest.approx(1.0) and row.precision == pytest.approx(2 / 3)


def test_ap_forms_at_the_boundaries() -> None:
    assert ap_voc07(np.array([1.0]), np.array([1.0])) == 1.0
    assert ap_area(np.array([1.0]), np.array([1.0])) == 1.0
    assert ap_voc07(np.array([]), np.array([])) == 0.0
    assert ap_area(np.array([0.5]), np.array([0.5])) == pytest.approx(0.25)


def test_iou_must_exceed_one_half() -> None:
    gt = [GroundTruth(np.array([[0, 0, 10, 10]], float), np.array([0]), np.array([False]))]
    half = np.array([[0, 0, 10, 5, 0.9, 0]], float)  # IoU exactly 0.5: a miss in VOC
    assert evaluate_detections([half], gt, ["a"]).map50 == 0.0
    more = np.array([[0, 0, 10, 5.1, 0.9, 0]], float)
    assert evaluate_detections([more], gt, ["a"]).map50 == 1.0


def test_classes_without_ground_truth_are_left_out_of_the_mean() -> None:
    result = evaluate_detections(DETECTIONS, TRUTHS, ["thing", "absent"], metric="voc07")
    assert result.map50 == pytest.approx(VOC07)
    assert np.isnan(result.per_class[1].ap)


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    truths, dets = [], []
    for _ in range(8):
        n = rng.integers(1, 6)
        xy = rng.uniform(0, 200, (n, 2))
        boxes = np.c_[xy, xy + rng.uniform(10, 80, (n, 2))]
        truths.append(GroundTruth(boxes, rng.integers(0, 3, n), rng.random(n) < 0.1))
        jitter = boxes + rng.normal(0, 6, boxes.shape)
        extra = rng.uniform(0, 250, (4, 2))
        fake = np.c_[extra, extra + rng.uniform(10, 60, (4, 2))]
        all_boxes = np.r_[jitter, fake]
        labels = np.r_[truths[-1].labels, rng.integers(0, 3, 4)]
        dets.append(np.c_[all_boxes, rng.random(len(all_boxes)), labels])
    return truths, dets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_numbers_equal_pycocotools_directly(seed: int, tmp_path) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truths, dets = _random_case(seed)
    names = ["a", "b", "c"]
    ours = evaluate_coco(dets, truths, names)
    gt_dict, results = coco_dicts(dets, truths, names, sizes=[(300, 300)] * len(truths))
    (tmp_path / "gt.json").write_text(json.dumps(gt_dict))
    (tmp_path / "dt.json").write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(tmp_path / "gt.json"))
        evaluator = COCOeval(gt, gt.loadRes(str(tmp_path / "dt.json")), "bbox")
        evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
    assert ours == pytest.approx((evaluator.stats[0], evaluator.stats[1]), abs=1e-12)
    assert 0 < ours[1] < 1


def _write_coco(tmp_path, truths, dets, names):
    gt_dict, results = coco_dicts(dets, truths, names, sizes=[(300, 300)] * len(truths))
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    gt.write_text(json.dumps(gt_dict))
    pred.write_text(json.dumps(results))
    return gt, pred


def test_score_command_voc_and_coco(tmp_path, capsys) -> None:
    gt, pred = _write_coco(tmp_path, TRUTHS, DETECTIONS, ["thing"])
    assert main(["score", "--gt", str(gt), "--pred", str(pred), "--metric", "voc07", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["map50"] == pytest.approx(VOC07) and data["per_class"]["thing"]["ground_truth"] == 2
    assert main(["score", "--gt", str(gt), "--pred", str(pred), "--metric", "voc", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["map50"] == pytest.approx(AREA)
    truths, dets = _random_case(4)
    gt, pred = _write_coco(tmp_path, truths, dets, ["a", "b", "c"])
    assert main(["score", "--gt", str(gt), "--pred", str(pred), "--metric", "coco", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["map50_95"], data["map50"]) == pytest.approx(
        evaluate_coco(dets, truths, ["a", "b", "c"])
    )
    assert main(["score", "--gt", str(gt), "--pred", str(pred)]) == 0
    assert "mAP50 (voc07)" in capsys.readouterr().out


def test_score_bad_input(tmp_path, capsys) -> None:
    gt, pred = _write_coco(tmp_path, TRUTHS, DETECTIONS, ["thing"])
    pred.write_text(
        json.dumps([{"image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}])
    )
    assert main(["score", "--gt", str(gt), "--pred", str(pred)]) == 2
    assert "result 0 needs a known image_id" in capsys.readouterr().err
    pred.write_text("[{")
    assert main(["score", "--gt", str(gt), "--pred", str(pred)]) == 2
    assert "malformed json" in capsys.readouterr().err
