"""Compaction removes dead filters exactly: same outputs, fewer MACs."""

from __future__ import annotations

import pytest
import torch

from yct.cli import main
from yolo.compress.compact import compact, dead_channels, removable_channels
from yolo.io import load_checkpoint, save_checkpoint
from yolo.metrics.profile import count_macs, count_params
from yolo.zoo import create_model


@pytest.fixture
def tiny() -> torch.nn.Module:
    model = create_model("yolov3-tiny", num_classes=3, width=0.25).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # non-trivial BN, so constants are not 0
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model


def test_dead_filters_feeding_a_1x1_conv_are_folded_away(tiny) -> None:
    with torch.no_grad():
        tiny.blocks[12].conv.weight[:100] = 0  # block 12 feeds block 13, a 1x1 conv
    assert len(removable_channels(tiny)) == 100
    smaller = compact(tiny)
    assert smaller.cfg.blocks[12].filters == 256 - 100
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(tiny(x), smaller(x), atol=1e-5)
    assert count_macs(smaller, 128).dense < count_macs(tiny, 128).dense
    assert count_params(smaller) < count_params(tiny)


def test_padded_consumers_take_only_zero_constants(tiny) -> None:
    # block 13 (1x1, 64 filters) feeds block 14 (3x3, padded) and, via route 17, block 18
    with torch.no_grad():
        tiny.blocks[13].conv.weight[:20] = 0
        bn = tiny.blocks[13].bn
        bn.running_mean[:8] = 0
        bn.bias[:8] = 0  # leaky(BN(0)) = 0 for the first 8 dead channels only
    assert len(dead_channels(tiny)) == 20
    assert sorted(c for (_, c) in removable_channels(tiny)) == list(range(8))
    smaller = compact(tiny)
    assert smaller.cfg.blocks[13].filters == 64 - 8
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(tiny(x), smaller(x), atol=1e-5)


def test_shortcut_groups_go_together_or_not_at_all() -> None:
    # yolov3: shortcut 4 adds block 3 to block 1; block 2 (1x1) reads block 1, block 5
    # (3x3, padded) reads the sum. Channel c of the stream is (1, c) + (3, c).
    model = create_model("yolov3", num_classes=2, width=0.25).eval()
    with torch.no_grad():
        model.blocks[3].conv.weight[:4] = 0  # only one member of each group dead: keep
    assert (3, 0) in dead_channels(model) and not removable_channels(model)
    with torch.no_grad():
        model.blocks[1].conv.weight[:4] = 0
        for i in (1, 3):  # both members' constants 0, so the padded reader can take them
            model.blocks[i].bn.bias[:4] = 0
            model.blocks[i].bn.running_mean[:4] = 0
        model.blocks[1].bn.bias[4:6] = 1.0  # channels 4, 5: dead but constant 1 -> stay
        model.blocks[1].conv.weight[4:6] = 0
        model.blocks[3].conv.weight[4:6] = 0
    assert sorted(removable_channels(model)) == [(1, c) for c in range(4)] + [
        (3, c) for c in range(4)
    ]
    smaller = compact(model)
    assert smaller.cfg.blocks[1].filters == smaller.cfg.blocks[3].filters == 16 - 4
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), smaller(x), atol=1e-5)


def test_export_compact_command(tiny, tmp_path, capsys) -> None:
    with torch.no_grad():
        tiny.blocks[12].conv.weight[:64] = 0
    save_checkpoint(tmp_path / "t.pt", tiny, metadata={"img_size": 64})
    assert main(["export", str(tmp_path / "t.pt"), str(tmp_path / "c.pt"), "--format", "dense",
                 "--compact"]) == 0  # fmt: skip
    assert "compacted: dense MACs" in capsys.readouterr().out
    compacted = load_checkpoint(tmp_path / "c.pt").model
    assert compacted.cfg.blocks[12].filters == 192


def test_a_conv_whose_every_filter_is_dead_keeps_one(tiny) -> None:
    with torch.no_grad():
        tiny.blocks[12].conv.weight.zero_()  # a whole layer pruned away (CS can do this)
    width = tiny.blocks[12].conv.out_channels
    assert len(removable_channels(tiny)) == width - 1
    smaller = compact(tiny)  # runs, with the same outputs
    assert smaller.blocks[12].conv.out_channels == 1
