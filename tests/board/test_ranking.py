"""Rank keys (issue 19): which score ranks the board, at which threshold; underpowered rows are never ranked."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synbench.board.ranking import DEFAULT_RANK_KEY, RankKey, parse_rank_key
from synbench.board.tables import format_board, summary_records
from synbench.core.errors import SynBenchError


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("score@0.9", RankKey("score", 0.9)),
        ("score_dm@mean", RankKey("score_dm", None)),
        ("score", RankKey("score", DEFAULT_RANK_KEY.threshold)),
        ("0.7", RankKey(DEFAULT_RANK_KEY.kind, 0.7)),
        ("mean", RankKey(DEFAULT_RANK_KEY.kind, None)),
        (None, DEFAULT_RANK_KEY),
    ],
)
def test_rank_keys_parse(text, key):
    assert parse_rank_key(text) == key and parse_rank_key(str(key)) == key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accuracy@0.6", "unknown score 'accuracy'.*use score or score_dm"),
        ("score@high", "write SCORE@THRESHOLD or SCORE@mean"),
        ("score@1.5", "must lie in \\[0.6, 1\\)"),
    ],
)
def test_bad_rank_keys_are_one_line_errors(text, message):
    with pytest.raises(SynBenchError, match=message):
        parse_rank_key(text)


def _board(models: dict[str, dict]) -> pd.DataFrame:
    """A board of one spec, eps 0 only: per model its scores at t = 0.6 and 0.9 and its flags."""
    rows = []
    for name, info in models.items():
        for threshold, (score, score_dm) in zip((0.6, 0.9), info["scores"], strict=True):
            count = info.get("replicates", 10)
            replicates = info.get("spread", 0.01) * np.random.default_rng(len(rows)).standard_normal(count)
            rows.append(
                {
                    "model": name,
                    "model_fingerprint": f"fp-{name}",
                    "spec_name": "s",
                    "spec_hash": "h" * 16,
                    "eps": 0.0,
                    "threshold": threshold,
                    "score": score,
                    "score_low": score - 0.02,
                    "score_high": score + 0.02,
                    "score_replicates": score + replicates,
                    "best_eps": True,
                    "score_dm": score_dm,
                    "score_dm_low": score_dm - 0.02,
                    "score_dm_high": score_dm + 0.02,
                    "score_dm_replicates": score_dm + replicates,
                    "best_eps_dm": True,
                    "input_shape": [3, 8, 8],
                    "feature_dim": info.get("p", 64),
                    "probe_rank": info.get("p", 64),
                    "r_over_n": info.get("p", 64) / 512,
                    "underpowered": info.get("p", 64) / 512 >= 0.5,
                    "n_train_needed": 4 * info.get("p", 64),
                }
            )
    return pd.DataFrame(rows)


BOARD = _board(
    {
        "narrow": {"scores": [(0.95, 0.96), (0.60, 0.61)]},
        "wide": {"scores": [(0.70, 0.99), (0.80, 1.02)], "p": 200},
        "interpolating": {"scores": [(0.10, 3.0), (0.0, np.nan)], "p": 510},
    }
)


def test_the_key_decides_the_order_and_underpowered_models_get_no_rank():
    by_dm = summary_records(BOARD, RankKey("score_dm", None)).drop_duplicates("model").set_index("model")
    assert by_dm.loc["wide", "rank"] == 1 and by_dm.loc["narrow", "rank"] == 2
    assert by_dm.loc["wide", "rank_value"] == pytest.approx((0.99 + 1.02) / 2)
    assert pd.isna(by_dm.loc["interpolating", "rank"]) and by_dm.loc["interpolating", "rank_band"] == "underpowered"
    by_paper = summary_records(BOARD, RankKey("score", 0.6)).drop_duplicates("model").set_index("model")
    assert by_paper.loc["narrow", "rank"] == 1 and by_paper.loc["wide", "rank"] == 2
    assert by_paper.loc["narrow", "rank_value"] == 0.95
    at_09 = summary_records(BOARD, RankKey("score", 0.9)).drop_duplicates("model").set_index("model")
    assert at_09.loc["wide", "rank"] == 1


def test_bands_come_from_the_keys_paired_replicates():
    close = _board({"a": {"scores": [(0.9, 0.9), (0.9, 0.9)]}, "b": {"scores": [(0.899, 0.899), (0.9, 0.9)]}})
    records = summary_records(close, RankKey("score", 0.6))
    assert set(records["rank_band"]) == {"1-2"}
    apart = _board({"a": {"scores": [(0.9, 0.9)] * 2, "spread": 1e-4}, "b": {"scores": [(0.5, 0.5)] * 2}})
    assert set(summary_records(apart, RankKey("score", 0.6))["rank_band"]) == {"1", "2"}


def test_table_flags_underpowered_rows_and_shows_a_missing_score_as_missing():
    text = format_board(BOARD, "table", rank_key=RankKey("score_dm", None))
    lines = text.splitlines()
    last_model_line = max(i for i, line in enumerate(lines) if "interpolating" in line)
    assert last_model_line > max(i for i, line in enumerate(lines) if "narrow" in line)  # listed after the ranked
    assert "UNDERPOWERED: r/n 1.00, needs n_train >= 2040" in text and "—" in text and "nan" not in text.lower()
    assert "ranked by score_dm@mean" in text and "† above 1" in text
    # r = 510 of n_train = 512: the probe interpolates, so its 3.0 is shown as no score at all
    assert "3.0000" not in text and "— (probe interpolates)" in text and "neither score means anything" in text
    records = json.loads(format_board(BOARD, "json", summary=True, rank_key=RankKey("score_dm", 0.9)))
    missing = next(r for r in records if r["model"] == "interpolating" and r["threshold"] == 0.9)
    assert missing["score_dm"] is None and missing["rank"] is None and missing["underpowered"] is True
    assert {r["rank_key"] for r in records} == {"score_dm@0.9"}


def test_tied_scores_with_other_replicate_counts_share_a_band_and_compare_paired():
    from synbench.board.compare import compare_models

    board = _board(
        {
            "top": {"scores": [(0.9, 0.9)] * 2, "replicates": 40},
            "zero40": {"scores": [(0.0, 0.0)] * 2, "spread": 0.0, "replicates": 40},
            "zero20": {"scores": [(0.0, 0.0)] * 2, "spread": 0.0, "replicates": 20},
        }
    )
    records = summary_records(board, RankKey("score", 0.6)).drop_duplicates("model").set_index("model")
    assert records.loc["zero40", "rank_band"] == records.loc["zero20", "rank_band"] == "2-3"
    assert records.loc["top", "rank_band"] == "1"
    tied = compare_models(board, "zero40", "zero20")
    assert (tied[["difference", "difference_low", "difference_high"]].to_numpy() == 0).all()
    assert (tied["verdict"] == "not distinguishable").all() and (tied["paired_replicates"] == 20).all()
    apart = compare_models(board, "top", "zero20")
    assert apart["difference_low"].notna().all() and (apart["verdict"] == "top scores higher").all()


def test_models_published_without_intervals_are_not_given_distinct_bands():
    board = _board({name: {"scores": [(s, s)] * 2} for name, s in (("a", 0.9), ("b", 0.8), ("c", 0.7))})
    board = board.assign(score_replicates=[[]] * len(board), score_dm_replicates=[[]] * len(board))
    records = summary_records(board, RankKey("score", 0.6))
    assert set(records["rank_band"]) == set(records["band"]) == {"not measured"}
    assert list(records.drop_duplicates("model")["rank"]) == [1, 2, 3]  # the order stays; only bands are unmeasured
    assert "not measured: published without intervals" in format_board(board, "table", rank_key=RankKey("score", 0.6))


def test_compare_says_an_underpowered_model_is_not_comparable():
    from synbench.board.compare import compare_models

    board = BOARD.assign(display_name=BOARD["model"])
    table = compare_models(board, "interpolating", "narrow")
    assert table["underpowered_a"].all() and not table["underpowered_b"].any()
    assert table["verdict"].str.startswith("not comparable: interpolating (r/n 1.00) underpowered").all()
    assert not compare_models(board, "narrow", "wide")["verdict"].str.contains("not comparable").any()
