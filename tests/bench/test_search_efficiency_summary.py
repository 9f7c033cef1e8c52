"""The search-efficiency bench's statistics on hand-built studies: the budget share from which
a combination's lower quartile stays above random+fifo's upper quartile (the issue's
non-overlapping-IQR target, read along the anytime curve, not only at the end)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))  # the script imports its sibling results_io
    try:
        spec = importlib.util.spec_from_file_location("search_efficiency_under_test",
                                                      BENCH / "search_efficiency.py")  # fmt: skip
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


def _study(sampler: str, seed: int, curve: list[tuple[int, float]]) -> dict:
    return {"sampler": sampler, "scheduler": "fifo", "seed": seed, "trials": 3,
            "recorded_trials": 2, "stopped": 0, "nested_runs_told": seed, "wall_s": 1.0,
            "curve": curve}  # fmt: skip


def test_separation_is_read_from_the_point_it_stays(bench) -> None:
    budget = 100
    studies = []
    for seed in range(4):
        # random: 1.0 at every point; the other: below it for the first 44 reports, above
        # it from 45 on, except a dip at 60-64 (so it *stays* above from 65 on)
        studies.append(_study("random", seed, [(s, 1.0 + 0.01 * seed) for s in range(1, 101)]))
        curve = []
        for spent in range(1, 101):
            level = 2.0 if spent >= 45 and not 60 <= spent < 65 else 0.5
            curve.append((spent, level + 0.01 * seed))
        studies.append(_study("tpe", seed, curve))
    summary = bench.summarise(studies, budget)
    tpe, random = summary["tpe+fifo"], summary["random+fifo"]
    assert tpe["iqr_above_random_fifo"] is True
    assert tpe["iqr_above_random_fifo_by_fraction"][7] is False  # 0.4 of the budget
    assert tpe["iqr_above_random_fifo_by_fraction"][8] is True  # 0.45
    assert tpe["iqr_above_random_fifo_by_fraction"][11] is False  # 0.6: the dip
    assert tpe["budget_fraction_iqr_stays_above_random_fifo"] == 0.65
    assert random["budget_fraction_iqr_stays_above_random_fifo"] is None
    assert not any(random["iqr_above_random_fifo_by_fraction"])
    assert tpe["budget_fraction_to_reach_random_final"] == 0.45
    assert tpe["recorded_trials_mean"] == 2.0
    assert tpe["nested_runs_told_mean"] == 1.5  # seeds 0..3 told 0..3
