"""Structured pruning: tied channel groups, a MACs target met for real, rounded widths,
the masked-model identity, refusals that name the rule, and the method end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from yct.cli import main
from yolo.compress.channel_groups import layer_groups
from yolo.compress.export import export_model
from yolo.compress.filter_pruning import kept_width, plan_pruning, prune_filters
from yolo.compress.inner_groups import inner_groups, inner_scores, remove_inner
from yolo.compress.registry import get_method
from yolo.compress.structured import SlimmingPenalty
from yolo.compress.trial import build_trial
from yolo.config import ConvBlock, parse_cfg
from yolo.io import load_checkpoint, save_checkpoint
from yolo.metrics.profile import count_macs
from yolo.model import Darknet
from yolo.onnx_runtime import OnnxDetector
from yolo.zoo import create_model


def _trained_looking(model: Darknet) -> Darknet:
    """Non-trivial BN statistics and affine terms, so that a wrongly removed channel shows."""
    torch.manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.2, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


ZOO_WIDTHS = [("yolov3-tiny", 1.0), ("yolov3", 0.5), ("yolo-nano", 1.0), ("yolo-nano-leaky", 1.0),
              ("yolov3-mobile", 1.0), ("yolov3-mobile-leaky", 1.0)]  # fmt: skip


@pytest.mark.parametrize(("name", "width"), ZOO_WIDTHS)
def test_half_the_macs_for_real_and_the_same_outputs_as_the_masked_model(name, width,
                                                                        tmp_path) -> None:  # fmt: skip
    """Every zoo model, Nano's PEP and Mobile's inverted bottlenecks included, to half its
    MACs; the smaller model computes what the masked one does, exports and loads back."""
    model = _trained_looking(create_model(name, num_classes=3, width=width))
    result = prune_filters(model, target=0.5, criterion="l1", img_size=96)
    dense, pruned = count_macs(model, 96).dense, count_macs(result.model, 96).dense
    assert pruned <= 0.5 * dense and pruned > 0.4 * dense
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        assert (result.masked(x) - result.model(x)).abs().max().item() < 1e-4
        assert (model(x) - result.model(x)).abs().max().item() > 1e-3  # it did prune
    for index, block in enumerate(result.model.cfg.blocks):  # multiples of 8, or untouched
        before = model.cfg.blocks[index]
        if isinstance(block, ConvBlock):
            assert isinstance(before, ConvBlock)
            assert block.filters == before.filters or block.filters % 8 == 0
    # a genuinely smaller model: its own cfg text, read back, and an ONNX graph that runs
    again = Darknet(parse_cfg(result.model.cfg_text))
    again.load_state_dict(result.model.state_dict())
    export_model(result.model, tmp_path / "pruned.onnx", "onnx", img_size=96)
    with torch.no_grad():
        expected = result.model.eval()(x)
        assert (again.eval()(x) - expected).abs().max().item() == 0
    assert (OnnxDetector(tmp_path / "pruned.onnx")(x) - expected).abs().max().item() < 1e-3


def test_inner_channels_of_mobile_and_pep_blocks_are_groups_of_their_own() -> None:
    mobile = create_model("yolov3-mobile", num_classes=3)
    groups, refused = inner_groups(mobile)
    first = groups[0]  # block 2: 8 in, expansion 4 -> 32 hidden channels
    assert (first.block, first.kind, first.width, first.forbidden) == (2, "mobile", 32, 8)
    # widths the cfg can write: multiples of 8, never the input's (no expansion then)
    assert [w for w in range(1, 33) if first.allowed(w)] == [16, 24, 32]
    assert [(r.blocks, r.reason) for r in refused] == [
        ((1,), "no expansion: its hidden channels are its input's")
    ]
    nano = create_model("yolo-nano", num_classes=3)
    groups, refused = inner_groups(nano)
    assert not refused and {g.kind for g in groups} == {"pep"}
    pep = groups[0]
    block = nano.cfg.blocks[pep.block]
    assert pep.width == block.x and len(pep.pairs) == block.x
    assert sorted(a for a, _ in pep.pairs) == list(range(block.x))  # each channel once
    assert sorted(b for _, b in pep.pairs) == list(range(block.x))


def test_a_pruned_mobile_block_keeps_its_strongest_hidden_and_squeeze_excite_units() -> None:
    model = _trained_looking(create_model("yolov3-mobile", num_classes=3))
    block = next(i for i, m in enumerate(model.blocks)  # one with expansion and SE
                 if getattr(m, "se", None) is not None and m.expand is not None)  # fmt: skip
    (group,) = [g for g in inner_groups(model)[0] if g.block == block]
    scores = inner_scores(model, group, "l1")
    kept = tuple(sorted(torch.argsort(scores, descending=True)[: group.width // 2].tolist()))
    smaller = remove_inner(model, [group], [kept])
    narrowed = smaller.cfg.blocks[block]
    before = model.blocks[block]
    after = smaller.blocks[block]
    assert after.depthwise.conv.out_channels == group.width // 2
    assert narrowed.expansion_ratio * smaller.shapes[block].in_channels == group.width // 2
    assert torch.equal(after.expand.conv.weight, before.expand.conv.weight[list(kept)])
    assert after.se.fc1.out_features == max(8, round(group.width // 2 // 4 / 8) * 8)


def test_a_residual_stream_is_one_group_and_a_routed_conv_its_own(tmp_path) -> None:
    yolov3 = create_model("yolov3", num_classes=3, width=0.25)
    groups, unprunable = layer_groups(yolov3)
    assert not unprunable  # every conv of yolov3 but the prediction convs can shrink
    stream = next(g for g in groups if 1 in g.blocks)  # block 1 opens the first residual stage
    assert stream.blocks == (1, 3)  # block 4 is shortcut(-3): block 3's output joins block 1's
    assert all(len(unit) == 2 and unit[0][1] == unit[1][1] for unit in stream.units)
    tiny = create_model("yolov3-tiny", num_classes=3, width=0.25)
    groups, _ = layer_groups(tiny)
    # block 8 is read by the route of block 20 as well as by block 9: still one plain group
    assert [g.blocks for g in groups if 8 in g.blocks] == [(8,)]


def test_widths_are_rounded_and_never_emptied() -> None:
    assert kept_width(64, 0.5, 8) == 32
    assert kept_width(64, 0.3, 8) == 16  # 19.2 -> nearest multiple of 8
    assert kept_width(64, 0.0, 8) == 8  # a layer never goes
    assert kept_width(6, 0.1, 8) == 6  # narrower than round_to: kept whole
    model = create_model("yolov3-tiny", num_classes=3, width=0.5)
    result = prune_filters(model, target=0.4, criterion="l2", round_to=16, img_size=64)
    for group, kept in zip(result.groups, result.plan.kept):
        assert len(kept) == group.width or len(kept) % 16 == 0


def test_local_scope_keeps_about_the_same_share_of_every_layer() -> None:
    model = _trained_looking(create_model("yolov3-tiny", num_classes=3))
    groups, _ = layer_groups(model)
    plan = plan_pruning(model, groups, target=0.5, criterion="l1", scope="local", round_to=8,
                        img_size=64)  # fmt: skip
    shares = [len(k) / g.width for g, k in zip(groups, plan.kept) if g.width >= 64]
    assert max(shares) - min(shares) <= 0.15
    assert plan.macs <= 0.5 * plan.dense_macs


def test_bn_gamma_removes_the_channels_slimming_silenced_first() -> None:
    model = _trained_looking(create_model("yolov3-tiny", num_classes=3))
    silenced = list(range(0, 64, 2))  # block 10 has 512 filters; 32 of them near zero
    with torch.no_grad():
        model.blocks[10].bn.weight[silenced] = 1e-4
    groups, _ = layer_groups(model, need_batch_norm=True)
    plan = plan_pruning(model, groups, target=0.97, criterion="bn_gamma", scope="global",
                        round_to=8, img_size=64)  # fmt: skip
    (index,) = [k for k, g in enumerate(groups) if g.blocks == (10,)]
    removed = set(range(groups[index].width)) - set(plan.kept[index])
    assert set(silenced) <= removed  # the silenced ones went before any live channel
    live_removed = sum(len(set(range(g.width)) - set(k)) for g, k in zip(groups, plan.kept))
    assert live_removed - len(silenced) < sum(g.width for g in groups) // 2


def test_a_target_that_would_empty_layers_is_refused_with_the_smallest_that_works() -> None:
    model = create_model("yolov3-tiny", num_classes=3, width=0.5)
    with pytest.raises(ValueError, match=r"target_macs=0.01 cannot be reached.*smallest "
                       r"target that works is 0\.\d{3}") as error:  # fmt: skip
        prune_filters(model, target=0.01, criterion="l1", img_size=64)
    smallest = float(str(error.value).rsplit(" ", 1)[-1])
    prune_filters(model, target=smallest, criterion="l1", img_size=64)  # that one works


CFG = """
[net]
width=64
height=64
channels=3

[convolutional]
filters=32
size=3
stride=2
pad=1
batch_normalize=1
activation=leaky

[convolutional]
filters=32
size=3
stride=1
pad=1
groups=32
batch_normalize=1
activation=leaky

[convolutional]
filters=32
size=1
stride=1
batch_normalize=1
activation=logistic

[convolutional]
filters=24
size=1
stride=1
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=3
num=3
"""


def test_what_cannot_be_pruned_is_named_with_its_line_and_rule() -> None:
    model = Darknet(parse_cfg(CFG, source="user.cfg"))
    groups, unprunable = layer_groups(model)
    assert not groups
    lines = [u.describe("user.cfg") for u in unprunable]
    assert lines == [
        "user.cfg:7: block 0: not pruned: read as a whole by block 1 ([convolutional], line 15)",
        "user.cfg:15: block 1: not pruned: groups=32 (a grouped conv ties its channels)",
        "user.cfg:24: block 2: not pruned: activation=sigmoid is not 0 at 0, so a removed "
        "channel would leave a constant",
    ]


def test_the_slimming_term_is_the_penalised_sum_of_gammas() -> None:
    class Holder:
        model = create_model("yolov3-tiny", num_classes=3, width=0.25)

    total = sum(m.weight.abs().sum() for m in Holder.model.modules()
                if isinstance(m, torch.nn.BatchNorm2d))  # fmt: skip
    term = SlimmingPenalty(1e-3).loss_terms(Holder, None)["slim"]  # type: ignore[arg-type]
    assert term.detach().item() == pytest.approx(1e-3 * float(total))
    assert term.requires_grad


def test_the_loader_refuses_an_unreachable_target_before_training(demo_spec, tmp_path) -> None:
    method = get_method("structured")
    values = {"model": "yolov3-tiny", "data": str(demo_spec), "width": 0.25, "img_size": 64,
              "target_macs": 0.02, "round_to": 8}  # fmt: skip
    with pytest.raises(ValueError, match=r"trial: yolov3-tiny: target_macs=0.02 cannot be "
                       r"reached.*smallest target that works is"):  # fmt: skip
        build_trial(method, values, out=str(tmp_path), where="trial")


def test_yct_prune_structured_delivers_a_smaller_model_every_command_loads(
    demo_spec, tmp_path, capsys
) -> None:
    out = tmp_path / "run"
    code = main(["prune", "structured", "yolov3-tiny", "--data", str(demo_spec), "--width",
                 "0.25", "--img-size", "64", "--epochs", "1", "--batch", "8", "--steps", "2",
                 "--target-macs", "0.6", "--round-to", "2", "--out", str(out),
                 "--quiet"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "step 2/2" in printed and f"ticket: {out / 'ticket.pt'}" in printed
    ticket = load_checkpoint(out / "ticket.pt")
    dense = create_model("yolov3-tiny", num_classes=ticket.model.heads[0].num_classes,
                         width=0.25)  # fmt: skip
    assert count_macs(ticket.model, 64).dense <= 0.6 * count_macs(dense, 64).dense
    assert main(["info", str(out / "ticket.pt")]) == 0
    assert main(["evaluate", str(out / "ticket.pt"), "--data", str(demo_spec),
                 "--img-size", "64"]) == 0  # fmt: skip
    onnx = tmp_path / "pruned.onnx"
    assert main(["export", str(out / "ticket.pt"), str(onnx), "--format", "onnx",
                 "--img-size", "64"]) == 0  # fmt: skip
    assert onnx.stat().st_size > 0
    again = tmp_path / "again.pt"  # the cfg travels with the weights
    save_checkpoint(again, ticket.model, metadata=ticket.metadata)
    assert load_checkpoint(again).model.cfg_text == ticket.model.cfg_text
    assert Path(out / "step_01" / "pruned.pt").is_file()
