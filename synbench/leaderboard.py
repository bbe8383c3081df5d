"""Stage 5: publish leaderboard rows as Parquet parts, read the board, snapshot ranks.

Each (model fingerprint, spec hash, code version) publishes one part file, named by that
content key and written to a temp name then ``os.replace``d: readers never see half a file,
a rerun finds the part and writes nothing, and concurrent publishers of the same key
leave exactly one. Readers union the parts' schemas.
"""

from __future__ import annotations

import io
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from .errors import IncompleteError
from .provenance import code_version, utc_now, versions
from .score import scores_from_curves
from .spec import BenchmarkSpec
from .store import atomic_write_parquet, content_key, open_feature_group, safe_path

__all__ = [
    "ROW_KEY",
    "build_rows",
    "part_path",
    "publish",
    "publish_scores",
    "read_board",
    "write_snapshot",
    "read_snapshots",
    "format_board",
    "format_history",
]

ROW_KEY = ["model_fingerprint", "spec_hash", "eps", "threshold"]  # one score per key


def build_rows(scores: Sequence[dict], provenance: dict, spec: BenchmarkSpec) -> pd.DataFrame:
    """Flat rows (model x eps x threshold) with every provenance column."""
    info = {
        "model": provenance["model"],
        "model_fingerprint": provenance["model_fingerprint"],
        "architecture": provenance.get("architecture", ""),
        "weights_digest": provenance.get("weights_digest", ""),
        "spec_name": spec.name,
        "spec_hash": spec.spec_hash,
        "data_hash": spec.data_hash,
        "device": provenance.get("device", ""),
        "dtype": provenance.get("dtype", ""),
        "code_version": code_version(),
        # versions of the run that made the features win over this process's
        **{key: provenance.get(key, value) for key, value in versions().items()},
        "created_at": utc_now(),
    }
    return pd.DataFrame([{**info, **row} for row in scores])


def part_path(root: Path, fingerprint: str, spec: BenchmarkSpec) -> Path:
    name = f"{fingerprint}-{spec.spec_hash}-{content_key(code_version())}.parquet"
    return safe_path(root, "leaderboard", "parts", name)


def publish(root: Path, rows: pd.DataFrame, fingerprint: str, spec: BenchmarkSpec) -> tuple[Path, bool]:
    """Write the rows' part unless it exists. Returns (path, written)."""
    path = part_path(root, fingerprint, spec)
    if path.is_file():
        return path, False
    atomic_write_parquet(path, rows)
    return path, True


def _part_files(folder: Path) -> list[Path]:
    # Temp files start with "." and end in ".tmp": never matched here.
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def _read_parts(files: list[Path]) -> tuple[pd.DataFrame, list[str]]:
    frames, bad = [], []
    for file in files:
        try:
            frames.append(pq.read_table(file).to_pandas())
        except Exception as exc:  # a damaged part must not hide the rest of the board
            bad.append(f"{file}: {exc}")
    frames = [f for f in frames if not f.empty]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), bad


def _rows_at(frame: pd.DataFrame, column: str, values: Sequence[float]) -> pd.DataFrame:
    # eps and thresholds are floats from CLI text and Parquet: compare them rounded
    return frame[frame[column].round(9).isin([round(v, 9) for v in values])]


def read_board(
    root: Path,
    spec: str | None = None,
    eps: Sequence[float] | None = None,
    threshold: Sequence[float] | None = None,
    warn: bool = True,
) -> pd.DataFrame:
    """Union of all parts, newest row per key, optionally filtered by spec name/hash, eps, threshold."""
    board, bad = _read_parts(_part_files(root / "leaderboard" / "parts"))
    if warn:
        for line in bad:
            print(f"warning: skipped unreadable leaderboard part {line}; run `synbench audit`.", file=sys.stderr)
    if board.empty:
        return board
    board = board.sort_values("created_at").drop_duplicates(ROW_KEY, keep="last")
    if spec is not None:
        board = board[(board["spec_name"] == spec) | (board["spec_hash"] == spec)]
    if eps:
        board = _rows_at(board, "eps", eps)
    if threshold:
        board = _rows_at(board, "threshold", threshold)
    return board.sort_values(
        ["spec_name", "threshold", "eps", "score"], ascending=[True, True, True, False]
    ).reset_index(drop=True)


def _rank(board: pd.DataFrame) -> pd.DataFrame:
    board = board.copy()
    board["rank"] = (
        board.groupby(["spec_hash", "eps", "threshold"])["score"].rank(ascending=False, method="min").astype(int)
    )
    return board


def read_snapshots(root: Path) -> list[Path]:
    return _part_files(root / "leaderboard" / "snapshots")


def write_snapshot(root: Path) -> Path | None:
    """Store the ranked board as one Parquet file, with each row's rank change since the last one."""
    board = read_board(root)
    if board.empty:
        return None
    board = _rank(board)
    previous = read_snapshots(root)
    board["rank_change"] = pd.NA
    if previous:
        last = pd.read_parquet(previous[-1], columns=[*ROW_KEY, "rank"]).rename(columns={"rank": "previous_rank"})
        board = board.merge(last, on=ROW_KEY, how="left")
        board["rank_change"] = (board["previous_rank"] - board["rank"]).astype("Int64")
        board = board.drop(columns="previous_rank")
    stamp = utc_now().replace(":", "").replace("-", "").replace(".", "")
    path = safe_path(root, "leaderboard", "snapshots", f"{stamp}-{uuid.uuid4().hex[:8]}.parquet")
    board["snapshot_at"] = stamp
    atomic_write_parquet(path, board)
    return path


def format_history(root: Path, fmt: str = "table", eps: Sequence[float] | None = None) -> str:
    """Snapshots written so far and the latest one's ranks and rank changes at ``eps`` (default: the smallest)."""
    snapshots = read_snapshots(root)
    if not snapshots:
        return "No snapshots yet: `synbench batch` and the refresh flow write one per run."
    latest = pd.read_parquet(snapshots[-1])
    latest = _rows_at(latest, "eps", eps or [latest["eps"].min()])
    latest = latest[["spec_name", "model", "eps", "threshold", "score", "rank", "rank_change"]]
    latest = latest.sort_values(["spec_name", "eps", "threshold", "rank"])
    if fmt == "json":
        return latest.to_json(orient="records", indent=1)
    if fmt == "csv":
        return latest.to_csv(index=False)
    listing = "\n".join(f"  {p.name}" for p in snapshots)
    shown = latest.assign(score=latest["score"].map("{:.4f}".format), rank_change=latest["rank_change"].astype(str))
    table = shown.to_markdown(index=False, tablefmt="simple_outline")
    heading = "Latest ranks per (spec, eps, threshold); rank_change > 0 moved up:"
    return f"{len(snapshots)} snapshot(s):\n{listing}\n{heading}\n{table}"


def summary_table(board: pd.DataFrame) -> pd.DataFrame:
    """One row per (spec, model): the best-eps score at each threshold, ranked by the first."""
    if board.empty:
        return board
    best = board[board["best_eps"]] if board["eps"].nunique() > 1 else board
    values = best.assign(cell=best.apply(lambda r: f"{r['score']:.4f} (eps {r['eps']:g})", axis=1))
    table = values.pivot_table(index=["spec_name", "model"], columns="threshold", values="cell", aggfunc="first")
    order = best.pivot_table(index=["spec_name", "model"], columns="threshold", values="score", aggfunc="max")
    table.columns = [f"t={c:g}" for c in table.columns]
    first = order.columns[0]
    table = table.assign(_sort=order[first]).sort_values(["spec_name", "_sort"], ascending=[True, False])
    table.insert(0, "rank", table.groupby(level="spec_name")["_sort"].rank(ascending=False, method="min").astype(int))
    return table.drop(columns="_sort").reset_index()


def format_board(board: pd.DataFrame, fmt: str) -> str:
    """Render the board as table (summary), json/csv (long rows) or html."""
    if fmt == "json":
        return board.to_json(orient="records", indent=1)
    if fmt == "csv":
        return board.to_csv(index=False)
    if fmt == "html":
        from .report import board_html

        return board_html(board, {})
    if board.empty:
        return "The leaderboard is empty: run `synbench run MODEL_REF` or `synbench demo` first."
    buffer = io.StringIO()
    buffer.write(summary_table(board).to_markdown(index=False, tablefmt="simple_outline"))
    buffer.write("\nScores are the best eps's SynBench-Score at each accuracy threshold t.\n")
    return buffer.getvalue()


def publish_scores(root: Path, fingerprint: str, spec: BenchmarkSpec, curves_path: Path) -> tuple[Path, bool]:
    """Stage 5: score rows from stored curves and feature provenance, published as one part."""
    path = part_path(root, fingerprint, spec)
    if path.is_file():
        return path, False
    group = open_feature_group(root, fingerprint, spec.data_hash)
    if group is None:
        raise IncompleteError(f"no features stored for model {fingerprint}; run the extraction first.")
    scores = scores_from_curves(pd.read_parquet(curves_path), spec.thresholds)
    rows = build_rows(scores, dict(group.attrs), spec).assign(curves_file=curves_path.name)
    return publish(root, rows, fingerprint, spec)
