"""Stage I/O: where each stage's artifact lives and how it is made from the one before.

The math modules (generate, probe, score) take and return arrays; this module reads their inputs
from the store and writes their outputs to it. Every ``*_stored`` function reuses an existing
artifact, so a rerun recomputes nothing; ``flows/tasks.py`` and the notebook API call these.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pandas as pd
import zarr

from ..core.errors import IncompleteError
from ..core.provenance import SCORE_VERSION
from ..core.spec import BenchmarkSpec
from ..method.generate import make_recipe
from ..method.intervals import replicate_curves, replicate_tasks
from ..method.linalg import device_probe_tasks
from ..method.probe import ProbeResult
from ..store.features import feature_group_path, open_feature_group, read_split
from ..store.lineage import parents_of
from ..store.parquet import atomic_write_parquet, read_frame
from ..store.roots import Location, atomic_write_json, content_key, safe_path

__all__ = [
    "recipe_path",
    "open_stored_group",
    "write_recipe",
    "probe_table_path",
    "stored_tasks",
    "probe_group",
    "probe_stored",
    "load_probe_table",
    "results_frame",
    "replicates_path",
    "replicates_stored",
    "named_replicates",
    "load_replicate_curves",
]


def recipe_path(root: Location, spec: BenchmarkSpec) -> Location:
    return safe_path(root, "recipes", f"{spec.data_hash}.json")


def write_recipe(spec: BenchmarkSpec, root: Location) -> Location:
    """Stage 1: store the recipe once per data hash; an existing recipe is left untouched."""
    path = recipe_path(root, spec)
    if not path.is_file():
        atomic_write_json(path, make_recipe(spec))
    return path


def probe_table_path(root: Location, fingerprint: str, spec: BenchmarkSpec) -> Location:
    """Probe results are keyed by the features key, the eps list and the eigenvalue floor."""
    eps_key = content_key(list(spec.eps), spec.eigen_floor, SCORE_VERSION)
    return safe_path(root, "probes", f"{fingerprint}-{spec.data_hash}-{eps_key}.parquet")


def stored_tasks(group: zarr.Group, spec: BenchmarkSpec) -> Iterator[tuple[float, tuple, tuple]]:
    """(scale, (train features, labels), (test features, labels)) of every task, read from a group."""
    for scale_index, scale in enumerate(spec.scales):
        yield scale, read_split(group, scale_index, "train"), read_split(group, scale_index, "test")


def probe_group(group: zarr.Group, spec: BenchmarkSpec, device: str = "cpu") -> list[ProbeResult]:
    """Probe results of every task and eps; ``device`` "cuda" fits on the GPU (linalg.py), else on the CPU."""
    return device_probe_tasks(stored_tasks(group, spec), spec.eps, spec.eigen_floor, device)


def results_frame(results: list[ProbeResult], eigen_floor: str) -> pd.DataFrame:
    return pd.DataFrame([dataclasses.asdict(r) for r in results]).assign(eigen_floor=eigen_floor)


def load_probe_table(path: Location) -> list[ProbeResult]:
    frame = read_frame(path).drop(columns="eigen_floor", errors="ignore")
    return [ProbeResult(**row) for row in frame.to_dict(orient="records")]


def open_stored_group(root: Location, fingerprint: str, spec: BenchmarkSpec) -> zarr.Group:
    group = open_feature_group(root, fingerprint, spec.data_hash)
    if group is None:
        raise IncompleteError(
            f"no features stored for model {fingerprint} and data {spec.data_hash}; run the extraction first."
        )
    return group


def _features_parent(root: Location, fingerprint: str, spec: BenchmarkSpec) -> dict[str, str]:
    return parents_of(root, feature_group_path(root, fingerprint, spec.data_hash))


def probe_stored(root: Location, fingerprint: str, spec: BenchmarkSpec, device: str = "cpu") -> Location:
    """Stage 3: probe table for stored features; an existing table is reused."""
    path = probe_table_path(root, fingerprint, spec)
    if not path.is_file():
        group = open_stored_group(root, fingerprint, spec)
        results = probe_group(group, spec, device)
        atomic_write_parquet(path, results_frame(results, spec.eigen_floor), _features_parent(root, fingerprint, spec))
    return path


def replicates_path(root: Location, fingerprint: str, spec: BenchmarkSpec, replicates: int) -> Location:
    """Half-sample replicates of a probe table (intervals.py), named after it and their count."""
    return safe_path(root, "probes", f"{probe_table_path(root, fingerprint, spec).stem}-half{replicates}.parquet")


def replicates_stored(
    root: Location, fingerprint: str, spec: BenchmarkSpec, replicates: int, device: str = "cpu"
) -> Location | None:
    """Stage 3, intervals: probe results of every half-sample replicate; ``replicates = 0`` makes none."""
    if replicates == 0:
        return None
    path = replicates_path(root, fingerprint, spec, replicates)
    if not path.is_file():
        tasks = stored_tasks(open_stored_group(root, fingerprint, spec), spec)
        pairs = replicate_tasks(tasks, spec.eps, spec.seed, replicates, spec.eigen_floor, device)
        frame = results_frame([result for _, result in pairs], spec.eigen_floor)
        frame = frame.assign(replicate=[replicate for replicate, _ in pairs])
        atomic_write_parquet(path, frame, _features_parent(root, fingerprint, spec))
    return path


def named_replicates(root: Location, rows: pd.DataFrame) -> Location | None:
    """The replicate table that board rows name (``replicates_file``), or None for rows without intervals."""
    name = rows["replicates_file"].iloc[0] if "replicates_file" in rows else None
    return safe_path(root, "probes", name) if isinstance(name, str) and name else None


def load_replicate_curves(path: Location) -> dict[float, np.ndarray]:
    """Empirical curves of every replicate: eps -> ndarray of shape (replicates, len(grid))."""
    frame = read_frame(path).drop(columns="eigen_floor", errors="ignore")
    replicate = frame.pop("replicate").tolist()
    results = [ProbeResult(**row) for row in frame.to_dict(orient="records")]
    return replicate_curves(list(zip(replicate, results, strict=True)))
