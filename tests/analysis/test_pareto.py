"""Pareto front and hypervolume against brute force, ties, infinities, 3 objectives."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from analysis.pareto import hypervolume, non_dominated


def brute_front(points: np.ndarray, directions) -> np.ndarray:
    signs = np.array([1 if d == "min" else -1 for d in directions])
    p = points * signs
    result = []
    for i, a in enumerate(p):
        if np.isnan(a).any():
            result.append(False)
            continue
        dominated = False
        for j, b in enumerate(p):
            if i != j and not np.isnan(b).any() and all(b <= a) and any(b < a):
                dominated = True
        result.append(not dominated)
    return np.array(result)


def brute_hypervolume(points: np.ndarray, reference, directions) -> float:
    """Inclusion-exclusion over every subset of boxes [point, reference]."""
    signs = np.array([1 if d == "min" else -1 for d in directions])
    p, ref = points * signs, np.asarray(reference) * signs
    p = p[np.all(p < ref, 1)]
    total = 0.0
    for size in range(1, len(p) + 1):
        for subset in itertools.combinations(range(len(p)), size):
            corner = p[list(subset)].max(0)
            total += (-1) ** (size + 1) * np.prod(ref - corner)
    return total


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("directions", [("max", "min"), ("min", "min", "max")])
def test_front_matches_brute_force_with_ties(seed: int, directions) -> None:
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 5, (30, len(directions))).astype(float)  # many ties
    assert np.array_equal(non_dominated(points, directions), brute_front(points, directions))


def test_infinities_and_nans() -> None:
    points = np.array([[0.5, np.inf], [0.4, 100.0], [np.nan, 1.0], [0.6, 200.0], [-np.inf, 1.0]])
    front = non_dominated(points, ("max", "min"))
    assert front.tolist() == [False, True, False, True, True]
    assert np.array_equal(front, brute_front(points, ("max", "min")))


def test_hand_computed_2d_hypervolume() -> None:
    # maximise mAP, minimise MACs; reference (0, 10)
    points = np.array([[0.5, 2.0], [0.8, 6.0], [0.3, 1.0], [0.4, 7.0]])  # the last is dominated
    # slabs: MACs 1-2 -> mAP 0.3; 2-6 -> 0.5; 6-10 -> 0.8
    expected = 1 * 0.3 + 4 * 0.5 + 4 * 0.8
    assert hypervolume(points, (0.0, 10.0), ("max", "min")) == pytest.approx(expected)
    assert hypervolume(points[:0], (0.0, 10.0), ("max", "min")) == 0.0
    assert hypervolume(np.array([[0.5, 12.0]]), (0.0, 10.0), ("max", "min")) == 0.0


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [2, 3])
def test_hypervolume_matches_inclusion_exclusion(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    directions = ["max", "min", "min"][:k]
    points = rng.random((7, k))
    reference = [0.0, 1.0, 1.0][:k]
    assert hypervolume(points, reference, directions) == pytest.approx(
        brute_hypervolume(points, reference, directions)
    )


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="2 directions for 3 objectives"):
        non_dominated(np.zeros((2, 3)), ("min", "max"))
    with pytest.raises(ValueError, match="directions must be 'min' or 'max', got 'up'"):
        hypervolume(np.zeros((2, 2)), (1, 1), ("min", "up"))
    assert hypervolume(np.array([[-np.inf, 0.0]]), (1.0, 1.0), ("min", "min")) == float("inf")
