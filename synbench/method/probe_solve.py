"""Stage 3 as the pipeline runs it: the probe of probe.py by tridiagonal solves (issue 21).

Every quantity the probe reports is a function of the pooled covariance applied to one vector
(docs/METHOD.md section 3, "How it is computed"), so the covariance (or, with fewer samples than
features, the Gram matrix) is reduced to tridiagonal form once and each function costs O(p) per
trial of the eps-solve: the results of evaluate_probe(fit_probe(...)) to rounding, at about half
the cost. Pure: arrays in, arrays out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .blas import frobenius_norm, product
from .probe import (
    EIGEN_FLOOR,
    ProbeResult,
    check_eps,
    class_mask,
    eps_weights,
    score_margins,
    solve_multiplier,
)
from .tridiagonal import NotPositiveDefinite, TridiagonalForm, tridiagonal_form

__all__ = [
    "Solved",
    "probe_tasks",
    "fit",
    "fit_and_evaluate",
    "solve_from_covariance",
    "solve_from_gram",
    "solve_in_sample_space",
]


def probe_tasks(
    tasks: Iterable[tuple[float, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]],
    eps_values: tuple[float, ...],
    eigen_floor: str = "relative",
) -> list[ProbeResult]:
    """Fit once per task and evaluate every eps; ``tasks`` yields (scale, (train h, y), (test h, y)).

    On an accelerator: synbench.method.linalg.device_probe_tasks, same arguments and results.
    """
    results = []
    for scale, train, test in tasks:
        results.extend(fit_and_evaluate(train, test, scale, eps_values, eigen_floor))
    return results


@dataclass(frozen=True)
class Solved:
    """The probe's directions in feature space for every eps, its eigenbasis never formed."""

    directions: np.ndarray  # ndarray of shape (p, len(eps))
    norms: np.ndarray  # mu~^T w~ of every eps
    nus: list[float]
    rank: int
    centre: np.ndarray  # c = (m1 + m0) / 2

    def evaluate(
        self, features: np.ndarray, labels: np.ndarray, scale: float, eps_values: tuple[float, ...]
    ) -> list[ProbeResult]:
        """Test accuracy and bound of every eps (METHOD.md 3.5-3.6); rank 0 has zero directions and norms."""
        shifted = np.array(features, dtype=np.float64)  # a copy, centred in place
        shifted -= self.centre
        return self.score(product(self.directions, shifted.T, True).T, labels, scale, eps_values)

    def score(
        self, margins: np.ndarray, labels: np.ndarray, scale: float, eps_values: tuple[float, ...]
    ) -> list[ProbeResult]:
        """``evaluate`` from the margins ``(x - centre) @ directions`` of the test samples."""
        return score_margins(margins, labels, self.norms, scale, eps_values, self.nus, self.rank)


def fit_and_evaluate(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    scale: float,
    eps_values: tuple[float, ...],
    eigen_floor: str = "relative",
) -> list[ProbeResult]:
    """evaluate_probe(fit_probe(*train), *test, ...), the same results to rounding at about half the
    cost: the matrix is tridiagonalised, never eigendecomposed with eigenvectors (synbench.method.tridiagonal)."""
    return fit(train, eps_values, eigen_floor).evaluate(*test, scale, eps_values)


def fit(train: tuple[np.ndarray, np.ndarray], eps_values: tuple[float, ...], eigen_floor: str = "relative") -> Solved:
    """The probe on ``train`` (features, labels) for every eps, by the covariance or, with fewer samples
    than features, the Gram matrix."""
    y = class_mask(train[1])
    first = int(y.sum())
    # class 1 first (the order of samples is immaterial to the probe): each class a block of rows
    centred = np.asarray(train[0])[np.argsort(~y, kind="stable")].astype(np.float64, copy=False)
    mean1, mean0 = centred[:first].mean(axis=0), centred[first:].mean(axis=0)
    centred[:first] -= mean1
    centred[first:] -= mean0
    if len(centred) < centred.shape[1]:
        gram = scipy.linalg.blas.dsyrk(1.0, centred, trans=0, lower=1)
        return solve_from_gram(centred, gram, first, mean1, mean0, eps_values, eigen_floor)
    covariance = scipy.linalg.blas.dsyrk(1.0 / (len(centred) - 2), centred.T, trans=0, lower=1)
    return solve_from_covariance(covariance, mean1, mean0, eps_values, eigen_floor)


def solve_from_covariance(
    covariance: np.ndarray, mean1: np.ndarray, mean0: np.ndarray, eps_values: tuple[float, ...], eigen_floor: str
) -> Solved:
    """The probe from the pooled covariance (lower triangle read)."""
    form = tridiagonal_form(covariance)
    directions, norms, nus, rank = _solve(form, (mean1 - mean0) / 2, None, eps_values, eigen_floor, deflated=0)
    return Solved(directions, norms, nus, rank, (mean1 + mean0) / 2)


def solve_from_gram(
    centred: np.ndarray,
    gram: np.ndarray,
    first: int,
    mean1: np.ndarray,
    mean0: np.ndarray,
    eps_values: tuple[float, ...],
    eigen_floor: str,
) -> Solved:
    """The probe from the Gram matrix ``centred centred^T`` of class-centred samples, class 1 in the
    ``first`` rows; its lower triangle is read and overwritten."""
    combinations, norms, nus, rank = solve_in_sample_space(
        gram, first, product(centred.T, (mean1 - mean0)[:, None] / 2, True)[:, 0], eps_values, eigen_floor
    )
    return Solved(product(centred.T, combinations), norms, nus, rank, (mean1 + mean0) / 2)


def solve_in_sample_space(
    gram: np.ndarray, first: int, sample_vector: np.ndarray, eps_values: tuple[float, ...], eigen_floor: str
) -> tuple[np.ndarray, np.ndarray, list[float], int]:
    """The probe's directions as combinations of the class-centred samples (``w = centred^T c``), their
    norms, nus and rank, from their Gram matrix (lower triangle read and overwritten; class 1 in the
    ``first`` rows) and ``sample_vector = centred (m1 - m0) / 2``.

    Class-centring leaves each class's indicator vector in the Gram matrix's null space; those two
    known directions are lifted above the spectrum (``sample_vector`` is orthogonal to them, so no
    result changes) rather than found and dropped by the floor.
    """
    dof = len(gram) - 2
    gram /= dof
    # above every eigenvalue, and no further (the reduction's rounding scales with the largest): the
    # Frobenius norm bounds the spectrum, and x 1.5 covers a matrix whose lower triangle alone is filled
    lift = 1.5 * frobenius_norm(gram)
    gram[:first, :first] += lift / first
    gram[first:, first:] += lift / (len(gram) - first)
    return _solve(tridiagonal_form(gram), sample_vector, dof, eps_values, eigen_floor, 2)


def _solve(
    form: TridiagonalForm,
    vector: np.ndarray,
    dof: int | None,
    eps_values: tuple[float, ...],
    eigen_floor: str,
    deflated: int,
    floor_exponent: int = 0,
) -> tuple[np.ndarray, np.ndarray, list[float], int]:
    """Directions in the matrix's space, norms, nus and rank (METHOD.md 3.4 as functions of T).

    ``dof`` given, the matrix is a Gram matrix over dof and ``vector`` lives in sample space: every
    function picks up a factor ``T^-1 / dof`` (as in gram_spectrum); its ``deflated`` largest
    eigenvalues are not the matrix's own. Where the floor drops most of the spectrum, or rounding
    left a dropped eigenvalue too negative for the shifted solves, the kept eigenvectors of T are
    computed instead (the eigendecomposition route, on T). ``floor_exponent``: T is the matrix times
    2^floor_exponent, and so is the absolute floor.
    """
    for eps in eps_values:
        check_eps(eps)
    eps_values = tuple(float(eps) for eps in eps_values)  # a float32 eps would round eps^2 ||mu||^2
    exponent = form.extreme_exponent()
    if exponent:
        # T and the vector scaled by powers of two (exactly), as the O(n) solves square T's entries (under
        # ~1e-154 they vanish). With T / 2^e and the vector / 2^k, nu scales by 2^e, directions by
        # 2^(power e - k) and norms by 2^(power e - 2k): power 1 for a covariance, 2 for a Gram matrix
        # (its vector is quadratic in the features too, so k = e there; half of it for a covariance's)
        power, shift = (1, exponent // 2) if dof is None else (2, exponent)
        scaled = form.scaled(-exponent)
        directions, norms, nus, rank = _solve(
            scaled, np.ldexp(vector, -shift), dof, eps_values, eigen_floor, deflated, -exponent
        )
        directions = np.ldexp(directions, shift - power * exponent)
        norms = np.ldexp(norms, 2 * shift - power * exponent)
        return directions, norms, [float(np.ldexp(nu, -exponent)) for nu in nus], rank
    own = len(form.diagonal) - deflated
    largest = form.eigenvalue(own - 1)
    relative = eigen_floor == "relative"
    floor = EIGEN_FLOOR * max(largest, 0.0) if relative else float(np.ldexp(EIGEN_FLOOR, floor_exponent))
    dropped = form.count_at_most(floor)
    rank = max(own - dropped, 0)
    if rank == 0:
        return _nothing_kept(len(vector), len(eps_values))
    kept = _KeptSpace(form, dropped) if dropped < rank else None
    if kept and kept.smallest > floor:  # bisection can disagree with the count where the spectrum is rounding
        try:
            return _by_solves(kept, vector, dof, eps_values) + (rank,)
        except NotPositiveDefinite:
            pass
    return _by_eigenvectors(form, vector, dof, eps_values, dropped, own, floor)


def _by_solves(kept: _KeptSpace, vector, dof, eps_values) -> tuple[np.ndarray, np.ndarray, list[float]]:
    form = kept.form
    b = kept.project(form.to_tridiagonal(vector[:, None]))
    dual = b if dof is None else kept.inverse(b) / dof
    total = float(b[:, 0] @ dual[:, 0])  # ||mu~||^2
    both = np.hstack([b, dual])
    columns, nus = [], []
    for eps in eps_values:
        if eps == 0 or total == 0:
            columns.append(kept.inverse(dual) if eps == 0 else np.zeros_like(dual))
            nus.append(float("inf"))
            continue

        def shrunk_norm_sq(nu: float) -> float:  # mu~^T diag(1 / (1 + nu lam))^2 mu~
            shrunk = kept.shrink(nu, both)
            return float(shrunk[:, 0] @ shrunk[:, 1])

        nu = solve_multiplier(shrunk_norm_sq, eps**2 * total, eps, kept.smallest)
        columns.append(nu * kept.shrink(nu, dual))
        nus.append(nu)
    directions = np.hstack(columns)
    return form.to_original(directions), b[:, 0] @ directions, nus


def _by_eigenvectors(
    form, vector, dof, eps_values, first, own, floor
) -> tuple[np.ndarray, np.ndarray, list[float], int]:
    eigenvalues, vectors = form.eigenpairs(first, own - 1)
    kept = eigenvalues > floor  # MRRR's values may disagree with the bisection count at a spectrum's rounding level
    eigenvalues, vectors = eigenvalues[kept], vectors[:, kept]
    if not len(eigenvalues):
        return _nothing_kept(len(vector), len(eps_values))
    coefficients = form.to_original(vectors)
    if dof is not None:
        coefficients /= np.sqrt(dof * eigenvalues)
    half_mean_diff = coefficients.T @ vector
    weights, nus = eps_weights(half_mean_diff, eigenvalues, eps_values)
    return coefficients @ weights, half_mean_diff @ weights, nus, len(eigenvalues)


def _nothing_kept(size: int, count: int) -> tuple[np.ndarray, np.ndarray, list[float], int]:
    """Rank 0: zero directions and norms, no nu."""
    return np.zeros((size, count)), np.zeros(count), [float("nan")] * count, 0


class _KeptSpace:
    """Functions of T on the span of the eigenvectors that the floor keeps (METHOD.md 3.3).

    The few eigenvectors under the floor are computed (O(n) each) and projected out. ``T^-1`` there
    is reached by iterative refinement on ``T + tau I``, ``tau`` a hundredth of the smallest kept
    eigenvalue: each step shrinks the error a hundredfold, and the shift keeps a tiny dropped
    eigenvalue from ever being divided by (one that rounding left below ``-tau`` raises
    NotPositiveDefinite).
    """

    def __init__(self, form: TridiagonalForm, dropped: int) -> None:
        self.form, self.dropped = form, dropped
        self.dropped_vectors = form.eigenpairs(0, dropped - 1)[1]
        self.smallest = form.eigenvalue(dropped)
        self.shift = 0.01 * self.smallest if dropped else 0.0

    def project(self, vectors: np.ndarray) -> np.ndarray:
        if not self.dropped:
            return vectors
        return vectors - self.dropped_vectors @ (self.dropped_vectors.T @ vectors)

    def shrink(self, nu: float, vectors: np.ndarray) -> np.ndarray:
        """``(I + nu T)^-1 vectors`` for vectors in the kept space."""
        return self.project(self.form.solve(1.0, nu, vectors))

    def inverse(self, vectors: np.ndarray) -> np.ndarray:
        """``T^-1 vectors`` for vectors in the kept space."""
        if not self.dropped:
            return self.form.solve(0.0, 1.0, vectors)
        solution = np.zeros_like(vectors)
        residual = vectors
        for _ in range(_REFINEMENT_STEPS):
            step = self.project(self.form.solve(self.shift, 1.0, residual))
            solution = solution + step
            residual = vectors - self.project(self.form.multiply(solution))
            if np.abs(step).max() <= 1e-15 * np.abs(solution).max():
                break
        return solution


_REFINEMENT_STEPS = 12  # a hundredfold each: from 1 to under 1e-16 of the solution in 8, and a margin
