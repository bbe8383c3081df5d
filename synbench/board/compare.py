"""Paired comparison of two models on one board (METHOD.md section 6; docs/METHOD.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import SynBenchError
from ..method.intervals import paired_interval
from .names import pick_fingerprint, with_display_names

__all__ = ["replicates_of", "pick_model", "compare_models"]


def replicates_of(row: pd.Series, kind: str = "score") -> np.ndarray | None:
    """A board row's half-sample replicate scores of ``kind`` (score or score_dm), or None without intervals."""
    values = row.get(f"{kind}_replicates")
    if values is None or (isinstance(values, float) and np.isnan(values)) or len(values) < 2:
        return None
    return np.asarray(values, dtype=np.float64)


def pick_model(board: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows of the one model ``name`` names on the board: a display name, a reference or a fingerprint prefix.

    Raises:
        SynBenchError: no model or several answer to ``name`` (names.pick_fingerprint).
    """
    board = board if "display_name" in board else with_display_names(board)
    return board[board["model_fingerprint"] == pick_fingerprint(board, name)]


def _shared_spec(rows_a: pd.DataFrame, rows_b: pd.DataFrame) -> str:
    shared = sorted(set(rows_a["spec_hash"]) & set(rows_b["spec_hash"]))
    if not shared:
        raise SynBenchError("the two models share no spec on the board; run both with the same --spec.")
    if len(shared) > 1:
        raise SynBenchError(f"the two models share {len(shared)} specs; pick one with --spec ({', '.join(shared)}).")
    return shared[0]


def compare_models(board: pd.DataFrame, model_a: str, model_b: str) -> pd.DataFrame:
    """``a - b`` per threshold and score kind (score, score_dm), each model at its best eps for that kind among
    the rows given, with the paired 95% interval; ``verdict`` says whether it excludes 0.

    Both models saw the same inputs and their intervals the same half-samples, so the interval of the
    difference comes from the replicate-by-replicate differences.
    """
    rows_a, rows_b = pick_model(board, model_a), pick_model(board, model_b)
    spec_hash = _shared_spec(rows_a, rows_b)
    records = []
    for kind, mark in (("score", "best_eps"), ("score_dm", "best_eps_dm")):
        if kind not in board:
            continue
        best_a = rows_a[(rows_a["spec_hash"] == spec_hash) & rows_a[mark].fillna(False).astype(bool)]
        best_b = rows_b[(rows_b["spec_hash"] == spec_hash) & rows_b[mark].fillna(False).astype(bool)]
        best_a, best_b = best_a.set_index("threshold"), best_b.set_index("threshold")
        for threshold in sorted(set(best_a.index) & set(best_b.index)):
            a, b = best_a.loc[threshold], best_b.loc[threshold]
            records.append(
                {
                    "spec_name": a["spec_name"],
                    "spec_hash": spec_hash,
                    "threshold": threshold,
                    "kind": kind,
                    "model_a": a["display_name"],
                    "model_b": b["display_name"],
                    "eps_a": a["eps"],
                    "value_a": a[kind],
                    "eps_b": b["eps"],
                    "value_b": b[kind],
                    "underpowered_a": _underpowered(a),
                    "underpowered_b": _underpowered(b),
                    **_difference(a, b, kind, a["display_name"], b["display_name"]),
                }
            )
    return pd.DataFrame(records).sort_values(["kind", "threshold"], kind="stable").reset_index(drop=True)


def _underpowered(row: pd.Series) -> bool:
    value = row.get("underpowered")
    return bool(value) if pd.notna(value) else False


def _difference(a: pd.Series, b: pd.Series, kind: str, model_a: str, model_b: str) -> dict:
    replicates_a, replicates_b = replicates_of(a, kind), replicates_of(b, kind)
    pairs = 0 if replicates_a is None or replicates_b is None else min(len(replicates_a), len(replicates_b))
    if not pairs:
        difference, low, high = a[kind] - b[kind], np.nan, np.nan
    else:  # on the first min(Ba, Bb) half-samples, which are the same for both
        difference, low, high = paired_interval(a[kind], replicates_a, b[kind], replicates_b)
    weak = [f"{name} (r/n {row['r_over_n']:.2f})" for name, row in ((model_a, a), (model_b, b)) if _underpowered(row)]
    if weak:
        verdict = f"not comparable: {' and '.join(weak)} underpowered (METHOD.md 7.3)"
    elif pd.isna(difference):
        verdict = "not a number (a score is missing: its reference area is 0)"
    elif np.isnan(low):
        verdict = "no interval (published with --ci none)"
    elif low > 0 or high < 0:
        verdict = f"{model_a if low > 0 else model_b} scores higher"
    else:
        verdict = "not distinguishable"
    return {
        "difference": difference,
        "difference_low": low,
        "difference_high": high,
        "paired_replicates": pairs,
        "verdict": verdict,
    }
