"""The seed thesis' PVANet blocks, ``[halfconv]`` (C.ReLU) and ``[inception]``: what they
compute, their parameters, the weights-file round trip, and their mistakes in one line."""

from __future__ import annotations

import pytest
import torch

from yolo.config import format_cfg, parse_cfg
from yolo.errors import CfgError
from yolo.io import darknet_values, read_darknet_weights, write_darknet_weights
from yolo.metrics.profile import count_macs
from yolo.model import Darknet

CFG = """[net]
width=64
height=64
channels=3

[halfconv]
batch_normalize={bn}
filters=16
size=3
stride=2
pad=1
activation={act}

[inception]
batch_normalize=1
filters=32
size=3
stride=1
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=21
activation=linear

[yolo]
mask=0,1,2
anchors=10,13, 16,30, 33,23
classes=2
num=3
"""


def _model(bn: int = 1, act: str = "leaky") -> Darknet:
    return Darknet(parse_cfg(CFG.format(bn=bn, act=act), "pvanet.cfg"))


def test_halfconv_is_a_half_conv_and_its_negation() -> None:
    model = _model(bn=0, act="linear").eval()
    x = torch.randn(2, 3, 64, 64)
    out = model.blocks[0](x)
    assert out.shape == (2, 16, 32, 32)
    conv = model.blocks[0].conv
    assert conv.out_channels == 8  # half the filters
    half = conv(x)
    assert torch.equal(out[:, :8], half) and torch.equal(out[:, 8:], -half)


def test_inception_concatenates_a_half_and_two_quarters_then_normalises() -> None:
    model = _model().eval()
    block = model.blocks[1]
    x = torch.randn(1, 16, 32, 32)
    branches = torch.cat((block.conv1x1(x), block.conv1x1_3x3(x), block.conv1x1_3x3_3x3(x)), 1)
    assert branches.shape[1] == 32
    expected = torch.nn.functional.leaky_relu(block.bn(branches), 0.1)
    assert torch.allclose(block(x), expected)
    # the thesis' parameter count: halfconv 8·3·3·3 + BN 2·16; inception convs with biases
    # 16·16+16, 16·8+8, 8·8·9+8, 16·8+8, 8·8·9+8, 8·8·9+8 and BN 2·32; the 1x1 head 32·21+21
    counted = (216 + 32) + (272 + 136 + 584 + 136 + 584 + 584 + 64) + (672 + 21)
    assert sum(p.numel() for p in model.parameters()) == counted
    # per 32x32 output position: the half conv's 8 filters (not 16), the six inception convs,
    # the head; BN's 4 operations per value (the project's rule) on 16 and 32 channels
    per_position = 216 + (256 + 128 + 576 + 128 + 576 + 576) + 672 + 4 * (16 + 32)
    assert count_macs(model, 64).dense == per_position * 32 * 32


def test_weights_round_trip_and_the_thesis_layout_leaves_them_out(tmp_path) -> None:
    model = _model().eval()
    for bn in (model.blocks[0].bn, model.blocks[1].bn):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    path = tmp_path / "pvanet.weights"
    write_darknet_weights(model, path)
    fresh = _model().eval()
    read_darknet_weights(fresh, path)
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(fresh(x), model(x))
    # the thesis writes [convolutional] blocks only: here the 1x1 head, 21 biases + weights
    assert darknet_values(model, "thesis") == 672 + 21
    assert format_cfg(model.cfg).count("[halfconv]") == 1  # the section names round-trip
    assert "[inception]" in format_cfg(model.cfg)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("[halfconv]\nbatch_normalize={bn}\nfilters=16", "[halfconv]\nbatch_normalize={bn}\nfilters=15",
     "pvanet.cfg:6: block 0 [halfconv]: filters must be even and groups 1"),
    ("[inception]\nbatch_normalize=1\nfilters=32", "[inception]\nbatch_normalize=1\nfilters=30",
     "pvanet.cfg:14: block 1 [inception]: filters must be a multiple of 4"),
])  # fmt: skip
def test_pvanet_mistakes_name_block_and_rule(old: str, new: str, message: str) -> None:
    with pytest.raises(CfgError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Darknet(parse_cfg(CFG.replace(old, new).format(bn=1, act="leaky"), "pvanet.cfg"))


def test_channel_pruning_and_compaction_leave_the_pvanet_blocks_whole() -> None:
    """Their channels are not plain conv filters (pairs c, -c; concatenated branches): the
    structured pruner finds no group in them and the compactor changes nothing."""
    from yolo.compress.channel_groups import layer_groups
    from yolo.compress.compact import compact

    model = _model().eval()
    groups, _ = layer_groups(model)
    assert all(not {0, 1} & set(group.blocks) for group in groups)
    with torch.no_grad():
        model.blocks[0].conv.weight[0].zero_()  # a dead half filter: still not removable
    smaller = compact(model)
    assert sum(p.numel() for p in smaller.parameters()) == sum(
        p.numel() for p in model.parameters()
    )


def test_a_narrower_pvanet_keeps_its_blocks_buildable() -> None:
    from yolo.zoo import with_width

    for width in (0.3, 0.5, 1.7):
        narrow = with_width(_model().cfg, width)
        half, inception = narrow.blocks[0], narrow.blocks[1]
        assert half.filters % 2 == 0 and inception.filters % 4 == 0
        assert Darknet(narrow)(torch.randn(1, 3, 64, 64)) is not None
