"""One line per event of a study in the terminal, in place of Ray Tune's trial table.

    [demo] 7 trials: 4 done (2 stopped early), 2 running, 1 errored; 64/120 reports;
    front: 3 trials, best map50 0.392 at macs 1.3e+07   (one line)

printed when a trial ends and at most every ``every_s`` seconds while reports come in. The
front is drawn over every trial's latest deliverable report (moocore's non-dominated filter;
:func:`trainables.scheduling.is_deliverable`), as the study's own front will be. ``yct tune -v``
shows Ray's table instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from ray import tune

from trainables.scheduling import FIDELITY, Ledger, is_deliverable


class ProgressLine(tune.Callback):
    """See the module doc; ``ledger`` is the study's (budget spent, trials stopped)."""

    def __init__(self, study: str, ledger: Ledger, metrics: Sequence[str],
                 modes: Sequence[str], *, every_s: float = 30.0) -> None:  # fmt: skip
        self.study, self.ledger = study, ledger
        self.metrics, self.modes = tuple(metrics), tuple(modes)
        self.every_s = every_s
        self.latest: dict[str, list[float]] = {}  # trial id -> objectives at its last report
        self.running: set[str] = set()
        self.ended: dict[str, str] = {}  # trial id -> "done" or "errored"
        self.last_print = 0.0

    def line(self) -> str:
        stopped = sum(1 for t in self.ended if t in self.ledger.stopped)
        done = sum(1 for state in self.ended.values() if state == "done")
        errored = len(self.ended) - done
        total = len(set(self.ended) | self.running)
        budget = f"/{self.ledger.budget}" if self.ledger.budget is not None else ""
        text = (f"[{self.study}] {total} trials: {done} done ({stopped} stopped early), "
                f"{len(self.running)} running, {errored} errored; "
                f"{self.ledger.spent}{budget} reports")  # fmt: skip
        return text + self._front()

    def _front(self) -> str:
        import moocore
        import numpy as np

        points = [v for v in self.latest.values() if all(math.isfinite(x) for x in v)]
        if not points:
            return ""
        values = np.array(points)
        front = values[moocore.is_nondominated(values, maximise=[m == "max" for m in self.modes])]
        pick = np.argmax if self.modes[0] == "max" else np.argmin
        best = front[pick(front[:, 0])]  # the best of the first objective on the front
        rest = ", ".join(f"{m} {v:.3g}" for m, v in zip(self.metrics[1:], best[1:]))
        return (f"; front: {len(front)} trials, best {self.metrics[0]} {best[0]:.3g}"
                + (f" at {rest}" if rest else ""))  # fmt: skip

    def _print(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_print >= self.every_s:
            self.last_print = now
            print(self.line(), flush=True)

    def on_trial_start(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        self.running.add(str(trial.trial_id))

    def on_trial_result(self, iteration: int, trials: Any, trial: Any, result: dict,
                        **info: Any) -> None:  # fmt: skip
        trial_id = str(trial.trial_id)
        self.running.add(trial_id)
        values = []
        for metric in self.metrics:
            value = result.get(metric)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            values.append(float(value) if number else math.nan)  # type: ignore[arg-type]
        if result.get(FIDELITY) and is_deliverable(result):  # a CS search epoch: no model
            self.latest[trial_id] = values
        self._print()

    def _ended(self, trial: Any, state: str) -> None:
        trial_id = str(trial.trial_id)
        self.running.discard(trial_id)
        self.ended[trial_id] = state
        self._print(force=True)

    def on_trial_complete(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        self._ended(trial, "done")

    def on_trial_error(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        self._ended(trial, "errored")
