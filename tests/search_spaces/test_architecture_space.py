"""The ``architecture:`` section: the loader's refusals (stage, key, allowed values), the
extremes of the shipped NAS spaces, the conditional per-unit draws on a real Optuna trial,
and constraint rejection at sampling through the real Ray OptunaSearch."""

from __future__ import annotations

import re

import optuna
import pytest
import yaml

from search_spaces import shipped_path
from search_spaces.architecture import (
    PREFIX,
    ConstraintCheck,
    check_constraints_reachable,
    extreme_draws,
    load_architecture,
    trial_cfg,
)
from search_spaces.optuna_space import define_by_run
from search_spaces.schema import SpaceError, load_space
from yolo.architecture import generate
from yolo.config import parse_cfg
from yolo.metrics.profile import count_macs
from yolo.resources import meta_model
from yolo.zoo import resolve_cfg, with_classes


def _space(tmp_path, architecture, **top):
    data = {
        "method": "train",
        "model": "yolov3-mobile",
        "data": "data.yaml",
        "objectives": [{"metric": "map50", "mode": "max"}, {"metric": "macs", "mode": "min"}],
        "fixed": {"img_size": 64, "epochs": 2},
        "architecture": architecture,
        "search": {"sampler": "random", "num_samples": 4, "seed": 0},
        **top,
    }
    path = tmp_path / "nas.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


CHOICE = {"type": "categorical"}
BAD = {
    "kernel 4": ({"s3": {"kernel": {**CHOICE, "choices": [3, 4]}}},
                 r"nas\.yaml: architecture\.s3\.kernel\.choices\[1\]: stage s3: must be one "
                 r"of 3, 5, 7, got 4"),
    "depth 0": ({"s3": {"depth": {"type": "int", "low": 0, "high": 4}}},
                r"architecture\.s3\.depth\.low: stage s3: must be an integer 1\.\.8 "
                r"\(the parent's units .*\), got 0"),
    "depth beyond the parent": ({"s2": {"depth": 3}},
                                r"architecture\.s2\.depth: stage s2: must be an integer "
                                r"1\.\.2 .*got 3"),
    "expansion 0": ({"all": {"expansion": {**CHOICE, "choices": [0, 3]}}},
                    r"architecture\.all\.expansion\.choices\[0\]: stage s1: must be a "
                    r"number in \(0, 8\], got 0"),
    "negative expansion": ({"s4": {"expansion": -2}}, r"s4\.expansion: stage s4: must be a number in \(0, 8\], got -2"),
    "activation the block lacks": ({"s5": {"activation": "relu6"}},
                                   r"architecture\.s5\.activation: stage s5: must be "
                                   r"one of relu, hswish, leaky, got 'relu6'"),
    "pep choice on a mobile stage": ({"s3": {"x_ratio": 0.5}},
                                     r"architecture\.s3\.x_ratio: no choice 'x_ratio' in s3; "
                                     r"allowed: activation, depth, expansion, kernel, se"),
    "unknown stage": ({"s9": {"depth": 1}},
                      r"architecture\.s9: no such stage; yolov3-mobile\.cfg has s1, s2, s3, s4, "
                      r"s5, neck"),
    "depth of the neck": ({"neck": {"depth": 2}}, r"architecture\.neck\.depth: no choice 'depth'"),
    "per_unit depth": ({"s3": {"depth": {"type": "int", "low": 1, "high": 2},
                               "per_unit": ["depth"]}},
                       r"architecture\.s3\.per_unit: 'depth' is not a unit's choice"),
    "per_unit without a domain": ({"s3": {"per_unit": ["kernel"]}},
                                  r"architecture\.s3\.per_unit: 'kernel' has no domain"),
    "per_unit in all": ({"all": {"per_unit": ["kernel"]}},
                        r"architecture\.all\.per_unit: per_unit is a stage's"),
    "unknown constraint": ({"s3": {"depth": 2}, "constraints": {"max_flops": 1.0e6}},
                           r"architecture\.constraints\.max_flops: unknown; allowed: max_macs, "
                           r"max_params, max_latency_ms"),
    "negative constraint": ({"s3": {"depth": 2}, "constraints": {"max_macs": -1}},
                            r"architecture\.constraints\.max_macs: must be a finite number > 0"),
    "not a mapping": ([1, 2], r"architecture: expected a mapping of stages"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_architecture_is_refused_at_load_with_stage_key_and_rule(tmp_path, case) -> None:
    architecture, message = BAD[case]
    with pytest.raises(SpaceError, match=message) as caught:
        load_space(_space(tmp_path, architecture))
    assert "\n" not in str(caught.value)


def test_a_model_without_stages_and_a_method_other_than_train_are_refused(tmp_path) -> None:
    with pytest.raises(SpaceError, match=r"yolov3-tiny\.cfg has no residual stages"):
        load_space(_space(tmp_path, {"s1": {"depth": 1}}, model="yolov3-tiny"))
    with pytest.raises(SpaceError, match=r"architecture: .*method"):
        load_space(_space(tmp_path, {"s3": {"depth": 2}}, method="lth",
                          fixed={"img_size": 64, "epochs": 2, "rewind_epoch": 0}))  # fmt: skip


def test_constraints_that_even_the_smallest_draw_breaks_are_refused() -> None:
    raw = {"s3": {"depth": {"type": "int", "low": 1, "high": 8}},
           "constraints": {"max_macs": 1.0e6}}  # fmt: skip
    space = load_architecture(raw, resolve_cfg("yolov3-mobile"), "nas.yaml")
    with pytest.raises(
        ValueError,
        match=r"nas\.yaml: architecture\.constraints\.max_macs: even "
        r"the smallest architecture of the space breaks it \(max_macs: ",
    ):
        check_constraints_reachable(space, "nas.yaml", img_size=64, classes=3, width=1.0)


def _macs(space, drawn, size: int = 96) -> int:
    cfg = with_classes(generate(space.parent, space.architecture(drawn)).cfg, 3)
    return count_macs(meta_model(cfg), size).dense


@pytest.mark.parametrize("name", ["nas_mobile", "nas_nano"])
def test_every_extreme_of_the_shipped_nas_spaces_builds(name) -> None:
    space = load_space(shipped_path(name))  # the loader builds every extreme draw itself
    arch = space.architecture
    assert arch is not None and space.methods == ("train",)
    draws = extreme_draws(arch)
    assert len(draws) >= 4
    for drawn in draws:  # and each one parses and runs a forward pass at the study's size
        text = trial_cfg(arch.parent, arch, drawn)
        assert parse_cfg(text, source="architecture.cfg").blocks
    smallest, largest = _macs(arch, draws[0]), _macs(arch, draws[1])
    assert smallest < largest
    assert all(smallest <= _macs(arch, d) <= largest for d in draws[2:6])


def test_the_dry_run_shows_stages_draws_constraints_and_the_macs_span() -> None:
    from search_spaces.describe import describe_space

    text = describe_space(load_space(shipped_path("nas_mobile")))
    assert (
        "architecture of yolov3-mobile.cfg: stages s1 (mobile, 1 unit), s2 (mobile, 2 units)"
        in text
    )
    assert "neck (mobile, no depth)" in text
    assert "arch.s5.u<N>.kernel: one of 3, 5, 7, for each unit kept" in text
    assert "constraint max_macs <= 6e+07 (a draw over it is redrawn, not trained)" in text
    small, large = re.search(r"MACs at 96 px: (\S+) \(smallest draw\) to (\S+) \(largest\)",
                             text).groups()  # fmt: skip
    assert float(small) < 6e7 < float(large)


def test_per_unit_choices_exist_only_for_the_units_the_drawn_depth_keeps(tmp_path) -> None:
    raw = {"all": {"kernel": {**CHOICE, "choices": [3, 5, 7]}},
           "s3": {"depth": {"type": "int", "low": 1, "high": 8}, "per_unit": ["kernel"]},
           "s5": {"se": 1}}  # fmt: skip
    space = load_space(_space(tmp_path, raw))
    function = define_by_run(space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    depths = set()
    for _ in range(12):
        trial = study.ask()
        constants = function(trial)
        depth = trial.params[f"{PREFIX}s3.depth"]
        depths.add(depth)
        units = sorted(k for k in trial.params if k.startswith(f"{PREFIX}s3.u"))
        assert units == sorted(f"{PREFIX}s3.u{n}.kernel" for n in range(1, depth + 1))
        assert constants[f"{PREFIX}s5.se"] == 1  # a fixed choice travels as a constant
        study.tell(trial, 0.0)
    assert len(depths) > 2  # the conditional space really varies


def test_a_draw_breaking_the_constraints_is_rejected_at_sampling_and_counted(tmp_path) -> None:
    """Ray's real OptunaSearch under the constraint check: every config it hands out is within
    the cap, each rejected draw is a FAIL trial in the Optuna study and counted by reason;
    after MAX_REDRAWS rejections in a row it answers FINISHED and says why."""
    from ray.tune.search import Searcher

    from trainables import constrained_search
    from trainables.constrained_search import ConstrainedOptunaSearch
    from trainables.scheduling import Ledger

    raw = {"s3": {"depth": {"type": "int", "low": 1, "high": 8}},
           "s4": {"depth": {"type": "int", "low": 1, "high": 8}}}  # fmt: skip
    space = load_space(_space(tmp_path, raw))
    arch = space.architecture
    draws = extreme_draws(arch)
    small, large = _macs(arch, draws[0], 64), _macs(arch, draws[1], 64)  # the space's size
    cap = (small + large) / 2
    limited = load_architecture({**raw, "constraints": {"max_macs": cap}}, arch.parent, "x")
    check = ConstraintCheck(limited, classes=3, img_size=416, width=1.0)  # fixed size wins
    ledger = Ledger(None, None)
    searcher = ConstrainedOptunaSearch(space=define_by_run(space), metric=["map50", "macs"],
                                       mode=["max", "min"], reject=check, ledger=ledger,
                                       sampler=optuna.samplers.RandomSampler(seed=0))  # fmt: skip
    for number in range(6):
        config = searcher.suggest(f"t{number}")
        assert isinstance(config, dict) and check(config) is None
        drawn = {k: v for k, v in config.items() if k.startswith(PREFIX)}
        assert _macs(limited, drawn, 64) <= cap
    failed = [t for t in searcher._ot_study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert ledger.rejected == {"max_macs": len(failed)} and len(failed) > 0
    # saved and restored with the study, the searcher keeps the live ledger
    path = tmp_path / "searcher.pkl"
    searcher.save(str(path))
    assert searcher.ledger is ledger
    searcher.restore(str(path))
    assert searcher.ledger is ledger
    # a cap nothing meets: the searcher gives up after MAX_REDRAWS in a row, with a reason
    never = ConstrainedOptunaSearch(space=define_by_run(space), metric=["map50", "macs"],
                                    mode=["max", "min"], reject=lambda config: "max_macs: 1 > 0",
                                    ledger=Ledger(None, None))  # fmt: skip
    constrained_search.MAX_REDRAWS = 5
    try:
        assert never.suggest("t0") == Searcher.FINISHED
    finally:
        constrained_search.MAX_REDRAWS = 200
    assert never.ledger.rejected == {"max_macs": 5}
    assert "5 draws in a row broke architecture.constraints (max_macs: 5)" in never.ledger.gave_up
