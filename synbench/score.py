"""Stage 4 math: reference and empirical robustness-accuracy curves and the SynBench-Score (METHOD.md 2, 4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import norm

from .probe import ProbeResult

__all__ = [
    "THRESHOLD_GRID",
    "reference_bound",
    "reference_curve",
    "empirical_curve",
    "empirical_curves",
    "synbench_score",
    "score_rows",
    "score_table",
]

THRESHOLD_GRID = np.linspace(0.6, 1.0, 100)  # A in METHOD.md 4


def _bound_at_scale(scale: np.ndarray) -> np.ndarray:
    return 1 + norm.pdf(scale) / (norm.cdf(scale) * scale)


def reference_bound(accuracy: np.ndarray | float) -> np.ndarray:
    """``E_ref(a) = 1 + phi(Phi^-1(a)) / (a Phi^-1(a))`` for accuracies in (0.5, 1)."""
    return _bound_at_scale(norm.ppf(np.asarray(accuracy, dtype=np.float64)))


def _curve(accuracy: np.ndarray, bound: np.ndarray, grid: np.ndarray) -> np.ndarray:
    # (1/|S|) sum_s bound(s) 1[acc(s) > a] for every a of the grid
    return (bound[None, :] * (accuracy[None, :] > grid[:, None])).mean(axis=1)


def reference_curve(scales: Sequence[float], grid: np.ndarray = THRESHOLD_GRID) -> np.ndarray:
    """Bayes-optimal curve on raw data: ndarray of shape (len(grid),)."""
    scale = np.asarray(scales, dtype=np.float64)
    return _curve(norm.cdf(scale), _bound_at_scale(scale), grid)


def empirical_curve(results: Sequence[ProbeResult], grid: np.ndarray = THRESHOLD_GRID) -> np.ndarray:
    """Curve of one eps over the tasks in ``results``: ndarray of shape (len(grid),)."""
    accuracy = np.array([r.accuracy for r in results])
    bound = np.array([r.bound for r in results])
    return _curve(accuracy, bound, grid)


def empirical_curves(results: Sequence[ProbeResult]) -> dict[float, np.ndarray]:
    """One empirical curve per eps present in ``results``."""
    return {eps: empirical_curve([r for r in results if r.eps == eps]) for eps in sorted({r.eps for r in results})}


def synbench_score(
    curve: np.ndarray, reference: np.ndarray, threshold: float, grid: np.ndarray = THRESHOLD_GRID
) -> float:
    """Ratio of the areas under ``curve`` and ``reference`` over grid points ``a >= threshold``."""
    # The grid's own rounding must not drop a point equal to the threshold (0.6, 1.0).
    above = grid >= threshold - 1e-12
    denominator = reference[above].sum()
    return float(curve[above].sum() / denominator) if denominator > 0 else float("nan")


def _mark_best(rows: list[dict], thresholds: Sequence[float]) -> list[dict]:
    # Ties go to the smaller eps; a NaN score never wins.
    for t in thresholds:
        candidates = [row for row in rows if row["threshold"] == t]
        best = max(candidates, key=lambda row: (np.nan_to_num(row["score"], nan=-np.inf), -row["eps"]))
        for row in candidates:
            row["best_eps"] = row is best
    return rows


def score_rows(curves: Mapping[float, np.ndarray], reference: np.ndarray, thresholds: Sequence[float]) -> list[dict]:
    """Score of every (eps, threshold) from curves on the grid, ``best_eps`` marking the top eps per threshold."""
    rows = [
        {"eps": float(eps), "threshold": float(t), "score": synbench_score(curve, reference, t)}
        for eps, curve in sorted(curves.items())
        for t in thresholds
    ]
    return _mark_best(rows, thresholds)


def score_table(results: Sequence[ProbeResult], scales: Sequence[float], thresholds: Sequence[float]) -> list[dict]:
    """Scores straight from probe results (the audit's and the tests' path)."""
    return score_rows(empirical_curves(results), reference_curve(scales), thresholds)
