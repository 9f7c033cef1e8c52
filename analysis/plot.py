"""The front plot: one colour per method, dominated trials faded, log-scale MACs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analysis.table import trial_label

if TYPE_CHECKING:
    from trainables.records import TrialRecord


def plot_front(trials: Sequence[TrialRecord], on_front: np.ndarray, path: Path, *, x: str,
               y: str, by: str, log_x: bool = True,
               start: Mapping[str, float] | None = None) -> None:  # fmt: skip
    """The front by ``by`` group; ``start`` (the study's starting model) as a black star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    groups = sorted({t["tags"].get(by, t["params"].get(by, "?")) for t in trials})
    colours = plt.get_cmap("tab10")
    for k, group in enumerate(groups):
        members = [
            i for i, t in enumerate(trials) if t["tags"].get(by, t["params"].get(by, "?")) == group
        ]
        xs = np.array([trials[i]["metrics"][x] for i in members])
        ys = np.array([trials[i]["metrics"][y] for i in members])
        front = on_front[members]
        axes.scatter(xs[~front], ys[~front], color=colours(k), alpha=0.25, s=25)
        axes.scatter(xs[front], ys[front], color=colours(k), s=45, label=f"{by}={group}")
        order = np.argsort(xs[front])
        axes.plot(
            xs[front][order],
            ys[front][order],
            color=colours(k),
            linewidth=1,
            drawstyle="steps-post",
        )
        for i in np.flatnonzero(front):
            axes.annotate(trial_label(trials[members[i]]), (xs[i], ys[i]), fontsize=6,
                          xytext=(3, 3), textcoords="offset points")  # fmt: skip
    if start and x in start and y in start:
        axes.scatter([start[x]], [start[y]], marker="*", s=160, color="black", zorder=3,
                     label="start (dense)")  # fmt: skip
    if log_x:
        axes.set_xscale("log")
    axes.set_xlabel(x + (" (log)" if log_x else ""))
    axes.set_ylabel(y)
    axes.set_title(f"Pareto front: {y} vs {x} (faded: dominated)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
