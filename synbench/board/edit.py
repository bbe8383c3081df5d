"""Editing the board by hand (``synbench board remove|rename``); nothing of the user's is deleted.

Removing an entry moves its parts to ``quarantine/<time>/leaderboard/parts/`` and records the removal
in ``leaderboard/removed/<fingerprint>-<spec hash>.json`` (the parts it moves, and a digest the audit
checks), so that ``audit --repair`` does not publish it again from its stored features (running the
model again does). Renaming publishes each of the entry's parts again with ``display_name`` set (one
atomic write each), then moves the old part to quarantine; the references in ``model`` stay, so
``agree`` and the audit still resolve the model. A name that is, or begins, another model's fingerprint
is refused: commands that take a fingerprint would pick the renamed model instead.
"""

from __future__ import annotations

import hashlib
import json
from os import PathLike

import pandas as pd

from ..core.errors import SynBenchError
from ..core.provenance import utc_now
from ..stages.curves import publish
from ..store.roots import Location, atomic_write_json, content_key, location, quarantine, safe_path
from .names import entry_aliases, names_a_fingerprint, pick_fingerprint
from .read import part_files, read_board, trusted_parts

__all__ = ["remove_entry", "rename_entry", "removed_entries", "removal_path", "record_digest", "MAX_NAME"]

MAX_NAME = 120


def _entry(root: Location, model: str, spec: str | None) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The board, the rows of the one model ``model`` names on it, and its fingerprint."""
    board = read_board(root, spec=spec)
    if board.empty:
        raise SynBenchError(f"the board under {str(root)!r} is empty; there is no model to remove or rename.")
    fingerprint = pick_fingerprint(board, model)
    return board, board[board["model_fingerprint"] == fingerprint], fingerprint


def _parts_of(root: Location, fingerprint: str, spec_hashes: set[str]) -> list[tuple[Location, pd.DataFrame]]:
    parts, _ = trusted_parts(part_files(root / "leaderboard" / "parts"))
    found = []
    for file, table in parts:
        rows = table.to_pandas()
        if ((rows["model_fingerprint"] == fingerprint) & rows["spec_hash"].isin(spec_hashes)).any():
            found.append((file, rows))
    return found


def _specs(rows: pd.DataFrame) -> str:
    return ", ".join(sorted(set(rows["spec_name"] + " " + rows["spec_hash"].str[:8])))


def remove_entry(root: str | PathLike, model: str, spec: str | None = None) -> str:
    """Take a model (display name, reference or fingerprint prefix) off the board, on every spec or on ``spec``.

    Returns what was done, in one line. Raises SynBenchError when ``model`` names no entry or several.
    """
    root = location(root)
    _, rows, fingerprint = _entry(root, model, spec)
    stamp = utc_now().replace(":", "")
    parts = _parts_of(root, fingerprint, set(rows["spec_hash"]))
    for spec_hash in sorted(set(rows["spec_hash"])):  # first: a removal cut short is never undone by a repair
        names = sorted(file.name for file, part in parts if (part["spec_hash"] == spec_hash).any())
        record = {"model_fingerprint": fingerprint, "spec_hash": spec_hash, "removed_at": stamp, "parts": names}
        atomic_write_json(removal_path(root, fingerprint, spec_hash), {**record, "digest": record_digest(record)})
    moved = [quarantine(root, file, stamp) for file, _ in parts]
    return (
        f"removed {rows['display_name'].iloc[0]} (fingerprint {fingerprint}) from spec {_specs(rows)}: "
        f"{len(moved)} part(s) moved to quarantine/{stamp}"
    )


def rename_entry(root: str | PathLike, model: str, new_name: str) -> str:
    """Show a model (display name, reference or fingerprint prefix) under ``new_name`` on the board.

    Returns what was done, in one line. Raises SynBenchError for a name that is empty, too long, not
    printable or already another model's.
    """
    root = location(root)
    new_name = new_name.strip()
    if not new_name or len(new_name) > MAX_NAME or not new_name.isprintable():
        raise SynBenchError(f"cannot name a model {new_name!r}: give 1 to {MAX_NAME} printable characters.")
    board, rows, fingerprint = _entry(root, model, None)
    aliases = entry_aliases(board)
    taken = sorted(fp for fp, names in aliases.items() if new_name in names and fp != fingerprint)
    taken += [fp for fp in [names_a_fingerprint(new_name, set(aliases) - {fingerprint})] if fp]
    if taken:
        raise SynBenchError(f"{new_name!r} already names the model with fingerprint {taken[0]}; pick another name.")
    stamp, renamed = utc_now().replace(":", ""), 0
    for file, part in _parts_of(root, fingerprint, set(rows["spec_hash"])):
        if "display_name" in part and (part["display_name"] == new_name).all():
            continue  # renamed by an earlier, interrupted run
        name = f"{fingerprint}-{part['spec_hash'].iloc[0]}-{content_key('renamed', file.name, new_name)}.parquet"
        publish(safe_path(root, "leaderboard", "parts", name), part.assign(display_name=new_name))
        quarantine(root, file, stamp)
        renamed += 1
    return (
        f"renamed {rows['display_name'].iloc[0]} (fingerprint {fingerprint}) to {new_name!r}: {renamed} part(s) "
        f"published again; the old parts are in quarantine/{stamp}"
    )


def removal_path(root: Location, fingerprint: str, spec_hash: str) -> Location:
    return safe_path(root, "leaderboard", "removed", f"{fingerprint}-{spec_hash}.json")


def record_digest(record: dict) -> str:
    """sha256 of a removal record's fields (its ``digest`` left out): the audit checks it."""
    fields = {key: value for key, value in record.items() if key != "digest"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def removed_entries(root: Location) -> set[tuple[str, str]]:
    """(fingerprint, spec hash) of every entry taken off the board by ``remove_entry``."""
    return {tuple(file.stem.split("-", 1)) for file in (root / "leaderboard" / "removed").glob("*.json")}
