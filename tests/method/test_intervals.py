"""Score intervals, paired differences, rank bands (issue 12; METHOD.md section 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synbench.api import evaluate
from synbench.board.compare import compare_models
from synbench.board.read import read_board
from synbench.board.tables import format_board, summary_records
from synbench.core.errors import SpecError
from synbench.core.spec import BenchmarkSpec, load_spec
from synbench.method.generate import block_inputs
from synbench.method.intervals import (
    check_replicates,
    half_sample,
    interval,
    paired_interval,
    rank_bands,
    replicate_curves,
    replicate_tasks,
    with_intervals,
)
from synbench.method.probe_solve import probe_tasks
from synbench.method.score import empirical_curves, reference_curve, score_rows
from synbench.models.encoders import resolve_encoder


def test_half_samples_are_seeded_halves_without_duplicates():
    first = half_sample(0, 3, 0, 7, 513)
    assert len(first) == 256 and len(np.unique(first)) == 256 and first.max() < 513
    assert np.array_equal(first, half_sample(0, 3, 0, 7, 513))  # a pure function of its arguments
    others = [half_sample(0, 3, 0, 8, 513), half_sample(1, 3, 0, 7, 513), half_sample(0, 3, 1, 7, 513)]
    assert all(not np.array_equal(first, other) for other in others)


@pytest.mark.parametrize("n, p", [(64, 40), (96, 20)])
def test_replicates_are_exact_refits_on_the_halves(n, p):
    """The shared-Gram path (half smaller than p) and the covariance path equal fit_probe on each half,
    in the first chunk of replicates whose products are taken together and in the next."""
    from synbench.method.probe import evaluate_probe, fit_probe
    from synbench.method.refits import CHUNK

    rng = np.random.default_rng(5)
    mixing = rng.normal(size=(p, p)) * np.linspace(0.1, 3, p)

    def split():
        labels = (rng.random(n) < 0.5).astype(np.uint8)
        return rng.normal(size=(n, p)) @ mixing + np.where(labels[:, None] == 1, 0.4, -0.4), labels

    (train_h, train_y), (test_h, test_y) = split(), split()
    eps_values = (0.0, 0.2, 0.5)
    count = CHUNK + 2
    pairs = replicate_tasks([(0.7, (train_h, train_y), (test_h, test_y))], eps_values, seed=3, replicates=count)
    assert [r for r, _ in pairs] == [r for r in range(count) for _ in eps_values]
    for replicate in (0, 1, 2, count - 2, count - 1):
        train, test = half_sample(3, 0, 0, replicate, n), half_sample(3, 0, 1, replicate, n)
        probe = fit_probe(train_h[train], train_y[train], route="covariance")
        expected = evaluate_probe(probe, test_h[test], test_y[test], 0.7, eps_values)
        got = [result for r, result in pairs if r == replicate]
        assert [g.accuracy for g in got] == [e.accuracy for e in expected]
        assert [g.rank for g in got] == [e.rank for e in expected] == [min(n // 2 - 2, p)] * 3
        assert np.allclose([g.bound for g in got], [e.bound for e in expected], rtol=1e-9)
        assert np.allclose([g.nu for g in got[1:]], [e.nu for e in expected[1:]], rtol=1e-7)


def test_a_far_outlier_costs_the_covariance_route_no_digits_in_the_halves_without_it():
    """Halves re-centre their rows rather than downdate the split's scatter (which lost 5e-3 here)."""
    from synbench.method.probe import evaluate_probe, fit_probe

    rng = np.random.default_rng(1)
    labels = (rng.random(96) < 0.5).astype(np.uint8)
    features = rng.normal(size=(96, 20)) @ rng.normal(size=(20, 20)) + np.where(labels[:, None] == 1, 0.4, -0.4)
    test = features[::-1].copy(), labels[::-1].copy()
    features[5] += 1e8
    pairs = replicate_tasks([(0.7, (features, labels), test)], (0.0, 0.5), seed=3, replicates=8)
    compared = 0
    for replicate in range(8):
        train, held = half_sample(3, 0, 0, replicate, 96), half_sample(3, 0, 1, replicate, 96)
        if 5 in train:
            continue
        probe = fit_probe(features[train], labels[train], route="covariance")
        expected = evaluate_probe(probe, test[0][held], test[1][held], 0.7, (0.0, 0.5))
        got = [result for r, result in pairs if r == replicate]
        assert [g.accuracy for g in got] == [e.accuracy for e in expected]
        assert np.allclose([g.bound for g in got], [e.bound for e in expected], rtol=1e-8)
        compared += 1
    assert compared >= 2


def test_interval_is_centred_on_the_point_estimate_and_clipped_at_zero():
    replicates = [0.70, 0.72, 0.74, 0.76, 0.78]  # their mean (0.74) is not the point estimate
    low, high = interval(0.8, replicates)
    half_width = 2.776 * np.std(replicates, ddof=1)  # t quantile, 4 degrees of freedom
    assert low == pytest.approx(0.8 - half_width, abs=1e-3) and high == pytest.approx(0.8 + half_width, abs=1e-3)
    assert interval(0.001, [0.0, 0.01, 0.02])[0] == 0.0
    assert interval(0.0, [0.0] * 10) == (0.0, 0.0)


def test_paired_difference_uses_the_replicate_differences():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.05, size=40)  # noise both models share: the same half-samples
    a, b = 0.9 + shared + rng.normal(0, 0.002, 40), 0.88 + shared + rng.normal(0, 0.002, 40)
    difference, low, high = paired_interval(0.9, a, 0.88, b)
    assert difference == pytest.approx(0.02) and 0 < low < difference < high  # paired: 0.02 is resolved
    assert not interval(0.9, a)[0] > interval(0.88, b)[1]  # unpaired intervals overlap
    assert paired_interval(0.9, a, 0.9, a) == (0.0, 0.0, 0.0)


def test_rank_bands_chain_indistinguishable_neighbours():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, size=(4, 40))
    scores = [0.95, 0.949, 0.90, 0.20]
    replicates = [s + n for s, n in zip(scores, noise, strict=True)]
    assert rank_bands(scores, replicates) == ["1-2", "1-2", "3", "4"]


def test_the_common_replicates_are_paired_whatever_each_models_count():
    rng = np.random.default_rng(2)
    shared = rng.normal(0, 0.05, size=40)
    a, b = 0.9 + shared + rng.normal(0, 0.002, 40), 0.88 + shared[:20] + rng.normal(0, 0.002, 20)
    assert paired_interval(0.9, a, 0.88, b) == paired_interval(0.9, a[:20], 0.88, b)
    assert paired_interval(0.9, a, 0.88, b)[1] > 0  # measured, and resolved
    assert paired_interval(0.0, np.zeros(40), 0.0, np.zeros(20)) == (0.0, 0.0, 0.0)


def test_replicate_b_is_the_same_half_sample_whatever_the_replicate_count():
    rng = np.random.default_rng(3)
    labels = np.arange(40) % 2
    tasks = [(scale, (rng.normal(size=(40, 3)), labels), (rng.normal(size=(40, 3)), labels)) for scale in (0.5, 1.5)]
    few, many = (replicate_curves(replicate_tasks(tasks, (0.0,), 7, count)) for count in (2, 5))
    assert np.array_equal(many[0.0][:2], few[0.0]) and not np.array_equal(many[0.0][2], many[0.0][1])


def test_bands_never_tell_apart_what_was_not_measured_and_ties_share_a_band():
    rng = np.random.default_rng(4)
    noise = rng.normal(0, 0.01, size=(3, 40))
    # replicate counts 40 and 20 are paired on their first 20; the tied zeros share a band
    assert rank_bands([0.5, 0.0, 0.0], [0.5 + noise[0], np.zeros(40), np.zeros(20)]) == ["1", "2-3", "2-3"]
    # --ci none everywhere: nothing measured, nothing told apart, but ties still share a band
    assert rank_bands([0.9, 0.8, 0.7], [None] * 3) == ["not measured"] * 3
    assert rank_bands([0.5, 0.5, 0.4], [None, None, None]) == ["1-2", "1-2", "not measured"]
    # a model without replicates between two measured ones: they are compared with each other across it
    scores = [0.95, 0.949, 0.948, 0.2]
    replicates = [0.95 + noise[1], None, 0.948 + noise[2], 0.2 + noise[0]]
    assert rank_bands(scores, replicates) == ["1-3", "not measured", "1-3", "4"]
    assert rank_bands([0.9, 0.9], [None, 0.9 + noise[0]]) == ["1-2", "1-2"]  # a tie with an unmeasured model


@pytest.mark.parametrize("bad", [1, -1, 10_001, 2.5, True])
def test_replicate_counts_are_checked(bad):
    with pytest.raises(SpecError, match="ci replicates must be 0"):
        check_replicates(bad)


def _identity_rows(spec: BenchmarkSpec, replicates: int) -> list[dict]:
    encoder = resolve_encoder("identity:3x2x2")

    def split(index: int, name: str):
        blocks = [block_inputs(spec, encoder.preprocess, index, name, b) for b in range(spec.n_blocks(name))]
        return np.concatenate([encoder.represent(x).numpy() for _, x in blocks]), np.concatenate([y for y, _ in blocks])

    tasks = [(s, split(i, "train"), split(i, "test")) for i, s in enumerate(spec.scales)]
    reference = reference_curve(spec.scales)
    rows = score_rows(empirical_curves(probe_tasks(tasks, spec.eps)), reference, spec.thresholds)
    return with_intervals(rows, replicate_curves(replicate_tasks(tasks, spec.eps, spec.seed, replicates)), reference)


def test_intervals_cover_the_mean_score_across_seeds():
    """A fast version of benchmarks/ci_coverage.py: small d, few seeds, a loose bound."""
    frames = []
    for seed in range(12):
        spec = BenchmarkSpec(scales=(0.3, 0.8, 1.3, 1.8, 2.5, 3.2), n_train=128, n_test=128, eps=(0.0, 0.3), seed=seed)
        frames.append(pd.DataFrame(_identity_rows(spec, 20)).assign(seed=seed))
    rows = pd.concat(frames)
    mean = rows.groupby(["eps", "threshold"])["score"].transform("mean")
    covered = (rows["score_low"] <= mean) & (mean <= rows["score_high"])
    assert covered.mean() >= 0.8
    assert covered.groupby([rows["eps"], rows["threshold"]]).mean().min() >= 0.5
    assert ((rows["score_low"] <= rows["score"]) & (rows["score"] <= rows["score_high"])).all()


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("ci") / "root"
    spec = load_spec("demo", scales=(0.5, 1.5, 2.5, 3.5), n_train=256, n_test=256, block_size=128, eps=(0.0, 0.2))
    for ref in ("identity:1x8x8", "noise:1x8x8"):
        evaluate(ref, spec=spec, root=root, device="cpu", ci_replicates=20)
    evaluate("identity:1x4x4", spec=spec, root=root, device="cpu", ci_replicates=0)
    return root


def test_board_rows_carry_intervals(two_models):
    board = read_board(two_models)
    with_ci = board[board["ci_replicates"] == 20]
    assert len(with_ci) == 2 * 2 * 4 and (with_ci["ci_method"] == "half-sampling").all()
    assert ((with_ci["score_low"] <= with_ci["score"]) & (with_ci["score"] <= with_ci["score_high"])).all()
    identity = with_ci[with_ci["model"] == "identity:1x8x8"]
    assert ((identity["score_high"] - identity["score_low"]).between(0.001, 0.6)).all()  # 4 tasks, d/n = 0.25
    assert (with_ci[with_ci["model"] == "noise:1x8x8"]["score_high"] < 0.1).all()
    without = board[board["ci_replicates"] == 0]
    assert len(without) == 8 and without["score_low"].isna().all() and (without["ci_method"] == "none").all()
    assert '"score_replicates"' not in format_board(board, "json")  # they stay in Parquet


def test_compare_is_paired_and_exact_for_a_model_against_itself(two_models):
    board = read_board(two_models)
    same = compare_models(board, "identity:1x8x8", "identity:1x8x8")
    assert (same[["difference", "difference_low", "difference_high"]].to_numpy() == 0).all()
    apart = compare_models(board, "identity:1x8x8", "noise:1x8x8")
    assert (apart["difference_low"] > 0.5).all() and (apart["verdict"] == "identity:1x8x8 scores higher").all()
    no_ci = compare_models(board, "identity:1x8x8", "identity:1x4x4")
    assert no_ci["difference_low"].isna().all() and no_ci["verdict"].str.startswith("no interval").all()


def test_summary_gives_rank_bands_and_intervals(two_models):
    records = summary_records(read_board(two_models))
    first = records[records["threshold"] == 0.6].set_index("model")
    assert first.loc["noise:1x8x8", "rank_band"] == "3" and first.loc["noise:1x8x8", "score_high"] < 0.1
    assert first.loc["identity:1x4x4", "rank_band"] == "not measured"  # published with --ci none
    assert set(first["rank_band"]) <= {"1", "2", "3", "1-2", "not measured"}
    assert "±" in format_board(read_board(two_models), "table")


def test_a_threshold_answered_from_curves_has_its_interval(two_models):
    board = read_board(two_models, threshold=[0.75])
    rows = board[board["ci_replicates"] == 20]
    assert len(rows) == 4 and ((rows["score_low"] <= rows["score"]) & (rows["score"] <= rows["score_high"])).all()


def test_the_page_and_the_plots_show_intervals_and_bands(two_models):
    from synbench.board.page import board_html, render_page
    from synbench.board.plots import plot_model_curves
    from synbench.stages.probes import load_replicate_curves

    board = read_board(two_models)
    page = render_page(two_models, board)
    assert "<th>band</th>" in page and "<th>score_low</th>" in page and "±" in page
    assert board_html(board, {}).count("<tr") > len(board)  # the summary rows, then every board row
    row = board[board["replicates_file"] != ""].iloc[0]
    curves_file = two_models / "curves" / row["curves_file"]
    replicates = load_replicate_curves(two_models / "probes" / row["replicates_file"])
    assert all(r.shape == (20, 100) for r in replicates.values())
    with_band = plot_model_curves(pd.read_parquet(curves_file), "m", replicates=replicates)
    without = plot_model_curves(pd.read_parquet(curves_file), "m")
    assert with_band.startswith(b"\x89PNG") and with_band != without


def test_replicates_without_spread_away_from_the_point_estimate_give_no_interval():
    # issue 31: half-sample probes that interpolate all score 0 at t = 0.9; zero spread is a floor, not a precision
    assert all(np.isnan(interval(0.7794, [0.0] * 40)))
    assert interval(0.0, [0.0] * 40) == (0.0, 0.0)  # a score of 0 that every half-sample agrees with
    assert interval(1.0, [1.0] * 5) == (1.0, 1.0)


@pytest.mark.slow
def test_a_model_whose_half_sample_probes_interpolate_shows_no_zero_width_interval(tmp_path):
    # the case: identity:2x128 on the demo spec keeps r = 256 of n_train = 512 (underpowered); each half
    # (256 samples) interpolates, so every replicate scores 0 at t = 0.9, eps 0, while the full probe scores 0.78
    rows = evaluate("identity:2x128", spec="demo", root=tmp_path, device="cpu")
    collapsed = [np.ptp(r) == 0 and r[0] != s for r, s in zip(rows["score_replicates"], rows["score"], strict=True)]
    assert any(collapsed)
    for kind in ("score", "score_dm"):
        narrow = rows[f"{kind}_high"] - rows[f"{kind}_low"] == 0
        assert not (narrow & (rows[kind] > 0)).any(), rows[[kind, f"{kind}_low", f"{kind}_high"]]
        assert rows.loc[collapsed, f"{kind}_low"].isna().all()
