"""The zoo: exact parameter counts, MACs against thop, shapes, taps, width and class edits."""

from __future__ import annotations

import pytest
import thop
import torch

from yolo.blocks import scale_channels
from yolo.config import ConvBlock, YoloBlock
from yolo.metrics.profile import count_macs, count_params
from yolo.zoo import ZOO, create_model, with_width

# ARCHITECTURES.md: parameter counts (20, 12 classes) and thop MACs at 416 (20, 12 classes)
PARAMS = {
    "yolov3": (61_626_049, 61_582_969),
    "yolov3-tiny": (8_713_766, 8_695_286),
    "yolo-nano": (2_890_527, 2_872_743),
    "yolo-nano-leaky": (2_890_527, 2_872_743),
    "yolov3-mobile": (4_395_985, 4_390_537),
    "yolov3-mobile-leaky": (4_395_985, 4_390_537),
}
MACS = {
    "yolov3": (32_867_660_800, 32_838_587_392),
    "yolov3-tiny": (2_759_637_504, 2_753_407_488),
    "yolo-nano": (2_132_198_106, 2_121_319_914),
    "yolo-nano-leaky": (2_132_198_106, 2_121_319_914),
    "yolov3-mobile": (1_505_942_440, 1_502_308_264),
    "yolov3-mobile-leaky": (1_505_942_440, 1_502_308_264),
}


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("classes,column", [(20, 0), (12, 1)])
def test_parameter_count_is_exact(name: str, classes: int, column: int) -> None:
    model = create_model(name, num_classes=classes)
    assert count_params(model) == PARAMS[name][column]


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("classes,column", [(20, 0), (12, 1)])
def test_dense_macs_equal_thop_and_the_table(name: str, classes: int, column: int) -> None:
    model = create_model(name, num_classes=classes)
    ours = count_macs(model, 416)
    theirs, _ = thop.profile(model, (torch.zeros(1, 3, 416, 416),), verbose=False)
    assert ours.dense == int(theirs)
    assert ours.dense == pytest.approx(MACS[name][column], rel=0.005)


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("size", [64, 128])
def test_forward_shapes_train_and_eval(name: str, size: int) -> None:
    model = create_model(name, num_classes=3)
    x = torch.randn(2, 3, size, size)
    raw = model(x)
    strides = model.head_strides
    assert [r.shape for r in raw] == [torch.Size([2, 3, size // s, size // s, 8]) for s in strides]
    model.eval()
    with torch.no_grad():
        decoded = model(x)
    boxes = sum(3 * (size // s) ** 2 for s in strides)
    assert decoded.shape == (2, boxes, 8)
    assert torch.all((decoded[..., 4:] >= 0) & (decoded[..., 4:] <= 1))


def test_decoding_matches_a_hand_computation() -> None:
    model = create_model("yolov3-tiny", num_classes=1, width=0.25).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        raw = model(x, decode=False)
        decoded = model(x)
    head = model.heads[0]
    stride = model.head_strides[0]
    a, gy, gx = 1, 1, 0
    t = raw[0][0, a, gy, gx]
    expected_x = (torch.sigmoid(t[0]) + gx) * stride
    expected_w = torch.exp(t[2]) * head.anchors[a, 0]
    flat = decoded[0, a * 2 * 2 + gy * 2 + gx]
    assert torch.allclose(flat[0], expected_x) and torch.allclose(flat[2], expected_w)
    assert torch.allclose(flat[4], torch.sigmoid(t[4]))
    assert head.anchors.tolist() == [[198, 302], [295, 152], [385, 333]]


def test_taps_return_block_outputs() -> None:
    model = create_model("yolov3", num_classes=20, width=0.25)
    out, feats = model(torch.randn(1, 3, 128, 128), taps=[36, 61, 79])
    assert len(out) == 3
    assert [f.shape for f in feats] == [(1, 64, 16, 16), (1, 128, 8, 8), (1, 128, 4, 4)]
    model.eval()
    with torch.no_grad():
        decoded, (tap,) = model(torch.randn(1, 3, 128, 128), taps=[-1])
    assert decoded.dim() == 3 and tap.shape == (1, 3, 16, 16, 25)


def test_bad_taps() -> None:
    model = create_model("yolov3-tiny", num_classes=2, width=0.25)
    with pytest.raises(ValueError, match=r"tap 99 is not a block; allowed: 0\.\.23"):
        model(torch.zeros(1, 3, 64, 64), taps=[99])
    with pytest.raises(TypeError, match="expected block indices"):
        model(torch.zeros(1, 3, 64, 64), taps=["8"])


def test_class_count_rewrites_heads_and_prediction_convs() -> None:
    model = create_model("yolov3", num_classes=7, width=0.25)
    for i in model.head_indices:
        assert model.cfg.blocks[i].classes == 7
        assert model.cfg.blocks[i - 1].filters == 3 * 12
    assert model.num_classes == 7


def test_width_scales_hidden_channels_only() -> None:
    base = create_model("yolo-nano", num_classes=20).cfg
    scaled = with_width(base, 0.5)
    prediction = {b.index - 1 for b in base.blocks if isinstance(b, YoloBlock)}
    for before, after in zip(base.blocks, scaled.blocks):
        if before.index in prediction:
            assert isinstance(after, ConvBlock) and after.filters == 75
        elif hasattr(before, "filters"):
            assert after.filters == max(8, round(before.filters * 0.5 / 8) * 8)
    assert scale_channels(12, 0.25) == 8 and scale_channels(1024, 0.25) == 256
    assert with_width(base, 1.0) is base


def test_width_keeps_depthwise_convs_depthwise(write_cfg) -> None:
    from tests.conftest import TINY_CFG

    text = TINY_CFG.replace("filters=8\nsize=3\nstride=1", "filters=8\nsize=3\ngroups=8\nstride=1")
    model = create_model(write_cfg(text), num_classes=2, width=2.0)
    conv = model.blocks[1].conv
    assert conv.groups == conv.in_channels == conv.out_channels == 16


def test_custom_anchors() -> None:
    anchors = [(i + 1.0, i + 2.0) for i in range(9)]
    model = create_model("yolo-nano", num_classes=2, anchors=anchors, width=0.25)
    assert model.heads[0].anchors.tolist() == [[7, 8], [8, 9], [9, 10]]
    with pytest.raises(ValueError, match="expects 9 anchors but got 2"):
        create_model("yolo-nano", num_classes=2, anchors=[(1, 2), (3, 4)])


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"num_classes": "20"}, TypeError, "num_classes: expected int but got str"),
        ({"num_classes": 0}, ValueError, "num_classes must be >= 1, got 0"),
        ({"num_classes": 2, "width": "x"}, TypeError, "width: expected float but got str"),
        ({"num_classes": 2, "width": -1.0}, ValueError, "width must be a finite number > 0"),
        ({"num_classes": 2, "width": float("inf")}, ValueError, "width must be a finite number"),
        ({"num_classes": 10**6}, ValueError, "num_classes must be <= 10,000, got 1,000,000"),
    ],
)
def test_create_model_argument_errors(kwargs, error, pattern) -> None:
    with pytest.raises(error, match=pattern):
        create_model("yolov3-tiny", **kwargs)


def test_unknown_model_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown model 'yolov9'; valid models: yolov3, "):
        create_model("yolov9", num_classes=2)
    with pytest.raises(TypeError, match="expected a model name or cfg path"):
        create_model(3, num_classes=2)


def test_tiny_maxpool_keeps_size_and_pads_with_minus_infinity() -> None:
    model = create_model("yolov3-tiny", num_classes=2, width=0.25)
    pool = model.blocks[11]
    x = -torch.ones(1, 1, 3, 3)
    y = pool(x)
    assert y.shape == x.shape and torch.all(y == -1)  # zero padding would give 0 at the edge


@pytest.mark.parametrize(("size", "stride"), [(2, 2), (2, 1), (3, 2), (3, 1), (5, 1)])
@pytest.mark.parametrize("n", [7, 12, 13, 26])
def test_maxpool_skips_only_padding_that_adds_no_window(size, stride, n) -> None:
    """The darknet max-pool pads right/bottom by size - 1 (edge values); where that adds no
    output window (size 2, stride 2 on an even map) the copy is skipped: same output."""
    import torch.nn.functional as F

    from yolo.layers import DarknetMaxPool

    pool = DarknetMaxPool(size, stride)
    x = torch.randn(2, 3, n, n)
    left = (size - 1) // 2
    padded = F.pad(x, (left, size - 1 - left, left, size - 1 - left), mode="replicate")
    assert torch.equal(pool(x), pool.pool(padded))
    assert pool._padding_unused(x) == ((size, stride) == (2, 2) and n % 2 == 0)
