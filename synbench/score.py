"""Stage 4: reference and empirical robustness-accuracy curves and the SynBench-Score (METHOD.md 2, 4)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from .probe import ProbeResult, load_probe_table
from .spec import BenchmarkSpec
from .store import atomic_write_parquet, safe_path

__all__ = [
    "THRESHOLD_GRID",
    "reference_bound",
    "reference_curve",
    "empirical_curve",
    "synbench_score",
    "score_table",
    "curves_frame",
    "curves_stored",
    "scores_from_curves",
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


def score_table(results: Sequence[ProbeResult], scales: Sequence[float], thresholds: Sequence[float]) -> list[dict]:
    """Score of every (eps, threshold), with ``best_eps`` marking the top eps per threshold."""
    return scores_from_curves(curves_frame(results, scales), thresholds)


def curves_frame(results: Sequence[ProbeResult], scales: Sequence[float]) -> pd.DataFrame:
    """Long table of both curves on the grid: columns eps, accuracy_threshold, empirical, reference."""
    reference = reference_curve(scales)
    frames = []
    for eps in sorted({r.eps for r in results}):
        curve = empirical_curve([r for r in results if r.eps == eps])
        frames.append(
            pd.DataFrame({"eps": eps, "accuracy_threshold": THRESHOLD_GRID, "empirical": curve, "reference": reference})
        )
    return pd.concat(frames, ignore_index=True)


def curves_stored(root: Path, probe_path: Path, spec: BenchmarkSpec) -> Path:
    """Stage 4: curves of one probe table, stored beside it under ``curves/``."""
    path = safe_path(root, "curves", probe_path.name)
    if not path.is_file():
        atomic_write_parquet(path, curves_frame(load_probe_table(probe_path), spec.scales))
    return path


def scores_from_curves(curves: pd.DataFrame, thresholds: Sequence[float]) -> list[dict]:
    """Score rows (eps, threshold, score, best_eps) from a stored curves table."""
    rows = []
    for eps, part in curves.groupby("eps", sort=True):
        rows.extend(
            {
                "eps": float(eps),
                "threshold": t,
                "score": synbench_score(part["empirical"].to_numpy(), part["reference"].to_numpy(), t),
            }
            for t in thresholds
        )
    return _mark_best(rows, thresholds)
