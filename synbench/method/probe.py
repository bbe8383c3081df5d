"""Stage 3: the eps-robust Bayes-optimal linear probe on representations (METHOD.md section 3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.optimize import brentq

from ..core.errors import DataError

__all__ = [
    "FittedProbe",
    "ProbeResult",
    "fit_probe",
    "robust_direction",
    "evaluate_probe",
    "EIGEN_FLOOR",
    "class_mask",
    "kept_from",
    "fit_from_gram",
    "gram_spectrum",
    "eps_weights",
    "score_margins",
    "solve_multiplier",
    "check_eps",
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


def fit_probe(
    features: np.ndarray, labels: np.ndarray, eigen_floor: str = "relative", route: str = "auto"
) -> FittedProbe:
    """Class means, pooled covariance and its eigendecomposition, in float64.

    Args:
        features: ndarray of shape (n_samples, p).
        labels: ndarray of shape (n_samples,), values in {0, 1}.
        eigen_floor: "relative" keeps eigenvalues above 1e-6 x the largest (scale-invariant);
            "absolute" keeps those above 1e-6, as the authors' code does.
        route: "covariance" eigendecomposes the p x p covariance, "gram" the n x n Gram matrix of the
            class-centred samples (same nonzero spectrum); "auto" takes the smaller.
    """
    h = np.asarray(features, dtype=np.float64)
    y = class_mask(labels)
    mean1, mean0 = h[y].mean(axis=0), h[~y].mean(axis=0)
    centred = h - np.where(y[:, None], mean1, mean0)
    if route == "gram" or (route == "auto" and len(h) < h.shape[1]):
        gram = scipy.linalg.blas.dsyrk(1.0, centred, trans=0, lower=0)
        return fit_from_gram(centred, gram, mean1, mean0, eigen_floor)
    # syrk fills only the upper triangle of centred^T centred / (n - 2): half a matmul's work;
    # centred.T is Fortran-ordered, so BLAS reads it without a copy
    pooled_cov = scipy.linalg.blas.dsyrk(1.0 / (len(h) - 2), centred.T, trans=0, lower=0)
    # divide-and-conquer LAPACK driver: about twice as fast as numpy's eigh at p = 768
    eigenvalues, eigenvectors = scipy.linalg.eigh(
        pooled_cov, lower=False, driver="evd", overwrite_a=True, check_finite=False
    )
    first_kept = kept_from(eigenvalues, eigen_floor)
    basis = eigenvectors[:, first_kept:]  # eigh sorts ascending: a trailing slice (a view, no copy)
    return FittedProbe(
        basis=basis,
        eigenvalues=eigenvalues[first_kept:],
        half_mean_diff=basis.T @ (mean1 - mean0) / 2,
        centre=(mean1 + mean0) / 2,
    )


def class_mask(labels: np.ndarray) -> np.ndarray:
    """Labels as a boolean mask of class 1; a split holding one class is a user error."""
    y = np.asarray(labels).astype(bool)
    if y.all() or not y.any():
        raise DataError(
            f"a train split of {len(y)} samples holds a single class; raise n_train (or block_size) in the spec."
        )
    return y


def kept_from(ascending: np.ndarray, eigen_floor: str) -> int:
    """Index of the first eigenvalue kept (METHOD.md 3.3): those above the floor, a trailing slice."""
    floor = EIGEN_FLOOR * max(float(ascending[-1]), 0.0) if eigen_floor == "relative" else EIGEN_FLOOR
    return int(np.searchsorted(ascending, floor, side="right"))


def fit_from_gram(
    centred: np.ndarray, gram: np.ndarray, mean1: np.ndarray, mean0: np.ndarray, eigen_floor: str
) -> FittedProbe:
    """The probe from the Gram matrix ``centred centred^T`` (upper triangle read) of class-centred samples."""
    coefficients, eigenvalues, half_mean_diff = gram_spectrum(centred, gram, mean1 - mean0, eigen_floor)
    return FittedProbe(centred.T @ coefficients, eigenvalues, half_mean_diff, (mean1 + mean0) / 2)


def gram_spectrum(
    centred: np.ndarray, gram: np.ndarray, mean_diff: np.ndarray, eigen_floor: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coefficients, eigenvalues, half_mean_diff) with basis ``centred^T coefficients``, from the Gram matrix.

    ``centred^T centred / (n - 2)`` and ``gram / (n - 2)`` share their nonzero eigenvalues; an
    eigenvector ``u`` of the latter gives ``centred^T u / sqrt((n - 2) lam)`` of the former. For
    n < p this costs an n x n eigendecomposition instead of a p x p one.
    """
    dof = len(centred) - 2
    eigenvalues, vectors = scipy.linalg.eigh(
        gram / dof, lower=False, driver="evd", overwrite_a=True, check_finite=False
    )
    first_kept = kept_from(eigenvalues, eigen_floor)
    eigenvalues, vectors = eigenvalues[first_kept:], vectors[:, first_kept:]
    coefficients = vectors / np.sqrt(dof * eigenvalues)
    return coefficients, eigenvalues, coefficients.T @ (centred @ mean_diff) / 2


def robust_direction(mean_diff: np.ndarray, eigenvalues: np.ndarray, eps: float) -> tuple[np.ndarray, float]:
    """Closed-form ``z*`` of METHOD.md 3.4 and its multiplier ``nu``.

    ``z_i = mu_i / (1 + nu lam_i)`` with ``nu`` the root of
    ``sum_i mu_i^2 / (1 + nu lam_i)^2 = (eps ||mu||)^2``; the left side falls monotonically
    from ``||mu||^2`` at ``nu = 0``, and every term is below ``eps^2 mu_i^2`` once
    ``nu >= (1/eps - 1) / min(lam)``, which brackets the root.
    """
    check_eps(eps)
    if eps == 0 or not mean_diff.any():
        return np.zeros_like(mean_diff), float("inf")
    mu_sq = mean_diff**2
    target = eps**2 * mu_sq.sum()
    nu = solve_multiplier(lambda nu: float((mu_sq / (1 + nu * eigenvalues) ** 2).sum()), target, eps, eigenvalues.min())
    return mean_diff / (1 + nu * eigenvalues), nu


def check_eps(eps: float) -> None:
    """eps must lie in [0, 1): eps >= 1 makes the classifier degenerate (METHOD.md 3.4)."""
    if not 0 <= eps < 1:
        raise ValueError(f"eps must lie in [0, 1); got {eps}")


def solve_multiplier(shrunk_norm_sq: Callable[[float], float], target: float, eps: float, smallest: float) -> float:
    """The ``nu`` at which ``shrunk_norm_sq(nu)`` (falling from ``||mu||^2``) meets ``target = (eps ||mu||)^2``."""

    def excess(log_nu: float) -> float:
        return shrunk_norm_sq(float(np.exp(log_nu))) - target

    # Search in log(nu): eigenvalues span many decades, and the root may sit anywhere among them.
    ratio = (1 / eps - 1) / smallest  # summed as logs where it overflows (a tiny spectrum, a tiny eps)
    upper = (np.log(ratio) if ratio < np.inf else np.log(1 / eps - 1) - np.log(smallest)) + 1
    lower = upper - 1
    while excess(lower) < 0:
        lower -= 8
    return float(np.exp(brentq(excess, lower, upper, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500)))


def evaluate_probe(
    probe: FittedProbe, features: np.ndarray, labels: np.ndarray, scale: float, eps_values: tuple[float, ...]
) -> list[ProbeResult]:
    """Test accuracy and bound (METHOD.md 3.5-3.6) for every eps, reusing one fit.

    Args:
        features: test representations, ndarray of shape (n_samples, p).
        labels: ndarray of shape (n_samples,), values in {0, 1}.
    """
    if probe.rank == 0:  # features carry no variance: every margin is zero
        accuracy = float((~np.asarray(labels).astype(bool)).mean())
        return [ProbeResult(scale, eps, accuracy, 0.0, 0, float("nan")) for eps in eps_values]
    weights, nus = eps_weights(probe.half_mean_diff, probe.eigenvalues, eps_values)
    # margins in feature space, every eps in one (n, p) @ (p, len(eps)) product
    margins = (np.asarray(features, dtype=np.float64) - probe.centre) @ (probe.basis @ weights)
    return score_margins(margins, labels, probe.half_mean_diff @ weights, scale, eps_values, nus, probe.rank)


def eps_weights(
    half_mean_diff: np.ndarray, eigenvalues: np.ndarray, eps_values: tuple[float, ...]
) -> tuple[np.ndarray, list[float]]:
    """``w~ = diag(1/lam1) (mu~ - z*)`` of every eps as the columns of an (r, len(eps)) ndarray, and each ``nu``."""
    # float(eps): a float32 eps (read from a float32 column) would round eps^2 in float32
    solved = [robust_direction(half_mean_diff, eigenvalues, float(eps)) for eps in eps_values]
    weights = np.stack([(half_mean_diff - z) / eigenvalues for z, _ in solved], axis=1)
    return weights, [nu for _, nu in solved]


def score_margins(
    margins: np.ndarray,
    labels: np.ndarray,
    norms: np.ndarray,
    scale: float,
    eps_values: tuple[float, ...],
    nus: list[float],
    rank: int,
) -> list[ProbeResult]:
    """Accuracy and bound from test margins of shape (n, len(eps)); ``norms`` holds each ``mu~^T w~``."""
    y = np.asarray(labels).astype(bool)
    results = []
    for column, (eps, nu) in enumerate(zip(eps_values, nus, strict=True)):
        margin, norm = margins[:, column], abs(float(norms[column]))
        correct = (margin > 0) == y
        bound = float(np.abs(margin[correct]).mean() / norm) if correct.any() and norm > 0 else 0.0
        results.append(ProbeResult(scale, eps, float(correct.mean()), bound, rank, nu))
    return results
