"""How a board is summarised and printed: ranked summaries, tables, JSON/CSV, rank history."""

from __future__ import annotations

import pandas as pd

from .compare import replicates_of
from .intervals import rank_bands
from .leaderboard import ROW_KEY, rank_board, read_snapshots
from .parquet_store import read_frame
from .references import series_step

__all__ = ["summary_records", "summary_table", "series_records", "format_board", "format_history"]

_SUMMARY_COLUMNS = [
    "rank",
    "rank_band",
    "model",
    "spec_name",
    "spec_hash",
    "threshold",
    "score",
    "score_low",
    "score_high",
    "best_eps",
    "model_fingerprint",
]


def _with_bands(best: pd.DataFrame) -> pd.DataFrame:
    """Rank and rank band (intervals.rank_bands) within each (spec, threshold), best score first."""
    parts = []
    for _, rows in best.groupby(["spec_hash", "threshold"]):
        rows = rows.sort_values(["score", "model"], ascending=[False, True])
        ranks = rows["score"].rank(ascending=False, method="min").astype(int)
        bands = rank_bands(rows["score"].tolist(), [replicates_of(row) for _, row in rows.iterrows()])
        parts.append(rows.assign(rank=ranks, rank_band=bands))
    return pd.concat(parts)


def summary_records(board: pd.DataFrame) -> pd.DataFrame:
    """One row per (spec, model, threshold): the best eps's score and interval, ranked, with its rank band."""
    if board.empty:
        return pd.DataFrame(columns=_SUMMARY_COLUMNS)
    best = board[board["best_eps"]].drop(columns="best_eps").rename(columns={"eps": "best_eps"})
    for column in ("score_low", "score_high"):  # parts published before intervals existed
        if column not in best:
            best[column] = float("nan")
    best = _with_bands(best).sort_values(["spec_name", "spec_hash", "threshold", "rank", "model"])
    return best[_SUMMARY_COLUMNS].reset_index(drop=True)


def series_records(board: pd.DataFrame) -> pd.DataFrame:
    """Checkpoint series on the board: models whose weights files differ only in a step number.

    Columns series, step, model, spec_name, spec_hash, threshold, score, score_low, score_high,
    best_eps; only series of two or more steps.
    """
    records = summary_records(board)
    steps = [series_step(model.split(", ")[0]) for model in records["model"]]
    records = records.assign(series=[s[0] if s else None for s in steps], step=[s[1] if s else -1 for s in steps])
    records = records[records["series"].notna()]
    sizes = records.groupby(["spec_hash", "series"])["step"].transform("nunique")
    columns = ["series", "step", "model", "spec_name", "spec_hash", "threshold", "score", "score_low", "score_high"]
    return records[sizes >= 2][[*columns, "best_eps"]].sort_values(["spec_hash", "series", "threshold", "step"])


def series_table(series: pd.DataFrame) -> pd.DataFrame:
    """Wide view of one series (``series_records`` rows): one row per step, a "score ± interval" cell per t."""
    table = series.assign(cell=_cells(series)).pivot_table(
        index="step", columns="threshold", values="cell", aggfunc="first"
    )
    table.columns = [f"t={c:g}" for c in table.columns]
    return table.reset_index()


def _cells(records: pd.DataFrame) -> list[str]:
    """A "score ±half-width (eps e)" cell per row: the interval is symmetric but for its clip at 0."""
    columns = [records[c] for c in ("score", "score_high", "best_eps")]
    return [
        f"{score:.4f}{'' if pd.isna(high) else f' ±{high - score:.3f}'} (eps {eps:g})"
        for score, high, eps in zip(*columns, strict=True)
    ]


def summary_table(board: pd.DataFrame) -> pd.DataFrame:
    """Wide view for people: one row per (spec, model), a "score (eps e)" cell per threshold, ranked by the first."""
    records = summary_records(board)
    if records.empty:
        return records
    records = records.assign(
        spec=records["spec_name"] + " " + records["spec_hash"].str[:8],
        cell=_cells(records),
    )
    table = records.pivot_table(index=["spec", "model"], columns="threshold", values="cell", aggfunc="first")
    first = records[records["threshold"] == records["threshold"].min()].set_index(["spec", "model"])
    table.columns = [f"t={c:g}" for c in table.columns]
    table.insert(0, "rank", first["rank"].reindex(table.index).astype("Int64"))
    table.insert(1, "band", first["rank_band"].reindex(table.index))
    return table.reset_index().sort_values(["spec", "rank", "model"]).reset_index(drop=True)


def format_board(board: pd.DataFrame, fmt: str, summary: bool = False) -> str:
    """Render the board as a table (summary), or as json/csv of long rows (or of the summary)."""
    if fmt in ("json", "csv"):
        # the replicate scores stay in Parquet (compare, bands); JSON/CSV give the interval
        frame = summary_records(board) if summary else board.drop(columns="score_replicates", errors="ignore")
        return frame.to_json(orient="records", indent=1) if fmt == "json" else frame.to_csv(index=False)
    if board.empty:
        return "The leaderboard is empty: run `synbench run MODEL_REF` or `synbench demo` first."
    table = summary_table(board)
    return (
        table.to_markdown(index=False, tablefmt="simple_outline")
        + "\nEach cell: the best eps's SynBench-Score at accuracy threshold t ± its 95% interval; rank by the first"
        + "\nthreshold. Models in one band are not distinguishable from their neighbour above (paired test).\n"
    )


def format_history(
    root, fmt: str = "table", eps: list[float] | None = None, threshold: list[float] | None = None
) -> str:
    """Snapshots written so far and the latest one's ranks and rank changes at ``eps`` (default: the smallest)."""
    snapshots = read_snapshots(root)
    if not snapshots:
        return "No snapshots yet: `synbench batch` and the refresh flow write one per run."
    latest = read_frame(snapshots[-1])
    if "rank" not in latest.columns:
        latest = rank_board(latest)
    wanted_eps = [round(e, 9) for e in (eps or [latest["eps"].min()])]
    latest = latest[latest["eps"].round(9).isin(wanted_eps)]
    if threshold:
        latest = latest[latest["threshold"].round(9).isin([round(t, 9) for t in threshold])]
    latest = latest[["spec_name", "model", *ROW_KEY[2:], "score", "rank", "rank_change"]]
    latest = latest.sort_values(["spec_name", "eps", "threshold", "rank"])
    change = latest["rank_change"].astype("Int64")
    shown = latest.assign(rank_change=[("new" if pd.isna(c) else f"{int(c):+d}") for c in change])
    if fmt == "json":
        return shown.to_json(orient="records", indent=1)
    if fmt == "csv":
        return shown.to_csv(index=False)
    listing = "\n".join(f"  {p.name}" for p in snapshots)
    shown = shown.assign(score=shown["score"].map("{:.4f}".format))
    table = shown.to_markdown(index=False, tablefmt="simple_outline")
    heading = "Latest ranks per (spec, eps, threshold); rank_change > 0 moved up, 'new' was not ranked before:"
    return f"{len(snapshots)} snapshot(s):\n{listing}\n{heading}\n{table}"
