"""Paired comparison of two models on one board (METHOD.md section 6; docs/METHOD.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import SynBenchError
from .intervals import paired_interval

__all__ = ["replicates_of", "pick_model", "compare_models"]


def replicates_of(row: pd.Series) -> np.ndarray | None:
    """A board row's half-sample replicate scores, or None when it was published without intervals."""
    values = row.get("score_replicates")
    if values is None or (isinstance(values, float) and np.isnan(values)) or len(values) < 2:
        return None
    return np.asarray(values, dtype=np.float64)


def pick_model(board: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows of the model named ``name`` on the board (one of its names, or a fingerprint prefix)."""
    names = board["model"].str.split(", ")
    chosen = board[names.apply(lambda listed: name in listed) | board["model_fingerprint"].str.startswith(name)]
    if chosen.empty:
        shown = ", ".join(sorted(board["model"].unique())[:10])
        raise SynBenchError(f"no model {name!r} on the board; models there: {shown}.")
    if chosen["model_fingerprint"].nunique() > 1:
        raise SynBenchError(f"{name!r} matches several models; give more of the fingerprint.")
    return chosen


def _shared_spec(rows_a: pd.DataFrame, rows_b: pd.DataFrame) -> str:
    shared = sorted(set(rows_a["spec_hash"]) & set(rows_b["spec_hash"]))
    if not shared:
        raise SynBenchError("the two models share no spec on the board; run both with the same --spec.")
    if len(shared) > 1:
        raise SynBenchError(f"the two models share {len(shared)} specs; pick one with --spec ({', '.join(shared)}).")
    return shared[0]


def compare_models(board: pd.DataFrame, model_a: str, model_b: str) -> pd.DataFrame:
    """``a - b`` per threshold at each model's best eps among the rows given, with its paired 95% interval.

    Both models saw the same inputs and their intervals the same half-samples, so the interval of the
    difference comes from the replicate-by-replicate differences. ``verdict`` says whether it excludes 0.
    """
    rows_a, rows_b = pick_model(board, model_a), pick_model(board, model_b)
    spec_hash = _shared_spec(rows_a, rows_b)
    best_a = rows_a[(rows_a["spec_hash"] == spec_hash) & rows_a["best_eps"]].set_index("threshold")
    best_b = rows_b[(rows_b["spec_hash"] == spec_hash) & rows_b["best_eps"]].set_index("threshold")
    records = []
    for threshold in sorted(set(best_a.index) & set(best_b.index)):
        a, b = best_a.loc[threshold], best_b.loc[threshold]
        replicates_a, replicates_b = replicates_of(a), replicates_of(b)
        if replicates_a is None or replicates_b is None:
            difference, low, high = a["score"] - b["score"], np.nan, np.nan
        else:
            difference, low, high = paired_interval(a["score"], replicates_a, b["score"], replicates_b)
        if np.isnan(low):
            verdict = "no interval (published with --ci none)"
        elif low > 0 or high < 0:
            verdict = f"{model_a if low > 0 else model_b} scores higher"
        else:
            verdict = "not distinguishable"
        records.append(
            {
                "spec_name": a["spec_name"],
                "spec_hash": spec_hash,
                "threshold": threshold,
                "eps_a": a["eps"],
                "score_a": a["score"],
                "eps_b": b["eps"],
                "score_b": b["score"],
                "difference": difference,
                "difference_low": low,
                "difference_high": high,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(records)
