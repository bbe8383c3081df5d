"""The probe without eigenvectors (issue 21); pure: arrays in, arrays out.

Every quantity the probe reports is a function of the pooled covariance applied to one vector: the
eps = 0 direction is ``Sigma^-1 d``, the robust one ``nu (I + nu Sigma)^-1 d``, and ``nu`` solves
``||(I + nu Sigma)^-1 d|| = eps ||d||`` (METHOD.md 3.4 written without the eigenbasis). With
``Sigma = Q T Q^T`` (Householder tridiagonalisation, LAPACK's blocked ``sytrd``) each of them is a
tridiagonal solve in O(p), and ``Q`` is applied to a handful of vectors only: about a quarter of
the cost of the eigendecomposition with eigenvectors, and the same numbers to rounding.

This holds where every eigenvalue is kept by the floor (METHOD.md 3.3); where one falls under it the
dropped subspace must be removed exactly, and the caller takes the eigendecomposition instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.linalg import lapack

__all__ = ["TridiagonalForm", "tridiagonal_form"]


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
        blocked = 64 * out.shape[1] + 4160  # dormqr's optimal workspace: block size 64 and its T factor
        rotated, _, info = lapack.dormqr("L", trans, below, self.tau, out[1:], blocked)
        if info:
            raise RuntimeError(f"LAPACK dormqr failed (info={info})")
        out[1:] = rotated
        return out

    def eigenvalue(self, index: int) -> float:
        """The ``index``-th smallest eigenvalue (0-based), by bisection on T."""
        by_index, position = 2, index + 1  # scipy's code for dstebz's RANGE = 'I'; a 1-based index
        _, values, _, _, info = lapack.dstebz(
            self.diagonal, self.off_diagonal, by_index, 0, 0, position, position, 0, "E"
        )
        if info:
            raise RuntimeError(f"LAPACK dstebz failed (info={info})")
        return float(values[0])

    def lowest(self, bound: float) -> tuple[np.ndarray, np.ndarray]:
        """The eigenvalues at or below ``bound`` (ascending) and their eigenvectors of T, shape (n, count)."""
        radius = np.abs(np.concatenate([self.off_diagonal, [0.0]])) + np.abs(np.concatenate([[0.0], self.off_diagonal]))
        below_all = float((self.diagonal - radius).min()) - 1.0  # Gershgorin: no eigenvalue under it
        if bound <= below_all:
            return np.empty(0), np.empty((len(self.diagonal), 0))
        by_value = 1  # scipy's code for dstebz's RANGE = 'V': the eigenvalues in (vl, vu]
        count, _, _, _, info = lapack.dstebz(self.diagonal, self.off_diagonal, by_value, below_all, bound, 1, 1, 0, "E")
        if info:
            raise RuntimeError(f"LAPACK dstebz failed (info={info})")
        if count == 0:
            return np.empty(0), np.empty((len(self.diagonal), 0))
        return scipy.linalg.eigh_tridiagonal(
            self.diagonal, self.off_diagonal, select="i", select_range=(0, count - 1), lapack_driver="stemr"
        )

    def multiply(self, vectors: np.ndarray) -> np.ndarray:
        """``T @ vectors`` for vectors of shape (n, k)."""
        out = self.diagonal[:, None] * vectors
        out[:-1] += self.off_diagonal[:, None] * vectors[1:]
        out[1:] += self.off_diagonal[:, None] * vectors[:-1]
        return out

    def solve(self, shift: float, scale: float, rhs: np.ndarray) -> np.ndarray:
        """``(shift I + scale T)^-1 rhs``; ``shift I + scale T`` must be positive definite."""
        _, _, solution, info = lapack.dptsv(shift + scale * self.diagonal, scale * self.off_diagonal, rhs)
        if info:
            raise RuntimeError(f"LAPACK dptsv: the shifted tridiagonal matrix is not positive definite (info={info})")
        return solution


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
