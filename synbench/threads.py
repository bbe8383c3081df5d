"""Keeping numpy's and scipy's BLAS thread pools off each other (issue 21).

The numpy and scipy wheels each bundle an OpenBLAS of their own. After a product, numpy's worker
threads spin for a while waiting for more work; scipy's LAPACK (the probe's reduction) running then
shares the cores with them and slows down by half or more. Measured on the probe at p = 768,
n = 2048 + 2048, 2 cores: 95 ms with both libraries on two threads, 108 ms with both on one, 51 ms
with numpy's on one and scipy's on two. Where numpy and scipy share one BLAS, nothing changes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import numpy as np
import scipy.linalg  # noqa: F401  (loads scipy's BLAS, so that the controller below sees it)
from threadpoolctl import ThreadpoolController

__all__ = ["lapack_threads"]


@functools.cache
def _pools() -> tuple[ThreadpoolController, ThreadpoolController]:
    """numpy's own BLAS libraries, and every other BLAS library loaded (scipy's among them)."""
    controller = ThreadpoolController().select(user_api="blas")
    numpy_home = os.path.dirname(np.__file__)
    bundled = (numpy_home + os.sep, numpy_home + ".libs" + os.sep)  # inside the package, or beside it (wheels)
    paths = [lib.filepath for lib in controller.lib_controllers]
    own = [path for path in paths if path.startswith(bundled)]
    others = [path for path in paths if path not in own]
    return controller.select(filepath=own if others else []), controller.select(filepath=others)


@contextmanager
def lapack_threads(threads: int | None = None) -> Iterator[None]:
    """Within the block numpy's own BLAS runs on one thread and the others on ``threads`` (None: as
    configured). Thread counts are process-wide: they are restored on leaving."""
    numpy_blas, other_blas = _pools()
    with ExitStack() as stack:
        stack.enter_context(numpy_blas.limit(limits=1))
        if threads is not None:
            stack.enter_context(other_blas.limit(limits=threads))
        yield
