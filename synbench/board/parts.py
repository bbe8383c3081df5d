"""What a published part must be: the part schema, the part files of a folder, and the parts readers trust.

Nothing is read through a symbolic link: a linked ``leaderboard/parts`` (or ``leaderboard``) folder is an
error, a linked part file is skipped with a warning (the audit lists it, repair moves it to quarantine/).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..core.errors import StoreError
from ..store.parquet import edited, read_table, stored_digest
from ..store.roots import Location, is_remote

__all__ = ["part_schema_problem", "part_files", "is_link", "trusted_parts"]

# What a published part must hold (curves.build_rows writes it), and the types of the columns readers use.
_REQUIRED = {
    **dict.fromkeys(["model", "model_fingerprint", "spec_name", "spec_hash", "data_hash", "created_at"], "string"),
    **dict.fromkeys(["eps", "threshold", "score"], "float"),
}
_OPTIONAL = {
    **dict.fromkeys(["score_low", "score_high", "score_dm", "score_dm_low", "score_dm_high", "r_over_n"], "float"),
    **dict.fromkeys(["ci_replicates", "feature_dim", "probe_rank", "n_train_needed"], "integer"),
    **dict.fromkeys(["best_eps", "best_eps_dm", "underpowered"], "boolean"),
    **dict.fromkeys(["score_replicates", "score_dm_replicates"], "list of floats"),
    "input_shape": "list of integers",
    **dict.fromkeys(["weights_digest", "curves_file", "replicates_file", "eigen_floor", "display_name"], "string"),
}
_IS = {
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "float": pa.types.is_floating,
    "integer": pa.types.is_integer,
    "boolean": pa.types.is_boolean,
    # a column of empty lists (no interval, no input shape recorded) has items of type null
    "list of floats": lambda t: (
        pa.types.is_list(t) and (pa.types.is_floating(t.value_type) or t.value_type == pa.null())
    ),
    "list of integers": lambda t: (
        pa.types.is_list(t) and (pa.types.is_integer(t.value_type) or t.value_type == pa.null())
    ),
}


def part_schema_problem(table: pa.Table) -> str | None:
    """Why a published part does not follow the part schema (a missing or mistyped column), or None."""
    for column, kind in [*_REQUIRED.items(), *_OPTIONAL.items()]:
        if column not in table.column_names:
            if column in _REQUIRED:
                return f"it has no {column} column"
            continue
        values = table.column(column)
        if values.type == pa.null() and column in _OPTIONAL:
            continue
        if not _IS[kind](values.type):
            shown = "string" if pa.types.is_large_string(values.type) else str(values.type)
            return f"column {column} is {shown}, expected {'an' if kind[0] in 'aeiou' else 'a'} {kind}"
        if column in _REQUIRED and column != "score" and values.null_count:  # a missing score: non-finite
            return f"column {column} has {values.null_count} missing value(s)"
    return None


def part_files(folder: Location) -> list[Location]:
    """The part (or snapshot) files of ``root/leaderboard/<folder>``, links included (``trusted_parts`` skips them).

    Raises:
        StoreError: the folder or ``leaderboard`` is a symbolic link (it could point anywhere).
    """
    for linked in (folder, folder.parent):
        if not is_remote(linked) and linked.is_symlink():
            raise StoreError(
                f"{str(linked)!r} is a symbolic link; SynBench never reads the board through links: remove it "
                "(synbench audit --repair moves it to quarantine/)."
            )
    # Temp files start with "." and end in ".tmp": never matched here.
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def is_link(file: Location) -> bool:
    return not is_remote(file) and file.is_symlink()


def trusted_parts(files: list[Location]) -> tuple[list[tuple[Location, pa.Table]], list[str]]:
    """The parts the board is made of, each with its file; and why each other part was skipped."""
    parts, bad = [], []
    for file in files:
        if is_link(file):
            bad.append(f"leaderboard part {file} is a symbolic link (never read through)")
            continue
        try:
            table = read_table(file)
        except Exception as exc:  # a damaged part must not hide the rest of the board
            bad.append(f"unreadable leaderboard part {file}: {str(exc).splitlines()[0]}")
            continue
        problem = part_schema_problem(table)
        if problem:
            bad.append(f"leaderboard part {file}: {problem}")
            continue
        if not np.isfinite(table.column("score").to_numpy(zero_copy_only=False).astype(float)).all():
            bad.append(f"leaderboard part {file} holds a non-finite score")
            continue
        if edited(table):
            bad.append(f"leaderboard part {file}: its rows were edited after publishing (digest mismatch)")
            continue
        if stored_digest(table) is None:
            bad.append(
                f"leaderboard part {file} records no digest of its rows (rewritten by hand?); "
                "synbench audit --repair republishes it from its features"
            )
            continue
        if table.num_rows:
            parts.append((file, table))
    return parts, bad
