"""A trial's tally: epochs trained (its MLflow step) and its best mAP50 so far, kept across
restarts in its checkpoint folder."""

from __future__ import annotations

from trainables.tally import REPORTS_FILE, Tally
from yolo.metrics import names as m


def _epoch(map50: float) -> dict[str, float]:
    return {m.MAP50: map50, m.EPOCH_TIME_S: 1.0}


def test_steps_count_trained_epochs_and_the_best_keeps_its_step(tmp_path) -> None:
    tally = Tally()
    seen = []
    for metrics in (_epoch(0.2), _epoch(0.5), _epoch(0.4)):
        tally.count(metrics)
        seen.append(tally.figures(dict(metrics)))
    assert [s[m.TRAINED_EPOCHS] for s in seen] == [1, 2, 3]
    assert seen[-1][m.MAP50_BEST] == 0.5 and seen[-1][m.MAP50_BEST_STEP] == 2
    # a result outside an epoch (CS's rewound ticket, validated only): no epoch trained, and
    # its mAP (the delivered model's) counts for the best at the step it came
    ticket = {m.MAP50: 0.6}
    tally.count(ticket)
    figures = tally.figures(ticket)
    assert figures[m.TRAINED_EPOCHS] == 3 and tally.reports == 4
    assert figures[m.MAP50_BEST] == 0.6 and figures[m.MAP50_BEST_STEP] == 3
    tally.save(tmp_path)
    assert Tally.load(tmp_path) == tally


def test_a_nan_map_is_never_the_best_and_no_map_means_no_best() -> None:
    tally = Tally()
    tally.count({m.EPOCH_TIME_S: 1.0})
    assert tally.figures({}) == {m.TRAINED_EPOCHS: 1.0}
    tally.count(_epoch(float("nan")))
    assert m.MAP50_BEST not in tally.figures(_epoch(float("nan")))


def test_a_checkpoint_of_the_earlier_layout_counts_on(tmp_path) -> None:
    (tmp_path / REPORTS_FILE).write_text("7")
    assert Tally.load(tmp_path) == Tally(reports=7)
    assert Tally.load(tmp_path / "nothing") == Tally()


def test_search_reports_before_the_first_delivering_one_are_never_the_best() -> None:
    """CS's search epochs measure the soft-gated model: a high mAP there is no model the
    trial can deliver, so the best starts with its ticket."""
    tally = Tally()
    for map50 in (0.9, 0.8):  # the soft-gated search
        tally.count(_epoch(map50))
        assert m.MAP50_BEST not in tally.figures(_epoch(map50), deliverable=False)
    tally.count(_epoch(0.1))  # the ticket's first retraining epoch
    figures = tally.figures(_epoch(0.1), deliverable=True)
    assert figures[m.MAP50_BEST] == 0.1 and figures[m.MAP50_BEST_STEP] == 3
