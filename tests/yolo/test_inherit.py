"""Weight inheritance copies exactly the documented slices (checked tensor by tensor on
small blocks), preserves a parent's function in a candidate at least as large, and refuses
a parent of another family in one line."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from yolo.architecture import architecture_from_flat, find_stages, generate
from yolo.blocks import BLOCK_TYPES, Block
from yolo.inherit import InheritError, inherit_weights, match_blocks
from yolo.layers import PEP, MobileBottleneck
from yolo.model import Darknet
from yolo.zoo import resolve_cfg, with_classes

from .test_architecture import TINY_MOBILE


def _distinct(module: torch.nn.Module) -> None:
    """Every value distinct and non-zero, BatchNorm γ a known order of importance."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p))
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)


def _trained_like(model: torch.nn.Module) -> None:
    """A whole model's default init with BatchNorm as training leaves it (γ, β, statistics
    not at their defaults), so that importance orders and copied statistics are tested."""
    torch.manual_seed(2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)


def _mobile(expansion: float, kernel: int, se: bool) -> MobileBottleneck:
    return MobileBottleneck(16, 16, kernel_size=kernel, expansion_ratio=expansion, stride=1,
                            squeeze_excite=se, activation="relu")  # fmt: skip


def _inherit_block(child_block: Block, parent_block: Block, child, parent) -> None:
    """Run the mobile rule on two bare modules through a one-block model pair."""
    from yolo.inherit import _RULES

    _RULES[type(child_block)](child, parent, "test")


def test_mobile_hidden_channels_follow_importance_and_kernels_crop() -> None:
    from yolo.blocks import MobileBlock

    parent = _mobile(2.0, 5, True)  # hidden 32, kernel 5
    child = _mobile(1.5, 3, True)  # hidden 24, kernel 3
    _distinct(parent)
    _distinct(child)
    with torch.no_grad():  # importance: γ of the expansion's BN = 0..31, so 31 comes first
        parent.expand.bn.weight.copy_(torch.arange(32, dtype=torch.float32) + 1)
    order = torch.arange(31, 7, -1)  # the 24 most important, most important first
    block = MobileBlock(index=0, filters=16, size=3, expansion_ratio=1.5, activation="relu")
    with torch.no_grad():
        _inherit_block(block, block, child, parent)
    assert torch.equal(child.expand.conv.weight, parent.expand.conv.weight[order])
    assert torch.equal(child.expand.bn.weight, parent.expand.bn.weight[order])
    assert torch.equal(child.expand.bn.running_var, parent.expand.bn.running_var[order])
    assert torch.equal(
        child.depthwise.conv.weight, parent.depthwise.conv.weight[order, :, 1:4, 1:4]
    )
    assert torch.equal(child.depthwise.bn.bias, parent.depthwise.bn.bias[order])
    hidden = child.se.fc1.out_features  # make_divisible(24 // 4) = 8, the parent's too
    assert hidden == parent.se.fc1.out_features == 8
    assert torch.equal(child.se.fc1.weight, parent.se.fc1.weight[:, order])
    assert torch.equal(child.se.fc2.weight, parent.se.fc2.weight[order])
    assert torch.equal(child.se.fc2.bias, parent.se.fc2.bias[order])
    assert torch.equal(child.project.conv.weight, parent.project.conv.weight[:, order])
    assert torch.equal(child.project.bn.weight, parent.project.bn.weight)  # output: whole


def test_mobile_larger_candidate_embeds_the_parent_and_adds_nothing() -> None:
    from yolo.blocks import MobileBlock

    parent = _mobile(2.0, 3, False)  # hidden 32
    child = _mobile(3.0, 5, False)  # hidden 48, kernel 5
    _distinct(parent)
    _distinct(child)
    fresh = child.expand.conv.weight[32:].clone()
    block = MobileBlock(index=0, filters=16, size=5, expansion_ratio=3, activation="relu")
    with torch.no_grad():
        _inherit_block(block, block, child, parent)
    order = torch.argsort(parent.expand.bn.weight.detach().abs(), descending=True, stable=True)
    kernel = child.depthwise.conv.weight
    assert torch.equal(kernel[:32, :, 1:4, 1:4], parent.depthwise.conv.weight[order])
    ring = kernel[:32].clone()
    ring[:, :, 1:4, 1:4] = 0
    assert not ring.any()  # zeros around the parent's 3x3
    assert torch.equal(child.expand.conv.weight[32:], fresh)  # extra channels: their init
    assert not child.project.conv.weight[:, 32:].any()  # … and project nothing
    parent.eval()
    child.eval()
    x = torch.randn(2, 16, 9, 9)
    assert torch.allclose(child(x), parent(x), atol=1e-5)


def test_pep_projection_channels_follow_importance() -> None:
    from yolo.blocks import PEPBlock

    parent = PEP(16, 16, 12, 1, "relu6")
    child = PEP(16, 16, 8, 1, "relu6")
    _distinct(parent)
    _distinct(child)
    with torch.no_grad():
        parent.project_in.bn.weight.copy_(
            torch.tensor([5.0, -9, 1, 7, 3, 11, -2, 4, 8, 0.5, 6, 10])
        )
    order = torch.tensor([5, 11, 1, 8, 3, 10, 0, 7])  # |γ|: 11, 10, 9, 8, 7, 6, 5, 4
    block = PEPBlock(index=0, filters=16, x=8, activation="relu6")
    with torch.no_grad():
        _inherit_block(block, block, child, parent)
    assert torch.equal(child.project_in.conv.weight, parent.project_in.conv.weight[order])
    assert torch.equal(child.block.expand.conv.weight,
                       parent.block.expand.conv.weight[order][:, order])  # fmt: skip
    assert torch.equal(child.block.depthwise.conv.weight, parent.block.depthwise.conv.weight[order])
    assert torch.equal(child.block.project.conv.weight, parent.block.project.conv.weight[:, order])
    assert torch.equal(child.block.project.bn.weight, parent.block.project.bn.weight)


@pytest.mark.parametrize(
    ("family", "larger"),
    [("yolov3-mobile", {"expansion": 6.0, "kernel": 7, "s3.se": 1}),
     ("yolo-nano", {"x_ratio": 1.5})],
)  # fmt: skip
def test_a_candidate_as_large_as_its_parent_computes_the_parents_function(
    family: str, larger: dict
) -> None:
    cfg = with_classes(resolve_cfg(family), 3)
    parent = Darknet(cfg)
    _trained_like(parent)
    child = Darknet(generate(cfg, architecture_from_flat(larger, find_stages(cfg))).cfg)
    inherited = inherit_weights(child, parent)
    assert 0.3 < inherited.fraction < 1.0
    parent.eval()
    child.eval()
    x = torch.randn(1, 3, 64, 64)
    expected, got = parent(x), child(x)
    assert torch.isfinite(expected).all() and expected.abs().max() > 1
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_depth_takes_the_first_units() -> None:
    cfg = resolve_cfg("yolov3-mobile")
    child = generate(cfg, architecture_from_flat({"s3.depth": 2}, find_stages(cfg))).cfg
    pairs = match_blocks(child, cfg)
    assert pairs[:19] == tuple(range(19))  # up to stage 3's second unit: the same blocks
    assert pairs[19] == 37  # the next block is stage 4's downsampling [mobile]
    assert len(pairs) == len(child.blocks) == 107 - 18


def test_a_smaller_candidate_takes_its_tensors_from_the_parent() -> None:
    cfg = with_classes(resolve_cfg("yolov3-mobile"), 3)
    parent = Darknet(cfg)
    _distinct(parent)
    arch = architecture_from_flat({"s3.depth": 3, "kernel": 3, "expansion": 3}, find_stages(cfg))
    child = Darknet(generate(cfg, arch).cfg)
    inherited = inherit_weights(child, parent)
    assert inherited.fraction > 0.999  # every value of a smaller candidate has a source
    # a block outside the stages: equal tensors
    assert torch.equal(child.blocks[0].conv.weight, parent.blocks[0].conv.weight)


def test_other_family_and_other_classes_are_refused() -> None:
    mobile = Darknet(with_classes(resolve_cfg("yolov3-mobile"), 3))
    nano = Darknet(with_classes(resolve_cfg("yolo-nano"), 3))
    with pytest.raises(InheritError, match=r"7 residual stages, the parent yolov3-mobile\.cfg 6"):
        inherit_weights(nano, mobile)
    tiny = Darknet(with_classes(resolve_cfg("yolov3-tiny"), 3))
    with pytest.raises(InheritError, match="residual stages"):
        inherit_weights(tiny, mobile)
    with pytest.raises(InheritError, match="predicts 4 classes, the parent 3"):
        inherit_weights(Darknet(with_classes(resolve_cfg("yolov3-mobile"), 4)), mobile)


def test_a_different_width_is_refused_naming_the_block() -> None:
    from yolo.zoo import with_width

    parent = Darknet(with_classes(resolve_cfg("yolov3-mobile"), 3))
    child = Darknet(with_width(with_classes(resolve_cfg("yolov3-mobile"), 3), 0.5))
    with pytest.raises(
        InheritError,
        match=r"block 2 \[mobile\] \(parent block 2\): 8 -> 8 "
        r"channels in the candidate and 8 -> 4 in the parent",
    ):
        inherit_weights(child, parent)


def test_every_block_type_states_its_rule() -> None:
    from yolo.inherit import _RULES

    for cls in BLOCK_TYPES:
        assert isinstance(cls.inherit_rule, str) and cls.inherit_rule
    assert set(_RULES) <= set(BLOCK_TYPES)
    for cls in _RULES:  # a type with its own rule says so in its own words
        assert cls.inherit_rule != Block.inherit_rule


def test_tiny_cfg_pairs_are_the_kept_blocks() -> None:
    from yolo.config import parse_cfg

    cfg = parse_cfg(TINY_MOBILE, source="tiny.cfg")
    generated = generate(cfg, architecture_from_flat({"s1.depth": 1}, find_stages(cfg)))
    assert match_blocks(generated.cfg, cfg) == generated.parent_block
    assert dataclasses.is_dataclass(generated)
