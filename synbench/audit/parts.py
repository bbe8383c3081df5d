"""Audit of published board parts: each recomputed from its feature group and compared; repair republishes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..board.read import part_schema_problem
from ..core.provenance import utc_now
from ..core.spec import BenchmarkSpec
from ..method.intervals import DEFAULT_REPLICATES, replicate_curves, with_intervals
from ..method.score import add_dimension_matched, empirical_curves, power_flags, score_rows
from ..stages.curves import curves_stored, oracle_curves, publish_scores, spec_reference, task_ranks
from ..stages.probes import probe_stored, replicates_stored
from ..store.parquet import edited, read_frame, read_table
from ..store.roots import Location, quarantine
from .graph import foreign_inputs, replicates_differ
from .recompute import Recompute, differs

__all__ = ["check_part", "publish", "republish_file"]


def check_part(root: Location, file: Location, recompute: Recompute, report, fixes: list[Callable]) -> set:
    """Problems of one published part; returns the (fingerprint, spec hash) it covers."""
    try:
        table = read_table(file)
    except Exception:
        return set()
    off_schema = part_schema_problem(table)
    if off_schema:  # it covers nothing: the board skips it; repair sets it aside (and publishes what it hid)
        report.problems.append(f"leaderboard part {file}: {off_schema}")
        fixes.append(lambda: _set_aside(root, file))
        return set()
    rows = table.to_pandas()
    if rows.empty:
        return set()
    key = (rows["model_fingerprint"].iloc[0], rows["data_hash"].iloc[0])
    covered = {(key[0], rows["spec_hash"].iloc[0])}
    problem = None
    if edited(table):
        problem = "its rows were edited after publishing (digest mismatch)"
    elif not np.isfinite(rows["score"].to_numpy(float)).all():
        problem = "it holds a non-finite score"
    elif foreign := foreign_inputs(rows, key):
        problem = f"it names {foreign} of another model or spec"
    elif key in recompute.groups:
        spec = _part_spec(rows, recompute, key)
        expected = _expected_rows(recompute, key, spec, _replicate_count(rows))
        report.scores_checked += len(rows)
        values = [c for c in _CHECKED if c in expected]
        if differs(rows.fillna(_MISSING), expected, ["eps", "threshold"], values) or replicates_differ(rows, expected):
            problem = "its scores, intervals, best eps or power flags differ from those the stored features give"
    else:
        problem = "no sound stored features back it"
    if problem:
        report.problems.append(f"leaderboard part {file}: {problem}")
        if key in recompute.groups:
            trusted = not problem.startswith("its rows were edited")  # an edited name is not republished
            fixes.append(lambda: _republish(root, file, rows, recompute, key, trusted))
    return covered


def _set_aside(root: Location, file: Location) -> str:
    stamp = utc_now().replace(":", "")
    quarantine(root, file, stamp)
    return f"moved {file.name} (off the part schema) to quarantine/{stamp}"


def _part_spec(rows: pd.DataFrame, recompute: Recompute, key: tuple[str, str]) -> BenchmarkSpec:
    floor = rows["eigen_floor"].iloc[0] if "eigen_floor" in rows else "relative"
    return recompute.spec(key, rows["eps"].unique(), floor, rows["threshold"].unique(), rows["spec_name"].iloc[0])


def _replicate_count(rows: pd.DataFrame) -> int:
    return int(rows["ci_replicates"].iloc[0]) if "ci_replicates" in rows else 0


_CHECKED = (
    "score score_low score_high best_eps score_dm score_dm_low score_dm_high best_eps_dm probe_rank underpowered "
    "n_train_needed ci_replicates"
).split()
# no interval or no dimension-matched score: -1, as NaN cannot be compared
_MISSING = {"score_low": -1.0, "score_high": -1.0, "score_dm": -1.0, "score_dm_low": -1.0, "score_dm_high": -1.0}


def _expected_rows(recompute: Recompute, key: tuple[str, str], spec: BenchmarkSpec, count: int) -> pd.DataFrame:
    """Score rows with intervals, the dimension-matched score and the power flags, recomputed from the features."""
    shape = recompute.shape(key, spec)
    reference = spec_reference(spec, shape)
    results = recompute.results(key, spec)
    ranks = task_ranks(results, spec)
    rows = score_rows(empirical_curves(results), reference, spec.thresholds)
    curves = replicate_curves(recompute.replicates(key, spec, count)) if count else None
    oracle = oracle_curves(recompute.oracles(spec, ranks, shape), spec, ranks)
    rows = add_dimension_matched(with_intervals(rows, curves, reference), reference, oracle)
    flags = power_flags(ranks, spec.n_train, int(recompute.groups[key][0].attrs.get("feature_dim", 0)))
    return pd.DataFrame(rows).assign(**flags).fillna(_MISSING)


def republish_file(root: Location, file: Location, recompute: Recompute) -> str:
    """Republish the part ``file`` from its own feature group (the old one to quarantine), when that group is sound."""
    if not file.is_file():
        return f"{file.name} was republished already"
    rows = read_frame(file)
    key = (str(rows["model_fingerprint"].iloc[0]), str(rows["data_hash"].iloc[0])) if len(rows) else ("", "")
    if key not in recompute.groups:
        stamp = utc_now().replace(":", "")
        quarantine(root, file, stamp)
        return f"moved {file.name} to quarantine/{stamp}: no sound feature group backs it"
    return _republish(root, file, rows, recompute, key, trusted=False)


def _republish(
    root: Location, file: Location, rows: pd.DataFrame, recompute: Recompute, key: tuple[str, str], trusted: bool
) -> str:
    stamp = utc_now().replace(":", "")
    if not file.is_file():
        return f"{file.name} was republished already"
    quarantine(root, file, stamp)
    group_attrs = recompute.groups[key][0].attrs
    spec = _part_spec(rows, recompute, key)
    model = str(rows["model"].iloc[0]) if trusted else group_attrs["model"]
    return publish(root, key, spec, model, f"the old part is in quarantine/{stamp}", _replicate_count(rows))


def publish(
    root: Location, key: tuple[str, str], spec: BenchmarkSpec, model: str, note: str, count: int = DEFAULT_REPLICATES
) -> str:
    curves = curves_stored(root, probe_stored(root, key[0], spec), spec)
    path, _ = publish_scores(root, key[0], spec, curves, model, replicates_stored(root, key[0], spec, count))
    return f"published {path.name} for {model!r} ({note})"
