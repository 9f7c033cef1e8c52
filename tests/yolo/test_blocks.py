"""The block-type registry: every type owns its parse spec, shape rule, module, width rule
and channel flow, and the zoo exercises each of them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from yolo.blocks import BLOCK_TYPES, FLOWS, SECTIONS, Block
from yolo.config import format_cfg, load_cfg, parse_cfg
from yolo.zoo import ZOO, create_model, with_width


def test_each_block_type_declares_its_whole_definition() -> None:
    assert len(SECTIONS) == len(BLOCK_TYPES)  # one section name per type
    for cls in BLOCK_TYPES:
        assert issubclass(cls, Block) and cls.section != "block"
        fields = {f.name for f in dataclasses.fields(cls)}
        for key in cls.keys:  # every cfg key lands in a field, and required ones exist
            assert cls.rename.get(key, key) in fields, (cls.section, key)
        assert cls.required <= set(cls.keys)
        assert cls.module is not Block.module, cls.section  # builds its own module


def test_every_zoo_block_has_a_known_flow_and_round_trips() -> None:
    seen = set()
    for name in ZOO:
        model = create_model(name, num_classes=3, width=0.5)
        for block in model.cfg.blocks:
            assert block.flow() in FLOWS
            seen.add(type(block))
        again = parse_cfg(format_cfg(model.cfg), source="again")
        assert [dataclasses.replace(b, line=0) for b in again.blocks] == [
            dataclasses.replace(b, line=0) for b in model.cfg.blocks
        ]
    for name in ("dialect.cfg", "dialect_fused.cfg", "pvanet.cfg"):
        for block in load_cfg(Path(__file__).parent / "cfgs" / name).blocks:
            assert block.flow() in FLOWS
            seen.add(type(block))
    assert seen == set(BLOCK_TYPES)  # the zoo and the dialect cfgs use every block type


def test_widen_keeps_prediction_convs_and_depthwise_groups() -> None:
    model = create_model("yolov3-mobile", num_classes=3)
    narrow = with_width(model.cfg, 0.5)
    prediction = set(model.prediction_conv_indices())
    for i, (before, after) in enumerate(zip(model.cfg.blocks, narrow.blocks)):
        if i in prediction:
            assert after == before
        elif hasattr(before, "filters") and before.filters > 8:
            assert after.filters < before.filters, (i, before.section)
        if getattr(before, "groups", 1) > 1 and before.groups == before.filters:
            assert after.groups == after.filters  # still depthwise
