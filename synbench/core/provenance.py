"""Versions and timestamps recorded with every artifact and leaderboard row."""

from __future__ import annotations

import datetime as dt
from importlib.metadata import PackageNotFoundError, version

from .. import __version__

__all__ = ["GENERATOR_VERSION", "SCORE_VERSION", "versions", "code_version", "utc_now"]

# Bump when the generator's output for a given spec changes (invalidates stored features).
# 2: noise from a counter-based generator whose draws are the same on CPU and CUDA.
GENERATOR_VERSION = 2
# Bump when probe or score results for given features change.
# 2: eigenvalue floor relative to the largest eigenvalue (scale-invariant) by default.
# 3: curves carry the dimension-matched oracle; rows carry score_dm and the probe's power (METHOD.md 7).
SCORE_VERSION = 3


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def versions() -> dict[str, str]:
    """Versions of synbench and the libraries whose behaviour shapes a result."""
    return {
        "synbench_version": __version__,
        "torch_version": _package_version("torch"),
        "timm_version": _package_version("timm"),
        "zarr_version": _package_version("zarr"),
        "numpy_version": _package_version("numpy"),
    }


def code_version() -> str:
    """The part of every cache key that changes when our results would change."""
    return f"synbench-{__version__}-gen{GENERATOR_VERSION}-score{SCORE_VERSION}"


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
