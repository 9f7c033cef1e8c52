"""A study's front as files: the plot, the seed-style table and the CSV of every trial.

Shared by ``yct pareto`` and by the end of ``yct tune`` (whose parent MLflow run gets the
same files), so both always agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analysis.interactive import front_html
from analysis.pareto import hypervolume, non_dominated, reference_point
from analysis.plot import plot_front
from analysis.table import group_rows, markdown, varying_params, write_csv
from yolo.metrics import names as m

if TYPE_CHECKING:
    from trainables.records import TrialRecord


@dataclass(frozen=True)
class FrontReport:
    on_front: np.ndarray  # (n,) bool, in the order of the trials given
    hypervolume: float
    reference: dict[str, float]
    table: str  # markdown, front members only
    files: tuple[Path, ...]  # front.png, front.html, front.md, trials.csv

    start: dict[str, float] | None = None  # the starting (dense) model, when known

    def summary(self, trials: int) -> str:
        where = ", ".join(f"{k}={v:g}" for k, v in self.reference.items())
        source = "the starting model" if self.start else "10% beyond the worst trial"
        return (f"{int(self.on_front.sum())} of {trials} trials on the front; hypervolume "
                f"{self.hypervolume:.6g} (reference {where}: {source})")  # fmt: skip


def front_report(trials: Sequence[TrialRecord], objectives: Sequence[tuple[str, str]],
                 out: Path, *, x: str = m.MACS, y: str = m.MAP50, by: str = "method",
                 reference: Mapping[str, float] | None = None,
                 start: Mapping[str, float] | None = None) -> FrontReport:  # fmt: skip
    """Front, hypervolume and files of ``trials`` (dicts as from ``load_trial_runs``).

    ``reference``: the study's fixed yardstick (its starting model, recorded on the parent
    run); without one (a study from before it, or several studies pooled) the reference
    is taken 10% beyond the worst trial, which is not comparable between studies.
    ``start`` is drawn on the plot as the point the front is read against."""
    metrics = [metric for metric, _ in objectives]
    modes = [mode for _, mode in objectives]
    values = np.array([[float(t["metrics"][k]) for k in metrics] for t in trials])
    front = non_dominated(values, modes)
    if reference is not None and set(metrics) <= set(reference):
        point = [float(reference[k]) for k in metrics]
    else:
        point = reference_point(values, modes)
    volume = hypervolume(values[front], point, modes)
    out.mkdir(parents=True, exist_ok=True)
    files = (out / "front.png", out / "front.html", out / "front.md", out / "trials.csv")
    plot_front(trials, front, files[0], x=x, y=y, by=by, start=start)
    front_html(trials, front, files[1], x=x, y=y, by=by, start=start)
    shown = varying_params(trials)
    members = [t for t, on in zip(trials, front) if on]
    table = markdown(group_rows(members, on_front=[True] * len(members), shown=shown))
    files[2].write_text(table + "\n")
    write_csv(group_rows(trials, on_front=front), files[3])
    return FrontReport(
        front, volume, dict(zip(metrics, point)), table, files, dict(start) if start else None
    )
