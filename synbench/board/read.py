"""Stage 5 reads: the board as the union of published parts, snapshots and ranks.

Parts are written by ``curves.publish_scores`` (one per model fingerprint, spec hash, code version
and model name). Readers union the parts' schemas, skip a part they cannot trust (unreadable, off the
part schema, holding a non-finite score, edited) with a warning, and answer any accuracy threshold
from the stored curves.
"""

from __future__ import annotations

import math
import sys
import uuid
from collections.abc import Sequence
from os import PathLike

import numpy as np
import pandas as pd
import pyarrow as pa

from ..core.errors import SynBenchError
from ..core.provenance import utc_now
from ..core.spec import threshold_ok
from ..stages.curves import scored_rows
from ..stages.probes import named_replicates
from ..store.lineage import parents_of
from ..store.parquet import atomic_write_parquet, read_frame
from ..store.roots import Location, location, safe_path
from .names import with_display_names
from .parts import is_link, part_files, part_schema_problem, trusted_parts

__all__ = [
    "ROW_KEY",
    "read_board",
    "rank_board",
    "ranked_board_of",
    "write_snapshot",
    "read_snapshots",
    "part_files",
    "part_schema_problem",
    "trusted_parts",
]

ROW_KEY = ["model_fingerprint", "spec_hash", "eps", "threshold"]  # one score per key
_MODEL_KEY = ["spec_hash", "model_fingerprint"]


def _read_parts(files: list[Location]) -> tuple[pd.DataFrame, list[str]]:
    parts, bad = trusted_parts(files)
    tables = [table for _, table in parts]
    if not tables:
        return pd.DataFrame(), bad
    try:
        return pa.concat_tables(tables, promote_options="permissive").to_pandas(), bad
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # an extra column typed differently by two parts: keep both
        return pd.concat([table.to_pandas() for table in tables], ignore_index=True), bad


def _at(values: pd.Series, wanted: Sequence[float]) -> pd.Series:
    # eps and thresholds are floats from CLI text and Parquet: compare them rounded
    return values.round(9).isin([round(v, 9) for v in wanted])


def _stored_list(values: pd.Series) -> str:
    return ", ".join(f"{v:g}" for v in sorted(values.unique()))


def _filter_spec(board: pd.DataFrame, spec: str) -> pd.DataFrame:
    chosen = board[(board["spec_name"] == spec) | board["spec_hash"].str.startswith(spec)]
    if chosen.empty:
        names = sorted({f"{n} ({h[:8]})" for n, h in zip(board["spec_name"], board["spec_hash"], strict=True)})
        raise SynBenchError(f"no spec {spec!r} on the board; stored specs: {', '.join(names)}.")
    return chosen


def _filter_shape(board: pd.DataFrame, shape: Sequence[int]) -> pd.DataFrame:
    stored = board["input_shape"] if "input_shape" in board else pd.Series([[]] * len(board), index=board.index)
    names = stored.map(lambda value: "x".join(str(int(v)) for v in value) if value is not None else "")
    wanted = "x".join(str(int(v)) for v in shape)
    if not (names == wanted).any():
        shown = ", ".join(sorted(set(names) - {""})) or "none recorded"
        raise SynBenchError(f"no model with input shape {wanted} on the board; stored shapes: {shown}.")
    return board[names == wanted]


def _filter_eps(board: pd.DataFrame, eps: Sequence[float]) -> pd.DataFrame:
    missing = [e for e in eps if not _at(board["eps"], [e]).any()]
    if missing:
        raise SynBenchError(
            f"eps {', '.join(f'{e:g}' for e in missing)} is not on the board; stored eps: {_stored_list(board['eps'])}."
        )
    return board[_at(board["eps"], eps)]


def _rows_from_curves(rows: pd.DataFrame, thresholds: list[float], root: Location) -> pd.DataFrame:
    """Score rows of one (spec, model) at thresholds it did not publish, with intervals, from its stored curves."""
    made = scored_rows(safe_path(root, "curves", rows["curves_file"].iloc[0]), named_replicates(root, rows), thresholds)
    made = [row for row in made if _at(rows["eps"], [row["eps"]]).any()]  # best_eps is marked again by read_board
    template = rows.drop_duplicates("eps").set_index("eps")
    for row in made:
        if not math.isfinite(row["score"]):
            raise SynBenchError(
                f"threshold {row['threshold']:g} is out of reach for spec {rows['spec_name'].iloc[0]!r}: "
                "no task's Bayes accuracy passes it; pick a lower threshold."
            )
    return pd.DataFrame([{**template.loc[row["eps"]].to_dict(), **row} for row in made])


def _at_thresholds(board: pd.DataFrame, thresholds: Sequence[float], root: Location) -> pd.DataFrame:
    for t in thresholds:
        if not threshold_ok(t):
            raise SynBenchError(
                f"threshold {t:g} cannot be answered: the curves cover accuracy thresholds in [0.6, 1.0); "
                f"stored thresholds: {_stored_list(board['threshold'])}."
            )
    parts = [board[_at(board["threshold"], thresholds)]]
    for _, rows in board.groupby(_MODEL_KEY):
        absent = [t for t in thresholds if not _at(rows["threshold"], [t]).any()]
        if absent:
            parts.append(_rows_from_curves(rows, absent, root))
    return pd.concat([p for p in parts if not p.empty], ignore_index=True)


def _mark_best_eps(board: pd.DataFrame) -> pd.DataFrame:
    """best_eps (and best_eps_dm for score_dm) within the rows shown: the top score per (spec, model, threshold);
    ties go to the smaller eps, a missing score never wins."""
    marks = {}
    for kind, mark in (("score", "best_eps"), ("score_dm", "best_eps_dm")):
        if kind not in board:
            continue
        order = board.assign(_key=board[kind].astype(float).fillna(-np.inf))
        order = order.sort_values(["_key", "eps"], ascending=[False, True])
        marks[mark] = board.index.isin(order.drop_duplicates([*_MODEL_KEY, "threshold"]).index)
    return board.assign(**marks)


def read_board(
    root: str | PathLike,
    spec: str | None = None,
    eps: Sequence[float] | None = None,
    threshold: Sequence[float] | None = None,
    warn: bool = True,
    input_shape: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Union of all parts, newest row per key, optionally filtered by spec name/hash, eps, threshold and the
    models' input shape. ``model`` joins every reference a fingerprint was published under (oldest first);
    ``display_name`` is its one short name (names.py).

    ``best_eps`` is chosen within the eps shown, so a filter never drops a model. A threshold the
    models did not publish is computed from their stored curves (METHOD.md 4).

    Raises:
        SynBenchError: the spec, eps or threshold asked for is not on the board (the message names what is).
    """
    root = location(root)
    board, bad = _union(part_files(root / "leaderboard" / "parts"))
    if warn:
        for line in bad:
            print(f"warning: skipped {line}; run `synbench audit`.", file=sys.stderr)
    if board.empty:
        return board
    if spec is not None:
        board = _filter_spec(board, spec)
    if input_shape:
        board = _filter_shape(board, input_shape)
    if eps:
        board = _filter_eps(board, eps)
    if threshold:
        board = _at_thresholds(board, threshold, root)
    board = _mark_best_eps(board.reset_index(drop=True))
    return board.sort_values(
        ["spec_name", "spec_hash", "threshold", "eps", "score"], ascending=[True, True, True, True, False]
    ).reset_index(drop=True)


def _union(files: list[Location]) -> tuple[pd.DataFrame, list[str]]:
    """The trusted parts among ``files`` as one board, newest row per key, every name of a fingerprint in ``model``;
    and why each other part was skipped."""
    board, bad = _read_parts(files)
    if board.empty:
        return board, bad
    board = with_display_names(board.sort_values("created_at", kind="stable"))
    names = board.groupby("model_fingerprint")["model"].agg(lambda s: ", ".join(dict.fromkeys(s)))  # oldest first
    board = board.drop_duplicates(ROW_KEY, keep="last")
    return board.assign(model=board["model_fingerprint"].map(names)), bad


def ranked_board_of(files: list[Location]) -> pd.DataFrame:
    """The ranked board these part files make (what a snapshot of them stores, but its rank changes)."""
    board, _ = _union(files)
    return board if board.empty else rank_board(_mark_best_eps(board.reset_index(drop=True)))


def rank_board(board: pd.DataFrame) -> pd.DataFrame:
    """Rank of every row among the models of its (spec, eps, threshold); ties share the better rank."""
    ranks = board.groupby(["spec_hash", "eps", "threshold"])["score"].rank(ascending=False, method="min")
    return board.assign(rank=ranks.astype(int))


def read_snapshots(root: str | PathLike) -> list[Location]:
    return [file for file in part_files(location(root) / "leaderboard" / "snapshots") if not is_link(file)]


def write_snapshot(root: str | PathLike) -> Location | None:
    """Store the ranked board as one Parquet file, with each row's rank change since the last one.

    ``rank_change`` > 0 moved up; it is missing (shown as "new") for rows the last snapshot lacked.
    """
    root = location(root)
    board = read_board(root)
    if board.empty:
        return None
    board = rank_board(board)
    previous = read_snapshots(root)
    board["rank_change"] = pd.array([pd.NA] * len(board), dtype="Int64")
    if previous:
        last = read_frame(previous[-1])[[*ROW_KEY, "rank"]].rename(columns={"rank": "previous_rank"})
        board = board.drop(columns="rank_change").merge(last, on=ROW_KEY, how="left")
        board["rank_change"] = (board["previous_rank"] - board["rank"]).astype("Int64")
        board = board.drop(columns="previous_rank")
    stamp = utc_now().replace(":", "").replace("-", "").replace(".", "")
    path = safe_path(root, "leaderboard", "snapshots", f"{stamp}-{uuid.uuid4().hex[:8]}.parquet")
    board["snapshot_at"] = stamp
    files = [file for file in part_files(root / "leaderboard" / "parts") if not is_link(file)]
    atomic_write_parquet(path, board, parents_of(root, *files))
    return path
