"""The rest of the darknet dialect (tests/yolo/cfgs/dialect_fused.cfg): ``[reorg3d]``,
non-square ``stride_x/stride_y``, ``share_index`` and ASFF heads (``[yolo] from=…``), each
checked against darknet's (or the ultralytics port's) definition written out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from yolo.compress import sparse_format
from yolo.compress.channel_groups import layer_groups
from yolo.compress.export import export_model, load_exported
from yolo.compress.masks import prunable_parameters
from yolo.config import format_cfg, load_cfg, parse_cfg
from yolo.ema import ModelEMA
from yolo.errors import CfgError
from yolo.io import darknet_values, read_darknet_weights, write_darknet_weights
from yolo.layers import SpaceToDepth
from yolo.loss import YoloLoss
from yolo.metrics.profile import count_macs, count_params
from yolo.model import Darknet
from yolo.onnx_runtime import OnnxDetector
from yolo.zoo import with_classes

FUSED = Path(__file__).parent / "cfgs" / "dialect_fused.cfg"


@pytest.fixture(scope="module")
def model() -> Darknet:
    torch.manual_seed(0)
    return Darknet(load_cfg(FUSED))


def test_shapes_and_params_are_the_hand_counted_ones(model) -> None:
    strides = [s.strides for s in model.shapes]
    assert strides == [(2, 2), (4, 4), (8, 4), (8, 8), (8, 8), (8, 8), (8, 8), (8, 8), (8, 16),
                       (8, 16), (8, 8), (8, 16)]  # fmt: skip
    assert [s.out_channels for s in model.shapes[:3]] == [8, 32, 16]  # reorg: 8 x 2 x 2
    # conv 0: 8·3·9 + BN 16; conv 2: 16·32·9 + 32; conv 4: 16·16·9 + 32, shared by conv 5
    # (nothing of its own); predictions 6 and 9: 23·16 + 23; conv 8: 16·16·9 + 32
    assert count_params(model) == 232 + 4640 + 2336 + 391 + 2336 + 391
    assert model.shared_blocks() == {5: 4}
    assert model.prediction_conv_indices() == (6, 9)
    assert count_macs(model, 64).dense > 0


def _darknet_reorg(x: torch.Tensor, s: int) -> torch.Tensor:
    """darknet's reorg_cpu(forward=0) loop over the output, as its REORG layer calls it."""
    b, c, h, w = x.shape
    out_c, out_h, out_w = c * s * s, h // s, w // s
    out = torch.empty(b, out_c, out_h, out_w)
    for k in range(out_c):
        c2, offset = k % c, k // c
        for j in range(out_h):
            for i in range(out_w):
                out[:, k, j, i] = x[:, c2, j * s + offset // s, i * s + offset % s]
    return out


def test_reorg3d_is_darknets_space_to_depth() -> None:
    x = torch.randn(2, 3, 6, 4)
    assert torch.equal(SpaceToDepth(2)(x), _darknet_reorg(x, 2))
    assert not torch.equal(SpaceToDepth(2)(x), F.pixel_unshuffle(x, 2))  # another order


def _fused(maps: list[torch.Tensor], own: int) -> torch.Tensor:
    """The ultralytics port's ASFF sum, written out for two maps."""
    n = len(maps)
    w = torch.sigmoid(maps[own][:, -n:]) * (2 / n)
    size = maps[own].shape[-2:]
    total = maps[own][:, :-n] * w[:, own : own + 1]
    for j in range(n):
        if j != own:
            other = F.interpolate(maps[j][:, :-n], size=size, mode="bilinear", align_corners=False)
            total = total + w[:, j : j + 1] * other
    return total


@torch.no_grad()
def test_each_block_computes_what_its_definition_says(model) -> None:
    model.eval()
    x = torch.rand(2, 3, 64, 64)
    raw, taps = model(x, taps=[0, 1, 2, 3, 4, 5, 6, 9], decode=False)
    b0, b1, b2, b3, b4, b5, b6, b9 = taps
    assert torch.equal(b1, _darknet_reorg(b0, 2))
    assert b2.shape[-2:] == (8, 16) and b3.shape[-2:] == (8, 8)  # stride_y=2; then stride_x=2
    assert torch.equal(b5, model.blocks[4](b4))  # the same conv, BN and activation again
    assert model.blocks[5].conv.weight is model.blocks[4].conv.weight
    assert model.blocks[5].bn.running_mean is model.blocks[4].bn.running_mean
    heads = model.heads
    assert torch.allclose(raw[0], heads[0].raw(_fused([b6, b9], 0)), atol=1e-6)
    assert torch.allclose(raw[1], heads[1].raw(_fused([b6, b9], 1)), atol=1e-6)
    assert raw[1].shape[2:4] == (8, 4)  # the non-square head: 8 rows, 4 columns
    boxes = model(x)
    centres = boxes[:, 8 * 8 * 3 :, :2]  # head 1's cells: 8 px down, 16 px across
    assert 0 <= float(centres[..., 0].min()) and float(centres[..., 0].max()) <= 64
    assert 0 <= float(centres[..., 1].min()) and float(centres[..., 1].max()) <= 64
    expected_x = (torch.sigmoid(raw[1][0, 0, 0, 3, 0]) + 3) * 16
    assert torch.isclose(boxes[0, 8 * 8 * 3 + 3, 0], expected_x)


def test_a_training_step_reaches_the_shared_weights_once() -> None:
    torch.manual_seed(0)
    model = Darknet(load_cfg(FUSED)).train()
    loss_fn = YoloLoss(model)
    targets = torch.tensor([[0, 1, 0.5, 0.5, 0.3, 0.4], [1, 0, 0.2, 0.7, 0.2, 0.1]])
    loss, _ = loss_fn(model(torch.rand(2, 3, 64, 64)), targets, input_size=(64, 64))
    loss.backward()
    assert torch.isfinite(loss)
    assert model.blocks[4].conv.weight.grad is not None
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.startswith("blocks.5.") for n in names)  # one parameter, listed once
    ema = ModelEMA(model, decay=0.5, updates=10_000)
    before = ema.model.blocks[4].conv.weight.clone()
    with torch.no_grad():
        model.blocks[4].conv.weight.add_(1.0)
    ema.update(model)  # d ≈ 0.5, applied once to the shared tensor (twice would give 0.75)
    moved = (ema.model.blocks[4].conv.weight - before).mean().item()
    assert moved == pytest.approx(1 - ema.current_decay(), rel=1e-4)


def test_round_trip_weights_and_class_edit(model, tmp_path) -> None:
    text = format_cfg(model.cfg)
    assert format_cfg(parse_cfg(text)) == text
    assert "share_index=4" in text and "from=6,9" in text and "[reorg3d]\nstride=2" in text
    assert "stride_x=1\nstride_y=2" in text and "resize=1.5" in text  # kept, unused
    path = tmp_path / "f.weights"
    write_darknet_weights(model, path)
    # the shared conv 5 writes nothing: 20 header bytes, then every other block's values
    assert path.stat().st_size == 20 + 4 * darknet_values(model)
    assert darknet_values(model) == count_params(model) + 2 * (16 + 16 + 16 + 8)  # + BN stats
    again = Darknet(parse_cfg(text))
    read_darknet_weights(again, path)
    mine, theirs = model.state_dict(), again.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine if "num_batches" not in k)
    sparse = tmp_path / "f.yct"
    export_model(model, sparse, "sparse")
    assert not any(k.startswith("blocks.5.") for k in sparse_format.read(sparse)[1])
    back = load_exported(sparse)
    assert back.blocks[5].conv.weight is back.blocks[4].conv.weight
    assert torch.equal(back.blocks[5].conv.weight, model.blocks[4].conv.weight)
    five = Darknet(with_classes(model.cfg, 5))
    assert [five.shapes[i].out_channels for i in (6, 9)] == [3 * 10 + 2, 3 * 10 + 2]


def test_pruning_leaves_shared_weights_to_their_owner(model) -> None:
    assert not any(name.startswith("blocks.5.") for name in prunable_parameters(model))
    groups, unprunable = layer_groups(model)
    assert all(4 not in g.blocks and 5 not in g.blocks for g in groups)
    assert any("share_index" in u.reason for u in unprunable)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("share_index=4\n", "share_index=3\n",
     r"block 5 \[convolutional\]: share_index=3 points to block 3 \[maxpool\]; it must be a "
     r"\[convolutional\] block"),
    ("share_index=4\n", "share_index=2\n",
     r"block 5 \[convolutional\]: share_index=2: the shared weights must fit both blocks, but "
     r"block 2 has input channels 32 and this block 16"),
    ("share_index=4\n", "share_index=9\n", r"share_index=9 points to block 9, which does not "
     r"exist before it"),
    ("[reorg3d]\nstride=2", "[reorg3d]\nstride=2\nreverse=1",
     r"block 1 \[reorg3d\]: reverse=1 \(depth to space\) is not supported"),
    ("stride_x=1\nstride_y=2", "stride=3\nstride_x=1\nstride_y=2",
     r"block 2 \[convolutional\]: stride=3 disagrees with stride_x=1, stride_y=2"),
    ("from=6,9\nmask=0,1,2", "from=5,9\nmask=0,1,2",
     r"block 10 \[yolo\]: from: block 5 must be a prediction \[convolutional\] with 3 anchors x "
     r"\(2 classes \+ 5\) \+ 2 fusion weights = 23 filters, got \[convolutional\] with 16"),
    ("from=6,9\nmask=3,4,5", "from=6\nmask=3,4,5",
     r"block 11 \[yolo\]: this is \[yolo\] block 1 of the cfg, so it reads from\[1\], but from "
     r"lists 1 blocks"),
    ("resize=1.5", "new_coords=1", r"block 10 \[yolo\]: unknown key 'new_coords'"),
])  # fmt: skip
def test_dialect_mistakes_name_block_and_rule(old, new, message) -> None:
    text = FUSED.read_text()
    assert old in text
    with pytest.raises(CfgError, match=message):
        Darknet(parse_cfg(text.replace(old, new, 1), source="fused.cfg"))


def test_the_onnx_graph_computes_what_the_model_does(model, tmp_path) -> None:
    """Space to depth, non-square strides, tied weights and ASFF resampling all export."""
    out = tmp_path / "f.onnx"
    export_model(model, out, "onnx", img_size=64)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = model.eval()(x)
    assert (OnnxDetector(out)(x) - expected).abs().max().item() < 1e-3
