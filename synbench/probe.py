"""Stage 3: the eps-robust Bayes-optimal linear probe on representations (METHOD.md section 3)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.optimize import brentq

from .errors import DataError

__all__ = [
    "FittedProbe",
    "ProbeResult",
    "fit_probe",
    "robust_direction",
    "evaluate_probe",
    "probe_tasks",
    "EIGEN_FLOOR",
]

EIGEN_FLOOR = 1e-6  # eigenvalues at or below this (times the largest, by default) are dropped (METHOD.md 3.3)


@dataclass(frozen=True)
class FittedProbe:
    """Train-split statistics in the eigenbasis of the pooled covariance."""

    basis: np.ndarray  # F1: ndarray of shape (p, r), eigenvectors kept
    eigenvalues: np.ndarray  # lam1: ndarray of shape (r,)
    half_mean_diff: np.ndarray  # mu~ = F1^T (m1 - m0) / 2: ndarray of shape (r,)
    centre: np.ndarray  # c = (m1 + m0) / 2: ndarray of shape (p,)

    @property
    def rank(self) -> int:
        return int(self.eigenvalues.shape[0])


@dataclass(frozen=True)
class ProbeResult:
    """Accuracy and robustness of one probe on one task's test split."""

    scale: float  # ||mu_s|| of the task
    eps: float  # robustness level
    accuracy: float  # test accuracy
    bound: float  # mean scaled distance to the boundary over correct test samples
    rank: int  # eigen-components kept
    nu: float  # Lagrange multiplier of the eps constraint (inf for eps = 0)


def fit_probe(features: np.ndarray, labels: np.ndarray, eigen_floor: str = "relative") -> FittedProbe:
    """Class means, pooled covariance and its eigendecomposition, in float64.

    Args:
        features: ndarray of shape (n_samples, p).
        labels: ndarray of shape (n_samples,), values in {0, 1}.
        eigen_floor: "relative" keeps eigenvalues above 1e-6 x the largest (scale-invariant);
            "absolute" keeps those above 1e-6, as the authors' code does.
    """
    h = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if y.all() or not y.any():
        raise DataError(
            f"a train split of {len(y)} samples holds a single class; raise n_train (or block_size) in the spec."
        )
    mean1, mean0 = h[y].mean(axis=0), h[~y].mean(axis=0)
    centred = h - np.where(y[:, None], mean1, mean0)
    # syrk fills only the upper triangle of centred^T centred / (n - 2): half a matmul's work;
    # centred.T is Fortran-ordered, so BLAS reads it without a copy
    pooled_cov = scipy.linalg.blas.dsyrk(1.0 / (len(h) - 2), centred.T, trans=0, lower=0)
    # divide-and-conquer LAPACK driver: about twice as fast as numpy's eigh at p = 768
    eigenvalues, eigenvectors = scipy.linalg.eigh(
        pooled_cov, lower=False, driver="evd", overwrite_a=True, check_finite=False
    )
    # eigh sorts ascending: the kept components are a trailing slice (a view, no copy)
    floor = EIGEN_FLOOR * max(float(eigenvalues[-1]), 0.0) if eigen_floor == "relative" else EIGEN_FLOOR
    first_kept = int(np.searchsorted(eigenvalues, floor, side="right"))
    basis = eigenvectors[:, first_kept:]
    return FittedProbe(
        basis=basis,
        eigenvalues=eigenvalues[first_kept:],
        half_mean_diff=basis.T @ (mean1 - mean0) / 2,
        centre=(mean1 + mean0) / 2,
    )


def robust_direction(mean_diff: np.ndarray, eigenvalues: np.ndarray, eps: float) -> tuple[np.ndarray, float]:
    """Closed-form ``z*`` of METHOD.md 3.4 and its multiplier ``nu``.

    ``z_i = mu_i / (1 + nu lam_i)`` with ``nu`` the root of
    ``sum_i mu_i^2 / (1 + nu lam_i)^2 = (eps ||mu||)^2``; the left side falls monotonically
    from ``||mu||^2`` at ``nu = 0``, and every term is below ``eps^2 mu_i^2`` once
    ``nu >= (1/eps - 1) / min(lam)``, which brackets the root.
    """
    if not 0 <= eps < 1:
        raise ValueError(f"eps must lie in [0, 1); got {eps}")
    if eps == 0 or not mean_diff.any():
        return np.zeros_like(mean_diff), float("inf")
    mu_sq = mean_diff**2
    target = eps**2 * mu_sq.sum()

    def excess(log_nu: float) -> float:
        return float((mu_sq / (1 + np.exp(log_nu) * eigenvalues) ** 2).sum() - target)

    # Search in log(nu): eigenvalues span many decades, and the root may sit anywhere among them.
    upper = np.log((1 / eps - 1) / eigenvalues.min()) + 1
    lower = upper - 1
    while excess(lower) < 0:
        lower -= 8
    log_nu = brentq(excess, lower, upper, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500)
    nu = float(np.exp(log_nu))
    return mean_diff / (1 + nu * eigenvalues), nu


def evaluate_probe(
    probe: FittedProbe, features: np.ndarray, labels: np.ndarray, scale: float, eps_values: tuple[float, ...]
) -> list[ProbeResult]:
    """Test accuracy and bound (METHOD.md 3.5-3.6) for every eps, reusing one fit.

    Args:
        features: test representations, ndarray of shape (n_samples, p).
        labels: ndarray of shape (n_samples,), values in {0, 1}.
    """
    y = np.asarray(labels).astype(bool)
    centred = np.asarray(features, dtype=np.float64) - probe.centre
    results = []
    for eps in eps_values:
        if probe.rank == 0:  # features carry no variance: every margin is zero
            predicted = np.zeros_like(y)
            results.append(ProbeResult(scale, eps, float((predicted == y).mean()), 0.0, 0, float("nan")))
            continue
        z, nu = robust_direction(probe.half_mean_diff, probe.eigenvalues, eps)
        weights = (probe.half_mean_diff - z) / probe.eigenvalues
        # margins in feature space: one (n, p) @ (p,) product instead of projecting onto the basis
        margins = centred @ (probe.basis @ weights)
        correct = (margins > 0) == y
        norm = abs(float(probe.half_mean_diff @ weights))
        bound = float(np.abs(margins[correct]).mean() / norm) if correct.any() and norm > 0 else 0.0
        results.append(ProbeResult(scale, eps, float(correct.mean()), bound, probe.rank, nu))
    return results


def probe_tasks(
    tasks: Iterable[tuple[float, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]],
    eps_values: tuple[float, ...],
    eigen_floor: str = "relative",
) -> list[ProbeResult]:
    """Fit once per task and evaluate every eps; ``tasks`` yields (scale, (train h, y), (test h, y))."""
    results = []
    for scale, train, test in tasks:
        results.extend(evaluate_probe(fit_probe(*train, eigen_floor=eigen_floor), *test, scale, eps_values))
    return results
