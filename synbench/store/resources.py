"""What a benchmark will need, estimated before any work starts, and refused when it cannot fit."""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..core.covariance import check_covariance_shape
from ..core.errors import SpecError
from ..core.spec import BenchmarkSpec
from .roots import is_remote, location

__all__ = ["Estimate", "estimate", "check_resources"]

GIB = 2**30


@dataclass(frozen=True)
class Estimate:
    """Peak memory of the largest step and disk for the stored features, in bytes."""

    probe_memory: int  # covariance, eigenvectors and workspace (p x p, float64) plus the train split in float64
    block_memory: int  # one generated block of inputs and the generator's temporaries
    disk: int  # float32 features, uncompressed (an upper bound)

    @property
    def memory(self) -> int:
        return max(self.probe_memory, self.block_memory)


def estimate(spec: BenchmarkSpec, input_dim: int, feature_dim: int) -> Estimate:
    probe = 3 * 8 * feature_dim**2 + 2 * 8 * max(spec.n_train, spec.n_test) * feature_dim
    # a natural spec's FFT filter holds three more block-sized float32 temporaries (spectrum, filtered, mixed)
    block = (3 if spec.covariance == "isotropic" else 6) * 4 * spec.block_size * input_dim
    disk = 4 * len(spec.scales) * (spec.n_train + spec.n_test) * (feature_dim + 1)
    return Estimate(probe, block, disk)


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _free_disk(root: Path) -> int:
    existing = Path(root).absolute()
    while not existing.exists():
        existing = existing.parent
    return shutil.disk_usage(existing).free


def check_resources(
    spec: BenchmarkSpec, input_shape: tuple[int, ...], feature_dim: int, root: str | os.PathLike, model: str
) -> None:
    """Refuse a benchmark whose input shape the spec's covariance cannot take, or whose memory or disk needs
    exceed what this machine has, saying by how much."""
    check_covariance_shape(spec.covariance, tuple(input_shape), model)
    input_dim = math.prod(input_shape)
    need = estimate(spec, input_dim, feature_dim)
    memory = _available_memory()
    if need.memory > memory:
        step = (
            f"the probe's covariance of p = {feature_dim} features"
            if need.probe_memory >= need.block_memory
            else (f"generating blocks of {spec.block_size} inputs of {input_dim} values")
        )
        raise SpecError(
            f"{model} on spec {spec.name} needs about {need.memory / GIB:.1f} GiB of memory ({step}) but "
            f"{memory / GIB:.1f} GiB is available; use a model with fewer features, a smaller input_shape "
            "or block_size."
        )
    root = location(root)
    if is_remote(root):  # an object store: its capacity is not ours to know
        return
    free = _free_disk(root)
    if need.disk > free:
        raise SpecError(
            f"{model} on spec {spec.name} needs up to {need.disk / GIB:.1f} GiB of disk for its features but "
            f"{free / GIB:.1f} GiB is free under {root}; free space or use fewer scales or samples."
        )
