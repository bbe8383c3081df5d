"""How a board is summarised and printed: ranked summaries, tables, JSON/CSV, rank history."""

from __future__ import annotations

import pandas as pd

from ..method.intervals import NOT_MEASURED, rank_bands
from ..store.parquet import read_frame
from .compare import replicates_of
from .names import SHORT, display_name, with_display_names
from .ranking import DEFAULT_RANK_KEY, RankKey, best_rows, rank_models
from .read import ROW_KEY, rank_board, read_snapshots

__all__ = ["summary_records", "summary_table", "table_notes", "score_cells", "format_board", "format_history"]

_SUMMARY_COLUMNS = (  # the summary's records, in this order (README: `leaderboard --summary`)
    "rank rank_band rank_key rank_value rank_value_low rank_value_high model display_name spec_name spec_hash "
    "input_shape feature_dim probe_rank r_over_n underpowered interpolates n_train_needed threshold band score "
    "score_low score_high best_eps score_dm score_dm_low score_dm_high best_eps_dm model_fingerprint"
).split()
_MODEL = ["spec_hash", "model_fingerprint"]


def _per_threshold(board: pd.DataFrame) -> pd.DataFrame:
    """One row per (spec, model, threshold): each score kind at its own best eps, with its interval."""
    paper = best_rows(board, "score").drop(columns=["best_eps", "best_eps_dm"], errors="ignore")
    paper = paper.rename(columns={"eps": "best_eps"})
    for column in ("score_low", "score_high", *_POWER):  # parts published before intervals or score_dm existed
        if column not in paper:
            paper[column] = pd.NA
    matched = best_rows(board, "score_dm")
    dm_columns = ["score_dm", "score_dm_low", "score_dm_high", "score_dm_replicates"]
    matched = matched[[*_MODEL, "threshold", "eps", *[c for c in dm_columns if c in matched]]]
    paper = paper.drop(columns=[c for c in dm_columns if c in paper])
    return paper.merge(matched.rename(columns={"eps": "best_eps_dm"}), on=[*_MODEL, "threshold"], how="left")


_POWER = ["input_shape", "feature_dim", "probe_rank", "r_over_n", "underpowered", "n_train_needed"]


def _threshold_bands(records: pd.DataFrame, kind: str) -> list[str]:
    """Band of each record among the powered models of its (spec, threshold), by ``kind`` (METHOD.md 6)."""
    bands = pd.Series("", index=records.index, dtype=object)
    for _, rows in records.groupby(["spec_hash", "threshold"]):
        powered = rows[~rows["underpowered"].fillna(False).astype(bool) & rows[kind].notna()]
        powered = powered.sort_values([kind, "model"], ascending=[False, True])
        replicates = [replicates_of(row, kind) for _, row in powered.iterrows()]
        bands[powered.index] = rank_bands(powered[kind].tolist(), replicates)
    return bands.tolist()


def summary_records(board: pd.DataFrame, rank_key: RankKey = DEFAULT_RANK_KEY) -> pd.DataFrame:
    """One row per (spec, model, threshold): both scores at their best eps with intervals, the power flags,
    and the model's rank and band by ``rank_key`` (``band``: this threshold's band for the key's score)."""
    if board.empty:
        return pd.DataFrame(columns=_SUMMARY_COLUMNS)
    rank_key, board = usable_key(board, rank_key), with_display_names(board)
    thresholds = sorted(board["threshold"].unique())
    records = _per_threshold(board)
    records["underpowered"] = records["underpowered"].fillna(False).astype(bool)
    ranked = rank_models(best_rows(board, rank_key.kind), rank_key, thresholds)
    records = records.merge(ranked.drop(columns=["model", "underpowered"]), on=_MODEL, how="left")
    records["band"] = _threshold_bands(records, rank_key.kind)
    records.loc[records["underpowered"], "band"] = "underpowered"
    records["interpolates"] = _interpolates(records)
    order = records.assign(unranked=records["rank"].isna())
    order = order.sort_values(["spec_name", "spec_hash", "threshold", "unranked", "rank", "model"])
    return order.reindex(columns=_SUMMARY_COLUMNS).reset_index(drop=True)


def score_cells(records: pd.DataFrame, kind: str = "score") -> list[str]:
    """A "score ±half-width (eps e)" cell per row (the interval is symmetric but for its clip at 0);
    a score that is not a number (reference area 0) is shown as missing."""
    eps_column = "best_eps" if kind == "score" else "best_eps_dm"
    columns = [records[c] for c in (kind, f"{kind}_high", eps_column)]
    cells = []
    for score, high, eps, interpolating in zip(*columns, _interpolates(records), strict=True):
        if pd.isna(score) or interpolating:
            cells.append(INTERPOLATES if interpolating else "—")
            continue
        mark = "†" if score > 1 else ""
        cells.append(f"{score:.4f}{mark}{'' if pd.isna(high) else f' ±{high - score:.3f}'} (eps {eps:g})")
    return cells


INTERPOLATES = "— (probe interpolates)"


def _interpolates(records: pd.DataFrame) -> pd.Series:
    """Rows whose probe kept every component its split allows (r >= n_train - 2): it fits the training noise,
    so neither score means anything (METHOD.md 7.3)."""
    if not {"probe_rank", "r_over_n"} <= set(records.columns):
        return pd.Series(False, index=records.index)
    rank, ratio = records["probe_rank"].astype(float), records["r_over_n"].astype(float)
    return (ratio > 0) & (rank >= rank / ratio.where(ratio > 0) - 2.5)


def _shape(value) -> str:
    return "x".join(str(int(v)) for v in value) if value is not None and len(value) else "?"


def _power(row: pd.Series) -> str:
    if pd.isna(row["probe_rank"]):
        return "?"
    if row["underpowered"]:
        return f"UNDERPOWERED: r/n {row['r_over_n']:.2f}, needs n_train >= {int(row['n_train_needed'])}"
    return f"r/n {row['r_over_n']:.2f}"


def usable_key(board: pd.DataFrame, rank_key: RankKey) -> RankKey:
    """The rank key, or its paper-score twin on a board published before score_dm existed."""
    return rank_key if rank_key.kind in board else RankKey("score", rank_key.threshold)


def summary_table(board: pd.DataFrame, rank_key: RankKey = DEFAULT_RANK_KEY, compact: bool = False) -> pd.DataFrame:
    """Wide view for people: one row per (spec, model), a "score ± interval (eps e)" cell per threshold for the
    rank key's score, ranked by the key; underpowered models last, unranked. ``compact`` adds the columns of a
    narrow table: the rank key's value with its interval (headed by the key, e.g. ``score_dm@0.7``) and ``r/n``
    (with the n_train that would power an underpowered model)."""
    rank_key = usable_key(board, rank_key)
    records = summary_records(board, rank_key)
    if records.empty:
        return records
    records = records.assign(
        spec=records["spec_name"] + " " + records["spec_hash"].str[:8], cell=score_cells(records, rank_key.kind)
    )
    entry = ["spec", "model_fingerprint"]  # one row per fingerprint, whatever its name
    table = records.pivot_table(index=entry, columns="threshold", values="cell", aggfunc="first")
    table.columns = [f"{rank_key.kind} t={c:g}" for c in table.columns]
    first = records.drop_duplicates(entry).set_index(entry).reindex(table.index)
    key_cells = _key_cells(first)
    if rank_key.threshold is None:
        table[f"{rank_key.kind} mean"] = key_cells
    table.insert(0, "model", first["display_name"])
    table.insert(1, "fingerprint", [fp[:SHORT] for fp in first.index.get_level_values("model_fingerprint")])
    table.insert(2, "rank", first["rank"].astype("Int64"))
    table.insert(3, "band", first["rank_band"])
    table.insert(4, "input", [_shape(v) for v in first["input_shape"]])
    table.insert(5, "p", first["feature_dim"].astype("Int64"))
    table["power"] = [_power(row) for _, row in first.iterrows()]
    if compact:
        table[str(rank_key)] = key_cells
        table["r/n"] = [_ratio(row) for _, row in first.iterrows()]
    table = table.reset_index().drop(columns="model_fingerprint").assign(unranked=lambda t: t["rank"].isna())
    table = table.sort_values(["spec", "unranked", "rank", "model", "fingerprint"])
    table["rank"] = [str(rank) if pd.notna(rank) else "—" for rank in table["rank"]]  # unranked: no number
    return table.drop(columns="unranked").reset_index(drop=True)


def _key_cells(first: pd.DataFrame) -> list[str]:
    """ "value ±half-width" of each entry's rank key (the interval is symmetric but for its clip at 0)."""
    half = first["rank_value_high"] - first["rank_value"]
    return [
        INTERPOLATES
        if meaningless
        else "—"
        if pd.isna(v)
        else f"{v:.4f}{'†' if v > 1 else ''}{'' if pd.isna(h) else f' ±{h:.3f}'}"
        for v, h, meaningless in zip(first["rank_value"], half, _interpolates(first), strict=True)
    ]


def _ratio(row: pd.Series) -> str:
    if pd.isna(row["probe_rank"]):
        return "?"
    needs = f", n≥{int(row['n_train_needed'])}" if row["underpowered"] else ""
    return f"{row['r_over_n']:.2f}{needs}"


def table_notes(table: pd.DataFrame, rank_key: RankKey, compact: bool = False) -> str:
    """The lines under the table: what a cell is, how it is ranked, and the marks that appear in it; ``compact``:
    of the narrow table (``summary_table(compact=True)``'s key and r/n columns)."""
    text = table.to_string()
    interval = " ± its 95% interval" if "±" in text else " (no intervals: published with --ci none)"
    cell = f"Ranked by {rank_key}: each model at its best eps" if compact else "Each cell: the best eps's"
    lines = [
        f"{cell} {rank_key.kind} at accuracy threshold t{interval}; ranked by {rank_key}."
        if not compact
        else f"{cell}{interval}. r/n: components the probe kept / n_train. --wide: every t, eps, power.",
        "Models in one band are not distinguishable from their neighbour above (paired test).",
    ]
    if NOT_MEASURED in text:
        lines.append(
            f"{NOT_MEASURED}: published without intervals (--ci none), so no paired test placed it against its "
            "neighbours; only equal scores share its band."
        )
    if "†" in text:
        lines.append(
            "† above 1: the dimension-matched oracle (or the Bayes reference) is itself an estimate; a score above 1 "
            "inside its interval is noise, not a representation better than lossless."
            if rank_key.kind == "score_dm"
            else "† above 1: within the sampling noise of the estimate (its interval holds 1)."
        )
    if INTERPOLATES in text:
        lines.append(
            f"{INTERPOLATES}: the probe kept every component the split allows (r = n_train - 2), so it fits the "
            "training noise and neither score means anything (the JSON keeps the numbers)."
        )
    if "UNDERPOWERED" in text or "n≥" in text:
        lines.append(
            "UNDERPOWERED (n≥N): the probe kept r >= n_train / 2 components, so its estimation error, not the "
            "representation, sets the score; these rows are not ranked. Rerun with the n_train shown (spec file: "
            "n_train = ...)."
        )
    return "\n".join(lines)


def format_board(board: pd.DataFrame, fmt: str, summary: bool = False, rank_key: RankKey = DEFAULT_RANK_KEY) -> str:
    """Render the board as a table (summary), or as json/csv of long rows (or of the summary)."""
    if fmt in ("json", "csv"):
        # the replicate scores stay in Parquet (compare, bands); JSON/CSV give the interval
        replicates = ["score_replicates", "score_dm_replicates"]
        frame = summary_records(board, rank_key) if summary else board.drop(columns=replicates, errors="ignore")
        return frame.to_json(orient="records", indent=1) if fmt == "json" else frame.to_csv(index=False)
    if board.empty:
        return "The leaderboard is empty: run `synbench run MODEL_REF` or `synbench demo` first."
    table, rank_key = summary_table(board, rank_key), usable_key(board, rank_key)
    return table.to_markdown(index=False, tablefmt="simple_outline") + "\n" + table_notes(table, rank_key) + "\n"


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
    names = latest["display_name"] if "display_name" in latest else latest["model"].map(display_name)
    latest = latest.assign(model=names)[["spec_name", "model", *ROW_KEY[2:], "score", "rank", "rank_change"]]
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
