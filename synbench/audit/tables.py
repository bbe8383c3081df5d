"""Audit of what is derived from the features: probe tables, curves and published parts.

Each is recomputed from the stored features and compared; ``repair`` moves a table that disagrees
to ``quarantine/`` and rebuilds it, publishes the scores of complete features that have none, and
removes temp files that a killed writer left.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ..board.edit import removed_entries
from ..board.read import part_files
from ..core.provenance import utc_now
from ..core.spec import BenchmarkSpec
from ..stages.curves import curves_frame, curves_stored, oracle_curves, oracle_path, spec_reference, task_ranks
from ..stages.probes import probe_stored, replicates_stored, results_frame
from ..store.roots import Location, is_remote, quarantine
from .graph import SCORE_TOLERANCE, check_lineage
from .parts import check_part, publish, republish_file
from .recompute import Groups, Recompute, differs, read_or_none

__all__ = ["check_tables", "SCORE_TOLERANCE"]


def _check_replicates(
    root: Location, file: Location, key: tuple, table: pd.DataFrame, recompute: Recompute, fixes: list
) -> bool:
    """Whether a half-sample replicate table (intervals.py) matches its recomputation; queues its rebuild if not."""
    floor = _floor(table)
    named = file.stem.rsplit("-half", 1)[-1]  # the file is named after its replicate count: <probe key>-half<B>
    count = int(named) if named.isdigit() else int(table["replicate"].nunique())
    spec = recompute.spec(key, table["eps"].unique(), floor)
    pairs = recompute.replicates(key, spec, count)
    expected = results_frame([r for _, r in pairs], floor).assign(replicate=[b for b, _ in pairs])
    if not differs(table, expected, ["replicate", "scale", "eps"], ["accuracy", "bound", "rank"]):
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


def _check_probe_tables(root: Location, recompute: Recompute, report, fixes: list[Callable]) -> None:
    for file in sorted((root / "probes").glob("*.parquet"), key=str):
        key = tuple(file.name.split("-")[:2])
        table = read_or_none(file)
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
        if differs(table, results_frame(results, floor), ["scale", "eps"], ["accuracy", "bound", "rank"]):
            wrong.append(file)
        ranks = task_ranks(results, spec)
        shape = recompute.shape(key, spec)
        oracles = recompute.oracles(spec, ranks, shape)
        for rank, expected_oracle in oracles.items():
            path = oracle_path(root, spec, rank, shape)
            stored_oracle = read_or_none(path) if path.is_file() else None
            keys = ["task", "eps", "accuracy_threshold"]
            if stored_oracle is not None and differs(stored_oracle, expected_oracle, keys, ["contribution"]):
                wrong.append(path)
        curves = root / "curves" / file.name
        stored_curves = read_or_none(curves) if curves.is_file() else None
        expected = curves_frame(results, spec_reference(spec, shape), oracle_curves(oracles, spec, ranks))
        keys, values = ["eps", "accuracy_threshold"], ["empirical", "reference", "oracle"]
        if stored_curves is not None and differs(stored_curves, expected, keys, values):
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


def check_tables(root: Location, groups: Groups, report, repair: bool) -> None:
    """Recompute and compare probe tables, curves and parts; report complete features with no part and temp files."""
    recompute, fixes = Recompute(groups), []
    problems_before, checked_before = len(report.problems), report.scores_checked
    last = check_lineage(root, report, fixes, lambda file: republish_file(root, file, recompute))
    _check_probe_tables(root, recompute, report, fixes)
    covered = set()
    for file in part_files(root / "leaderboard" / "parts"):
        covered |= check_part(root, file, recompute, report, fixes)
    removed = removed_entries(root)  # taken off the board by hand: not published again
    for key, (group, spec) in groups.items():
        if group.attrs.get("complete") and (key[0], spec.spec_hash) not in covered | removed:
            model = group.attrs.get("model", key[0])
            where = f"spec {spec.name} ({spec.spec_hash})"
            report.problems.append(f"features of {model!r} on {where} have no published part")
            fixes.append(lambda key=key, spec=spec, model=model: publish(root, key, spec, model, "was missing"))
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
