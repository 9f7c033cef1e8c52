"""Seeded fuzzing of the inputs a user hands ``yct``: a valid cfg, dataset spec, search
space, hyper-parameter file and score JSON, each mutated one edit at a time (a value
replaced by junk, NaN, a sign flip, a huge or fractional number, a wrong type; a line
dropped, doubled or cut off; the text truncated or mangled into bytes that are not UTF-8),
then run through the command a user would run.

Whatever the edit, the answer is one of: accepted (exit 0, or 1 where ``yct data check``
reports sample defects), or one line on stderr ``yct <command>: error: …`` that names the
file at fault, exit 2. An exception escaping ``main`` (a traceback), a message of several
lines, or one that does not name the file fails the case, printed with its seed and edit
so that it can be replayed. The table-driven cases of ``test_bad_input.py`` pin exact
messages; this explores around them.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from yct.cli import main
from yolo.zoo import zoo_cfg_text

# more seeds for a deeper run: YCT_FUZZ_SEEDS="0 1 2 3 4 5 6 7" pytest tests/yolo/test_fuzz_inputs.py
SEEDS = [int(seed) for seed in os.environ.get("YCT_FUZZ_SEEDS", "0 1 2").split()]
JUNK = ("", "abc", "nan", "-nan", "inf", "-inf", "-1", "0", "1e309", "99999999", "2.5", "-0.5",
        "[1, 2]", "{a: 1}", "~", "true", "0x10", "1,2,,3", "ÿ", "'")  # fmt: skip
CASES_PER_KIND = 30


def _edits(text: str, rng: random.Random, separator: str) -> Iterator[tuple[str, bytes]]:
    """(what was done, the edited file), one edit each, drawn with ``rng``."""
    lines = text.splitlines()
    valued = [i for i, line in enumerate(lines)
              if separator in line and not line.lstrip().startswith("#")]  # fmt: skip
    while True:
        kind = rng.choice(["value", "value", "value", "value", "drop", "double", "cut", "key",
                           "bytes", "indent"])  # fmt: skip
        i = rng.choice(valued)
        key, _, value = lines[i].partition(separator)
        edited = list(lines)
        if kind == "value":
            junk = rng.choice(JUNK)
            edited[i] = f"{key}{separator}{' ' if separator == ':' else ''}{junk}"
            what = f"line {i + 1}: {key.strip()} {value.strip()!r} -> {junk!r}"
        elif kind == "drop":
            del edited[i]
            what = f"line {i + 1} dropped: {lines[i].strip()!r}"
        elif kind == "double":
            edited.insert(i, lines[i])
            what = f"line {i + 1} doubled: {lines[i].strip()!r}"
        elif kind == "cut":
            edited = lines[:i]
            what = f"cut before line {i + 1}"
        elif kind == "key":
            edited[i] = f"{key.strip()}_x{separator}{value}"
            what = f"line {i + 1}: key {key.strip()!r} -> {key.strip()}_x"
        elif kind == "indent":
            edited[i] = "   " + lines[i] if separator == ":" else lines[i].replace(separator, " ")
            what = f"line {i + 1} mangled: {edited[i]!r}"
        else:
            head = "\n".join(lines[:i]).encode()
            yield f"line {i + 1}: bytes that are not UTF-8", head + b"\n\xff\xfe\n"
            continue
        yield what, ("\n".join(edited) + "\n").encode()


def _check(argv: list[str], path: Path, what: str, capsys: pytest.CaptureFixture[str],
           accepted: tuple[int, ...] = (0,)) -> str:  # fmt: skip
    """Run ``yct`` on one edited file; return 'accepted' or 'refused' (failing otherwise)."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: a usage error is its own one-line answer, exit 2
        code = int(exc.code or 0)
        err = capsys.readouterr().err
        assert code == 2 and "error:" in err, f"{what}: exit {code}: {err}"
        return "refused"
    except Exception as exc:  # a traceback, where the user deserved one line
        pytest.fail(f"{what}: {type(exc).__name__} escaped: {exc}")
    err = capsys.readouterr().err.strip()
    if code in accepted:
        return "accepted"
    lines = err.splitlines()
    assert code == 2, f"{what}: exit {code}: {err}"
    assert len(lines) == 1 and lines[0].startswith(f"yct {argv[0]}: error: "), f"{what}: {err}"
    assert path.name in lines[0], f"{what}: the message does not name {path.name}: {lines[0]}"
    return "refused"


def _fuzz(tmp_path: Path, text: str, name: str, separator: str, seed: int,
          argv: Callable[[Path], list[str]], capsys: pytest.CaptureFixture[str],
          accepted: tuple[int, ...] = (0,)) -> dict[str, int]:  # fmt: skip
    rng = random.Random(seed)
    outcomes = {"accepted": 0, "refused": 0}
    for n, (what, edited) in zip(range(CASES_PER_KIND), _edits(text, rng, separator)):
        folder = tmp_path / f"case{n}"
        folder.mkdir()
        path = folder / name
        path.write_bytes(edited)
        outcomes[_check(argv(path), path, f"seed {seed} case {n}: {what}", capsys, accepted)] += 1
    return outcomes


@pytest.mark.parametrize("seed", SEEDS)
def test_edited_cfgs(tmp_path, capsys, seed) -> None:
    text = zoo_cfg_text("yolov3-tiny")
    outcomes = _fuzz(tmp_path, text, "model.cfg", "=", seed,
                     lambda p: ["info", str(p), "--width", "0.25", "--img-size", "64",
                                "--latency-runs", "0", "--json"], capsys)  # fmt: skip
    assert outcomes["refused"] > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_edited_dataset_specs(tmp_path, capsys, demo_spec, seed) -> None:
    spec = yaml.safe_load(demo_spec.read_text())
    spec["root"] = str((demo_spec.parent / spec.get("root", ".")).resolve())
    text = yaml.safe_dump(spec, default_flow_style=None)
    outcomes = _fuzz(tmp_path, text, "data.yaml", ":", seed,
                     lambda p: ["data", "check", str(p), "--no-decode"], capsys,
                     accepted=(0, 1))  # fmt: skip
    assert outcomes["refused"] > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_edited_search_spaces(tmp_path, capsys, demo_spec, seed) -> None:
    space = {
        "method": "lth", "model": "yolov3-tiny", "data": str(demo_spec),
        "objectives": [{"metric": "map50", "mode": "max"}, {"metric": "macs", "mode": "min"}],
        "fixed": {"width": 0.25, "img_size": 64, "epochs": 2, "batch_size": 8,
                  "latency_runs": 0},
        "space": {"lr0": {"type": "loguniform", "low": 0.001, "high": 0.01},
                  "rate": {"type": "float", "low": 0.2, "high": 0.6},
                  "rounds": {"type": "int", "low": 1, "high": 2}},
        "search": {"sampler": "tpe", "scheduler": "moasha", "num_samples": 4,
                   "max_concurrent": 2, "seed": 0, "reduction_factor": 2},
        "resources": {"cpu": 1, "gpu": 0},
    }  # fmt: skip
    text = yaml.safe_dump(space, default_flow_style=False, sort_keys=False)
    outcomes = _fuzz(tmp_path, text, "space.yaml", ":", seed,
                     lambda p: ["tune", str(p), "--dry-run"], capsys)  # fmt: skip
    assert outcomes["refused"] > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_edited_hyper_parameters(tmp_path, capsys, demo_spec, seed) -> None:
    hyp = {"lr0": 0.01, "lrf": -4.0, "momentum": 0.937, "weight_decay": 0.000484,
           "warmup_epochs": 1.0, "ema_decay": 0.9999,
           "loss": {"giou": 3.54, "obj": 64.3, "cls": 37.4, "iou_t": 0.225},
           "augment": {"degrees": 1.0, "translate": 0.05, "scale": 0.05, "hsv_h": 0.01,
                       "flip_lr": 0.5, "mosaic": 0.0}}  # fmt: skip
    text = yaml.safe_dump(hyp, default_flow_style=False, sort_keys=False)
    # --epochs 0 is refused after the hyp file is read: an accepted file ends there, cheaply
    outcomes = {"accepted": 0, "refused": 0}
    rng = random.Random(seed)
    for n, (what, edited) in zip(range(CASES_PER_KIND), _edits(text, rng, ":")):
        path = tmp_path / f"hyp{n}.yaml"
        path.write_bytes(edited)
        argv = ["train", "yolov3-tiny", "--data", str(demo_spec), "--hyp", str(path),
                "--epochs", "0", "--out", str(tmp_path / "run")]  # fmt: skip
        try:
            code = main(argv)
        except Exception as exc:
            pytest.fail(f"seed {seed} case {n}: {what}: {type(exc).__name__} escaped: {exc}")
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, f"{what}: {err}"
        if path.name in err:
            outcomes["refused"] += 1
        else:  # the file was fine; the refusal is --epochs 0's
            assert "epochs" in err, f"seed {seed} case {n}: {what}: {err}"
            outcomes["accepted"] += 1
    assert outcomes["refused"] > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_edited_score_files(tmp_path, capsys, seed) -> None:
    gt = {"images": [{"id": 1, "file_name": "x.jpg", "width": 100, "height": 100}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20],
                           "area": 400, "iscrowd": 0}],
          "categories": [{"id": 1, "name": "a"}]}  # fmt: skip
    pred = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9}]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    text = json.dumps(pred, indent=1)
    outcomes = _fuzz(tmp_path, text, "pred.json", ":", seed,
                     lambda p: ["score", "--gt", str(tmp_path / "gt.json"), "--pred", str(p)],
                     capsys)  # fmt: skip
    assert outcomes["refused"] > 0


def _byte_edits(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """A binary file cut short, or some of its bytes overwritten."""
    while True:
        at = rng.randrange(1, len(data))
        if rng.random() < 0.4:
            yield f"cut at byte {at} of {len(data)}", data[:at]
        else:
            count = rng.choice([1, 8, 64])
            junk = bytes(rng.randrange(256) for _ in range(count))
            yield f"{count} bytes overwritten at {at}", data[:at] + junk + data[at + count :]


@pytest.mark.parametrize("seed", SEEDS)
def test_damaged_checkpoints_and_weights(tmp_path, capsys, seed) -> None:
    from yolo.io import read_darknet_weights, save_checkpoint, write_darknet_weights
    from yolo.zoo import create_model

    model = create_model("yolov3-tiny", num_classes=3, width=0.25)
    save_checkpoint(tmp_path / "good.pt", model, metadata={"names": ["a", "b", "c"]})
    write_darknet_weights(model, tmp_path / "good.weights")
    cfg = tmp_path / "model.cfg"
    cfg.write_text(model.cfg_text)  # the narrow model's cfg, to read its weights into
    rng = random.Random(seed)
    for kind, data in (("model.pt", (tmp_path / "good.pt").read_bytes()),
                       ("model.weights", (tmp_path / "good.weights").read_bytes())):  # fmt: skip
        for n, (what, damaged) in zip(range(CASES_PER_KIND // 2), _byte_edits(data, rng)):
            folder = tmp_path / f"{kind}{n}"
            folder.mkdir()
            path = folder / kind
            path.write_bytes(damaged)
            if kind == "model.pt":
                argv = ["info", str(path), "--img-size", "64", "--latency-runs", "0"]
                _check(argv, path, f"seed {seed} {kind} case {n}: {what}", capsys)
                continue
            # darknet weights enter through `yct train --weights`: the reader is that boundary
            try:
                read_darknet_weights(create_model(str(cfg), num_classes=3), path)
            except ValueError as exc:
                assert path.name in str(exc) and "\n" not in str(exc), f"{what}: {exc}"
            except Exception as exc:
                pytest.fail(f"seed {seed} {kind} case {n}: {what}: {type(exc).__name__}: {exc}")
