"""The dimension-matched oracle of METHOD.md section 7; pure: arrays in, arrays out.

``E_r(a; eps)`` is the expected empirical curve (METHOD.md 4) that the same probe, with the same
sample sizes, scales, eps and eigenvalue floor, reaches on a lossless representation of rank ``r``:
``h = sgn(y) (s / sqrt(r)) 1_r + N(0, I_r)``. It is estimated by Monte Carlo, exactly in distribution
but without drawing the r-dimensional samples:

- the pooled within-class scatter of the train split is Wishart(n_train - 2, I_r), independent of
  the class means; its eigenvalues come from the bidiagonal (Laguerre) model of Dumitriu and Edelman,
  O(r^2) instead of an r x r eigendecomposition;
- its eigenvectors are Haar-distributed and independent of everything else, so in the eigenbasis
  the class mean is ``s`` times a uniform unit vector and the sample means' noise stays Gaussian;
- a test sample's margin ``w^T (h - c)`` is a one-dimensional Gaussian given the fitted probe.

Each draw's eigenvalues serve every task (common random numbers: each task's expectation is
unchanged). Draws are seeded by the spec's seed, ``r`` and the draw index only.

A natural spec's oracle (METHOD.md 7) has the inputs' own geometry of rank ``r`` instead of ``I_r``:
features ``N(sgn(y) s m, diag(lam))`` with ``(lam, m)`` from ``natural.NaturalCovariance.sketch``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.linalg import eigvalsh_tridiagonal

from .probe import EIGEN_FLOOR
from .score import THRESHOLD_GRID

__all__ = ["ORACLE_DRAWS", "OracleCurves", "simulate_oracle", "oracle_curve", "robust_weights"]

ORACLE_DRAWS = 64  # standard error about sd / 8: a sixteenth of a typical 95% half-width (METHOD.md 7.2)
_STREAM = 0x0EAC1E  # separates these draws from every other use of the spec seed


@dataclass(frozen=True)
class OracleCurves:
    """Expected per-task contributions to the oracle curve, for one rank ``r``."""

    rank: int  # r, the dimension of the lossless representation
    scales: tuple[float, ...]  # one task each
    eps: tuple[float, ...]
    contribution: np.ndarray  # (tasks, eps, grid): mean over draws of bound * 1[acc > a]
    draw_curves: np.ndarray  # (draws, eps, grid): each draw's curve (mean over tasks), for standard errors

    @property
    def draws(self) -> int:
        return int(self.draw_curves.shape[0])


def _wishart_eigenvalues(rng: np.random.Generator, dim: int, dof: int) -> np.ndarray:
    """Eigenvalues (ascending) of W / dof with W ~ Wishart(dof, I_dim); zeros where dof < dim.

    Bidiagonal model: B has chi_{dof}, chi_{dof-1}, ... on its diagonal and chi_{k-1}, ..., chi_1 below
    it (k = min(dim, dof)); B B^T is tridiagonal. Where dof < dim the nonzero eigenvalues are those of
    the dual Wishart(dim, I_dof).
    """
    size, degrees = min(dim, dof), max(dim, dof)
    diagonal = np.sqrt(rng.chisquare(degrees - np.arange(size)))
    below = np.sqrt(rng.chisquare(np.arange(size - 1, 0, -1))) if size > 1 else np.zeros(0)
    tri_diagonal = diagonal**2 + np.concatenate([[0.0], below**2])
    eigenvalues = eigvalsh_tridiagonal(tri_diagonal, diagonal[:-1] * below) / dof
    return np.concatenate([np.zeros(dim - size), np.maximum(eigenvalues, 0.0)])


def robust_weights(mean_diff: np.ndarray, eigenvalues: np.ndarray, eps: float) -> np.ndarray:
    """``w~ = diag(1/lam) (mu~ - z*)`` of METHOD.md 3.4-3.5 for a batch of ``mu~`` (rows) sharing ``lam``.

    ``z*_i = mu~_i / (1 + nu lam_i)``; ``nu`` solves ``sum_i mu~_i^2 / (1 + nu lam_i)^2 = (eps ||mu~||)^2``
    by safeguarded Newton steps in log(nu), all rows at once (the same root as ``probe.robust_direction``).
    """
    mu_sq = mean_diff**2
    if eps == 0:
        return mean_diff / eigenvalues
    target = eps**2 * mu_sq.sum(axis=1)
    # bracket of robust_direction: every term is below eps^2 mu_i^2 once nu >= (1/eps - 1) / min(lam)
    high = np.full(len(mean_diff), np.log((1 / eps - 1) / eigenvalues.min()) + 1)
    low = high - 60.0  # nu 1e-26 times smaller: the left side equals ||mu||^2 to machine precision there
    log_nu = high - 1
    for _ in range(200):
        nu = np.exp(log_nu)[:, None]
        shrink = 1 / (1 + nu * eigenvalues)
        excess = (mu_sq * shrink**2).sum(axis=1) - target
        low, high = np.where(excess > 0, log_nu, low), np.where(excess > 0, high, log_nu)
        slope = -2 * (mu_sq * shrink**3 * nu * eigenvalues).sum(axis=1)  # d excess / d log(nu)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = log_nu - excess / slope
        bisect = (low + high) / 2
        new = np.where(np.isfinite(step) & (step > low) & (step < high), step, bisect)
        if np.all(np.abs(new - log_nu) <= 1e-14 * np.maximum(1, np.abs(log_nu))):
            log_nu = new
            break
        log_nu = new
    shrink = 1 / (1 + np.exp(log_nu)[:, None] * eigenvalues)
    return mean_diff * (1 - shrink) / eigenvalues


def _kept(eigenvalues: np.ndarray, eigen_floor: str) -> np.ndarray:
    floor = EIGEN_FLOOR * max(float(eigenvalues[-1]), 0.0) if eigen_floor == "relative" else EIGEN_FLOOR
    return eigenvalues > floor


def _one_draw(
    rng: np.random.Generator,
    scales: np.ndarray,
    n_train: int,
    n_test: int,
    eps_values: Sequence[float],
    rank: int,
    eigen_floor: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and bound of every (task, eps) for one draw: two ndarrays of shape (tasks, eps)."""
    tasks = len(scales)
    eigenvalues = _wishart_eigenvalues(rng, rank, n_train - 2)
    kept = _kept(eigenvalues, eigen_floor)
    eigenvalues = eigenvalues[kept]
    # train split: class sizes, the class mean s * u (u uniform on the sphere) and the sample means' noise
    positives = np.clip(rng.binomial(n_train, 0.5, size=tasks), 1, n_train - 1)
    direction = rng.normal(size=(tasks, rank))
    mean = scales[:, None] * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    noise1 = rng.normal(size=(tasks, rank)) / np.sqrt(positives)[:, None]
    noise0 = rng.normal(size=(tasks, rank)) / np.sqrt(n_train - positives)[:, None]
    mean_diff = (mean + (noise1 - noise0) / 2)[:, kept]  # mu~ in the kept eigenbasis
    centre = ((noise1 + noise0) / 2)[:, kept]
    mean = mean[:, kept]
    # test split: a margin is sgn(y) w.mu - w.c + ||w|| xi with xi ~ N(0, 1), the same samples for every eps
    return _test_scores(rng, (mean_diff, centre, mean), eigenvalues, n_test, eps_values, _euclidean)


def _euclidean(weights: np.ndarray) -> np.ndarray:
    return np.linalg.norm(weights, axis=1)


def _test_scores(
    rng: np.random.Generator,
    statistics: tuple[np.ndarray, np.ndarray, np.ndarray],
    eigenvalues: np.ndarray,
    n_test: int,
    eps_values: Sequence[float],
    spread: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and bound per (task, eps) from the fitted statistics ``mu~``, ``c`` and the true mean (rows: tasks,
    in the kept eigenbasis); ``spread(w~)`` is each margin's noise sd (``||w~||`` for isotropic features)."""
    mean_diff, centre, mean = statistics
    tasks = len(mean_diff)
    test_positive = rng.random((tasks, n_test)) < 0.5
    xi = rng.normal(size=(tasks, n_test))
    accuracy, bound = np.zeros((tasks, len(eps_values))), np.zeros((tasks, len(eps_values)))
    if not len(eigenvalues):
        return accuracy + 0.5, bound
    for column, eps in enumerate(eps_values):
        weights = robust_weights(mean_diff, eigenvalues, eps)
        signal = (weights * mean).sum(axis=1, keepdims=True)
        offset = (weights * centre).sum(axis=1, keepdims=True)
        margins = np.where(test_positive, signal, -signal) - offset + spread(weights)[:, None] * xi
        correct = (margins > 0) == test_positive
        norm = np.abs((mean_diff * weights).sum(axis=1))
        accuracy[:, column] = correct.mean(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_margin = (np.abs(margins) * correct).sum(axis=1) / correct.sum(axis=1)
            bound[:, column] = np.where(correct.any(axis=1) & (norm > 0), mean_margin / norm, 0.0)
    return accuracy, bound


def _one_natural_draw(
    rng: np.random.Generator,
    scales: np.ndarray,
    n_train: int,
    n_test: int,
    eps_values: Sequence[float],
    geometry: tuple[np.ndarray, np.ndarray],
    eigen_floor: str,
) -> tuple[np.ndarray, np.ndarray]:
    """``_one_draw`` for features ``N(sgn(y) s m, diag(lam))`` of a fixed geometry ``(lam, m)`` (METHOD.md 7).

    The within-class scatter is Wishart(n_train - 2, diag(lam)): drawn as ``n_train - 2`` deviations and
    eigendecomposed (O(r^3), no shortcut for an anisotropic scale); it serves every task as before.
    """
    variances, unit_mean = geometry
    tasks, root = len(scales), np.sqrt(variances)
    deviations = rng.normal(size=(n_train - 2, len(variances))) * root
    scatter = scipy.linalg.blas.dsyrk(1.0 / (n_train - 2), deviations.T, trans=0, lower=0)
    eigenvalues, vectors = scipy.linalg.eigh(scatter, lower=False, driver="evd", check_finite=False)
    kept = _kept(eigenvalues, eigen_floor)
    basis, eigenvalues = vectors[:, kept], eigenvalues[kept]
    positives = np.clip(rng.binomial(n_train, 0.5, size=tasks), 1, n_train - 1)
    noise1 = rng.normal(size=(tasks, len(root))) * root / np.sqrt(positives)[:, None]
    noise0 = rng.normal(size=(tasks, len(root))) * root / np.sqrt(n_train - positives)[:, None]
    mean = scales[:, None] * unit_mean
    statistics = ((mean + (noise1 - noise0) / 2) @ basis, (noise1 + noise0) / 2 @ basis, mean @ basis)

    def spread(weights: np.ndarray) -> np.ndarray:  # sd of w^T n for n ~ N(0, diag(lam)), w = basis w~
        return np.sqrt(((weights @ basis.T) ** 2 * variances).sum(axis=1))

    return _test_scores(rng, statistics, eigenvalues, n_test, eps_values, spread)


def simulate_oracle(
    scales: Sequence[float],
    n_train: int,
    n_test: int,
    eps_values: Sequence[float],
    rank: int,
    eigen_floor: str = "relative",
    seed: int = 0,
    draws: int = ORACLE_DRAWS,
    grid: np.ndarray = THRESHOLD_GRID,
    geometry: tuple[np.ndarray, np.ndarray] | None = None,
) -> OracleCurves:
    """Monte-Carlo estimate of ``E_r`` per task and eps (METHOD.md 7.2), a pure function of its arguments.

    ``geometry`` (eigenvalues, unit mean coordinates; each of shape (rank,)) replaces the isotropic
    representation by one of that covariance and mean direction: a natural spec's (``NaturalCovariance.sketch``).
    """
    if rank < 1:
        raise ValueError(f"the oracle needs a rank of at least 1; got {rank}")
    if geometry is not None and not len(geometry[0]) == len(geometry[1]) == rank:
        raise ValueError(f"the oracle's geometry must hold {rank} eigenvalues and mean coordinates")
    scale = np.asarray(scales, dtype=np.float64)
    contribution = np.zeros((len(scale), len(eps_values), len(grid)))
    draw_curves = np.zeros((draws, len(eps_values), len(grid)))
    for draw in range(draws):
        rng = np.random.default_rng([_STREAM, seed, rank, draw])
        if geometry is None:
            accuracy, bound = _one_draw(rng, scale, n_train, n_test, eps_values, rank, eigen_floor)
        else:
            accuracy, bound = _one_natural_draw(rng, scale, n_train, n_test, eps_values, geometry, eigen_floor)
        # bound(s, eps) * 1[acc(s, eps) > a] for every grid point a
        passed = bound[:, :, None] * (accuracy[:, :, None] > grid[None, None, :])
        contribution += passed / draws
        draw_curves[draw] = passed.mean(axis=0)
    return OracleCurves(
        rank, tuple(float(s) for s in scale), tuple(float(e) for e in eps_values), contribution, draw_curves
    )


def oracle_curve(per_task: Sequence[np.ndarray]) -> np.ndarray:
    """``E_r(a; eps)`` for a model whose task ``k`` kept ``r_k`` components: the mean over tasks of each
    task's contribution from the oracle of its own rank. ``per_task[k]``: ndarray of shape (eps, grid)."""
    return np.mean(np.stack(per_task), axis=0)
