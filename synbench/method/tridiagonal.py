"""A symmetric matrix as ``Q T Q^T`` (LAPACK's blocked Householder ``sytrd``), kept factored: ``Q``
applied to a few vectors, eigenvalues by bisection, eigenpairs of T, shifted tridiagonal solves in
O(n). What the probe makes of it is in probe_solve.py. Pure: arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg
from scipy.linalg import lapack

__all__ = ["NotPositiveDefinite", "TridiagonalForm", "tridiagonal_form"]


class NotPositiveDefinite(RuntimeError):
    """A shifted solve met a matrix that rounding left indefinite."""


@dataclass(frozen=True)
class TridiagonalForm:
    """``matrix = Q T Q^T`` with ``Q`` kept as LAPACK's Householder reflectors."""

    reflectors: np.ndarray  # sytrd's lower-stored reflectors, Fortran order, shape (n, n)
    tau: np.ndarray  # their scalar factors, shape (n - 1,)
    diagonal: np.ndarray  # T's diagonal, shape (n,)
    off_diagonal: np.ndarray  # T's sub-diagonal, shape (n - 1,)

    def to_original(self, vectors: np.ndarray) -> np.ndarray:
        """``Q @ vectors`` for vectors of shape (n, k)."""
        return self._apply(vectors, "N")

    def to_tridiagonal(self, vectors: np.ndarray) -> np.ndarray:
        """``Q^T @ vectors`` for vectors of shape (n, k)."""
        return self._apply(vectors, "T")

    def _apply(self, vectors: np.ndarray, trans: str) -> np.ndarray:
        out = np.array(vectors, dtype=np.float64, order="F", copy=True)
        if len(out) < 2:
            return out
        # Q = H(1) ... H(n-1) acts on rows 2..n exactly as a QR factor whose reflectors sit below the diagonal
        # rows 2..n of columns 1..n-1, without a copy: the same memory read from its second element as an
        # (n, n - 1) array whose last row dormqr never reads (it reads n - 1 rows; lda = n is allowed)
        n = len(self.reflectors)
        below = np.ndarray((n, n - 1), np.float64, self.reflectors.reshape(-1, order="F"), 8, order="F")
        rotated, _, info = lapack.dormqr("L", trans, below, self.tau, out[1:], _ormqr_workspace(out.shape[1]))
        if info:
            raise RuntimeError(f"LAPACK dormqr failed (info={info})")
        out[1:] = rotated
        return out

    def eigenvalue(self, index: int) -> float:
        """The ``index``-th smallest eigenvalue (0-based), by bisection on T."""
        if len(self.diagonal) == 1:
            return float(self.diagonal[0])
        by_index, position = 2, index + 1  # scipy's code for dstebz's RANGE = 'I'; a 1-based index
        _, values, _, _, info = lapack.dstebz(
            self.diagonal, self.off_diagonal, by_index, 0, 0, position, position, 0, "E"
        )
        if info:  # bisection gives up inside a large cluster of equal eigenvalues: take them all
            return float(self.eigenvalues()[index])
        return float(values[0])

    def eigenvalues(self) -> np.ndarray:
        """Every eigenvalue of T, ascending (O(n^2))."""
        return scipy.linalg.eigvalsh_tridiagonal(self.diagonal, self.off_diagonal)

    def count_at_most(self, bound: float) -> int:
        """How many eigenvalues are at or below ``bound``."""
        radius = np.abs(np.concatenate([self.off_diagonal, [0.0]])) + np.abs(np.concatenate([[0.0], self.off_diagonal]))
        below_all = float((self.diagonal - radius).min()) - 1.0  # Gershgorin: no eigenvalue under it
        if bound <= below_all:
            return 0
        if len(self.diagonal) == 1:
            return int(self.diagonal[0] <= bound)
        by_value = 1  # scipy's code for dstebz's RANGE = 'V': the eigenvalues in (vl, vu]
        count, _, _, _, info = lapack.dstebz(self.diagonal, self.off_diagonal, by_value, below_all, bound, 1, 1, 0, "E")
        return int((self.eigenvalues() <= bound).sum()) if info else int(count)

    def eigenpairs(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues ``first`` to ``last`` (0-based, ascending) and their eigenvectors of T, shape (n, count)."""
        if last < first:
            return np.empty(0), np.empty((len(self.diagonal), 0))
        if len(self.diagonal) == 1:
            return self.diagonal.copy(), np.ones((1, 1))
        largest = max(float(np.abs(self.diagonal).max()), float(np.abs(self.off_diagonal).max()))
        if first == last and 0 < largest < np.inf:
            # one vector: bisection and inverse iteration, several times faster than MRRR (stemr) on a
            # spectrum with a cluster at zero; on T scaled to entries of at most 1, as inverse iteration
            # returns NaN (entries over ~1e150) or the wrong pair (under ~1e-155) at extreme magnitudes
            values, vectors = scipy.linalg.eigh_tridiagonal(
                self.diagonal / largest,
                self.off_diagonal / largest,
                select="i",
                select_range=(first, last),
                lapack_driver="stebz",
            )
            if np.isfinite(vectors).all():
                return values * largest, vectors
        try:  # several vectors: MRRR, which keeps them orthogonal
            return scipy.linalg.eigh_tridiagonal(
                self.diagonal, self.off_diagonal, select="i", select_range=(first, last), lapack_driver="stemr"
            )
        except np.linalg.LinAlgError:  # MRRR can fail on large exact clusters; the dense solver does not
            dense = np.diag(self.diagonal) + np.diag(self.off_diagonal, -1)
            return scipy.linalg.eigh(dense, lower=True, subset_by_index=(first, last))

    def scaled(self, exponent: int) -> TridiagonalForm:
        """The same reflectors with T times 2^exponent (exact)."""
        return replace(
            self, diagonal=np.ldexp(self.diagonal, exponent), off_diagonal=np.ldexp(self.off_diagonal, exponent)
        )

    def extreme_exponent(self) -> int:
        """The binary exponent of T's largest entry where it lies outside 2^-256 .. 2^256 (about 1e-77 ..
        1e77), else 0."""
        largest = max(float(np.abs(self.diagonal).max()), float(np.abs(self.off_diagonal).max(initial=0.0)))
        return int(np.frexp(largest)[1]) if 0 < largest < np.inf and not 2.0**-256 <= largest <= 2.0**256 else 0

    def multiply(self, vectors: np.ndarray) -> np.ndarray:
        """``T @ vectors`` for vectors of shape (n, k)."""
        out = self.diagonal[:, None] * vectors
        out[:-1] += self.off_diagonal[:, None] * vectors[1:]
        out[1:] += self.off_diagonal[:, None] * vectors[:-1]
        return out

    def solve(self, shift: float, scale: float, rhs: np.ndarray) -> np.ndarray:
        """``(shift I + scale T)^-1 rhs``; ``shift I + scale T`` must be positive definite."""
        pivots = shift + scale * self.diagonal
        if len(pivots) == 1:  # dptsv wants a sub-diagonal
            if pivots[0] <= 0:
                raise NotPositiveDefinite("the shifted 1 x 1 matrix is not positive")
            return np.asarray(rhs, dtype=np.float64) / pivots[0]
        _, _, solution, info = lapack.dptsv(pivots, scale * self.off_diagonal, rhs)
        if info:
            raise NotPositiveDefinite(f"LAPACK dptsv: the shifted tridiagonal matrix is not positive definite ({info})")
        return solution


def _ormqr_workspace(columns: int) -> int:
    """dormqr's workspace: blocked (block size 64 and its T factor) for many columns; for a few, the
    minimum, which makes it apply the reflectors one by one: forming the blocks' T factors costs more
    than it saves there (n = 1024: 0.3 ms against 2.4 ms for one vector, 0.9 against 2.5 for six)."""
    return 64 * columns + 4160 if columns > 16 else max(columns, 1)


def tridiagonal_form(matrix: np.ndarray) -> TridiagonalForm:
    """Tridiagonalise a symmetric matrix of which only the lower triangle is read; a Fortran-ordered one
    (what BLAS's syrk returns) is overwritten."""
    n = len(matrix)
    (lwork,) = lapack.dsytrd_lwork(n, lower=1)[:1]
    reflectors, diagonal, off_diagonal, tau, info = lapack.dsytrd(
        matrix, lower=1, lwork=max(int(lwork), 1), overwrite_a=matrix.flags.f_contiguous
    )
    if info:
        raise RuntimeError(f"LAPACK dsytrd failed (info={info})")
    return TridiagonalForm(np.asfortranarray(reflectors), tau, diagonal, off_diagonal)
