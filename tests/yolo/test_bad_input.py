"""Every kind of malformed input, through the ``yct`` command a user would run: one line on
stderr naming the file and field, exit 2, no traceback; counted defects where skipping is
the policy; and the valid inputs that were once refused now load.

Each case builds its input in a fresh folder and names the expected message. The groups
follow issue 18: tracebacks and hangs, errors in the wrong words, silent acceptances,
valid inputs refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from tests.yolo.data.fixtures import make_exdark, make_voc, write_image
from yct.cli import main
from yolo.io import save_checkpoint, write_darknet_weights
from yolo.zoo import create_model, zoo_cfg_text

TINY = zoo_cfg_text("yolov3-tiny")
MOBILE = zoo_cfg_text("yolov3-mobile")
BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join('x' * 9)}]\n"
    for prev, name in zip([None, *"abcdefgh"], "abcdefghi")
)


def _cfg(tmp: Path, text: str | bytes, name: str = "model.cfg") -> str:
    path = tmp / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def _checkpoint(tmp: Path, change: Callable[[dict], None] | None = None,
                name: str = "model.pt") -> str:  # fmt: skip
    path = tmp / name
    model = create_model("yolov3-tiny", num_classes=3, width=0.25)
    save_checkpoint(path, model, metadata={"names": ["a", "b", "c"], "img_size": 64})
    if change is not None:
        payload = torch.load(path, weights_only=True)
        change(payload)
        torch.save(payload, path)
    return str(path)


def _poison_weight(payload: dict) -> None:
    name = next(k for k in payload["state_dict"] if k.endswith("conv.weight"))
    payload["state_dict"][name] = payload["state_dict"][name].clone()
    payload["state_dict"][name].view(-1)[0] = float("nan")


class Pickled:  # needs code to unpickle: what weights_only refuses
    pass


def _evil(tmp: Path) -> str:
    torch.save({"cfg": TINY, "state_dict": {}, "lth_state": Pickled()}, tmp / "evil.pt")
    return str(tmp / "evil.pt")


def _coco(tmp: Path, data: object) -> str:
    (tmp / "ann.json").write_text(json.dumps(data))
    (tmp / "coco.yaml").write_text(yaml.safe_dump(
        {"format": "coco", "root": ".", "train": ["ann.json"], "names": ["a"]}))  # fmt: skip
    return str(tmp / "coco.yaml")


GT = {"images": [{"id": 1, "file_name": "x.jpg", "width": 100, "height": 100}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]}],
      "categories": [{"id": 1, "name": "a"}]}  # fmt: skip


def _coco_with(**changes: object) -> dict:
    data = json.loads(json.dumps(GT))
    data.update(changes)
    return data


def _score(tmp: Path, gt: object, pred: object) -> list[str]:
    (tmp / "gt.json").write_text(json.dumps(gt))
    (tmp / "pred.json").write_text(json.dumps(pred))
    return ["score", "--gt", str(tmp / "gt.json"), "--pred", str(tmp / "pred.json")]


def _score_bytes(tmp: Path) -> list[str]:
    argv = _score(tmp, GT, [])
    Path(argv[-1]).write_bytes(b"[\xff\xfe]")
    return argv


def _pred(**changes: object) -> list[dict]:
    return [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9, **changes}]


def _truncated_weights(tmp: Path) -> str:
    model = create_model("yolov3-tiny", num_classes=3, width=0.25)
    write_darknet_weights(model, tmp / "full.weights")
    data = (tmp / "full.weights").read_bytes()
    (tmp / "cut.weights").write_bytes(data[: len(data) // 2 + 1])
    return str(tmp / "cut.weights")


def _file(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


def _train(tmp: Path, data: Path, *extra: str) -> list[str]:
    return ["train", "yolov3-tiny", "--data", str(data), "--width", "0.25", "--img-size", "64",
            "--epochs", "1", "--out", str(tmp / "run"), "--quiet", *extra]  # fmt: skip


def _exdark_outside(tmp: Path) -> str:
    spec = make_exdark(tmp / "set", {"a.jpg": (40, 40, ["a 1 1 10 10 0 0 0 0 0 0 0"])})
    write_image(tmp / "secret.jpg", 40, 40)
    (tmp / "set" / "images" / "train.txt").write_text("a.jpg\n../../secret.jpg\n")
    return str(spec)


def _coco_outside(tmp: Path) -> str:
    write_image(tmp / "outside.jpg", 100, 100)
    (tmp / "set").mkdir()
    spec = _coco(tmp / "set", _coco_with(images=[
        {"id": 1, "file_name": "../outside.jpg", "width": 100, "height": 100}]))  # fmt: skip
    return spec


def _mobile(text: str) -> str:
    return re.sub(r"expansion_ratio *= *[0-9.]+", text, MOBILE, count=1)


# case -> (argv built in a fresh folder (tmp, demo spec), expected text of the one error line)
ERRORS: dict[str, tuple[Callable[[Path, Path], list[str]], str]] = {
    # ---- tracebacks and hangs, now one line
    "cfg without a [yolo] head": (
        lambda t, d: ["info", _cfg(t, TINY.split("[yolo]")[0])],
        "the cfg has no [yolo] block; a detector needs at least one head"),
    "cfg cut off mid-file": (
        lambda t, d: ["info", _cfg(t, TINY[: TINY.index("[yolo]") + 20])],
        "expected 'key = value' or '[section]'"),
    "filters beyond memory": (
        lambda t, d: ["info", _cfg(t, TINY.replace("filters=16", "filters=10000000", 1))],
        "parameters; training it needs"),
    "kernel beyond memory": (
        lambda t, d: ["info", _cfg(t, TINY.replace("size=3", "size=99999", 1))],
        "more than the memory limit"),
    "--width 100": (lambda t, d: ["info", "yolov3-tiny", "--width", "100"],
                    "more than the memory limit"),
    "--width inf": (lambda t, d: ["info", "yolov3-tiny", "--width", "inf"],
                    "width must be a finite number > 0, got inf"),
    "--img-size 100000": (lambda t, d: ["info", "yolov3-tiny", "--img-size", "100000"],
                          "img size 100000, batch 1: inference needs an estimated"),
    "--classes 10**6": (lambda t, d: ["info", "yolov3-tiny", "--classes", "1000000"],
                        "num_classes must be <= 10,000, got 1,000,000"),
    # found by the fuzzer (test_fuzz_inputs.py)
    "a kernel beyond torch's size arithmetic": (
        lambda t, d: ["info", _cfg(t, TINY.replace("filters=16", "filters=1024", 1)
                                         .replace("size=3", "size=99999999", 1))],
        "block 0 [convolutional]: its weights are too large to exist (Storage size calculation "
        "overflowed"),
    "a max-pool window whose padding no memory holds": (
        lambda t, d: ["info", _cfg(t, TINY.replace("size=2", "size=99999999", 1)),
                      "--img-size", "64"],
        "model.cfg: img size 64, batch 1: inference needs an estimated"),
    "detections that are not UTF-8": (
        lambda t, d: _score_bytes(t),
        "pred.json: not UTF-8 text (byte 1: invalid start byte)"),
    "an objective metric that is a list": (
        lambda t, d: ["tune", _file(t, "space.yaml", yaml.safe_dump(
            {"method": "lth", "model": "yolov3-tiny", "data": str(d),
             "objectives": [{"metric": ["map50"], "mode": "max"}]})), "--dry-run"],
        "space.yaml: objectives[0].metric: unknown metric ['map50']"),
    "a huge stride before a route": (
        lambda t, d: ["info", _cfg(t, TINY.replace("stride=1", "stride=1000", 1))],
        "block 20 [route]: its inputs do not fit together at img size 416"),
    "an alias bomb in a data spec": (
        lambda t, d: ["data", "check", _file(t, "spec.yaml", BOMB)],
        "refused as a possible alias bomb"),
    "an alias bomb in a search space": (
        lambda t, d: ["tune", _file(t, "space.yaml", BOMB), "--dry-run"],
        "refused as a possible alias bomb"),
    "COCO root of the wrong JSON type": (
        lambda t, d: _train(t, _coco(t, [1, 2])),
        "ann.json: the root: must be a JSON object, got [1, 2]"),
    "COCO images of the wrong JSON type": (
        lambda t, d: _train(t, _coco(t, _coco_with(images={}))),
        "ann.json: images: must be a valid list, got {}"),
    "COCO annotation of the wrong JSON type": (
        lambda t, d: _train(t, _coco(t, _coco_with(annotations=["x"]))),
        "ann.json: annotations[0]: must be a JSON object, got 'x'"),
    "COCO image without width and height": (
        lambda t, d: _train(t, _coco(t, _coco_with(images=[{"id": 1, "file_name": "x"}]))),
        "ann.json: images[0]: width and height are required (positive integers), got None"),
    "checkpoint whose cfg is not text": (
        lambda t, d: ["info", _checkpoint(t, lambda p: p.update(cfg=b"x"))],
        "model.pt: cfg: must be the model's cfg text, got bytes"),
    "checkpoint that needs code to unpickle": (
        lambda t, d: ["info", _evil(t)],
        "Pickled), which yct refuses to run (torch.load weights_only=True)"),
    "export at an img size the model cannot take": (
        lambda t, d: ["export", _checkpoint(t), str(t / "m.onnx"), "--format", "onnx",
                      "--img-size", "50"],
        "--img-size must be a positive multiple of 32, got 50"),
    "export at an img size beyond memory": (
        lambda t, d: ["export", _checkpoint(t), str(t / "m.onnx"), "--format", "onnx",
                      "--img-size", "100000"],
        "inference needs an estimated"),
    "hyp lrf huge": (lambda t, d: _train(t, d, "--hyp", _file(t, "h.yaml", "lrf: 1.0e+300\n")),
                     "h.yaml: lrf must be in [-20, 0], got 1e+300"),
    # ---- errors that were in the wrong words
    "a truncated darknet .weights": (
        lambda t, d: _train(t, d, "--weights", _truncated_weights(t)),
        "bytes after the 20-byte header is not a whole number of float32 values"),
    "a cfg integer that is not one": (
        lambda t, d: ["info", _cfg(t, TINY.replace("filters=16", "filters=abc", 1))],
        "model.cfg:12: block 0 [convolutional]: filters: must be an integer, got 'abc'"),
    "a cfg that is not UTF-8": (
        lambda t, d: ["info", _cfg(t, b"\xff\xfe\x00[net]")],
        "model.cfg: not a text cfg file"),
    "a checkpoint that is not one": (
        lambda t, d: ["info", _cfg(t, b"not a checkpoint", "x.pt")],
        "x.pt: not a readable checkpoint (Unsupported operand"),
    "a checkpoint without weights": (
        lambda t, d: ["info", _checkpoint(t, lambda p: p.pop("state_dict"))],
        "model.pt: state_dict: missing (the model's weights)"),
    "a COCO id that is a list": (
        lambda t, d: _train(t, _coco(t, _coco_with(
            images=[{"id": [1], "file_name": "x", "width": 9, "height": 9}]))),
        "ann.json: images[0].id: must be an integer or a string, got [1]"),
    "score ground truth that is a list": (
        lambda t, d: _score(t, [1, 2], _pred()), "gt.json: the root: must be a JSON object"),
    # ---- silent acceptances, now refused
    "NaN anchors": (
        lambda t, d: ["info", _cfg(t, re.sub(r"anchors *= *[0-9]+", "anchors=nan", TINY, count=1))],
        "block 16 [yolo]: anchors: anchor sizes must be finite and > 0, got nan"),
    "a negative mobile expansion ratio": (
        lambda t, d: ["info", _cfg(t, _mobile("expansion_ratio=-1"))],
        "[mobile]: expansion_ratio must be > 0, got -1.0"),
    "a NaN cfg float": (
        lambda t, d: ["info", _cfg(t, _mobile("expansion_ratio=nan"))],
        "expansion_ratio: must be a finite number, got 'nan'"),
    "score: a NaN box": (lambda t, d: _score(t, GT, _pred(bbox=[float("nan"), 1, 2, 2])),
                         "pred.json: [0].bbox: must be finite with width and height > 0"),
    "score: a negative width": (lambda t, d: _score(t, GT, _pred(bbox=[1, 1, -2, 2])),
                                "pred.json: [0].bbox: must be finite with width and height > 0"),
    "score: a score above 1": (lambda t, d: _score(t, GT, _pred(score=1.5)),
                               "pred.json: [0].score: must be in [0, 1], got 1.5"),
    "score: a NaN box in ground truth": (
        lambda t, d: _score(t, _coco_with(annotations=[
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, float("inf"), 2]}]), _pred()),
        "gt.json: annotations[0].bbox: must be finite with width and height > 0"),
    "score: empty ground truth": (lambda t, d: _score(t, _coco_with(annotations=[]), []),
                                  "gt.json: annotations: a score needs ground truth"),
    "COCO duplicate image ids": (
        lambda t, d: _train(t, _coco(t, _coco_with(images=GT["images"] * 2))),
        "ann.json: images: ids must be unique, got 1 twice"),
    "COCO duplicate category ids": (
        lambda t, d: _train(t, _coco(t, _coco_with(categories=GT["categories"] * 2))),
        "ann.json: categories: ids must be unique, got 1 twice"),
    "COCO annotation of an image that does not exist": (
        lambda t, d: _train(t, _coco(t, _coco_with(annotations=[
            {"id": 1, "image_id": 7, "category_id": 1, "bbox": [1, 1, 2, 2]}]))),
        "ann.json: annotations[0].image_id: names no image in 'images', got 7"),
    "an ExDark list pointing outside the dataset root": (
        lambda t, d: _train(t, _exdark_outside(t)),
        "train.txt:2: paths must stay inside the dataset root"),
    "a COCO file_name outside the dataset root": (
        lambda t, d: _train(t, _coco_outside(t)),
        "image 1 file_name: paths must stay inside the dataset root"),
    "checkpoint masks that do not fit the weights": (
        lambda t, d: ["info", _checkpoint(t, lambda p: p.update(
            masks={next(iter(p["state_dict"])): torch.ones(3)}))],
        "model.pt: masks.blocks.0.conv.weight: must match its weight (weight shape ("),
    "checkpoint weights that are NaN": (
        lambda t, d: ["info", _checkpoint(t, _poison_weight)],
        "model.pt: state_dict.blocks.0.conv.weight: weights must be finite, got NaN/inf"),
    "a negative --time-budget": (lambda t, d: _train(t, d, "--time-budget", "-1"),
                                 "time_budget_s must be a finite number > 0, got -1.0"),
    "a NaN --time-budget": (lambda t, d: _train(t, d, "--time-budget", "nan"),
                            "time_budget_s must be a finite number > 0, got nan"),
    "--seed -1": (lambda t, d: _train(t, d, "--seed", "-1"),
                  "seed must be in [0, 4294967295], got -1"),
    "--max-memory 0": (lambda t, d: ["--max-memory", "0", "info", "yolov3-tiny"],
                       "--max-memory must be a finite number > 0, got 0.0"),
    "a model above --max-memory": (
        lambda t, d: ["--max-memory", "0.01", "info", "yolov3-tiny", "--latency-runs", "0"],
        "more than the memory limit of 0.0 GiB"),
    "EMA decay 5": (lambda t, d: _train(t, d, "--hyp", _file(t, "h.yaml", "ema_decay: 5\n")),
                    "h.yaml: ema_decay must be in [0, 1), got 5.0"),
    "a negative weight decay": (
        lambda t, d: _train(t, d, "--hyp", _file(t, "h.yaml", "weight_decay: -1.0e-4\n")),
        "h.yaml: weight_decay must be in [0, 1), got -0.0001"),
    "a negative warm-up": (
        lambda t, d: _train(t, d, "--hyp", _file(t, "h.yaml", "warmup_epochs: -3\n")),
        "h.yaml: warmup_epochs must be in [0, 10000], got -3.0"),
    "a negative loss gain": (
        lambda t, d: _train(t, d, "--hyp", _file(t, "h.yaml", "loss: {obj: -1.0}\n")),
        "h.yaml: loss: loss obj must be in [0, 10000], got -1.0"),
    "iou_t 2": (lambda t, d: _train(t, d, "--hyp", _file(t, "h.yaml", "loss: {iou_t: 2.0}\n")),
                "h.yaml: loss: loss iou_t must be in [0, 1], got 2.0"),
    "a NaN learning rate": (lambda t, d: _train(t, d, "--hyp", _file(t, "h.yaml", "lr0: .nan\n")),
                            "h.yaml: lr0 must be in (0, 10], got nan"),
    "a NaN augmentation": (
        lambda t, d: _train(t, d, "--hyp", _file(t, "h.yaml", "augment: {hsv_s: .nan}\n")),
        "augment hsv_s must be in [0, 1], got nan"),
    "a config value of the wrong type": (
        lambda t, d: _train(t, d, "--config", _file(t, "c.yaml", "batch_size: abc\n")),
        "batch_size must be an integer >= 1, got 'abc'"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_input_is_one_line_naming_file_and_field_exit_2(case, tmp_path, demo_spec,
                                                            capsys) -> None:  # fmt: skip
    build, expected = ERRORS[case]
    argv = build(tmp_path, demo_spec)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("yct "), err
    assert expected in err, err


def _voc_with_wrong_size(tmp: Path) -> str:
    spec = make_voc(tmp, {"a": (40, 40, [{"name": "cat", "box": (1, 1, 9, 9)}]),
                          "b": (40, 40, [{"name": "cat", "box": (1, 1, 9, 9)}])})  # fmt: skip
    xml = tmp / "VOC2007" / "Annotations" / "b.xml"
    xml.write_text(xml.read_text().replace("<width>40</width>", "<width>400</width>"))
    return str(spec)


def _voc_with_bomb(tmp: Path) -> str:
    spec = make_voc(tmp, {"a": (40, 40, [{"name": "cat", "box": (1, 1, 9, 9)}]),
                          "b": (40, 40, [{"name": "cat", "box": (1, 1, 9, 9)}])})  # fmt: skip
    # 10⁸ one-bit pixels: a 12 kB file that PIL would decode into 300 MB of RGB
    Image.new("1", (10_000, 10_000)).save(tmp / "VOC2007" / "JPEGImages" / "b.png")
    (tmp / "VOC2007" / "JPEGImages" / "b.png").replace(tmp / "VOC2007" / "JPEGImages" / "b.jpg")
    return str(spec)


# defects that `on_bad_sample` decides: `yct data check` lists each and exits 1
COUNTED: dict[str, tuple[Callable[[Path], str], str]] = {
    "VOC XML size that contradicts the image": (
        _voc_with_wrong_size, "b.xml: size disagrees with the image (<size> 400x40, image 40x40)"),
    "a decompression-bomb image": (
        _voc_with_bomb, "b.jpg: image too large (10000x10000 = 100,000,000 pixels; at most"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(COUNTED))
def test_sample_defects_are_listed_and_counted(case, tmp_path, capsys) -> None:
    build, expected = COUNTED[case]
    assert main(["data", "check", build(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "1 problems:" in out or "1 problem:" in out, out
    assert expected in out, out


def test_valid_inputs_that_were_refused_now_load(tmp_path, capsys) -> None:
    bom = _cfg(tmp_path, "\ufeff" + TINY, "bom.cfg")
    assert main(["info", bom, "--latency-runs", "0", "--json"]) == 0
    plain = _cfg(tmp_path, TINY, "plain.cfg")
    assert main(["info", plain, "--latency-runs", "0", "--json"]) == 0
    with_bom, without = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (with_bom["params"], with_bom["macs"]) == (without["params"], without["macs"])
    upper = _checkpoint(tmp_path, name="MODEL.PT")
    assert main(["info", upper, "--latency-runs", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] > 0


def test_every_shipped_cfg_still_builds_and_fits_at_its_size() -> None:
    from yolo.resources import check_fits
    from yolo.zoo import ZOO

    for name in ZOO:
        model = create_model(name, num_classes=20)
        estimate = check_fits(model.cfg, 416, batch=8, training=True)
        assert estimate.params == sum(p.numel() for p in model.parameters())
        assert np.isfinite(estimate.bytes) and estimate.bytes > 0
