"""Multi-objective asynchronous successive halving (MOASHA): the rungs and the keep-or-stop rule.

Ray Tune's ASHA ranks trials by one metric, so in a two-objective study it stops exactly the
small models a mAP-vs-MACs front needs. This is the rule of Syne Tune's MOASHA (Schmucker et
al. 2021) written for our scheduler (:mod:`trainables.scheduling`): rungs at ``min_resource
· η^k`` reports below ``max_resource``; when a trial first reaches a rung, its objectives are
recorded there and it goes on only if it ranks in the top ``ceil(n / η)`` of the ``n``
trials recorded at that rung so far (asynchronous: nobody waits for a rung to fill, so the
first trial at a rung always goes on, as in ASHA's stopping variant).

The ranking is non-dominated sorting (front 0, then front 1, …; moocore's ``pareto_rank``),
and within a front an ε-net order: in objectives scaled to [0, 1] over the rung, the trial
best in the first objective first, then each time the trial farthest from those already
ranked. Why the ε-net and not NSGA-II's crowding distance: the ε-net is what MOASHA
specifies, and it spreads the kept trials over the whole front for any number kept, while
crowding distance gives both ends of a front infinite distance and ranks the rest by their
two neighbours only, so with one or two places left it keeps only the extremes. A trial
with a non-finite or absent objective (a NaN metric) ranks after every finite one.

Pure Python and numpy, no Ray: the rung decisions are tested on hand-built result streams.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import moocore
import numpy as np

from search_spaces.schema import milestones

__all__ = ["Decision", "Rungs", "milestones", "rank_order"]


def _scaled_min(points: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """Every objective as minimisation, scaled to [0, 1] over the rows (a constant: 0)."""
    signs = np.array([1.0 if mode == "min" else -1.0 for mode in modes])
    p = points * signs
    low, high = p.min(0), p.max(0)
    span = np.where(high > low, high - low, 1.0)
    return (p - low) / span


def _epsilon_net(scaled: np.ndarray) -> list[int]:
    """Greedy farthest-first order of ``scaled``'s rows, starting at the best first
    objective; ties go to the earlier row."""
    remaining = list(range(len(scaled)))
    first = min(remaining, key=lambda i: (scaled[i, 0], i))
    order = [first]
    remaining.remove(first)
    distance = np.linalg.norm(scaled - scaled[first], axis=1)
    while remaining:
        farthest = max(remaining, key=lambda i: (distance[i], -i))
        order.append(farthest)
        remaining.remove(farthest)
        distance = np.minimum(distance, np.linalg.norm(scaled - scaled[farthest], axis=1))
    return order


def rank_order(points: np.ndarray, modes: Sequence[str]) -> list[int]:
    """Row indices of ``points`` (n, k) best first: fronts in order, ε-net within each,
    rows with a non-finite value last (in their order)."""
    points = np.asarray(points, dtype=np.float64).reshape(len(points), len(modes))
    finite = np.flatnonzero(np.isfinite(points).all(1))
    rest = [int(i) for i in np.flatnonzero(~np.isfinite(points).all(1))]
    if not len(finite):
        return rest
    good = points[finite]
    ranks = moocore.pareto_rank(good, maximise=[mode == "max" for mode in modes])
    scaled = _scaled_min(good, modes)
    order: list[int] = []
    for level in np.unique(ranks):
        members = np.flatnonzero(ranks == level)
        order += [int(finite[members[i]]) for i in _epsilon_net(scaled[members])]
    return order + rest


@dataclass(frozen=True)
class Decision:
    """What a result decided: at which rung (None: it reached no new rung), keep or stop,
    and the trial's place among those recorded there."""

    rung: int | None
    keep: bool
    position: int = 0
    recorded: int = 0


@dataclass
class Rungs:
    """The rung records of a study: ``records[rung][trial_id]`` = its objectives there.

    Plain data (pickles and restores with the study, see :mod:`trainables.scheduling`)."""

    milestones: tuple[int, ...]
    reduction_factor: float
    modes: tuple[str, ...]
    records: dict[int, dict[str, list[float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be > 1, got {self.reduction_factor}")

    def on_result(self, trial_id: str, fidelity: int, values: Sequence[float]) -> Decision:
        """Record the trial at the highest rung it has reached and not been recorded at,
        and decide there. A result repeated at a rung (a trial restarted from its
        checkpoint) finds it recorded and changes nothing."""
        reached = [r for r in self.milestones if r <= fidelity]
        if not reached or trial_id in self.records.get(reached[-1], {}):
            return Decision(rung=None, keep=True)
        rung = reached[-1]
        recorded = self.records.setdefault(rung, {})
        recorded[trial_id] = [float(v) for v in values]
        ids = list(recorded)
        order = rank_order(np.array([recorded[i] for i in ids]), self.modes)
        position = order.index(ids.index(trial_id))
        keep = position < math.ceil(len(ids) / self.reduction_factor)
        return Decision(rung=rung, keep=keep, position=position, recorded=len(ids))
