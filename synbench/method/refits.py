"""Half-sample refits of the probe on the CPU (intervals.py, METHOD.md section 6); pure: arrays in, arrays out.

Every refit is exact (the same probe as probe.fit_probe on the half, to rounding), solved by
tridiagonal solves rather than eigenvectors (probe_solve). Where a half has fewer points than
features, its refit is made from the Gram matrix of the whole split, computed once per task: the
half's Gram is a sub-matrix of it up to a rank-2 re-centring, and is half-size by half-size instead
of p x p (issue 21).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .blas import product
from .probe import ProbeResult, class_mask
from .probe_solve import Solved, fit, solve_in_sample_space

__all__ = ["CHUNK", "cpu_replicates"]

CHUNK = 40  # replicates whose products with the features are taken together, one pass over them


def cpu_replicates(train, test, halves, scale, eps_values, eigen_floor) -> list[list[ProbeResult]]:
    """Exact refits on the halves of one task.

    A chunk of replicates takes its products with the features together (one matrix product instead of
    a thin one per replicate, which reads the whole feature matrix for a few columns); the refits'
    reductions run one at a time, scipy's LAPACK on every core: two side by side gain nothing on 2 cores
    (55 ms each against 52 ms alone at 1024), one on two threads takes 35 ms (synbench.method.blas).
    """
    split = _Split(train[0], class_mask(train[1]))
    centre = (split.means[0] + split.means[1]) / 2
    # the test split centred once by the whole train split's centre; a half's centre is a small shift from it
    test_offsets, test_y = np.asfortranarray(np.asarray(test[0], dtype=np.float64) - centre), np.asarray(test[1])
    out = []
    for start in range(0, len(halves), CHUNK):
        chunk = halves[start : start + CHUNK]
        solved = split.refits([train_half for train_half, _ in chunk], eps_values, eigen_floor)
        margins = product(test_offsets, np.hstack([s.directions for s in solved]))
        for columns, s, (_, test_half) in zip(_blocks(len(eps_values), len(chunk)), solved, chunk, strict=True):
            shift = product(s.directions, (centre - s.centre)[:, None], True)[:, 0]
            out.append(s.score(margins[test_half, columns] + shift, test_y[test_half], scale, eps_values))
    return out


def _blocks(width: int, count: int) -> list[slice]:
    """The column slices of ``count`` side-by-side blocks ``width`` wide."""
    return [slice(i * width, (i + 1) * width) for i in range(count)]


class _Split:
    """A train split, prepared once for the refits of all its halves.

    Where a half has more points than features, a refit is probe_solve.fit on its rows. Otherwise it
    takes the Gram route from the split's Gram matrix, computed once: with the split sorted class 1
    first, ``o_i`` each sample minus its class mean in the split and ``s_a`` the shift of the half's
    class-a mean from the split's, the half's Gram matrix is a sub-matrix of the split's re-centred,
    ``G_ij = K_ij - o_i . s_b(j) - s_a(i) . o_j + s_a(i) . s_b(j)``; nothing of size (m, p) is copied
    per half.
    """

    def __init__(self, features: np.ndarray, labels: np.ndarray) -> None:
        self.features, self.labels = np.asarray(features, dtype=np.float64), labels
        self.means = self.features[labels].mean(axis=0), self.features[~labels].mean(axis=0)
        self.upper = None
        if len(labels) // 2 < self.features.shape[1]:
            order = np.argsort(~labels, kind="stable")  # class 1 first: a sorted half is then class 1 first too
            self.position = np.empty_like(order)
            self.position[order] = np.arange(len(order))
            # by the split's class means, Fortran-ordered: read in place by the products with it
            self.offsets = np.asfortranarray(self.features[order] - np.where(labels[order, None], *self.means))
            # upper triangle filled (the lower of its transpose): the transposed sub-matrix of sorted rows
            # is then lower-filled and Fortran-ordered, as sytrd takes it
            self.upper = scipy.linalg.blas.dsyrk(1.0, self.offsets, lower=1).T

    def refits(self, train_halves: list[np.ndarray], eps_values, eigen_floor) -> list[Solved]:
        """The probe refitted on each half (indices into the split)."""
        if self.upper is None:
            return [fit((self.features[half], self.labels[half]), eps_values, eigen_floor) for half in train_halves]
        return self._by_gram(train_halves, eps_values, eigen_floor)

    def _by_gram(self, train_halves, eps_values, eigen_floor) -> list[Solved]:
        count, (n, p) = len(train_halves), self.offsets.shape
        rows = [np.sort(self.position[half]) for half in train_halves]
        firsts = [int(class_mask(self.labels[half]).sum()) for half in train_halves]  # one class: a DataError
        weights = np.zeros((2 * count, n))
        for i, (kept, first) in enumerate(zip(rows, firsts, strict=True)):
            weights[2 * i, kept[:first]] = 1 / first
            weights[2 * i + 1, kept[first:]] = 1 / (len(kept) - first)
        shifts = product(weights, self.offsets).reshape(count, 2, p)  # each half's class means minus the split's
        half_diffs = (self.means[0] - self.means[1] + shifts[:, 0] - shifts[:, 1]) / 2
        # o_i . s_1, o_i . s_0 and o_i . d / 2 of every row i, three adjacent columns a half
        projected = product(self.offsets, np.concatenate([shifts, half_diffs[:, None]], axis=1).reshape(-1, p).T)
        blocks = _blocks(len(eps_values), count)
        placed, parts = np.zeros((n, count * len(eps_values))), []
        for i, (kept, first) in enumerate(zip(rows, firsts, strict=True)):
            combinations, *solution = self._gram_solve(
                kept, first, shifts[i], half_diffs[i], projected[kept, 3 * i : 3 * i + 3], eps_values, eigen_floor
            )
            placed[kept, blocks[i]] = combinations
            sums = np.stack([combinations[:first].sum(axis=0), combinations[first:].sum(axis=0)])
            parts.append((shifts[i].T @ sums, solution, self.means[0] + self.means[1] + shifts[i].sum(axis=0)))
        directions = product(self.offsets, placed, True)
        return [
            Solved(directions[:, block] - correction, *solution, sum_of_means / 2)
            for block, (correction, solution, sum_of_means) in zip(blocks, parts, strict=True)
        ]

    def _gram_solve(self, rows, first, shifts, half_diff, projected, eps_values, eigen_floor):
        """solve_in_sample_space for the half on the sorted ``rows`` (class 1 in the ``first`` of them);
        ``projected`` holds each row's offset dotted with the two ``shifts`` and ``half_diff``."""
        membership = np.zeros((len(rows), 2))  # each row's class, as an indicator
        membership[:first, 0] = membership[first:, 1] = 1
        between = shifts @ shifts.T
        # G = K - U E^T - E U^T with U_i = (o_i . s_b - s_a(i) . s_b / 2)_b: one rank-2 update of the
        # lower triangle, the one the reduction reads
        update = projected[:, :2] - membership @ between / 2
        matrix = scipy.linalg.blas.dsyr2k(
            -1.0, update, membership, 1.0, self.upper.take(rows, axis=0).take(rows, axis=1).T, lower=1, overwrite_c=1
        )
        sample_vector = projected[:, 2] - membership @ (shifts @ half_diff)
        return solve_in_sample_space(matrix, first, sample_vector, eps_values, eigen_floor)
