"""Stage 4 math: reference and empirical robustness-accuracy curves and the SynBench-Score (METHOD.md 2, 4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import norm

from .probe import ProbeResult

__all__ = [
    "THRESHOLD_GRID",
    "Reference",
    "reference_bound",
    "reference_curve",
    "reference_at",
    "empirical_curve",
    "empirical_curves",
    "synbench_score",
    "score_rows",
    "score_table",
    "area",
    "add_dimension_matched",
    "power_flags",
    "UNDERPOWERED_RATIO",
    "POWERED_RATIO",
]

UNDERPOWERED_RATIO = 0.5  # r / n_train at or above which the probe's error dominates (METHOD.md 7.3)
POWERED_RATIO = 0.25  # the r / n_train that n_train_needed brings a row to

THRESHOLD_GRID = np.linspace(0.6, 1.0, 100)  # A in METHOD.md 4
# E_ref on the grid: one curve for every eps (isotropic inputs), or one per eps (a natural spec, METHOD.md 2)
Reference = np.ndarray | Mapping[float, np.ndarray]


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


def reference_at(reference: Reference, eps: float) -> np.ndarray:
    """The reference curve that scores eps."""
    return reference[eps] if isinstance(reference, Mapping) else reference


def empirical_curve(results: Sequence[ProbeResult], grid: np.ndarray = THRESHOLD_GRID) -> np.ndarray:
    """Curve of one eps over the tasks in ``results``: ndarray of shape (len(grid),)."""
    accuracy = np.array([r.accuracy for r in results])
    bound = np.array([r.bound for r in results])
    return _curve(accuracy, bound, grid)


def empirical_curves(results: Sequence[ProbeResult]) -> dict[float, np.ndarray]:
    """One empirical curve per eps present in ``results``."""
    return {eps: empirical_curve([r for r in results if r.eps == eps]) for eps in sorted({r.eps for r in results})}


def area(curve: np.ndarray, threshold: float, grid: np.ndarray = THRESHOLD_GRID) -> float:
    """Sum of a curve over the grid points ``a >= threshold``."""
    # The grid's own rounding must not drop a point equal to the threshold (0.6, 1.0).
    return float(curve[grid >= threshold - 1e-12].sum())


def synbench_score(
    curve: np.ndarray, reference: np.ndarray, threshold: float, grid: np.ndarray = THRESHOLD_GRID
) -> float:
    """Ratio of the areas under ``curve`` and ``reference`` over grid points ``a >= threshold``."""
    denominator = area(reference, threshold, grid)
    return area(curve, threshold, grid) / denominator if denominator > 0 else float("nan")


def _mark_best(
    rows: list[dict], thresholds: Sequence[float], score: str = "score", mark: str = "best_eps"
) -> list[dict]:
    # Ties go to the smaller eps; a NaN score never wins.
    for t in thresholds:
        candidates = [row for row in rows if row["threshold"] == t]
        best = max(candidates, key=lambda row: (np.nan_to_num(row[score], nan=-np.inf), -row["eps"]))
        for row in candidates:
            row[mark] = row is best
    return rows


def score_rows(curves: Mapping[float, np.ndarray], reference: Reference, thresholds: Sequence[float]) -> list[dict]:
    """Score of every (eps, threshold) from curves on the grid, ``best_eps`` marking the top eps per threshold."""
    rows = [
        {"eps": float(eps), "threshold": float(t), "score": synbench_score(curve, reference_at(reference, eps), t)}
        for eps, curve in sorted(curves.items())
        for t in thresholds
    ]
    return _mark_best(rows, thresholds)


def score_table(results: Sequence[ProbeResult], scales: Sequence[float], thresholds: Sequence[float]) -> list[dict]:
    """Scores straight from probe results (the audit's and the tests' path)."""
    return score_rows(empirical_curves(results), reference_curve(scales), thresholds)


def add_dimension_matched(rows: list[dict], reference: Reference, oracle: Mapping[float, np.ndarray]) -> list[dict]:
    """Add ``score_dm`` (METHOD.md 7.2) with its interval and replicates (7.4) to score rows; ``best_eps_dm``.

    ``score_dm = sum E / sum E_r = score x area(E_ref) / area(E_r)``: the paper score's interval and
    half-sample replicates scale by the same factor. Where the oracle's area is 0 it is not a number (NaN).
    """
    for row in rows:
        oracle_area = area(oracle[row["eps"]], row["threshold"]) if row["eps"] in oracle else 0.0
        reference_area = area(reference_at(reference, row["eps"]), row["threshold"])
        factor = reference_area / oracle_area if oracle_area > 0 else float("nan")
        row["score_dm"] = row["score"] * factor
        for end in ("low", "high"):
            if f"score_{end}" in row:
                row[f"score_dm_{end}"] = row[f"score_{end}"] * factor
        if "score_replicates" in row:
            row["score_dm_replicates"] = [value * factor for value in row["score_replicates"]]
    return _mark_best(rows, sorted({row["threshold"] for row in rows}), "score_dm", "best_eps_dm")


def power_flags(ranks: Sequence[int], n_train: int, feature_dim: int) -> dict:
    """``probe_rank``, ``r_over_n``, ``underpowered`` and ``n_train_needed`` of a model (METHOD.md 7.1, 7.3).

    ``r`` is the most components any task's probe kept. It is capped by the split when the features are at
    least as wide as ``n_train - 2`` and the probe kept (nearly) all the split allows; then the n_train that
    brings ``r / n_train`` to 0.25 is reckoned from the feature width ``p`` instead of ``r``.
    """
    rank = int(max(ranks, default=0))
    capped = feature_dim >= n_train - 2 and rank >= 0.95 * (n_train - 2)
    return {
        "probe_rank": rank,
        "r_over_n": rank / n_train,
        "underpowered": bool(rank / n_train >= UNDERPOWERED_RATIO),
        "n_train_needed": int(np.ceil((feature_dim if capped else rank) / POWERED_RATIO)),
    }
