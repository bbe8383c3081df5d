"""Audit of what is derived from the features: probe tables, curves and published parts.

Each is recomputed from the stored features and compared; ``repair`` moves a table that disagrees
to ``quarantine/`` and rebuilds it, publishes the scores of complete features that have none, and
removes temp files that a killed writer left.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import zarr

from .audit_graph import SCORE_TOLERANCE, check_lineage, foreign_inputs, replicates_differ
from .board_edit import removed_entries
from .curves import curves_frame, curves_stored, oracle_curves, oracle_frame, oracle_path, publish_scores, task_ranks
from .intervals import DEFAULT_REPLICATES, replicate_curves, replicate_tasks, with_intervals
from .leaderboard import part_files, part_schema_problem
from .parquet_store import edited, read_frame, read_table
from .probe import ProbeResult
from .provenance import utc_now
from .score import add_dimension_matched, empirical_curves, power_flags, reference_curve, score_rows
from .spec import BenchmarkSpec
from .stages import probe_group, probe_stored, replicates_stored, results_frame, stored_tasks
from .store import Location, is_remote, quarantine

__all__ = ["check_tables", "SCORE_TOLERANCE"]

Groups = dict[tuple[str, str], tuple[zarr.Group, BenchmarkSpec]]


class _Recompute:
    """Probe results per (group, eps list, floor), computed once per audit."""

    def __init__(self, groups: Groups) -> None:
        self.groups, self.cache = groups, {}

    def spec(self, key: tuple[str, str], eps, floor: str, thresholds=None, name: str | None = None) -> BenchmarkSpec:
        data_spec = self.groups[key][1]
        changes = {"eps": sorted(float(e) for e in eps), "eigen_floor": floor}
        if thresholds is not None:
            changes["thresholds"] = sorted(float(t) for t in thresholds)
        return BenchmarkSpec.from_dict({**data_spec.to_dict(), **changes, "name": name or data_spec.name})

    def results(self, key: tuple[str, str], spec: BenchmarkSpec) -> list[ProbeResult]:
        cache_key = (key, spec.eps, spec.eigen_floor)
        if cache_key not in self.cache:
            self.cache[cache_key] = probe_group(self.groups[key][0], spec)
        return self.cache[cache_key]

    def oracles(self, spec: BenchmarkSpec, ranks: list[int]) -> dict[int, pd.DataFrame]:
        """The oracle table of every rank in ``ranks``, simulated afresh (METHOD.md 7.2)."""
        for rank in set(ranks) - {0}:
            if (spec.data_hash, spec.eps, spec.eigen_floor, rank) not in self.cache:
                self.cache[(spec.data_hash, spec.eps, spec.eigen_floor, rank)] = oracle_frame(spec, rank)
        return {rank: self.cache[(spec.data_hash, spec.eps, spec.eigen_floor, rank)] for rank in set(ranks) - {0}}

    def replicates(self, key: tuple[str, str], spec: BenchmarkSpec, count: int) -> list[tuple[int, ProbeResult]]:
        cache_key = (key, spec.eps, spec.eigen_floor, count)
        if cache_key not in self.cache:
            tasks = stored_tasks(self.groups[key][0], spec)
            self.cache[cache_key] = replicate_tasks(tasks, spec.eps, spec.seed, count, spec.eigen_floor)
        return self.cache[cache_key]


def _differs(stored: pd.DataFrame, expected: pd.DataFrame, keys: list[str], values: list[str]) -> bool:
    if len(stored) != len(expected) or not set(keys + values) <= set(stored.columns):
        return True
    left = stored.sort_values(keys).reset_index(drop=True)
    right = expected.sort_values(keys).reset_index(drop=True)
    if not np.allclose(left[keys].to_numpy(float), right[keys].to_numpy(float), rtol=0, atol=1e-12):
        return True
    return not np.allclose(left[values].to_numpy(float), right[values].to_numpy(float), rtol=0, atol=SCORE_TOLERANCE)


def _read(file: Location) -> pd.DataFrame | None:
    try:
        return read_frame(file)
    except Exception:  # reported as unreadable by the Parquet check
        return None


def _check_replicates(
    root: Location, file: Location, key: tuple, table: pd.DataFrame, recompute: _Recompute, fixes: list
) -> bool:
    """Whether a half-sample replicate table (intervals.py) matches its recomputation; queues its rebuild if not."""
    floor = _floor(table)
    named = file.stem.rsplit("-half", 1)[-1]  # the file is named after its replicate count: <probe key>-half<B>
    count = int(named) if named.isdigit() else int(table["replicate"].nunique())
    spec = recompute.spec(key, table["eps"].unique(), floor)
    pairs = recompute.replicates(key, spec, count)
    expected = results_frame([r for _, r in pairs], floor).assign(replicate=[b for b, _ in pairs])
    if not _differs(table, expected, ["replicate", "scale", "eps"], ["accuracy", "bound", "rank"]):
        return True

    def rebuild() -> str:
        stamp = utc_now().replace(":", "")
        if file.is_file():  # the lineage check may have quarantined it already
            quarantine(root, file, stamp)
        replicates_stored(root, key[0], spec, count)
        return f"rebuilt {file.name} (interval replicates); the old file is in quarantine/{stamp}"

    fixes.append(rebuild)
    return False


def _floor(table: pd.DataFrame) -> str:
    return str(table["eigen_floor"].iloc[0]) if "eigen_floor" in table and len(table) else "relative"


def _check_probe_tables(root: Location, recompute: _Recompute, report, fixes: list[Callable]) -> None:
    for file in sorted((root / "probes").glob("*.parquet"), key=str):
        key = tuple(file.name.split("-")[:2])
        table = _read(file)
        if key not in recompute.groups or table is None:
            continue
        if "replicate" in table:
            if not _check_replicates(root, file, key, table, recompute, fixes):
                report.problems.append(f"probes table {file} differs from its recomputation from the features")
            continue
        floor = _floor(table)
        spec = recompute.spec(key, table["eps"].unique(), floor)
        results = recompute.results(key, spec)
        wrong = []
        if _differs(table, results_frame(results, floor), ["scale", "eps"], ["accuracy", "bound", "rank"]):
            wrong.append(file)
        ranks = task_ranks(results, spec)
        oracles = recompute.oracles(spec, ranks)
        for rank, expected_oracle in oracles.items():
            stored_oracle = _read(oracle_path(root, spec, rank)) if oracle_path(root, spec, rank).is_file() else None
            keys = ["task", "eps", "accuracy_threshold"]
            if stored_oracle is not None and _differs(stored_oracle, expected_oracle, keys, ["contribution"]):
                wrong.append(oracle_path(root, spec, rank))
        curves = root / "curves" / file.name
        stored_curves = _read(curves) if curves.is_file() else None
        expected = curves_frame(results, spec.scales, oracle_curves(oracles, spec, ranks))
        keys, values = ["eps", "accuracy_threshold"], ["empirical", "reference", "oracle"]
        if stored_curves is not None and _differs(stored_curves, expected, keys, values):
            wrong.append(curves)
        for bad in wrong:
            report.problems.append(f"{bad.parent.name} table {bad} differs from its recomputation from the features")
        if wrong:
            fixes.append(
                lambda wrong=wrong, curves=curves, spec=spec, key=key: _rebuild(root, wrong, curves, spec, key)
            )


def _rebuild(root: Location, wrong: list, curves: Location, spec: BenchmarkSpec, key: tuple[str, str]) -> str:
    stamp = utc_now().replace(":", "")
    for file in {*wrong, curves}:
        if file.is_file():
            quarantine(root, file, stamp)
    curves_stored(root, probe_stored(root, key[0], spec), spec)
    names = ", ".join(sorted(file.name for file in wrong))
    return f"rebuilt {names} (and the curves built on them); the old files are in quarantine/{stamp}"


def _check_part(root: Location, file: Location, recompute: _Recompute, report, fixes: list[Callable]) -> set:
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
        if _differs(rows.fillna(_MISSING), expected, ["eps", "threshold"], values) or replicates_differ(rows, expected):
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


def _part_spec(rows: pd.DataFrame, recompute: _Recompute, key: tuple[str, str]) -> BenchmarkSpec:
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


def _expected_rows(recompute: _Recompute, key: tuple[str, str], spec: BenchmarkSpec, count: int) -> pd.DataFrame:
    """Score rows with intervals, the dimension-matched score and the power flags, recomputed from the features."""
    reference = reference_curve(spec.scales)
    results = recompute.results(key, spec)
    ranks = task_ranks(results, spec)
    rows = score_rows(empirical_curves(results), reference, spec.thresholds)
    curves = replicate_curves(recompute.replicates(key, spec, count)) if count else None
    rows = add_dimension_matched(
        with_intervals(rows, curves, reference), reference, oracle_curves(recompute.oracles(spec, ranks), spec, ranks)
    )
    flags = power_flags(ranks, spec.n_train, int(recompute.groups[key][0].attrs.get("feature_dim", 0)))
    return pd.DataFrame(rows).assign(**flags).fillna(_MISSING)


def _republish_file(root: Location, file: Location, recompute: _Recompute) -> str:
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
    root: Location, file: Location, rows: pd.DataFrame, recompute: _Recompute, key: tuple[str, str], trusted: bool
) -> str:
    stamp = utc_now().replace(":", "")
    if not file.is_file():
        return f"{file.name} was republished already"
    quarantine(root, file, stamp)
    group_attrs = recompute.groups[key][0].attrs
    spec = _part_spec(rows, recompute, key)
    model = str(rows["model"].iloc[0]) if trusted else group_attrs["model"]
    return _publish(root, key, spec, model, f"the old part is in quarantine/{stamp}", _replicate_count(rows))


def _publish(
    root: Location, key: tuple[str, str], spec: BenchmarkSpec, model: str, note: str, count: int = DEFAULT_REPLICATES
) -> str:
    curves = curves_stored(root, probe_stored(root, key[0], spec), spec)
    path, _ = publish_scores(root, key[0], spec, curves, model, replicates_stored(root, key[0], spec, count))
    return f"published {path.name} for {model!r} ({note})"


def check_tables(root: Location, groups: Groups, report, repair: bool) -> None:
    """Recompute and compare probe tables, curves and parts; report complete features with no part and temp files."""
    recompute, fixes = _Recompute(groups), []
    problems_before, checked_before = len(report.problems), report.scores_checked
    last = check_lineage(root, report, fixes, lambda file: _republish_file(root, file, recompute))
    _check_probe_tables(root, recompute, report, fixes)
    covered = set()
    for file in part_files(root / "leaderboard" / "parts"):
        covered |= _check_part(root, file, recompute, report, fixes)
    removed = removed_entries(root)  # taken off the board by hand: not published again
    for key, (group, spec) in groups.items():
        if group.attrs.get("complete") and (key[0], spec.spec_hash) not in covered | removed:
            model = group.attrs.get("model", key[0])
            where = f"spec {spec.name} ({spec.spec_hash})"
            report.problems.append(f"features of {model!r} on {where} have no published part")
            fixes.append(lambda key=key, spec=spec, model=model: _publish(root, key, spec, model, "was missing"))
    leftovers = (
        [] if is_remote(root) else [p for p in root.rglob(".*.tmp") if ".prefect" not in p.relative_to(root).parts]
    )
    for temp in leftovers:
        report.problems.append(f"leftover temp file {temp} (a killed write)")
        fixes.append(lambda temp=temp: (temp.unlink(missing_ok=True), f"removed {temp}")[1])
    fixes += last
    if repair and fixes:
        report.repaired.extend(fix() for fix in fixes)
        del report.problems[problems_before:]
        report.scores_checked = checked_before
        check_tables(root, groups, report, repair=False)
