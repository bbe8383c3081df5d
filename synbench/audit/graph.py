"""The audit's walk over the artifact graph (lineage.py): every Parquet node's digest and recorded parents.

Every Parquet table names the digests of the nodes it was made from. A table whose own digest does not
match its rows, that records no digest or no parents, or one of whose parents is missing or has changed
since, cannot be trusted: ``repair`` quarantines it and, where it can, rebuilds it from its parents
(``tables.py`` and ``parts.py`` recompute probe tables, replicates, oracles, curves and parts from the features
anyway). A feature group that changed under the tables made from it is in doubt: repair checks it against
its sources before rebuilding from it (``groups.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.provenance import utc_now
from ..store.lineage import node_digest, node_name, node_path
from ..store.parquet import edited, read_table, stored_digest, stored_parents
from ..store.roots import FEATURES_DIR, REAL_DIR, Location, existing_files, quarantine
from .recompute import SCORE_TOLERANCE, Fix

__all__ = [
    "SCORE_TOLERANCE",
    "GRAPH_FOLDERS",
    "HISTORY",
    "check_lineage",
    "quarantined",
    "set_aside_folder",
    "replicates_differ",
]

# Folders of Parquet nodes; snapshots are history: their parts may be republished since, so only their own
# digest is checked here (history.py checks what else can be).
GRAPH_FOLDERS = ("probes", "oracles", "curves", "leaderboard/parts", "agreement")
HISTORY = "leaderboard/snapshots"


_MADE_FROM_PARENTS = ("probes", "curves", "leaderboard/parts", "agreement")  # nodes that always have parents


def _lineage_problem(root: Location, table, folder: str) -> tuple[str | None, str | None]:
    """Why a node cannot be trusted (None: it can), and the parent whose change says so."""
    digest, parents = stored_digest(table), stored_parents(table)
    if digest is None:
        return "records no digest of its rows (not written by synbench, or rewritten by hand)", None
    if edited(table):
        return "its rows differ from the digest written with them (edited after writing)", None
    if folder == HISTORY:
        return None, None
    if parents is None or (not parents and folder in _MADE_FROM_PARENTS):
        return "records no parents (written before synbench kept its artifact graph, or by hand)", None
    for name, recorded in sorted(parents.items()):
        current = node_digest(node_path(root, name))
        if current is None:
            return f"was made from {name}, which is missing or unreadable", name
        if current != recorded:
            return f"was made from {name} at digest {recorded[:12]}, which now has digest {current[:12]}", name
    return None, None


def check_lineage(root: Location, report, fixes: list[Fix]) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """Every Parquet node's own digest and its recorded parents. A node that fails, and every node made from it,
    is untrusted: on repair it is quarantined, except parts, which ``check_part`` republishes from their feature
    group. Returns the untrusted parts (name: why) and the feature groups that changed under what was made from
    them (their features are in doubt until checked against their sources)."""
    parents, untrusted, implicated = {}, {}, set()
    for folder in (*GRAPH_FOLDERS, HISTORY):
        for file in sorted((root / folder).glob("*.parquet"), key=str):
            try:
                table = read_table(file)
            except Exception:  # reported as unreadable by the Parquet check
                continue
            name = node_name(root, file)
            parents[name] = stored_parents(table) or {}
            problem, parent = _lineage_problem(root, table, folder)
            if problem:
                report.problems.append(f"{name}: {problem}")
                untrusted[name] = problem
            if parent and parent.startswith((f"{FEATURES_DIR}/", f"{REAL_DIR}/")) and parent.count("/") == 2:
                implicated.add(parent)
    changed = True
    while changed:  # what was made from an untrusted node is untrusted too
        changed = False
        for name, made_from in parents.items():
            if name not in untrusted and set(made_from) & set(untrusted) and not name.startswith(HISTORY):
                why = f"was made from {sorted(set(made_from) & set(untrusted))[0]}, untrusted"
                report.problems.append(f"{name}: {why}")
                untrusted[name], changed = why, True
    stamp = utc_now().replace(":", "")
    others = [name for name in untrusted if not name.startswith("leaderboard/parts/")]
    fixes += [Fix(lambda name=name: quarantined(root, node_path(root, name), stamp)) for name in others]
    for name in sorted(name for name in implicated if name.startswith(REAL_DIR)):  # only agree can settle it
        why = "a table made from it records another digest of it"
        fixes.append(Fix(lambda name=name, why=why: set_aside_folder(root, node_path(root, name), stamp, why)))
    parts = {name: why for name, why in untrusted.items() if name.startswith("leaderboard/parts/")}
    return parts, {tuple(name.split("/")[1:]) for name in implicated if name.startswith(FEATURES_DIR)}


def quarantined(root: Location, file: Location, stamp: str) -> str:
    if file.is_file():
        quarantine(root, file, stamp)
    rerun = " (rerun synbench agree to remake it)" if file.parent.name == "agreement" else ""
    return f"moved {node_name(root, file)} to quarantine/{stamp}{rerun}"


def set_aside_folder(root: Location, folder: Location, stamp: str, why: str) -> str:
    """Move a real-data group that cannot be trusted to quarantine/: agree extracts it again."""
    for name in sorted(existing_files(folder)) if (folder / "zarr.json").is_file() else []:
        quarantine(root, folder / name, stamp)
    return f"moved {node_name(root, folder)} ({why}) to quarantine/{stamp}; rerun synbench agree to remake it"


def replicates_differ(rows: pd.DataFrame, expected: pd.DataFrame) -> bool:
    """Whether a part's half-sample replicate scores differ from the recomputed ones (they feed compare and bands)."""
    on = ["eps", "threshold"]
    merged = rows.merge(expected, on=on, suffixes=("", "_expected"))
    for column in ("score_replicates", "score_dm_replicates"):
        if f"{column}_expected" not in merged:
            continue
        for stored, wanted in zip(merged.get(column, [None] * len(merged)), merged[f"{column}_expected"], strict=True):
            stored = np.asarray([] if stored is None else stored, dtype=float)
            wanted = np.asarray(wanted, dtype=float)
            if stored.shape != wanted.shape or not np.allclose(
                stored, wanted, rtol=0, atol=SCORE_TOLERANCE, equal_nan=True
            ):
                return True
    return False
