"""The darknet dialect beyond the zoo (tests/yolo/cfgs/dialect.cfg): YOLOv4-Tiny's
``[route] groups/group_id``, ``[scale_channels]``, ``[sam]``, ``[dropout]``,
``[avgpool]``, ``[local_avgpool]``, square ``stride_x/stride_y``, the seed thesis' ``[softconv]``,
and darknet's own ``[net]`` keys kept verbatim."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from yolo.config import format_cfg, load_cfg, parse_cfg
from yolo.errors import CfgError
from yolo.io import read_darknet_weights, write_darknet_weights
from yolo.metrics.profile import count_macs
from yolo.model import Darknet
from yolo.resources import estimate

DIALECT = Path(__file__).parent / "cfgs" / "dialect.cfg"


def test_the_dialect_cfg_builds_with_hand_counted_shapes_and_params() -> None:
    model = Darknet(load_cfg(DIALECT))
    shapes = [(s.out_channels, s.stride) for s in model.shapes]
    assert shapes == [(16, 2), (8, 2), (8, 2), (8, 2), (8, 2), (8, 2), (8, 2), (24, 2), (24, 2),
                      (24, 2), (24, 4), (24, 4), (24, 4)]  # fmt: skip
    # conv 0: 16·3·3·3 + BN 2·16; softconv 2: 8·8·3·3 + 2·8; conv 4: 8·8 + bias 8;
    # conv 11: 24·24 + 24
    assert sum(p.numel() for p in model.parameters()) == 464 + 592 + 72 + 600
    assert estimate(model.cfg, 64).params == 1728


def _local_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """darknet's local_avgpool by hand, stride 1: each window's mean over the cells inside."""
    left = (size - 1) // 2
    out = torch.empty_like(x)
    h, w = x.shape[-2:]
    for i in range(h):
        for j in range(w):
            rows = slice(max(i - left, 0), min(i - left + size, h))
            cols = slice(max(j - left, 0), min(j - left + size, w))
            out[..., i, j] = x[..., rows, cols].mean(dim=(-2, -1))
    return out


def test_each_dialect_block_computes_what_darknet_defines() -> None:
    model = Darknet(load_cfg(DIALECT)).eval()
    x = torch.rand(2, 3, 64, 64)
    _, taps = model(x, taps=list(range(10)), decode=False)
    b0, b1, b2, b3, b4, b5, b6, b7, b8, b9 = taps
    assert torch.equal(b1, b0[:, 8:16])  # groups=2, group_id=1: the second half
    assert b3.shape == (2, 8, 1, 1) and torch.allclose(b3, b2.mean(dim=(2, 3), keepdim=True))
    assert torch.equal(b5, b2 * b4)  # scale_channels from=-3: block 2, each channel gated
    assert torch.equal(b6, b2 * b5)  # sam from=-4: block 2 times the previous map
    assert torch.equal(b7, torch.cat([b6, b0], 1))
    assert torch.equal(b8, b7)  # dropout is the identity in evaluation
    assert torch.allclose(b9, _local_mean(b8, 3), atol=1e-6)
    model.train()
    torch.manual_seed(0)
    _, (dropped,) = model(x, taps=[8], decode=False)
    assert (dropped == 0).float().mean() > 0.05  # and drops while training


def test_the_dialect_round_trips_keeps_darknet_keys_and_reads_its_weights(tmp_path) -> None:
    cfg = load_cfg(DIALECT)
    text = format_cfg(cfg)
    assert "groups=2\ngroup_id=1" in text and "stride_x=2\nstride_y=2" in text
    assert "burn_in=1000" in text and "scale_x_y=1.05" in text  # kept, unused
    assert "[softconv]\nfilters=8" in text
    assert format_cfg(parse_cfg(text)) == text
    assert "group_id" not in format_cfg(parse_cfg(text.replace("groups=2\ngroup_id=1\n", "")))
    model = Darknet(cfg)
    write_darknet_weights(model, tmp_path / "d.weights")
    again = Darknet(parse_cfg(text))
    read_darknet_weights(again, tmp_path / "d.weights")
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), model.parameters()))
    assert count_macs(model, 64).dense > 0


@pytest.mark.parametrize(("old", "new", "message"), [
    ("groups=2\ngroup_id=1", "groups=3\ngroup_id=0",
     r"block 1 \[route\]: groups=3 must divide the 16 routed channels"),
    ("groups=2\ngroup_id=1", "groups=2\ngroup_id=2",
     r"block 1 \[route\]: group_id=2 out of range; allowed: 0..1"),
    ("stride_x=2\nstride_y=2\npad=1", "stride=3\nstride_x=2\nstride_y=1\npad=1",
     r"block 0 \[convolutional\]: stride=3 disagrees with stride_x=2, stride_y=1"),
    ("[scale_channels]\nfrom=-3", "[scale_channels]\nfrom=-5",
     r"block 5 \[scale_channels\]: block 0 has 16 channels but the previous block 8"),
    ("[sam]\nfrom=-4", "[sam]\nfrom=-9", r"block 6 \[sam\]: from=-9 points to block -3"),
    ("probability=0.1", "probability=1.5",
     r"block 8 \[dropout\]: probability must be in \[0, 1\), got 1.5"),
])  # fmt: skip
def test_dialect_mistakes_name_block_and_rule(old, new, message) -> None:
    text = DIALECT.read_text()
    assert old in text
    with pytest.raises(CfgError, match=message):
        Darknet(parse_cfg(text.replace(old, new), source="dialect.cfg"))
