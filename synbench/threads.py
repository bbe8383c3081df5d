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
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import scipy.linalg  # noqa: F401  (loads scipy's BLAS, so that the controller below sees it)
from threadpoolctl import ThreadpoolController

__all__ = ["lapack_threads"]


@functools.cache
def _numpy_blas() -> ThreadpoolController:
    """numpy's own BLAS libraries, where another BLAS (scipy's) is loaded beside them; else none."""
    controller = ThreadpoolController().select(user_api="blas")
    numpy_home = os.path.dirname(np.__file__)
    bundled = (numpy_home + os.sep, numpy_home + ".libs" + os.sep)  # inside the package, or beside it (wheels)
    paths = [lib.filepath for lib in controller.lib_controllers]
    own = [path for path in paths if path.startswith(bundled)]
    return controller.select(filepath=own if len(own) < len(paths) else [])


class _Hold:
    """Counts the blocks inside ``lapack_threads`` (stages may run in several threads at once): the first
    sets numpy's BLAS to one thread, the last one out restores it."""

    def __init__(self) -> None:
        self.lock, self.inside, self.limiter = threading.Lock(), 0, None

    def enter(self) -> None:
        with self.lock:
            if not self.inside:
                self.limiter = _numpy_blas().limit(limits=1)
            self.inside += 1

    def leave(self) -> None:
        with self.lock:
            self.inside -= 1
            if not self.inside:
                self.limiter.restore_original_limits()


_HOLD = _Hold()


@contextmanager
def lapack_threads() -> Iterator[None]:
    """Within the block numpy's own BLAS runs on one thread; scipy's keeps its threads."""
    _HOLD.enter()
    try:
        yield
    finally:
        _HOLD.leave()
