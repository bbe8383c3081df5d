"""Stage I/O: where each stage's artifact lives and how it is made from the one before.

The math modules (generate, probe, score) take and return arrays; this module reads their inputs
from the store and writes their outputs to it. Every ``*_stored`` function reuses an existing
artifact, so a rerun recomputes nothing; ``flows/tasks.py`` and the notebook API call these.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import zarr

from .errors import IncompleteError
from .feature_store import open_feature_group, read_split
from .generate import make_recipe
from .intervals import replicate_curves, replicate_tasks, with_intervals
from .parquet_store import atomic_write_parquet, read_frame
from .probe import ProbeResult, probe_tasks
from .provenance import SCORE_VERSION, code_version, utc_now, versions
from .score import THRESHOLD_GRID, empirical_curves, reference_curve, score_rows
from .spec import BenchmarkSpec
from .store import Location, atomic_write_json, content_key, location, safe_path

__all__ = [
    "recipe_path",
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
    "curves_path",
    "curves_frame",
    "curves_stored",
    "load_curves",
    "scored_rows",
    "build_rows",
    "part_path",
    "publish",
    "publish_scores",
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


def probe_group(group: zarr.Group, spec: BenchmarkSpec) -> list[ProbeResult]:
    return probe_tasks(stored_tasks(group, spec), spec.eps, spec.eigen_floor)


def results_frame(results: list[ProbeResult], eigen_floor: str) -> pd.DataFrame:
    return pd.DataFrame([dataclasses.asdict(r) for r in results]).assign(eigen_floor=eigen_floor)


def load_probe_table(path: Location) -> list[ProbeResult]:
    frame = read_frame(path).drop(columns="eigen_floor", errors="ignore")
    return [ProbeResult(**row) for row in frame.to_dict(orient="records")]


def _open_group(root: Location, fingerprint: str, spec: BenchmarkSpec) -> zarr.Group:
    group = open_feature_group(root, fingerprint, spec.data_hash)
    if group is None:
        raise IncompleteError(
            f"no features stored for model {fingerprint} and data {spec.data_hash}; run the extraction first."
        )
    return group


def probe_stored(root: Location, fingerprint: str, spec: BenchmarkSpec) -> Location:
    """Stage 3: probe table for stored features; an existing table is reused."""
    path = probe_table_path(root, fingerprint, spec)
    if not path.is_file():
        results = probe_group(_open_group(root, fingerprint, spec), spec)
        atomic_write_parquet(path, results_frame(results, spec.eigen_floor))
    return path


def replicates_path(root: Location, fingerprint: str, spec: BenchmarkSpec, replicates: int) -> Location:
    """Half-sample replicates of a probe table (intervals.py), named after it and their count."""
    return safe_path(root, "probes", f"{probe_table_path(root, fingerprint, spec).stem}-half{replicates}.parquet")


def replicates_stored(root: Location, fingerprint: str, spec: BenchmarkSpec, replicates: int) -> Location | None:
    """Stage 3, intervals: probe results of every half-sample replicate; ``replicates = 0`` makes none."""
    if replicates == 0:
        return None
    path = replicates_path(root, fingerprint, spec, replicates)
    if not path.is_file():
        tasks = stored_tasks(_open_group(root, fingerprint, spec), spec)
        pairs = replicate_tasks(tasks, spec.eps, spec.seed, replicates, spec.eigen_floor)
        frame = results_frame([result for _, result in pairs], spec.eigen_floor)
        atomic_write_parquet(path, frame.assign(replicate=[replicate for replicate, _ in pairs]))
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


def curves_path(root: Location, probe_path: Location) -> Location:
    return safe_path(root, "curves", probe_path.name)


def curves_frame(results: list[ProbeResult], scales: tuple[float, ...]) -> pd.DataFrame:
    """Long table of both curves on the grid: columns eps, accuracy_threshold, empirical, reference."""
    reference = reference_curve(scales)
    frames = [
        pd.DataFrame({"eps": eps, "accuracy_threshold": THRESHOLD_GRID, "empirical": curve, "reference": reference})
        for eps, curve in empirical_curves(results).items()
    ]
    return pd.concat(frames, ignore_index=True)


def curves_stored(root: Location, probe_path: Location, spec: BenchmarkSpec) -> Location:
    """Stage 4: curves of one probe table, stored beside it under ``curves/``."""
    probe_path = location(probe_path)
    path = curves_path(root, probe_path)
    if not path.is_file():
        atomic_write_parquet(path, curves_frame(load_probe_table(probe_path), spec.scales))
    return path


def load_curves(path: Location) -> tuple[dict[float, np.ndarray], np.ndarray]:
    """Empirical curve per eps and the reference curve, from a stored curves table."""
    frame = read_frame(path)
    curves = {float(eps): part["empirical"].to_numpy() for eps, part in frame.groupby("eps", sort=True)}
    reference = frame[frame["eps"] == frame["eps"].min()]["reference"].to_numpy()
    return curves, reference


def scored_rows(curves_file: Location, replicates_file: Location | None, thresholds: Sequence[float]) -> list[dict]:
    """Score rows (METHOD.md 4) at ``thresholds`` with their 95% intervals (section 6), from stored curves."""
    curves, reference = load_curves(curves_file)
    replicates = load_replicate_curves(replicates_file) if replicates_file else None
    return with_intervals(score_rows(curves, reference, thresholds), replicates, reference)


def build_rows(scores: Sequence[dict], provenance: dict, spec: BenchmarkSpec, model: str | None = None) -> pd.DataFrame:
    """Flat rows (model x eps x threshold) with every provenance column."""
    info = {
        "model": model or provenance["model"],
        "model_fingerprint": provenance["model_fingerprint"],
        "architecture": provenance.get("architecture", ""),
        "weights_digest": provenance.get("weights_digest", ""),
        "spec_name": spec.name,
        "spec_hash": spec.spec_hash,
        "data_hash": spec.data_hash,
        "eigen_floor": spec.eigen_floor,
        "device": provenance.get("device", ""),
        "dtype": provenance.get("dtype", ""),
        "code_version": code_version(),
        # versions of the run that made the features win over this process's
        **{key: provenance.get(key, value) for key, value in versions().items()},
        "created_at": utc_now(),
    }
    return pd.DataFrame([{**info, **row} for row in scores])


def part_path(
    root: Location, fingerprint: str, spec: BenchmarkSpec, model: str, replicates_file: Location | None = None
) -> Location:
    """One part per (fingerprint, spec, code version, model name, intervals): the same weights under two
    names show both; where parts share a row, the newest wins on the board."""
    intervals = location(replicates_file).name if replicates_file else ""
    name = f"{fingerprint}-{spec.spec_hash}-{content_key(code_version(), model, intervals)}.parquet"
    return safe_path(root, "leaderboard", "parts", name)


def publish(path: Location, rows: pd.DataFrame) -> tuple[Location, bool]:
    """Write a part unless it exists (one atomic write). Returns (path, written)."""
    if path.is_file():
        return path, False
    atomic_write_parquet(path, rows)
    return path, True


def publish_scores(
    root: Location,
    fingerprint: str,
    spec: BenchmarkSpec,
    curves_file: Location,
    model: str,
    replicates_file: Location | None = None,
) -> tuple[Location, bool]:
    """Stage 5: score rows with intervals from stored curves and feature provenance, published as one part."""
    curves_file = location(curves_file)
    replicates_file = location(replicates_file) if replicates_file else None
    path = part_path(root, fingerprint, spec, model, replicates_file)
    if path.is_file():
        return path, False
    group = _open_group(root, fingerprint, spec)
    scores = scored_rows(curves_file, replicates_file, spec.thresholds)
    rows = build_rows(scores, dict(group.attrs), spec, model).assign(
        curves_file=curves_file.name, replicates_file=replicates_file.name if replicates_file else ""
    )
    return publish(path, rows)
