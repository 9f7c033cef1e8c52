"""Pareto fronts and hypervolume as pure array functions, for any mix of directions.

Points are ``(n, k)`` arrays of objective values, one row a trial; ``directions`` says per
column ``"min"`` or ``"max"``. Internally every column is turned into minimisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_min(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"points must be (n, k), got shape {points.shape}")
    if len(directions) != points.shape[1]:
        raise ValueError(f"{len(directions)} directions for {points.shape[1]} objectives")
    bad = [d for d in directions if d not in ("min", "max")]
    if bad:
        raise ValueError(f"directions must be 'min' or 'max', got {bad[0]!r}")
    signs = np.array([1.0 if d == "min" else -1.0 for d in directions])
    return points * signs


def non_dominated(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """(n,) bool: rows no other row dominates (at least as good everywhere, better once).

    Identical rows do not dominate each other (both stay); rows with NaN are never on the
    front; infinities compare as numbers.
    """
    p = _as_min(points, directions)
    valid = ~np.isnan(p).any(1)
    front = valid.copy()
    for i in np.flatnonzero(valid):
        others = p[valid]
        dominated = np.all(others <= p[i], 1) & np.any(others < p[i], 1)
        front[i] = not dominated.any()
    return front


def hypervolume(points: np.ndarray, reference: Sequence[float], directions: Sequence[str]) -> float:
    """Volume of objective space dominated by ``points`` and bounded by ``reference``.

    ``reference`` is a point worse than every interesting trial in every objective (e.g.
    mAP 0, MACs of the dense model); points not strictly better than it in every objective
    add nothing, nor do rows with NaN. Computed by moocore (exact, maintained; tested
    against a direct slicing computation in tests/analysis).
    """
    import moocore

    p = _as_min(points, directions)
    ref = _as_min(np.asarray([reference], dtype=np.float64), directions)[0]
    inside = p[~np.isnan(p).any(1) & np.all(p < ref, 1)]
    if not len(inside):
        return 0.0
    if np.isinf(inside).any():
        return float("inf")
    return float(moocore.hypervolume(inside, ref=ref))


def reference_point(points: np.ndarray, directions: Sequence[str]) -> list[float]:
    """A point worse than every row, for the hypervolume: 0 for maximised objectives that
    are >= 0 (mAP), else 10% beyond the worst finite value seen."""
    reference = []
    for column, mode in zip(np.asarray(points, dtype=np.float64).T, directions):
        finite = column[np.isfinite(column)]
        worst = (finite.min() if mode == "max" else finite.max()) if len(finite) else 0.0
        if mode == "max":
            reference.append(0.0 if worst >= 0 else float(worst) * 1.1)
        else:
            reference.append(float(worst) * 1.1 if worst > 0 else float(worst) + 1.0)
    return reference
