"""Rank keys: which score ranks a board, at which threshold, and the ranks and bands they give.

A key is a score kind (``score``: the paper's SynBench-Score; ``score_dm``: the dimension-matched
score of METHOD.md section 7) at one accuracy threshold or averaged over the thresholds shown
(``mean``). Models whose probe is underpowered (METHOD.md 7.3) are never ranked against powered ones:
they get no rank and are listed after them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.errors import SynBenchError
from ..core.spec import threshold_ok
from ..method.intervals import interval, rank_bands
from .compare import replicates_of

__all__ = ["RankKey", "DEFAULT_RANK_KEY", "SCORE_KINDS", "parse_rank_key", "best_rows", "rank_models"]

SCORE_KINDS = ("score", "score_dm")


@dataclass(frozen=True)
class RankKey:
    """What a board is ranked by."""

    kind: str = "score_dm"  # "score" or "score_dm"
    threshold: float | None = None  # an accuracy threshold, or None for the mean over the thresholds shown

    def __str__(self) -> str:
        return f"{self.kind}@{'mean' if self.threshold is None else f'{self.threshold:g}'}"


# Chosen by rank agreement with real linear probing (README, "Choosing the rank key"): the highest mean
# Kendall tau over the demo zoo on digits and the real zoo on digits, photos and lfw.
DEFAULT_RANK_KEY = RankKey("score_dm", 0.7)


def parse_rank_key(text: str | None) -> RankKey:
    """``score_dm@mean``, ``score@0.9``, ``score_dm``, ``0.8`` or ``mean``; a missing part takes the default's."""
    if not text:
        return DEFAULT_RANK_KEY
    kind, _, where = text.partition("@") if "@" in text else ("", "", text)
    if text in SCORE_KINDS:
        kind, where = text, ""
    kind, where = kind or DEFAULT_RANK_KEY.kind, where or str(DEFAULT_RANK_KEY)
    if kind not in SCORE_KINDS:
        raise SynBenchError(f"unknown score {kind!r} in rank key {text!r}; use score or score_dm, e.g. score_dm@mean.")
    where = where.partition("@")[2] if "@" in where else where
    if where == "mean":
        return RankKey(kind, None)
    try:
        threshold = float(where)
    except ValueError:
        raise SynBenchError(
            f"cannot read rank key {text!r}; write SCORE@THRESHOLD or SCORE@mean, e.g. score@0.9."
        ) from None
    if not threshold_ok(threshold):
        raise SynBenchError(f"rank key threshold {threshold:g} must lie in [0.6, 1), like the board's thresholds.")
    return RankKey(kind, threshold)


def best_rows(board: pd.DataFrame, kind: str) -> pd.DataFrame:
    """One row per (spec, model, threshold): the eps with the best ``kind`` score there."""
    mark = "best_eps" if kind == "score" else "best_eps_dm"
    if mark not in board:  # parts published before score_dm existed
        return board.iloc[0:0]
    return board[board[mark].fillna(False).astype(bool)]


def _value(rows: pd.DataFrame, key: RankKey) -> tuple[float, float, float, np.ndarray | None]:
    """(value, low, high, replicates) of one model's key from its best rows (one per threshold)."""
    column = key.kind
    if key.threshold is not None:
        rows = rows[np.isclose(rows["threshold"], key.threshold, atol=1e-9)]
        if rows.empty:
            return np.nan, np.nan, np.nan, None
        row = rows.iloc[0]
        return (
            row[column],
            row.get(f"{column}_low", np.nan),
            row.get(f"{column}_high", np.nan),
            replicates_of(row, column),
        )
    values = rows[column].to_numpy(dtype=float)
    replicates = [replicates_of(row, column) for _, row in rows.iterrows()]
    value = float(values.mean()) if len(values) else np.nan
    if any(r is None for r in replicates) or len({len(r) for r in replicates}) != 1:
        return value, np.nan, np.nan, None
    mean_replicates = np.mean(np.stack(replicates), axis=0)
    low, high = interval(value, mean_replicates)
    return value, low, high, mean_replicates


def _ranked(values: pd.DataFrame) -> pd.DataFrame:
    """Rank (ties share the better one) and band among the rankable models of one spec, best first."""
    rankable = values[~values["underpowered"] & values["rank_value"].notna()]
    rankable = rankable.sort_values(["rank_value", "model"], ascending=[False, True])
    ranks = rankable["rank_value"].rank(ascending=False, method="min").astype("Int64")
    bands = rank_bands(rankable["rank_value"].tolist(), rankable["replicates"].tolist()) if len(rankable) else []
    rest = values.drop(rankable.index).assign(
        rank=pd.NA, rank_band=["underpowered" if u else "no score" for u in values.drop(rankable.index)["underpowered"]]
    )
    return pd.concat([rankable.assign(rank=ranks, rank_band=bands), rest])


def rank_models(best: pd.DataFrame, key: RankKey, thresholds: Sequence[float]) -> pd.DataFrame:
    """Rank value, its interval, rank and band of every (spec, model), from ``best_rows(board, key.kind)``.

    Columns spec_hash, model_fingerprint, model, underpowered, rank_value, rank_value_low, rank_value_high,
    rank, rank_band; powered models first in rank order.
    """
    records = []
    for (spec_hash, fingerprint), rows in best.groupby(["spec_hash", "model_fingerprint"], sort=False):
        rows = rows[rows["threshold"].round(9).isin([round(t, 9) for t in thresholds])]
        value, low, high, replicates = _value(rows, key)
        first = rows.iloc[0]
        records.append(
            {
                "spec_hash": spec_hash,
                "model_fingerprint": fingerprint,
                "model": first["model"],
                "underpowered": bool(first.get("underpowered", False)),
                "rank_value": value if np.isfinite(value) else np.nan,
                "rank_value_low": low,
                "rank_value_high": high,
                "replicates": replicates,
            }
        )
    if not records:
        raise SynBenchError("the board holds no rows with that score; republish the models (synbench audit --repair).")
    frame = pd.DataFrame(records)
    ranked = pd.concat([_ranked(part) for _, part in frame.groupby("spec_hash", sort=False)])
    return ranked.drop(columns="replicates").assign(rank_key=str(key)).reset_index(drop=True)
