"""Stage I/O of stages 4 and 5: curves (with the dimension-matched oracle) and published board parts.

``probes.py`` holds stages 1 to 3 (recipe, probe tables, half-sample replicates); this module reads
their artifacts and writes the oracle tables (METHOD.md 7), the curves and the parts. Every ``*_stored``
function reuses an existing artifact, so a rerun recomputes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import zarr

from ..core.provenance import SCORE_VERSION, code_version, utc_now, versions
from ..core.spec import BenchmarkSpec
from ..method.intervals import with_intervals
from ..method.natural import NaturalCovariance, natural_reference
from ..method.oracle import ORACLE_DRAWS, simulate_oracle
from ..method.probe import ProbeResult
from ..method.score import (
    THRESHOLD_GRID,
    Reference,
    add_dimension_matched,
    empirical_curves,
    power_flags,
    reference_at,
    reference_curve,
    score_rows,
)
from ..store.features import feature_group_path
from ..store.lineage import parents_of
from ..store.parquet import atomic_write_parquet, read_frame
from ..store.roots import Location, content_key, location, safe_path
from .probes import load_probe_table, load_replicate_curves, open_stored_group

__all__ = [
    "input_covariance",
    "group_shape",
    "spec_reference",
    "oracle_path",
    "oracle_stored",
    "oracle_frame",
    "task_ranks",
    "oracle_curves",
    "stored_oracles",
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


Shape = tuple[int, ...] | None  # the model's input shape: a natural spec's reference and oracle depend on it


def input_covariance(spec: BenchmarkSpec, shape: Shape) -> NaturalCovariance | None:
    """The inputs' covariance where it is not the identity (a natural spec, METHOD.md 1), else None."""
    if spec.covariance != "natural":
        return None
    if shape is None:
        raise ValueError("a natural spec's reference and oracle need the model's input shape")
    return NaturalCovariance(tuple(int(v) for v in shape), spec.spectrum_exponent)


def group_shape(group: zarr.Group) -> tuple[int, ...]:
    """The input shape a feature group's model was fed."""
    return tuple(int(v) for v in group.attrs["preprocess"]["input_shape"])


def spec_reference(spec: BenchmarkSpec, shape: Shape = None) -> Reference:
    """``E_ref`` of METHOD.md 2: one curve (isotropic) or one per eps (natural)."""
    covariance = input_covariance(spec, shape)
    return reference_curve(spec.scales) if covariance is None else natural_reference(spec.scales, spec.eps, covariance)


def oracle_path(root: Location, spec: BenchmarkSpec, rank: int, shape: Shape = None) -> Location:
    """The dimension-matched oracle (METHOD.md 7.2) is a pure function of the spec's tasks, eps, floor and rank
    (and, for a natural spec, its covariance and the input shape): one file serves every model of that rank."""
    fields = [list(spec.scales), spec.n_train, spec.n_test, spec.seed, list(spec.eps), spec.eigen_floor, SCORE_VERSION]
    if spec.covariance != "isotropic":
        fields += [spec.covariance, spec.spectrum_exponent, list(shape or ())]
    return safe_path(root, "oracles", f"{content_key(*fields)}-r{rank}-k{ORACLE_DRAWS}.parquet")


def oracle_frame(spec: BenchmarkSpec, rank: int, shape: Shape = None) -> pd.DataFrame:
    """Long table of the oracle's expected contribution per (task, eps, grid point)."""
    covariance = input_covariance(spec, shape)
    geometry = None if covariance is None else covariance.sketch(rank)
    oracle = simulate_oracle(
        spec.scales, spec.n_train, spec.n_test, spec.eps, rank, spec.eigen_floor, spec.seed, geometry=geometry
    )
    tasks, eps, grid = np.meshgrid(np.arange(len(spec.scales)), spec.eps, THRESHOLD_GRID, indexing="ij")
    return pd.DataFrame(
        {
            "task": tasks.ravel(),
            "eps": eps.ravel(),
            "accuracy_threshold": grid.ravel(),
            "contribution": oracle.contribution.ravel(),
        }
    ).assign(rank=rank, draws=oracle.draws)


def oracle_stored(root: Location, spec: BenchmarkSpec, rank: int, shape: Shape = None) -> Location:
    """Stage 4: the oracle of one rank, computed once per (spec, rank) and shared by every model."""
    path = oracle_path(root, spec, rank, shape)
    if not path.is_file():
        atomic_write_parquet(path, oracle_frame(spec, rank, shape))
    return path


def task_ranks(results: list[ProbeResult], spec: BenchmarkSpec) -> list[int]:
    """Components each task's probe kept (the same for every eps), in task order."""
    ranks = {}
    for result in results:
        ranks.setdefault(result.scale, result.rank)
    return [ranks[scale] for scale in spec.scales]


def oracle_curves(frames: dict[int, pd.DataFrame], spec: BenchmarkSpec, ranks: list[int]) -> dict[float, np.ndarray]:
    """``E_r(a; eps)`` per eps for tasks that kept ``ranks`` components, from the oracle table of each rank
    (``frames``: rank -> ``oracle_frame``); a task that kept none adds 0."""
    total = np.zeros((len(spec.eps), len(THRESHOLD_GRID)))
    for rank in sorted(set(ranks) - {0}):
        frame = frames[rank]
        tasks = [task for task, kept in enumerate(ranks) if kept == rank]
        contribution = frame[frame["task"].isin(tasks)].groupby(["eps", "accuracy_threshold"])["contribution"].sum()
        total += contribution.to_numpy().reshape(total.shape)
    return {eps: total[i] / len(ranks) for i, eps in enumerate(spec.eps)}


def stored_oracles(
    root: Location, spec: BenchmarkSpec, ranks: list[int], shape: Shape = None
) -> dict[int, pd.DataFrame]:
    return {rank: read_frame(oracle_stored(root, spec, rank, shape)) for rank in sorted(set(ranks) - {0})}


def curves_path(root: Location, probe_path: Location) -> Location:
    return safe_path(root, "curves", probe_path.name)


def curves_frame(results: list[ProbeResult], reference: Reference, oracle: dict[float, np.ndarray]) -> pd.DataFrame:
    """Long table of the curves on the grid: columns eps, accuracy_threshold, empirical, reference, oracle."""
    frames = [
        pd.DataFrame(
            {
                "eps": eps,
                "accuracy_threshold": THRESHOLD_GRID,
                "empirical": curve,
                "reference": reference_at(reference, eps),
                "oracle": oracle[eps],
            }
        )
        for eps, curve in empirical_curves(results).items()
    ]
    return pd.concat(frames, ignore_index=True)


def curves_stored(root: Location, probe_path: Location, spec: BenchmarkSpec) -> Location:
    """Stage 4: curves of one probe table (with the oracle of its ranks), stored beside it under ``curves/``."""
    probe_path = location(probe_path)
    path = curves_path(root, probe_path)
    if not path.is_file():
        results = load_probe_table(probe_path)
        ranks = task_ranks(results, spec)
        shape = None  # the model's input shape, read where the spec's reference and oracle depend on it
        if spec.covariance != "isotropic":
            shape = group_shape(open_stored_group(root, probe_path.name.split("-")[0], spec))
        oracle = oracle_curves(stored_oracles(root, spec, ranks, shape), spec, ranks)
        oracles = [oracle_path(root, spec, rank, shape) for rank in sorted(set(ranks) - {0})]
        parents = parents_of(root, probe_path, *oracles)
        atomic_write_parquet(path, curves_frame(results, spec_reference(spec, shape), oracle), parents)
    return path


def load_curves(path: Location) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray], dict[float, np.ndarray]]:
    """Empirical, reference and oracle curve per eps, from a stored curves table (the reference depends on eps
    for a natural spec only)."""
    frame = read_frame(path)
    parts = list(frame.groupby("eps", sort=True))
    return tuple({float(eps): part[column].to_numpy() for eps, part in parts} for column in _CURVES)


_CURVES = ("empirical", "reference", "oracle")


def scored_rows(curves_file: Location, replicates_file: Location | None, thresholds: Sequence[float]) -> list[dict]:
    """Score rows (METHOD.md 4) at ``thresholds`` with their 95% intervals (section 6) and the
    dimension-matched score (section 7), from stored curves."""
    curves, reference, oracle = load_curves(curves_file)
    replicates = load_replicate_curves(replicates_file) if replicates_file else None
    rows = with_intervals(score_rows(curves, reference, thresholds), replicates, reference)
    return add_dimension_matched(rows, reference, oracle)


def build_rows(
    scores: Sequence[dict], provenance: dict, spec: BenchmarkSpec, model: str | None = None, ranks: Sequence[int] = ()
) -> pd.DataFrame:
    """Flat rows (model x eps x threshold) with every provenance column and the probe's power (METHOD.md 7)."""
    feature_dim = int(provenance.get("feature_dim", 0))
    info = {
        "model": model or provenance["model"],
        "model_fingerprint": provenance["model_fingerprint"],
        "architecture": provenance.get("architecture", ""),
        "weights_digest": provenance.get("weights_digest", ""),
        "spec_name": spec.name,
        "spec_hash": spec.spec_hash,
        "data_hash": spec.data_hash,
        "eigen_floor": spec.eigen_floor,
        "input_shape": list(provenance.get("preprocess", {}).get("input_shape", [])),
        "feature_dim": feature_dim,
        **power_flags(ranks, spec.n_train, feature_dim),
        "device": provenance.get("device", ""),
        "dtype": provenance.get("dtype", ""),
        "code_version": code_version(),
        # versions of the run that made the features win over this process's
        **{key: provenance.get(key, value) for key, value in versions().items()},
        "created_at": utc_now(),
    }
    return pd.DataFrame([{**info, **row} for row in scores])


def part_path(
    root: Location,
    fingerprint: str,
    spec: BenchmarkSpec,
    model: str,
    replicates_file: Location | None = None,
    version: str | None = None,
) -> Location:
    """One part per (fingerprint, spec, code version, model name, intervals): the same weights under two
    names show both; where parts share a row, the newest wins on the board. ``version``: the code version a
    stored part records (default this one's)."""
    intervals = location(replicates_file).name if replicates_file else ""
    name = f"{fingerprint}-{spec.spec_hash}-{content_key(version or code_version(), model, intervals)}.parquet"
    return safe_path(root, "leaderboard", "parts", name)


def publish(path: Location, rows: pd.DataFrame, parents: dict[str, str] | None = None) -> tuple[Location, bool]:
    """Write a part unless it exists (one atomic write). Returns (path, written)."""
    if path.is_file():
        return path, False
    atomic_write_parquet(path, rows, parents)
    return path, True


def publish_scores(
    root: Location,
    fingerprint: str,
    spec: BenchmarkSpec,
    curves_file: Location,
    model: str,
    replicates_file: Location | None = None,
    display_name: str | None = None,
) -> tuple[Location, bool]:
    """Stage 5: score rows with intervals from stored curves and feature provenance, published as one part
    (``display_name``: the name ``board rename`` gave it, kept when the audit republishes it)."""
    curves_file = location(curves_file)
    replicates_file = location(replicates_file) if replicates_file else None
    path = part_path(root, fingerprint, spec, model, replicates_file)
    if path.is_file():
        return path, False
    group = open_stored_group(root, fingerprint, spec)
    scores = scored_rows(curves_file, replicates_file, spec.thresholds)
    ranks = task_ranks(load_probe_table(safe_path(root, "probes", curves_file.name)), spec)
    rows = build_rows(scores, dict(group.attrs), spec, model, ranks).assign(
        curves_file=curves_file.name, replicates_file=replicates_file.name if replicates_file else ""
    )
    if display_name:
        rows = rows.assign(display_name=display_name)
    features = feature_group_path(root, fingerprint, spec.data_hash)
    return publish(path, rows, parents_of(root, features, curves_file, replicates_file))
