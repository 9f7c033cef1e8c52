"""The cfg parser: the dialect it accepts, and the one-line errors for everything else."""

from __future__ import annotations

import re

import pytest
import torch

from tests.conftest import TINY_CFG
from yolo.config import (
    CfgError,
    ConvBlock,
    MobileBlock,
    PEPBlock,
    RouteBlock,
    ShortcutBlock,
    YoloBlock,
    format_cfg,
    load_cfg,
    parse_cfg,
)
from yolo.layers import make_divisible
from yolo.model import Darknet
from yolo.topology import infer_shapes
from yolo.zoo import ZOO, resolve_cfg


def test_parses_typed_blocks_with_comments_spaces_and_lists() -> None:
    text = """
# a comment
[net]
width = 64   # trailing comment
height=64
channels=3
batch=64
subdivisions=16

; darknet also allows ';' comments
[convolutional]
filters = 8
size=3
stride=1
pad=1
batch_normalize=1
activation = LEAKY

[route]
layers = -1, 0

[shortcut]
from=-2

[convolutional]
filters=21
size=1
activation=logistic

[yolo]
mask = 0,1,2
anchors = 10,14,  23,27,  37,58
classes=2
jitter=.3
"""
    cfg = parse_cfg(text, source="x.cfg")
    assert cfg.net.width == 64 and ("batch", "64") in cfg.net.extras
    conv, route, shortcut, pred, yolo = cfg.blocks
    assert isinstance(conv, ConvBlock) and conv.activation == "leaky" and conv.padding == 1
    assert isinstance(route, RouteBlock) and route.layers == (-1, 0)
    assert isinstance(shortcut, ShortcutBlock) and shortcut.from_ == -2
    assert shortcut.activation == "linear"
    assert pred.activation == "sigmoid"
    assert isinstance(yolo, YoloBlock) and yolo.mask == (0, 1, 2) and yolo.num == 3
    assert yolo.anchors == ((10, 14), (23, 27), (37, 58)) and ("jitter", ".3") in yolo.extras
    assert [b.index for b in cfg.blocks] == [0, 1, 2, 3, 4]
    assert conv.line == 11  # the line of its [convolutional] header


@pytest.mark.parametrize("name", ZOO)
def test_zoo_cfgs_round_trip_through_the_writer(name: str) -> None:
    cfg = resolve_cfg(name)
    again = parse_cfg(format_cfg(cfg), source=cfg.source)
    strip = [(type(b), {k: v for k, v in vars(b).items() if k != "line"}) for b in cfg.blocks]
    assert strip == [
        (type(b), {k: v for k, v in vars(b).items() if k != "line"}) for b in again.blocks
    ]


def test_custom_sections_parse() -> None:
    cfg = resolve_cfg("yolo-nano")
    pep = cfg.blocks[2]
    assert isinstance(pep, PEPBlock) and (pep.filters, pep.x, pep.stride) == (24, 7, 1)
    mobile = resolve_cfg("yolov3-mobile").blocks[1]
    assert isinstance(mobile, MobileBlock)
    assert (mobile.expansion_ratio, mobile.squeeze_excite, mobile.activation) == (1.0, 1, "relu")


def test_a_thesis_mobile_section_with_pad_loads_as_without_it() -> None:
    """The seed thesis' YOLOv3-Mobile cfgs carry pad=1 in every [mobile] section."""
    plain = format_cfg(resolve_cfg("yolov3-mobile"))
    with_pad = plain.replace("[mobile]\n", "[mobile]\npad=1\n")
    assert with_pad.count("pad=1") > 10
    cfg = parse_cfg(with_pad, source="thesis-mobile.cfg")
    assert all(("pad", "1") in b.extras for b in cfg.blocks if isinstance(b, MobileBlock))
    torch.manual_seed(0)
    a = Darknet(parse_cfg(plain)).eval()
    b = Darknet(cfg).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(a(x), b(x))
    assert "pad=1" in format_cfg(cfg)  # written back as it came


def test_make_divisible_is_the_mobilenet_rounding() -> None:
    assert make_divisible(8 * 4) == 32
    assert make_divisible(4 * 4) == 16
    assert make_divisible(3) == 8  # at least the divisor
    assert make_divisible(100) == 104  # nearest multiple of 8
    assert make_divisible(20) == 24  # ties round up; never below 90%
    assert make_divisible(92) == 96


def test_shapes_follow_routes_and_strides() -> None:
    shapes = infer_shapes(resolve_cfg("yolov3"))
    assert shapes[86].sources == (85, 61)
    assert shapes[86].out_channels == 256 + 512 and shapes[86].stride == 16
    assert [shapes[i].stride for i in (82, 94, 106)] == [32, 16, 8]


# ------------------------------------------------------------------ bad input


def _replace(old: str, new: str) -> str:
    assert old in TINY_CFG, old
    return TINY_CFG.replace(old, new, 1)


BAD_CFGS = {
    "unknown section": (
        _replace("[shortcut]", "[reorg]"),
        r"model\.cfg:\d+: block 2: unknown section \[reorg\]; allowed: net, convolutional",
    ),
    "unknown key": (
        _replace("filters=16", "filtres=16"),
        r"model\.cfg:\d+: block 3 \[convolutional\]: unknown key 'filtres'; allowed: filters",
    ),
    "missing required key": (
        _replace("filters=16\n", ""),
        r"model\.cfg:\d+: block 3 \[convolutional\]: missing required key 'filters'",
    ),
    "non-numeric value": (
        _replace("size=1", "size=one"),
        r"model\.cfg:\d+: block 4 \[convolutional\]: size: must be an integer, got 'one'",
    ),
    "non-positive value": (
        _replace("stride=2\npad=1\nactivation=relu", "stride=0\npad=1\nactivation=relu"),
        r"block 3 \[convolutional\]: stride must be >= 1, got 0",
    ),
    "unknown activation": (
        _replace("activation=relu", "activation=gelu"),
        r"block 3 \[convolutional\]: activation: unknown activation 'gelu'; allowed: leaky",
    ),
    "shortcut to a block that does not exist": (
        _replace("from=-2", "from=-9"),
        r"model\.cfg:\d+: block 2 \[shortcut\]: from=-9 points to block -7, which does not "
        r"exist before it; allowed: -2\.\.-1 or 0\.\.1",
    ),
    "route to a block that does not exist": (
        _replace("[shortcut]\nfrom=-2\nactivation=linear", "[route]\nlayers=-1, 7"),
        r"block 2 \[route\]: layers=7 points to block 7, which does not exist before it",
    ),
    "shortcut with mismatched shapes": (
        _replace("filters=8\nsize=3\nstride=1", "filters=16\nsize=3\nstride=1"),
        r"block 2 \[shortcut\]: shortcut adds block 0 \(8 channels, stride 2\) to block 1 "
        r"\(16 channels, stride 2\); shapes must be equal",
    ),
    "prediction conv of the wrong size": (
        _replace("filters=21", "filters=20"),
        r"block 5 \[yolo\]: the prediction conv \(block 4\) has 20 filters but 3 anchors",
    ),
    "mask out of range": (
        _replace("mask=0,1,2", "mask=0,1,5"),
        r"block 5 \[yolo\]: mask index 5 out of range; allowed: 0\.\.2",
    ),
    "key before any section": ("width=64\n" + TINY_CFG, r"model\.cfg:1: 'key = value' before"),
    "no net section": (
        TINY_CFG.replace("[net]\nwidth=64\nheight=64\nchannels=3\n", ""),
        r"model\.cfg:\d+: a cfg must start with a \[net\] section",
    ),
    "duplicate key": (
        _replace("size=1", "size=1\nsize=3"),
        r"block 4 \[convolutional\]: key 'size' given twice",
    ),
    "not key=value": (_replace("size=1", "size 1"), r"expected 'key = value' or '\[section\]'"),
}


@pytest.mark.parametrize("case", sorted(BAD_CFGS))
def test_bad_cfg_gets_one_line_error_naming_file_line_block_and_rule(write_cfg, case) -> None:
    text, pattern = BAD_CFGS[case]
    path = write_cfg(text)
    with pytest.raises(CfgError) as info:
        Darknet(load_cfg(path))
    message = str(info.value)
    assert "\n" not in message
    assert re.search(pattern, message), message
    assert message.startswith(str(path))


def test_error_line_points_at_the_offending_line(write_cfg) -> None:
    text = _replace("size=1", "size=one")
    path = write_cfg(text)
    with pytest.raises(CfgError) as info:
        load_cfg(path)
    line = int(str(info.value).split(":")[1])
    assert text.splitlines()[line - 1] == "size=one"


def test_missing_cfg_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="cfg file not found"):
        load_cfg(tmp_path / "nope.cfg")


def test_tiny_cfg_is_valid(write_cfg) -> None:
    model = Darknet(load_cfg(write_cfg(TINY_CFG)))
    assert model.num_classes == 2 and model.head_strides == (4,)
