"""Each reader: exact boxes, classes and difficult flags; every bad-input case."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import yaml

from tests.yolo.data.fixtures import make_coco, make_exdark, make_voc, make_yolo, write_image
from yolo.data.loader import load_records
from yolo.data.records import DataError, DataWarning
from yolo.data.spec import EXDARK_NAMES, VOC_NAMES, SpecError, load_spec


def test_voc_boxes_are_converted_exactly(tmp_path) -> None:
    spec = make_voc(tmp_path, {
        "000001": (100, 80, [
            {"name": "dog", "box": (1, 1, 100, 80)},  # the whole image
            {"name": "person", "box": (11, 21, 30, 50), "difficult": 1},
        ]),
    })  # fmt: skip
    records, names, _ = load_records(spec, "train", on_bad_sample="error")
    assert names == VOC_NAMES
    (record,) = records
    assert record.image_id == "VOC2007/000001" and (record.width, record.height) == (100, 80)
    assert record.boxes.tolist() == [[0, 0, 100, 80], [10, 20, 30, 50]]
    assert [names[i] for i in record.labels] == ["dog", "person"]
    assert record.difficult.tolist() == [False, True]


def test_voc_years_combine(tmp_path) -> None:
    make_voc(tmp_path, {"000001": (50, 50, [{"name": "cat", "box": (1, 1, 10, 10)}])})
    make_voc(tmp_path, {"2008_000002": (60, 40, [{"name": "cow", "box": (5, 5, 20, 20)}])},
             year="VOC2012")  # fmt: skip
    spec = tmp_path / "both.yaml"
    spec.write_text(
        yaml.safe_dump(
            {"format": "voc", "root": ".", "train": ["VOC2007/trainval", "VOC2012/trainval"]}
        )
    )
    records, _, _ = load_records(spec, "train")
    assert [r.image_id for r in records] == ["VOC2007/000001", "VOC2012/2008_000002"]


def test_exdark_boxes_classes(tmp_path) -> None:
    spec = make_exdark(tmp_path, {
        "Bicycle/2015_00001.png": (120, 90, ["Bicycle 10 20 30 40 0 0 0 0 0 0 0",
                                             "People 0 0 120 90 0 0 0 0 0 0 0"]),
    })  # fmt: skip
    records, names, _ = load_records(spec, "train", on_bad_sample="error")
    assert names == EXDARK_NAMES
    (record,) = records
    assert record.boxes.tolist() == [[10, 20, 40, 60], [0, 0, 120, 90]]
    assert [names[i] for i in record.labels] == ["Bicycle", "People"]
    assert record.image_id == "Bicycle/2015_00001.png"


@pytest.mark.parametrize("beside", [False, True])
def test_yolo_txt_labels(tmp_path, beside: bool) -> None:
    spec = make_yolo(tmp_path, {
        "a.jpg": (200, 100, ["1 0.5 0.5 0.2 0.4", "0 0.1 0.1 0.2 0.2"]),
        "b.jpg": (64, 64, None),  # background image: no label file
    }, names=["cat", "dog"], beside=beside)  # fmt: skip
    with pytest.warns(DataWarning, match=r"1 × images without a label file \(background\)"):
        records, _, _ = load_records(spec, "train", on_bad_sample="error")
    a, b = records
    np.testing.assert_allclose(a.boxes, [[80, 30, 120, 70], [0, 0, 40, 20]], atol=1e-9)
    assert a.labels.tolist() == [1, 0] and len(b.boxes) == 0


def test_coco_reader(tmp_path) -> None:
    data = {
        "images": [{"id": 7, "file_name": "x.jpg", "width": 100, "height": 50}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 18, "bbox": [10.5, 5, 20, 10], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 100, 50], "iscrowd": 1},
        ],
        "categories": [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}],
    }
    spec = make_coco(tmp_path, data, {"x.jpg": (100, 50)})
    records, names, _ = load_records(spec, "val", on_bad_sample="error")
    assert names == ("person", "dog")  # sorted by category id
    (record,) = records
    assert record.boxes.tolist() == [[10.5, 5, 30.5, 15], [0, 0, 100, 50]]
    assert record.labels.tolist() == [1, 0] and record.difficult.tolist() == [False, True]


def test_darknet_data_and_ultralytics_yaml(tmp_path) -> None:
    make_yolo(tmp_path, {"a.jpg": (32, 32, ["0 0.5 0.5 0.5 0.5"])}, names=["a", "b"])
    (tmp_path / "obj.names").write_text("a\nb\n")
    (tmp_path / "obj.data").write_text("classes = 2\ntrain = train.txt\nnames = obj.names\n")
    assert load_spec(tmp_path / "obj.data").names == ("a", "b")
    (tmp_path / "u.yaml").write_text(
        yaml.safe_dump({"path": ".", "train": "train.txt", "names": {0: "a", 1: "b"}})
    )
    spec = load_spec(tmp_path / "u.yaml")
    assert spec.format == "yolo" and spec.names == ("a", "b")
    records, _, _ = load_records(spec, "train")
    assert len(records) == 1


# ------------------------------------------------------------------ bad input

BAD_VOC = {
    "unknown class": ([{"name": "unicorn", "box": (1, 1, 10, 10)}], r"object 1: unknown class \('unicorn'\)"),
    "box outside the image": ([{"name": "dog", "box": (1, 1, 90, 10)}], r"box outside the image \(x1=0 y1=0 x2=90 y2=10 in a 50x40 image\)"),
    "box with non-positive size": ([{"name": "dog", "box": (10, 10, 5, 20)}], r"box with non-positive size"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_VOC))
def test_voc_bad_objects_error_or_skip_counted(tmp_path, case) -> None:
    objects, pattern = BAD_VOC[case]
    good = {"name": "cat", "box": (2, 2, 20, 20)}
    spec = make_voc(tmp_path, {"000001": (50, 40, [good, *objects])})
    with pytest.raises(DataError, match=pattern) as info:
        load_records(spec, "train", on_bad_sample="error")
    assert "000001.xml" in str(info.value) and "\n" not in str(info.value)
    with pytest.warns(DataWarning, match=rf"skipped 1 bad images/objects: 1 × {case}"):
        records, _, problems = load_records(spec, "train", on_bad_sample="skip")
    assert len(records[0].boxes) == 1 and problems.counts[case] == 1


def test_missing_and_malformed_annotation_and_missing_image(tmp_path) -> None:
    spec = make_voc(tmp_path, {
        "a": (30, 30, [{"name": "cat", "box": (1, 1, 10, 10)}]),
        "b": (30, 30, [{"name": "cat", "box": (1, 1, 10, 10)}]),
        "c": (30, 30, [{"name": "cat", "box": (1, 1, 10, 10)}]),
        "d": (30, 30, [{"name": "cat", "box": (1, 1, 10, 10)}]),
    })  # fmt: skip
    base = tmp_path / "VOC2007"
    (base / "Annotations" / "a.xml").unlink()
    (base / "Annotations" / "b.xml").write_text("<annotation><size>")
    (base / "JPEGImages" / "c.jpg").unlink()
    with pytest.raises(DataError, match=r"a\.xml: missing annotation"):
        load_records(spec, "train", on_bad_sample="error")
    with pytest.warns(DataWarning) as caught:
        records, _, problems = load_records(spec, "train", on_bad_sample="skip")
    assert [r.image_id for r in records] == ["VOC2007/d"]
    assert dict(problems.counts) == {"missing annotation": 1, "malformed annotation": 1,
                                     "missing image": 1}  # fmt: skip
    assert len(caught) == 1  # one summary line at the end of loading


def test_empty_split_is_an_error_even_when_skipping(tmp_path) -> None:
    spec = make_voc(tmp_path, {"a": (30, 30, [{"name": "cat", "box": (1, 1, 10, 10)}])})
    (tmp_path / "VOC2007" / "ImageSets" / "Main" / "trainval.txt").write_text("\n")
    with pytest.raises(DataError, match="split 'train' has no usable images"):
        load_records(spec, "train", on_bad_sample="skip")


def test_exdark_bad_lines(tmp_path) -> None:
    spec = make_exdark(tmp_path, {
        "Cat/x.jpg": (50, 50, ["Cat 1 1 10 10 0 0 0 0 0 0 0", "Horse 1 1 5 5 0 0 0 0 0 0 0",
                               "Cat 1 1 5"]),
    })  # fmt: skip
    with pytest.raises(DataError, match=r"x\.jpg\.txt:3: unknown class \('Horse'\)"):
        load_records(spec, "train", on_bad_sample="error")
    with pytest.warns(DataWarning, match="1 × unknown class.*1 × malformed annotation"):
        records, _, _ = load_records(spec, "train", on_bad_sample="skip")
    assert len(records[0].boxes) == 1
    (tmp_path / "anno" / "Cat" / "x.jpg.txt").write_text("Cat 1 1 10 10 0 0 0 0 0 0 0\n")
    with pytest.raises(DataError, match=r"malformed annotation \(first line must start with"):
        load_records(spec, "train", on_bad_sample="error")


def test_yolo_bad_lines(tmp_path) -> None:
    spec = make_yolo(
        tmp_path,
        {"a.jpg": (64, 64, ["5 0.5 0.5 0.1 0.1", "0 0.5 0.5 x 0.1", "0 1.5 0.5 0.2 0.2"])},
        names=["a", "b"],
    )
    with pytest.raises(DataError, match=r"a\.txt:1: unknown class \(id 5; names has 2\)"):
        load_records(spec, "train", on_bad_sample="error")
    with pytest.warns(DataWarning, match="skipped 3"):
        load_records(spec, "train", on_bad_sample="skip")


def test_corrupt_image_is_reported(tmp_path) -> None:
    spec = make_yolo(
        tmp_path,
        {"a.jpg": (64, 64, ["0 0.5 0.5 0.1 0.1"]), "b.jpg": (64, 64, ["0 0.5 0.5 0.1 0.1"])},
        names=["a"],
    )
    (tmp_path / "images" / "b.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(DataError, match=r"b\.jpg: unreadable image"):
        load_records(spec, "train", on_bad_sample="error")


@pytest.mark.parametrize(
    "content,pattern",
    [
        ("format: voc\nroot: .\ntrain: [x/y]\nfoo: 1\n", r"spec\.yaml: foo: unknown key; allowed:"),
        (
            "format: pascal\nroot: .\ntrain: [x]\n",
            r"format: must be one of voc, exdark, yolo, coco",
        ),
        ("format: voc\nroot: nowhere\ntrain: [x]\n", r"root: directory not found"),
        ("format: yolo\nroot: .\ntrain: [x]\n", r"names: required for format 'yolo'"),
        ("format: voc\nroot: .\n", r"train: no split given"),
        ("format: voc\nroot: .\ntrain: [x]\nanchors: [[1, -2]]\n", r"anchors: expected positive"),
        ("format: voc\nroot: .\ntrain: [x]\nnames: [a, a]\n", r"names: duplicate class names: a"),
        ("format: voc\nroot: [.\n", r"spec\.yaml:\d+: malformed YAML"),
        ("format: voc\nroot: .\ntrain: [x]\non_bad_sample: ignore\n", r"on_bad_sample: must be"),
    ],
)
def test_bad_specs(tmp_path, content, pattern) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(content)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert re.search(pattern, str(info.value)), str(info.value)
    assert "\n" not in str(info.value)


def test_missing_spec_and_missing_split(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="dataset spec not found"):
        load_spec(tmp_path / "none.yaml")
    spec = make_voc(tmp_path, {"a": (30, 30, [])})
    with pytest.raises(SpecError, match="no 'test' split; splits given: train"):
        load_records(spec, "test")
    write_image(tmp_path / "unused.jpg", 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records, _, _ = load_records(spec, "train")  # an image with no objects is fine
    assert len(records[0].boxes) == 0
