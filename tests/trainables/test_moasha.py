"""MOASHA's rung decisions on hand-built result streams: fronts, ties, NaN, restarts, restore."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from trainables.moasha import Rungs, milestones, rank_order
from trainables.scheduling import Ledger

MODES = ("max", "min")  # mAP up, MACs down


def test_milestones_are_geometric_below_the_max() -> None:
    assert milestones(1, 16, 3) == (1, 3, 9)
    assert milestones(2, 16, 2) == (2, 4, 8)
    assert milestones(1, 10, 1.5) == (1, 2, 3, 5, 7)  # rounded down, no repeats
    assert milestones(4, 4, 3) == ()


def test_rank_order_puts_fronts_first_and_nan_last() -> None:
    points = np.array([
        [0.5, 100.0],  # 0: front 0
        [0.4, 200.0],  # 1: dominated by 0 -> front 1
        [0.2, 10.0],   # 2: front 0
        [math.nan, 1.0],  # 3: NaN -> last
        [0.1, 300.0],  # 4: dominated by 0, 1 -> front 2
    ])  # fmt: skip
    order = rank_order(points, MODES)
    assert set(order[:2]) == {0, 2} and order[2:] == [1, 4, 3]
    assert order[0] == 0  # the ε-net starts at the best of the first objective


def test_epsilon_net_spreads_over_the_front() -> None:
    # five points on one front; the ε-net takes an end, then the far end, then the middle
    front = np.array([[0.9, 100.0], [0.8, 80.0], [0.5, 50.0], [0.45, 45.0], [0.1, 1.0]])
    order = rank_order(front, MODES)
    assert order[:3] == [0, 4, 2]
    assert sorted(order) == [0, 1, 2, 3, 4]


def test_ties_keep_the_earlier_trial() -> None:
    assert rank_order(np.array([[0.5, 10.0], [0.5, 10.0], [0.5, 10.0]]), MODES) == [0, 1, 2]


def test_asynchronous_rung_rule() -> None:
    rungs = Rungs(milestones(1, 9, 3), 3.0, MODES)
    assert rungs.milestones == (1, 3)
    # the first trial at a rung always goes on
    assert rungs.on_result("a", 1, [0.2, 50.0]).keep
    # a dominated second trial: top ceil(2/3) = 1 are kept, it is second
    decision = rungs.on_result("b", 1, [0.1, 60.0])
    assert not decision.keep and decision.rung == 1 and decision.recorded == 2
    # a trial on the front with "a" but worse in mAP: ε-net order puts it second -> stopped
    assert not rungs.on_result("c", 1, [0.05, 5.0]).keep
    # fourth trial, best in mAP: first -> kept (ceil(4/3) = 2 places)
    assert rungs.on_result("d", 1, [0.6, 70.0]).keep
    # no new rung between milestones: no decision
    assert rungs.on_result("a", 2, [0.3, 50.0]).rung is None
    # at rung 3 "a" is alone: kept
    assert rungs.on_result("a", 3, [0.3, 50.0]).keep


def test_the_small_model_survives_where_single_metric_asha_would_stop_it() -> None:
    rungs = Rungs((1,), 2.0, MODES)
    assert rungs.on_result("big", 1, [0.6, 1000.0]).keep
    # lower mAP but 100x fewer MACs: on the front, ranked 2nd of 2 -> ceil(2/2) = 1 place
    assert not rungs.on_result("small", 1, [0.3, 10.0]).keep
    rungs = Rungs((1,), 2.0, MODES)
    for i, point in enumerate([[0.6, 1000.0], [0.59, 990.0], [0.58, 995.0]]):
        rungs.on_result(f"big{i}", 1, point)
    # four recorded, two places: the small model is the ε-net's far end, second -> kept,
    # though it is last by mAP alone
    assert rungs.on_result("small", 1, [0.3, 10.0]).keep


def test_nan_objective_ranks_last_and_is_stopped() -> None:
    rungs = Rungs((1,), 3.0, MODES)
    rungs.on_result("a", 1, [0.2, 50.0])
    decision = rungs.on_result("nan", 1, [math.nan, 10.0])
    assert not decision.keep and decision.position == 1


def test_a_restarted_trial_reporting_a_rung_again_changes_nothing() -> None:
    rungs = Rungs((1, 3), 3.0, MODES)
    rungs.on_result("a", 1, [0.2, 50.0])
    rungs.on_result("b", 1, [0.3, 40.0])
    before = pickle.dumps(rungs.records)
    # "b" errors after its rung-1 report and is retried from its checkpoint: it reports
    # rung 1 again (other values: another attempt); the record stands, no new decision
    assert rungs.on_result("b", 1, [0.0, 99.0]).rung is None
    assert pickle.dumps(rungs.records) == before


def test_reduction_factor_must_exceed_one() -> None:
    with pytest.raises(ValueError, match="reduction_factor"):
        Rungs((1,), 1.0, MODES)


def _stream() -> list[tuple[str, int, list[float]]]:
    rng = np.random.default_rng(0)
    stream = []
    for step in (1, 2, 3, 4, 5, 9):
        for trial in range(8):
            stream.append((f"t{trial}", step, [float(rng.random()), float(rng.random() * 100)]))
    return stream


def test_restore_mid_rung_gives_the_decisions_of_an_uninterrupted_study() -> None:
    stream = _stream()
    whole = Ledger(Rungs(milestones(1, 10, 3), 3.0, MODES), budget=None)
    expected = [whole.rungs.on_result(*event).keep for event in stream]
    first = Ledger(Rungs(milestones(1, 10, 3), 3.0, MODES), budget=None)
    half = len(stream) // 2 + 3  # inside a rung
    got = [first.rungs.on_result(*event).keep for event in stream[:half]]
    saved = pickle.loads(pickle.dumps(first.get_state()))  # what Ray writes with the study
    restored = Ledger(Rungs(milestones(1, 10, 3), 3.0, MODES), budget=None)
    restored.set_state(saved)
    got += [restored.rungs.on_result(*event).keep for event in stream[half:]]
    assert got == expected
    assert not all(expected)  # the stream does stop trials


def test_ledger_budget() -> None:
    ledger = Ledger(None, budget=5)
    ledger.reported.update(a=2, b=2)
    assert ledger.spent == 4 and not ledger.exhausted()
    ledger.reported["a"] = 3
    assert ledger.exhausted()
    assert not Ledger(None, budget=None).exhausted()


def test_rungs_count_telling_reports_from_each_methods_first() -> None:
    """A CS-like trial (first telling report 5: its search reports are of the soft-gated
    model) meets an LTH-like one (first telling report 1) at rung 1 after one telling
    report each, not after one report each."""
    from types import SimpleNamespace

    from trainables.scheduling import StudyScheduler

    ledger = Ledger(Rungs((1, 3), 3.0, MODES), budget=None)
    scheduler = StudyScheduler(ledger, ["map50", "macs"])

    def report(trial_id, iteration, map50, telling):
        result = {"training_iteration": iteration, "map50": map50, "macs": 1e6,
                  "first_telling_report": float(telling), "planned_reports": 8.0}  # fmt: skip
        return scheduler.on_trial_result(None, SimpleNamespace(trial_id=trial_id), result)

    for iteration in range(1, 5):  # the search: high soft-model mAP, recorded at no rung
        assert report("cs", iteration, 0.9, telling=5) == "CONTINUE"
    assert ledger.rungs.records == {}
    assert report("lth", 1, 0.5, telling=1) == "CONTINUE"  # first at rung 1 goes on
    assert report("cs", 5, 0.1, telling=5) == "STOP"  # its ticket ranks below: top 1 of 2
    assert ledger.rungs.records[1] == {"lth": [0.5, 1e6], "cs": [0.1, 1e6]}
    assert ledger.stopped["cs"]["rung"] == 1
