"""The dimension-matched oracle and score (METHOD.md section 7): the simulation, the flags, the controls."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import synbench
from synbench.core.spec import BenchmarkSpec
from synbench.method.oracle import robust_weights, simulate_oracle
from synbench.method.probe import robust_direction
from synbench.method.probe_solve import probe_tasks
from synbench.method.score import THRESHOLD_GRID, add_dimension_matched, area, empirical_curves, power_flags

SCALES, EPS = (0.5, 1.5, 2.5, 3.5), (0.0, 0.3)


def _isotropic_areas(rng: np.random.Generator, rank: int, n: int, runs: int) -> np.ndarray:
    """Areas above t = 0.6 and 0.8 of the real probe on isotropic features: ndarray of shape (runs, eps, 2)."""
    out = []
    for _ in range(runs):
        tasks = []
        for scale in SCALES:

            def split(scale=scale):
                labels = (rng.random(n) < 0.5).astype(np.uint8)
                signs = np.where(labels[:, None] == 1, 1.0, -1.0)
                return signs * scale / np.sqrt(rank) + rng.normal(size=(n, rank)), labels

            tasks.append((scale, split(), split()))
        curves = empirical_curves(probe_tasks(tasks, EPS))
        out.append([[area(curves[e], t) for t in (0.6, 0.8)] for e in EPS])
    return np.array(out)


@pytest.mark.parametrize(("rank", "n"), [(12, 64), (60, 48)])  # a full-rank and a rank-deficient split
def test_oracle_matches_the_probe_on_drawn_isotropic_features(rng, rank, n):
    brute = _isotropic_areas(rng, rank, n, runs=150)
    oracle = simulate_oracle(SCALES, n, n, EPS, rank, draws=150)
    curve = oracle.contribution.mean(axis=0)
    expected = np.array([[area(curve[i], t) for t in (0.6, 0.8)] for i in range(len(EPS))])
    spread = brute.std(axis=0) / np.sqrt(len(brute))
    assert np.all(np.abs(brute.mean(axis=0) - expected) < 4.5 * spread * np.sqrt(2))


def test_oracle_is_a_pure_function_of_its_arguments():
    first = simulate_oracle(SCALES, 64, 64, EPS, 12, draws=8)
    again = simulate_oracle(SCALES, 64, 64, EPS, 12, draws=8)
    assert np.array_equal(first.contribution, again.contribution)
    assert not np.array_equal(
        first.contribution, simulate_oracle(SCALES, 64, 64, EPS, 12, seed=1, draws=8).contribution
    )
    assert first.contribution.shape == (len(SCALES), len(EPS), len(THRESHOLD_GRID))


def test_batched_robust_weights_equal_the_probes_closed_form(rng):
    mean_diff, eigenvalues = rng.normal(size=(6, 30)), np.sort(rng.uniform(1e-3, 5.0, size=30))
    for eps in (0.0, 0.1, 0.5, 0.95):
        weights = robust_weights(mean_diff, eigenvalues, eps)
        for row, mu in zip(weights, mean_diff, strict=True):
            z, _ = robust_direction(mu, eigenvalues, eps)
            np.testing.assert_allclose(row, (mu - z) / eigenvalues, rtol=1e-10, atol=1e-12)


def test_oracle_standard_error_is_far_below_an_interval():
    oracle = simulate_oracle(SCALES, 128, 128, (0.0,), 16)
    areas = [area(curve[0], 0.6) for curve in oracle.draw_curves]
    # the spread of one draw's area is what a lossless model's score varies by across seeds: an interval
    # is about 2 x 1.96 of it wide, the oracle's standard error 1 / sqrt(64) of it
    assert np.std(areas) / np.sqrt(oracle.draws) < 0.25 * 1.96 * np.std(areas)


def test_power_flags_follow_the_rank_and_the_width():
    assert power_flags([192] * 3, 512, 192) == {
        "probe_rank": 192,
        "r_over_n": 0.375,
        "underpowered": False,
        "n_train_needed": 768,
    }
    capped = power_flags([510, 510], 512, 768)  # the split, not the representation, caps r
    assert capped["underpowered"] and capped["n_train_needed"] == 3072
    assert power_flags([100, 40], 512, 2048)["n_train_needed"] == 400  # low-rank wide features: from r
    assert power_flags([256], 512, 256)["underpowered"]  # r / n = 0.5


def test_dimension_matched_score_is_missing_where_the_oracle_area_is_zero():
    reference = np.linspace(2, 0, len(THRESHOLD_GRID))
    rows = [
        {"eps": 0.0, "threshold": 0.9, "score": 0.5, "score_low": 0.4, "score_high": 0.6, "score_replicates": [0.5]}
    ]
    oracle = {0.0: np.where(THRESHOLD_GRID < 0.8, 1.0, 0.0)}
    (row,) = add_dimension_matched(rows, reference, oracle)
    assert np.isnan(row["score_dm"]) and np.isnan(row["score_dm_low"])
    oracle = {0.0: reference / 2}
    (row,) = add_dimension_matched([{**rows[0]}], reference, oracle)
    assert row["score_dm"] == pytest.approx(1.0) and row["score_dm_high"] == pytest.approx(1.2)
    assert row["score_dm_replicates"] == [pytest.approx(1.0)] and row["best_eps_dm"]


SPEC = BenchmarkSpec(
    name="dm", scales=(0.5, 1.5, 2.5, 3.5, 4.5), n_train=256, n_test=256, eps=(0.0, 0.2), block_size=128
)


def test_rows_carry_the_power_flags_and_shape(tmp_path):
    root = tmp_path / "root"
    narrow = synbench.evaluate("identity:3x4x4", spec=SPEC, root=root, ci_replicates=0)
    wide = synbench.evaluate("identity:3x16x16", spec=SPEC, root=root, ci_replicates=0)
    assert narrow["probe_rank"].eq(48).all() and not narrow["underpowered"].any()
    assert narrow["r_over_n"].eq(48 / 256).all() and narrow["n_train_needed"].eq(192).all()
    assert [list(v) for v in narrow["input_shape"]] == [[3, 4, 4]] * len(narrow) and narrow["feature_dim"].eq(48).all()
    assert wide["probe_rank"].eq(254).all() and wide["underpowered"].all()
    assert wide["n_train_needed"].eq(4 * 768).all()


def test_an_invertible_linear_map_keeps_the_dimension_matched_score(tmp_path):
    rng = np.random.default_rng(7)
    rotation, _ = np.linalg.qr(rng.normal(size=(48, 48)))
    mixing = rotation @ np.diag(np.logspace(0, 2, 48))  # condition number 100
    linear = nn.Linear(48, 48, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(mixing.T).float())
    mapped = nn.Sequential(nn.Flatten(), linear)
    root = tmp_path / "root"
    identity = synbench.evaluate("identity:3x4x4", spec=SPEC, root=root, ci_replicates=0, eps=[0.0])
    other = synbench.evaluate(
        mapped, spec=SPEC, root=root, ci_replicates=0, eps=[0.0], input_shape=(3, 4, 4), mean=(0.0,), std=(1.0,)
    )
    for column in ("score", "score_dm"):
        np.testing.assert_allclose(other[column], identity[column], rtol=1e-6)
    assert other["probe_rank"].eq(48).all()


@pytest.mark.slow
def test_identity_controls_of_any_width_score_one_dimension_matched(tmp_path):
    """METHOD.md 7.5: identities of width 48 to 1536 at n = 2048: the paper's score falls with the width, the
    dimension-matched score's interval holds 1 at every threshold."""
    spec = BenchmarkSpec(name="widths", scales=(1.0, 2.5, 4.5), n_train=2048, n_test=2048, eps=(0.0,), block_size=1024)
    root = tmp_path / "root"
    paper_scores = []
    for shape in ("3x4x4", "3x8x8", "3x16x16", "6x16x16"):
        rows = synbench.evaluate(f"identity:{shape}", spec=spec, root=root, ci_replicates=12)
        assert rows["underpowered"].eq(shape == "6x16x16").all()  # 1536 / 2048 >= 0.5, flagged but still 1
        assert ((rows["score_dm_low"] <= 1) & (1 <= rows["score_dm_high"])).all(), (shape, rows["score_dm"].tolist())
        paper_scores.append(rows.loc[rows["threshold"] == 0.6, "score"].item())
    assert paper_scores == sorted(paper_scores, reverse=True) and paper_scores[-1] < paper_scores[0] - 0.15
