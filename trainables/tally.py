"""A trial's running tally across its restarts: reports made, epochs trained and its best
mAP50 so far with the epoch it came at. It is a file in the trial's working folder, so it
travels with every checkpoint and a restored trial counts on where it stopped.

Why epochs and not reports: a method reports once per trained epoch, plus, here and there,
a result outside an epoch (CS's rewound ticket, validated only). The epochs trained, summed
over LTH rounds and CS phases, are the trial's fidelity: what MLflow uses as the step, so
that a trial's curve reads the same way whatever method made it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from yolo.metrics import names as m

TALLY_FILE = "tally.json"
REPORTS_FILE = "reports_made.txt"  # what a checkpoint of an earlier version holds instead


@dataclass
class Tally:
    reports: int = 0
    trained_epochs: int = 0
    map50_best: float | None = None
    map50_best_step: int | None = None

    @classmethod
    def load(cls, folder: Path) -> Tally:
        path = folder / TALLY_FILE
        if path.is_file():
            return cls(**json.loads(path.read_text()))
        old = folder / REPORTS_FILE
        return cls(reports=int(old.read_text())) if old.is_file() else cls()

    def save(self, folder: Path) -> None:
        (folder / TALLY_FILE).write_text(json.dumps(asdict(self)))

    def count(self, metrics: dict[str, float]) -> None:
        """One report: an epoch trained where it says how long training took (every
        engine epoch does; a validation-only result does not)."""
        self.reports += 1
        if m.EPOCH_TIME_S in metrics:
            self.trained_epochs += 1

    def figures(self, result: dict[str, float], *, deliverable: bool = True) -> dict[str, float]:
        """The step and best-so-far figures of a report whose final figures are ``result``
        (its mAP50 is the delivered model's, an INT8 delivery's included). A report before
        the method's first delivering one (``deliverable`` false: a CS search epoch,
        measured on the soft-gated model) is no candidate for the best."""
        value = result.get(m.MAP50)
        if deliverable and value is not None and math.isfinite(value):
            if self.map50_best is None or value > self.map50_best:
                self.map50_best, self.map50_best_step = float(value), self.trained_epochs
        figures = {m.TRAINED_EPOCHS: float(self.trained_epochs)}
        if self.map50_best is not None and self.map50_best_step is not None:
            figures[m.MAP50_BEST] = self.map50_best
            figures[m.MAP50_BEST_STEP] = float(self.map50_best_step)
        return figures
