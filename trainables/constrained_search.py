"""Ray's OptunaSearch that never launches a draw breaking the space's constraints.

An architecture space may cap what a candidate costs (``architecture.constraints``:
``max_macs``, ``max_params``, ``max_latency_ms``; :mod:`search_spaces.architecture`). The
cost of a draw is known before training (it is measured on the model the trial would build,
in milliseconds), so a draw that breaks a cap is rejected at sampling instead of trained and
thrown away: it is told to Optuna as FAIL and drawn again, and the study's :class:`Ledger`
counts it by the constraint it broke (MLflow's parent run and the terminal show the counts).

Why FAIL and not Optuna's ``constraints_func``: that API scores *completed* trials as
infeasible, so each would need objective values, and a rejected draw has none (absent is
absent: never a 0.0 that wins an objective). Why FAIL and not PRUNED: Optuna's TPE counts
pruned trials among its startup trials and ranks them as measured-bad; a draw that was never
trained says nothing about the objectives, only about the cap, which the rejection already
enforces. After :data:`MAX_REDRAWS` rejections in a row the searcher answers FINISHED: the
study ends with the trials it has and says why, instead of spinning.

Part of the Ray adapter (:mod:`trainables.ray_adapter` builds it); imports Ray and Optuna.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from optuna.trial import TrialState
from ray.tune.search import Searcher

from trainables.scheduling import Ledger
from trainables.study_searcher import StudyOptunaSearch

MAX_REDRAWS = 200  # rejections in a row before the study stops launching trials


class ConstrainedOptunaSearch(StudyOptunaSearch):
    """The study's OptunaSearch whose suggestions pass ``reject(config) -> reason | None``."""

    def __init__(self, *args: Any, reject: Callable[[Mapping[str, Any]], str | None],
                 ledger: Ledger, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.reject = reject
        self.ledger = ledger

    def suggest(self, trial_id: str) -> dict | None:
        for _ in range(MAX_REDRAWS):
            config = super().suggest(trial_id)
            if not isinstance(config, dict):
                return config
            reason = self.reject(config)
            if reason is None:
                return config
            study = self._ot_study
            assert study is not None  # set up by OptunaSearch before its first suggestion
            study.tell(self._ot_trials.pop(trial_id), state=TrialState.FAIL)
            self.ledger.count_rejection(reason)
        self.ledger.gave_up = (f"{MAX_REDRAWS} draws in a row broke architecture.constraints "
                               f"({self.ledger.rejection_summary()}); no more trials launched: "
                               "loosen the constraints or shrink the space")  # fmt: skip
        print(f"warning: {self.ledger.gave_up}", file=sys.stderr)
        # Ray's own annotation says dict | None, but its searchers answer FINISHED so
        return Searcher.FINISHED  # type: ignore[return-value]

    def save(self, checkpoint_path: str) -> None:
        ledger = self.ledger  # the shared ledger is the callback's to save
        del self.ledger
        try:
            super().save(checkpoint_path)
        finally:
            self.ledger = ledger

    def restore(self, checkpoint_path: str) -> None:
        ledger = self.ledger
        super().restore(checkpoint_path)
        self.ledger = ledger
