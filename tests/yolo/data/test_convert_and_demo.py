"""Format round trips, the demo set, and the ``yct data`` command."""

from __future__ import annotations

import numpy as np
import pytest

from tests.yolo.data.fixtures import make_voc
from yct.cli import main
from yolo.data.check import check_dataset
from yolo.data.convert import convert
from yolo.data.demo import NAMES, DemoConfig, build_demo_set
from yolo.data.loader import load_records
from yolo.data.spec import load_spec


def test_voc_to_yolo_to_coco_keeps_every_box(tmp_path) -> None:
    rng = np.random.default_rng(0)
    images = {}
    for i in range(5):
        w, h = int(rng.integers(50, 300)), int(rng.integers(50, 300))
        objects = []
        for _ in range(3):
            x1, y1 = int(rng.integers(1, w // 2)), int(rng.integers(1, h // 2))
            x2, y2 = int(rng.integers(x1 + 1, w + 1)), int(rng.integers(y1 + 1, h + 1))
            objects.append({"name": "dog", "box": (x1, y1, x2, y2)})
        images[f"{i:06d}"] = (w, h, objects)
    voc_spec = make_voc(tmp_path / "voc", images)
    voc, names, _ = load_records(voc_spec, "train")
    assert not convert({"train": voc}, names, "yolo", tmp_path / "yolo")  # nothing to note
    yolo, yolo_names, _ = load_records(tmp_path / "yolo" / "data.yaml", "train")
    convert({"train": yolo}, yolo_names, "coco", tmp_path / "coco")
    coco, coco_names, _ = load_records(tmp_path / "coco" / "data.yaml", "train")
    assert names == yolo_names == coco_names
    for a, b, c in zip(voc, yolo, coco):
        assert np.abs(a.boxes - b.boxes).max() < 1e-6
        assert np.abs(a.boxes - c.boxes).max() < 1e-6
        assert a.labels.tolist() == b.labels.tolist() == c.labels.tolist()


def test_coco_keeps_difficult_and_yolo_counts_it(tmp_path) -> None:
    spec = make_voc(tmp_path / "voc", {"a": (40, 40, [{"name": "cat", "box": (1, 1, 9, 9),
                                                      "difficult": 1}])})  # fmt: skip
    records, names, _ = load_records(spec, "train")
    notes = convert({"train": records}, names, "yolo", tmp_path / "yolo")
    assert sum(notes.values()) == 1 and "difficult" in next(iter(notes))
    convert({"train": records}, names, "coco", tmp_path / "coco")
    coco, _, _ = load_records(tmp_path / "coco" / "data.yaml", "train")
    assert coco[0].difficult.tolist() == [True]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return build_demo_set(out, DemoConfig(images=200, size=64, seed=1))


def test_demo_set_reads_back_with_no_problems_and_balanced_classes(demo) -> None:
    spec = load_spec(demo)
    assert spec.format == "voc" and spec.names == NAMES
    reports = check_dataset(spec)
    assert [r.images for r in reports] == [140, 30, 30]
    for report in reports:
        assert report.problems == [], report.problems
    # classes are balanced within 20% over the set and in the (largest) train split
    total = sum((r.objects for r in reports), start=reports[0].objects.__class__())
    for counts in (total, reports[0].objects):
        values = [counts[c] for c in range(10)]
        assert min(values) >= 0.8 * max(values), values
    records, _, _ = load_records(demo, "train", on_bad_sample="error")
    assert all(len(r.boxes) >= 1 for r in records)
    sides = np.concatenate([r.boxes[:, 2:] - r.boxes[:, :2] for r in records])
    assert sides.min() >= 3 and sides.max() <= 64 * 0.45 + 1


def test_demo_set_is_deterministic(demo, tmp_path) -> None:
    again = build_demo_set(tmp_path, DemoConfig(images=200, size=64, seed=1))
    for name in ("000000.jpg", "000199.jpg"):
        a = (demo.parent / "VOCdemo" / "JPEGImages" / name).read_bytes()
        assert a == (again.parent / "VOCdemo" / "JPEGImages" / name).read_bytes()


def test_low_light_is_darker(demo, tmp_path) -> None:
    from yolo.data.images import read_image

    dark = build_demo_set(tmp_path, DemoConfig(images=20, size=64, seed=1, low_light=True))
    bright_records, _, _ = load_records(demo, "train")
    dark_records, _, _ = load_records(dark, "train")
    bright = np.mean([read_image(r.path).mean() for r in bright_records[:10]])
    darker = np.mean([read_image(r.path).mean() for r in dark_records[:10]])
    assert darker < 0.6 * bright


def test_data_commands(demo, tmp_path, capsys) -> None:
    assert main(["data", "check", str(demo), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "[val]: 30 images" in out and "problems: none" in out and "box size" in out
    assert main(["data", "convert", str(demo), "--to", "coco", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "annotations" / "test.json").is_file()
    assert main(["data", "demo", str(tmp_path / "d"), "--images", "20", "--size", "64"]) == 0
    assert (tmp_path / "d" / "data.yaml").is_file()


def test_data_check_lists_every_problem_and_fails(tmp_path, capsys) -> None:
    spec = make_voc(tmp_path, {
        "a": (40, 40, [{"name": "cat", "box": (1, 1, 99, 9)}, {"name": "emu", "box": (1, 1, 9, 9)}]),
        "b": (40, 40, [{"name": "cat", "box": (1, 1, 9, 9)}]),
    })  # fmt: skip
    (tmp_path / "VOC2007" / "JPEGImages" / "b.jpg").write_bytes(b"\xff\xd8 broken")
    assert main(["data", "check", str(spec)]) == 1
    out = capsys.readouterr().out
    assert "3 problems:" in out
    assert "box outside the image" in out and "unknown class ('emu')" in out
    assert "b.jpg: unreadable image (UnidentifiedImageError)" in out  # from its header


def test_data_check_of_a_split_it_cannot_read_is_bad_input(tmp_path, capsys) -> None:
    """A structural error (a list that leaves the dataset root) is bad input, one line and
    exit 2, after the report; sample defects stay findings (exit 1, above)."""
    spec = make_voc(tmp_path, {"a": (40, 40, [{"name": "cat", "box": (1, 1, 9, 9)}])})
    sets = tmp_path / "VOC2007" / "ImageSets" / "Main" / "trainval.txt"
    sets.write_text("a\n../../../../etc/passwd\n")
    assert main(["data", "check", str(spec)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err and err.startswith("yct data: error: ") and "[train]" in err, err
    assert "paths must stay inside the dataset root" in err, err
    assert "[train]" in captured.out  # the report still shows what was read


def test_data_command_bad_input(tmp_path, capsys) -> None:
    assert main(["data", "check", str(tmp_path / "none.yaml")]) == 2
    assert "yct data: error: dataset spec not found" in capsys.readouterr().err
    assert main(["data", "demo", str(tmp_path / "x"), "--images", "3"]) == 2
    assert "--images must be >= 20" in capsys.readouterr().err
