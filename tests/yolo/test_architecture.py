"""Architectures of a family: stages found in the parent cfg, choices checked in one line,
generated cfgs renumbered, shape-checked and round-tripping through the cfg writer."""

from __future__ import annotations

import pytest
import torch

from yolo.architecture import (
    Architecture,
    architecture_from_flat,
    find_stages,
    generate,
)
from yolo.blocks import MobileBlock, PEPBlock, RouteBlock, ShortcutBlock
from yolo.config import format_cfg, load_cfg, parse_cfg
from yolo.model import Darknet
from yolo.zoo import resolve_cfg

# stem, a downsampling [mobile], a stage of two units (1x1, 3x3, shortcut), a route back
# to the stage's end, and a head
TINY_MOBILE = """[net]
width=64
height=64
channels=3

[convolutional]
filters=8
size=3
stride=1
batch_normalize=1
activation=hswish
pad=1

[mobile]
filters=16
size=3
expansion_ratio=1
stride=2
activation=relu

[mobile]
filters=8
size=1
expansion_ratio=2
activation=relu

[mobile]
filters=16
size=3
expansion_ratio=2
activation=relu

[shortcut]
from=-3
activation=linear

[mobile]
filters=8
size=1
expansion_ratio=2
activation=relu

[mobile]
filters=16
size=3
expansion_ratio=2
activation=relu

[shortcut]
from=-3
activation=linear

[route]
layers=7

[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1,2
anchors=10,13, 16,30, 33,23
classes=2
num=3
"""


def tiny() -> object:
    return parse_cfg(TINY_MOBILE, source="tiny.cfg")


def test_stages_of_the_zoo_families() -> None:
    mobile = find_stages(resolve_cfg("yolov3-mobile"))
    assert [(s.kind, s.depth) for s in mobile if s.removable] == [
        ("mobile", 1), ("mobile", 2), ("mobile", 8), ("mobile", 8), ("mobile", 4)]  # fmt: skip
    # the head's mobile blocks after the last stage: choices but no depth
    assert (mobile[-1].name, mobile[-1].removable) == ("neck", False)
    assert mobile[2].units[0] == (13, 14, 15)  # 1x1, 3x3, the shortcut closing the unit
    nano = find_stages(resolve_cfg("yolo-nano"))
    assert [(s.kind, s.depth) for s in nano if s.removable] == [
        ("pep", 1), ("pep", 2), ("pep", 1), ("pep", 3), ("pep", 8), ("pep", 1)]  # fmt: skip
    assert (nano[-1].name, nano[-1].removable) == ("neck", False)
    assert find_stages(resolve_cfg("yolov3-mobile-leaky")) == mobile
    assert find_stages(resolve_cfg("yolo-nano-leaky")) == nano
    assert find_stages(resolve_cfg("yolov3-tiny")) == ()


def test_depth_keeps_the_first_units_and_renumbers_references() -> None:
    cfg = tiny()
    (stage,) = find_stages(cfg)
    assert stage.units == ((2, 3, 4), (5, 6, 7))
    generated = generate(cfg, architecture_from_flat({"s1.depth": 1}, (stage,)))
    blocks = generated.cfg.blocks
    assert generated.parent_block == (0, 1, 2, 3, 4, 8, 9, 10)
    assert [b.index for b in blocks] == list(range(8))
    # the route read the stage's end (block 7, dropped): now the kept unit's end, block 4
    assert isinstance(blocks[5], RouteBlock) and blocks[5].layers == (4,)
    assert isinstance(blocks[4], ShortcutBlock) and blocks[4].from_ == -3
    Darknet(generated.cfg)(torch.zeros(1, 3, 64, 64))


def test_unit_choices_edit_only_the_units_blocks() -> None:
    cfg = tiny()
    stages = find_stages(cfg)
    arch = architecture_from_flat({"kernel": 5, "expansion": 3, "se": 1, "activation": "hswish",
                                   "s1.u2.kernel": 7}, stages)  # fmt: skip
    blocks = generate(cfg, arch).cfg.blocks
    first, second = blocks[3], blocks[6]
    assert isinstance(first, MobileBlock) and isinstance(second, MobileBlock)
    assert (first.size, second.size) == (5, 7)  # unit 2's own choice over the stage's
    assert isinstance(blocks[2], MobileBlock) and blocks[2].size == 1  # 1x1 stays pointwise
    assert all(b.expansion_ratio == 3 and b.squeeze_excite == 1 and b.activation == "hswish"
               for b in (blocks[2], first, blocks[5], second))  # fmt: skip
    stem = blocks[1]
    assert isinstance(stem, MobileBlock) and (stem.size, stem.expansion_ratio) == (3, 1)


def test_generated_cfg_round_trips_through_the_writer(tmp_path) -> None:
    cfg = resolve_cfg("yolov3-mobile")
    arch = architecture_from_flat({"s3.depth": 2, "s4.depth": 3, "s5.depth": 1, "kernel": 7,
                                   "s2.expansion": 3, "s3.u2.se": 1}, find_stages(cfg))  # fmt: skip
    generated = generate(cfg, arch, source="arch.cfg")
    text = format_cfg(generated.cfg)
    path = tmp_path / "arch.cfg"
    path.write_text(text, encoding="utf-8")
    again = load_cfg(path)
    assert format_cfg(again) == text
    assert [type(b) for b in again.blocks] == [type(b) for b in generated.cfg.blocks]
    assert len(again.blocks) == 107 - 3 * (6 + 5 + 3)
    # the heads' routes still read the ends of stages 4 and 3
    routes = [b.layers for b in again.blocks if isinstance(b, RouteBlock)]
    ends = {i for i, b in enumerate(again.blocks) if isinstance(b, ShortcutBlock)}
    assert all(ref < 0 or ref in ends for layers in routes for ref in layers)


def test_no_choice_is_the_parent() -> None:
    for name in ("yolov3-mobile", "yolo-nano"):
        cfg = resolve_cfg(name)
        assert format_cfg(generate(cfg, Architecture()).cfg) == format_cfg(cfg)


def test_nano_projection_ratio_rounds_to_eight() -> None:
    cfg = resolve_cfg("yolo-nano")
    stages = find_stages(cfg)
    blocks = generate(cfg, architecture_from_flat({"x_ratio": 0.5, "s5.depth": 3}, stages)).cfg
    peps = [b for b in blocks.blocks if isinstance(b, PEPBlock)]
    assert peps[0].x == 8  # 7 * 0.5 -> at least 8
    assert peps[1].x == 16  # 25 * 0.5 = 12.5 -> 16
    kept = generate(cfg, architecture_from_flat({"x_ratio": 1.0}, stages)).cfg
    assert format_cfg(kept) == format_cfg(cfg)  # ratio 1: the parent's own counts


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kernel": 4}, "kernel: must be one of 3, 5, 7, got 4"),
        ({"s3.depth": 0}, "s3.depth: must be an integer 1..8"),
        ({"s3.depth": 9}, "s3.depth: must be an integer 1..8"),
        ({"s2.expansion": 0}, "s2.expansion: must be a number in (0, 8], got 0"),
        ({"expansion": -1.0}, "expansion: must be a number in (0, 8], got -1.0"),
        ({"expansion": float("nan")}, "expansion: must be a number in (0, 8], got nan"),
        ({"activation": "mish"}, "activation: must be one of relu, hswish, leaky, got 'mish'"),
        ({"se": 2}, "se: must be 0 or 1, got 2"),
        (
            {"x_ratio": 0.5},
            "x_ratio: no stage has a choice 'x_ratio'; allowed: activation, "
            "depth, expansion, kernel, se",
        ),
        ({"s9.depth": 1}, "s9.depth: no stage 's9'; the parent's stages: s1, s2, s3, s4, s5"),
        ({"s3.u9.kernel": 3}, "s3.u9.kernel: unit 9 does not exist; stage s3 has units 1..8"),
        ({"s3.u2.depth": 3}, "s3.u2.depth: depth is a stage's choice, not a unit's"),
        ({"s3.x.kernel": 3}, "s3.x.kernel: a key is <choice>, <stage>.<choice> or"),
        ({"kernel": "5"}, "kernel: must be one of 3, 5, 7, got '5'"),
    ],
)
def test_impossible_choices_are_refused_in_one_line(values: dict, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        architecture_from_flat(values, find_stages(resolve_cfg("yolov3-mobile")))
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_nano_refuses_mobile_choices() -> None:
    with pytest.raises(
        ValueError,
        match=r"s5.kernel: a stage of \[PEP\] units has no choice "
        r"'kernel'; allowed: depth, x_ratio, activation",
    ):
        architecture_from_flat({"s5.kernel": 5}, find_stages(resolve_cfg("yolo-nano")))
    with pytest.raises(ValueError, match="activation: must be one of relu6, leaky, got 'hswish'"):
        architecture_from_flat({"activation": "hswish"}, find_stages(resolve_cfg("yolo-nano")))
