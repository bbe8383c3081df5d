"""Audit of the root's records beside the artifact graph: board snapshots, removal records and recipes.

A snapshot's ranks are recomputed from its own scores, its rank changes from the snapshot before it, and,
while every part it was made from is unchanged, its rows from those parts. A removal record (``board remove``)
must name the parts it moved to ``quarantine/<its time>/``, with the digest it was written with; a removal cut
short is finished by repair, and a record that nothing backs is set aside (the entry is published again). A
recipe is made again from its own spec and compared.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..board.edit import record_digest
from ..board.read import ROW_KEY, rank_board, ranked_board_of, read_snapshots
from ..core.errors import SynBenchError
from ..core.provenance import utc_now
from ..core.spec import BenchmarkSpec
from ..method.generate import make_recipe
from ..stages.probes import write_recipe
from ..store.lineage import node_digest, node_name, node_path
from ..store.parquet import read_frame, read_table, stored_parents
from ..store.roots import Location, quarantine, safe_path
from .recompute import Groups

__all__ = ["check_history"]


def check_history(root: Location, groups: Groups, report, repair: bool) -> None:
    """Snapshots, removal records and recipes; ``repair`` sets aside what is wrong (and remakes a recipe)."""
    fixes = _snapshot_fixes(root, report) + _removal_fixes(root, report) + _recipe_fixes(root, groups, report)
    if repair:
        report.repaired.extend(fix() for fix in fixes)


def _set_aside(root: Location, file: Location, note: str = "") -> str:
    stamp = utc_now().replace(":", "")
    if file.is_file():
        quarantine(root, file, stamp)
    return f"moved {node_name(root, file)} to quarantine/{stamp}{note}"


def _snapshot_fixes(root: Location, report) -> list:
    fixes, previous = [], None
    for file in read_snapshots(root):
        try:
            table = read_table(file)
        except Exception:  # reported as unreadable by the Parquet check
            continue
        rows = table.to_pandas()
        problem = _snapshot_problem(root, rows, stored_parents(table) or {}, previous)
        previous = rows
        if problem:
            report.problems.append(f"{node_name(root, file)}: {problem}")
            fixes.append(lambda file=file: _set_aside(root, file, " (a snapshot is history: it is not remade)"))
    return fixes


def _snapshot_problem(root: Location, rows: pd.DataFrame, parents: dict, previous: pd.DataFrame | None) -> str | None:
    if rows.empty or not {*ROW_KEY, "score", "rank"} <= set(rows):
        return "it holds no ranked board rows"
    if not np.array_equal(rank_board(rows.drop(columns="rank"))["rank"].to_numpy(), rows["rank"].to_numpy()):
        return "its ranks are not those its own scores give"
    before = previous[[*ROW_KEY, "rank"]].rename(columns={"rank": "before"}) if previous is not None else None
    merged = rows.merge(before, on=ROW_KEY, how="left") if before is not None else rows.assign(before=np.nan)
    wanted = (merged["before"] - merged["rank"]).to_numpy(float)
    if "rank_change" not in merged:
        return "it records no rank changes"
    stored = merged["rank_change"].astype("Float64").to_numpy(float, na_value=np.nan)
    if not np.allclose(stored, wanted, equal_nan=True):
        return "its rank changes are not those since the snapshot before it"
    if not parents:
        return "it records no parts it was made from (written by hand)"
    files = [node_path(root, name) for name in parents]
    if all(node_digest(file) == digest for file, digest in zip(files, parents.values(), strict=True)):
        board = ranked_board_of(files)  # every part it was made from is unchanged: its rows can be made again
        merged = rows.merge(board, on=ROW_KEY, how="outer", suffixes=("", "_now"), indicator=True)
        if (merged["_merge"] != "both").any() or not np.allclose(merged["score"], merged["score_now"], atol=1e-12):
            return "its rows are not the board its parts make"
        if (merged["rank"] != merged["rank_now"]).any() or (merged["model"] != merged["model_now"]).any():
            return "its ranks or names are not those of the board its parts make"
    return None


def _removal_fixes(root: Location, report) -> list:
    fixes = []
    for file in sorted((root / "leaderboard" / "removed").glob("*.json"), key=str):
        problem, cut_short = _removal_problem(root, file)
        if problem:
            report.problems.append(f"{node_name(root, file)}: {problem}")
            note = "; the entry is published again from its features (board remove takes it off again)"
            fixes.append(lambda file=file, note=note: _set_aside(root, file, note))
        for part, stamp in cut_short:
            report.problems.append(f"{node_name(root, part)}: its removal ({file.name}) was cut short")
            fixes.append(lambda part=part, stamp=stamp: f"finished a removal: {_moved(root, part, stamp)}")
    return fixes


def _moved(root: Location, part: Location, stamp: str) -> str:
    target = node_name(root, quarantine(root, part, stamp)) if part.is_file() else "quarantine/ already"
    return f"moved {part.name} to {target}"


def _removal_problem(root: Location, file: Location) -> tuple[str | None, list]:
    """Why a removal record cannot be trusted, and the parts its removal left on the board (cut short)."""
    try:
        record = json.loads(file.read_text())
        fingerprint, spec_hash, stamp = (str(record[key]) for key in ("model_fingerprint", "spec_hash", "removed_at"))
    except (ValueError, KeyError, TypeError):
        return "it is not a removal record synbench wrote (unreadable, or fields missing)", []
    if file.stem != f"{fingerprint}-{spec_hash}":
        return f"it records the removal of {fingerprint}-{spec_hash}, not of what its name says", []
    if "digest" in record and record["digest"] != record_digest(record):
        return "its fields differ from the digest written with them (edited after writing)", []
    moved = safe_path(root, "quarantine", stamp, "leaderboard", "parts") if "/" not in stamp else None
    names = record.get("parts") or []
    if moved is None or not isinstance(names, list):
        return "it is not a removal record synbench wrote", []
    here = [safe_path(root, "leaderboard", "parts", str(name)) for name in names]
    cut_short = [(part, stamp) for part in here if part.is_file() and _older(part, stamp)]
    kept = [name for name in names if (moved / str(name)).is_file()]
    if not names:  # written before records listed their parts: any part of the entry moved then
        kept = [path.name for path in moved.glob(f"{fingerprint}-{spec_hash}-*.parquet")]
    if not kept:  # nothing shows the removal began: repair does not take a published model off on a record alone
        return (
            f"none of the parts it removed is in quarantine/{stamp}/leaderboard/parts/ (moved, not removed, or "
            "written by hand)",
            [],
        )
    return None, cut_short


def _older(part: Location, stamp: str) -> bool:
    """Whether a part was published before a removal (else the model was run again since, as it may be)."""
    try:
        created = str(read_frame(part)["created_at"].min()).replace(":", "")
    except Exception:
        return False
    return created <= stamp


def _recipe_fixes(root: Location, groups: Groups, report) -> list:
    fixes = []
    specs = {spec.data_hash: spec for _, spec in groups.values()}
    for file in sorted((root / "recipes").glob("*.json"), key=str):
        try:
            recipe = json.loads(file.read_text())
            spec = BenchmarkSpec.from_dict(recipe["spec"])
            made = json.loads(json.dumps(make_recipe(spec)))
        except (ValueError, KeyError, TypeError, SynBenchError):
            recipe, spec, made = None, None, None
        if spec is not None and spec.data_hash == file.stem and recipe == made:
            continue
        report.problems.append(f"{node_name(root, file)}: it is not the recipe of its data hash (edited, or not ours)")
        source = specs.get(file.stem) or (spec if spec is not None and spec.data_hash == file.stem else None)
        fixes.append(lambda file=file, source=source: _remade(root, file, source))
    return fixes


def _remade(root: Location, file: Location, spec: BenchmarkSpec | None) -> str:
    done = _set_aside(root, file)
    if spec is None:
        return f"{done}; no stored spec of data {file.stem} remakes it (the next run that needs it writes it)"
    write_recipe(spec, root)
    return f"{done}; remade it from the spec of data {file.stem}"
