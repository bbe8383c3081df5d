"""One BLAS thread pool for the probe's linear algebra (issue 21).

The numpy and scipy wheels each bundle an OpenBLAS of their own. After a large numpy product (or a
norm), numpy's worker threads spin for a while waiting for more work; scipy's LAPACK (the probe's
reduction) running meanwhile loses the second core to them and slows by half or more. Measured on
2 cores: the probe at p = 768, n = 2048 + 2048 took 95 ms with its test margins taken by numpy and
48-54 ms with every large product here; the 40 refits of a p = 1280, n = 2048 task took 4.6 s with one
numpy norm left per refit and 2.4 s without. So the probe and its refits take their large products
from scipy's BLAS, the pool their LAPACK uses, and numpy's pool stays asleep. (Holding numpy's pool
to one thread instead does not work where Prefect runs a stage, in a worker thread: OpenBLAS ignores
thread counts set outside the main thread.)
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["frobenius_norm", "product"]


def product(a: np.ndarray, b: np.ndarray, transpose_a: bool = False) -> np.ndarray:
    """``a @ b`` (``a.T @ b`` with ``transpose_a``) in float64 by scipy's BLAS; a Fortran-ordered ``a``
    (the transpose of a C-ordered array) is read in place, any other is copied first."""
    return scipy.linalg.blas.dgemm(1.0, a, b, trans_a=transpose_a)


def frobenius_norm(matrix: np.ndarray) -> float:
    """``np.linalg.norm(matrix)`` by scipy's BLAS (numpy's would wake its own pool); contiguous, any order."""
    return float(scipy.linalg.blas.dnrm2(matrix.reshape(-1, order="A")))
