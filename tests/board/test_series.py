"""Checkpoint series: a weights glob expands in step order; the board draws score against step."""

from __future__ import annotations

import pytest
import torch
from encoders_for_tests import small_linear
from safetensors.torch import save_file

from synbench.api import evaluate
from synbench.board.page import render_page
from synbench.board.plots import plot_series
from synbench.board.read import read_board
from synbench.board.series import series_records, series_table
from synbench.core.errors import EncoderError
from synbench.core.spec import load_spec
from synbench.models.weights_paths import expand_series, series_step


def save_checkpoints(folder, steps) -> None:
    """The small linear encoder, drifting a little more at each step."""
    folder.mkdir(parents=True, exist_ok=True)
    for step in steps:
        state = {k: v + 0.01 * step for k, v in small_linear().state_dict().items()}
        save_file(state, str(folder / f"ckpt-{step}.safetensors"))


def test_a_glob_expands_in_step_order_not_name_order(tmp_path):
    save_checkpoints(tmp_path / "runs", [100, 2, 10])
    (tmp_path / "runs" / "notes.txt").write_text("not a checkpoint")
    refs = expand_series(f"py:encoders_for_tests:small_linear@{tmp_path}/runs/ckpt-*.safetensors#features")
    assert refs == [
        f"py:encoders_for_tests:small_linear@{tmp_path}/runs/ckpt-{step}.safetensors#features" for step in (2, 10, 100)
    ]
    assert series_step(refs[1]) == (
        f"py:encoders_for_tests:small_linear@{tmp_path}/runs/ckpt-*.safetensors#features",
        10,
    )
    assert expand_series("random:resnet18@3") == ["random:resnet18@3"]  # a seed, not a path
    assert series_step("identity:3x4x4") is None


def test_a_glob_that_matches_nothing_is_one_clear_error(tmp_path):
    with pytest.raises(EncoderError, match="no checkpoint matches .*ckpt-\\*.safetensors"):
        expand_series(f"timm:resnet18@{tmp_path}/ckpt-*.safetensors")


def test_the_board_draws_a_series_with_its_band(tmp_path):
    save_checkpoints(tmp_path / "runs", [1, 5, 20])
    spec = load_spec("demo", scales=(0.5, 1.5, 2.5), n_train=128, n_test=128, block_size=128, eps=(0.0,))
    pattern = f"py:encoders_for_tests:small_linear@{tmp_path}/runs/ckpt-*.safetensors"
    for ref in expand_series(pattern) + ["identity:1x4x4"]:
        evaluate(ref, spec=spec, root=tmp_path / "root", device="cpu", ci_replicates=10)
    board = read_board(tmp_path / "root")
    series = series_records(board)
    assert set(series["series"]) == {pattern} and sorted(series["step"].unique()) == [1, 5, 20]
    assert len(series) == 3 * len(spec.thresholds) and (series["score_low"] <= series["score"]).all()
    table = series_table(series)
    assert list(table["step"]) == [1, 5, 20] and "±" in table.iloc[0, 1]
    assert plot_series(series, "run").startswith(b"\x89PNG")
    page = render_page(tmp_path / "root", board)
    assert "Checkpoint series" in page and "ckpt-*.safetensors" in page
    scores = board[board["best_eps"] & (board["threshold"] == 0.6)]
    assert scores["model"].nunique() == 4 and not torch.isnan(torch.tensor(scores["score"].to_numpy())).any()


def test_the_series_table_shows_and_names_the_rank_keys_score(tmp_path):
    # issue 31: the page's series table showed the paper's score beside a summary in score_dm, unlabelled
    save_checkpoints(tmp_path / "runs", [1, 5])
    spec = load_spec("demo", scales=(0.5, 1.5, 2.5), n_train=128, n_test=128, block_size=128, eps=(0.0,))
    for ref in expand_series(f"py:encoders_for_tests:small_linear@{tmp_path}/runs/ckpt-*.safetensors"):
        evaluate(ref, spec=spec, root=tmp_path / "root", device="cpu", ci_replicates=4)
    series = series_records(read_board(tmp_path / "root"))
    table = series_table(series, "score_dm")
    assert list(table.columns) == ["step", *[f"score_dm t={t:g}" for t in spec.thresholds]]
    first = series[(series["step"] == 1) & (series["threshold"] == 0.7)].iloc[0]
    assert table.loc[table["step"] == 1, "score_dm t=0.7"].iloc[0].startswith(f"{first['score_dm']:.4f}")
    assert list(series_table(series).columns)[1] == "score t=0.6"
    page = render_page(tmp_path / "root", read_board(tmp_path / "root"))
    assert "<th>score_dm t=0.7</th>" in page and "score_dm (the rank key's score) at each saved step" in page
