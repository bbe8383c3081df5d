"""What the audit recomputes from stored features, once per audit, and how a stored table is compared with it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import zarr

from ..core.spec import BenchmarkSpec
from ..method.intervals import replicate_tasks
from ..method.probe import ProbeResult
from ..stages.curves import group_shape, oracle_frame
from ..stages.probes import probe_group, stored_tasks
from ..store.parquet import read_frame
from ..store.roots import Location

__all__ = ["SCORE_TOLERANCE", "Groups", "Recompute", "Fix", "differs", "read_or_none"]

SCORE_TOLERANCE = 1e-9  # a recomputed score, interval or replicate must agree with the stored one to this

Groups = dict[tuple[str, str], tuple[zarr.Group, BenchmarkSpec]]


@dataclass(frozen=True)
class Fix:
    """One repair; ``run`` says what it did. ``key``: the feature group it rebuilds from. ``suspect``: the stored
    artifact matches its own digest but not what the features give, so either may be forged: repair first checks
    the features against their sources (the generator and the encoder)."""

    run: Callable[[], str]
    key: tuple[str, str] | None = None
    suspect: bool = False


class Recompute:
    """Probe results per (group, eps list, floor), computed once per audit."""

    def __init__(self, groups: Groups) -> None:
        self.groups, self.cache = groups, {}

    def spec(self, key: tuple[str, str], eps, floor: str, thresholds=None, name: str | None = None) -> BenchmarkSpec:
        data_spec = self.groups[key][1]
        changes = {"eps": sorted(float(e) for e in eps), "eigen_floor": floor}
        if thresholds is not None:
            changes["thresholds"] = sorted(float(t) for t in thresholds)
        return BenchmarkSpec.from_dict({**data_spec.to_dict(), **changes, "name": name or data_spec.name})

    def width(self, key: tuple[str, str]) -> int:
        """The feature width p of a group's arrays (what its record's feature_dim must say)."""
        return int(self.groups[key][0]["features/s00_train"].shape[1])

    def results(self, key: tuple[str, str], spec: BenchmarkSpec) -> list[ProbeResult]:
        cache_key = (key, spec.eps, spec.eigen_floor)
        if cache_key not in self.cache:
            self.cache[cache_key] = probe_group(self.groups[key][0], spec)
        return self.cache[cache_key]

    def shape(self, key: tuple[str, str], spec: BenchmarkSpec) -> tuple[int, ...] | None:
        """The group's input shape where the spec's reference and oracle depend on it (natural), else None."""
        return None if spec.covariance == "isotropic" else group_shape(self.groups[key][0])

    def oracles(
        self, spec: BenchmarkSpec, ranks: list[int], shape: tuple[int, ...] | None = None
    ) -> dict[int, pd.DataFrame]:
        """The oracle table of every rank in ``ranks``, simulated afresh (METHOD.md 7.2)."""
        keys = {rank: (spec.data_hash, spec.eps, spec.eigen_floor, rank, shape) for rank in set(ranks) - {0}}
        for rank, cache_key in keys.items():
            if cache_key not in self.cache:
                self.cache[cache_key] = oracle_frame(spec, rank, shape)
        return {rank: self.cache[cache_key] for rank, cache_key in keys.items()}

    def replicates(self, key: tuple[str, str], spec: BenchmarkSpec, count: int) -> list[tuple[int, ProbeResult]]:
        cache_key = (key, spec.eps, spec.eigen_floor, count)
        if cache_key not in self.cache:
            tasks = stored_tasks(self.groups[key][0], spec)
            self.cache[cache_key] = replicate_tasks(tasks, spec.eps, spec.seed, count, spec.eigen_floor)
        return self.cache[cache_key]


def differs(stored: pd.DataFrame, expected: pd.DataFrame, keys: list[str], values: list[str]) -> bool:
    if len(stored) != len(expected) or not set(keys + values) <= set(stored.columns):
        return True
    left = stored.sort_values(keys).reset_index(drop=True)
    right = expected.sort_values(keys).reset_index(drop=True)
    if not np.allclose(left[keys].to_numpy(float), right[keys].to_numpy(float), rtol=0, atol=1e-12):
        return True
    return not np.allclose(left[values].to_numpy(float), right[values].to_numpy(float), rtol=0, atol=SCORE_TOLERANCE)


def read_or_none(file: Location) -> pd.DataFrame | None:
    try:
        return read_frame(file)
    except Exception:  # reported as unreadable by the Parquet check
        return None
