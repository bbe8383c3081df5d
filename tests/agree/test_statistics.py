"""Rank agreement with intervals (issue 30, item 1): tau and rho over bootstrap draws of test samples and models,
and saturation instead of a tau where the models cannot be told apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from synbench.agree.agreement import agreement_stats, stats_view
from synbench.agree.probing import clustered_interval
from synbench.agree.statistics import SATURATED, bootstrap_agreement, kendall_taus, saturated, spearman_rhos


def test_vectorised_tau_and_rho_equal_scipys_with_ties(rng):
    x = rng.integers(0, 4, size=(30, 9)).astype(float)  # many ties
    y = x + rng.integers(-2, 3, size=(30, 9))
    taus, rhos = kendall_taus(x, y), spearman_rhos(x, y)
    for row in range(30):
        assert taus[row] == pytest.approx(stats.kendalltau(x[row], y[row]).statistic, abs=1e-12)
        assert rhos[row] == pytest.approx(stats.spearmanr(x[row], y[row]).statistic, abs=1e-12)
    assert np.isnan(kendall_taus(np.ones((1, 5)), np.arange(5.0)[None]))[0]


def _correctness(rng, accuracies, n):
    return np.stack([(rng.random(n) < a).astype(float) for a in accuracies])


def test_the_interval_carries_test_sample_noise_and_the_model_set(rng):
    scores = np.linspace(0.1, 0.9, 8)
    apart = _correctness(rng, np.linspace(0.55, 0.95, 8), 4000)  # clearly ordered accuracies: nothing to doubt
    perfect = bootstrap_agreement(scores, apart, np.arange(4000))
    assert perfect["kendall_tau_low"] == perfect["kendall_tau_high"] == pytest.approx(1.0)
    swapped = apart[[0, 1, 5, 3, 4, 2, 6, 7]]  # two models far apart in accuracy ranked the wrong way round
    tau = stats.kendalltau(scores, swapped.mean(1)).statistic
    models = bootstrap_agreement(scores, swapped, np.arange(4000))  # test noise is small: the model set moves it
    assert models["kendall_tau_low"] < tau - 0.1 and models["kendall_tau_high"] > tau + 0.1
    close = _correctness(rng, np.linspace(0.80, 0.82, 8), 300)  # inside each other's noise
    noisy = bootstrap_agreement(scores, close, np.arange(300))
    assert noisy["kendall_tau_low"] < 0 < noisy["kendall_tau_high"]
    again = bootstrap_agreement(scores, close, np.arange(300))
    assert again == noisy  # seeded: the audit recomputes it exactly
    # the same outcomes in 30 groups of 10 dependent samples resample as 30 units: a wider interval
    grouped = bootstrap_agreement(scores, np.repeat(close[:, :30], 10, axis=1), np.repeat(np.arange(30), 10))
    spread = bootstrap_agreement(scores, np.repeat(close[:, :30], 10, axis=1), np.arange(300))
    assert (
        grouped["kendall_tau_high"] - grouped["kendall_tau_low"]
        > spread["kendall_tau_high"] - spread["kendall_tau_low"]
    )


def test_saturation():
    assert saturated(np.array([0.99, 1.0, 0.995]), np.array([0.9] * 3), np.array([1.0] * 3))
    inside = np.array([0.90, 0.91, 0.92])
    assert saturated(inside, inside - 0.05, inside + 0.05)
    assert not saturated(np.array([0.90, 0.99]), np.array([0.85, 0.97]), np.array([0.93, 1.0]))


def _per_model(accuracies, scores, n=200, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for index, (accuracy, score) in enumerate(zip(accuracies, scores, strict=True)):
        correct = (rng.random(n) < accuracy).astype(int) * 5
        p, low, high = clustered_interval(correct / 5, np.arange(n))
        row = {"model": f"m{index}", "model_fingerprint": f"f{index}", "underpowered": False, "score": score}
        row |= {"score_dm": score, "threshold": 0.7, "accuracy": p, "accuracy_low": low, "accuracy_high": high}
        rows.append(row | {"n_repeats": 5, "correct_counts": correct.tolist(), "sample_groups": list(range(n))})
    return pd.DataFrame(rows)


def test_a_data_set_that_cannot_rank_the_models_is_reported_saturated_not_as_a_tau():
    table = agreement_stats(_per_model([0.995, 1.0, 0.999, 0.998], [0.1, 0.5, 0.3, 0.9]))
    assert table["saturated"].all() and (table["note"] == SATURATED).all() and table["kendall_tau"].isna().all()
    assert (stats_view(table)["Kendall tau [95%]"] == SATURATED).all()
    ranked = agreement_stats(_per_model([0.6, 0.7, 0.8, 0.9, 0.95], [0.1, 0.3, 0.5, 0.7, 0.9]))
    assert not ranked["saturated"].any() and np.allclose(ranked["kendall_tau"], 1.0)
    assert (ranked["kendall_tau_low"] > 0).all() and (ranked["spearman_rho_high"] <= 1).all()
    assert stats_view(ranked)["Kendall tau [95%]"].iloc[0].startswith("1.00 [")


def test_the_interval_holds_the_estimate_when_most_models_tie():
    # the real zoo at t = 0.9: only the identity scores above 0; drawing models with replacement made the
    # interval [0.55, 0.89] around a tau of 0.53
    scores = np.array([0.85, 0, 0, 0, 0, 0, 0])
    accuracies = np.array([0.962, 0.935, 0.938, 0.938, 0.945, 0.854, 0.857])
    correct = _correctness(np.random.default_rng(0), accuracies, 1797)
    tau = stats.kendalltau(scores, correct.mean(1)).statistic
    found = bootstrap_agreement(scores, correct, np.arange(1797))
    assert found["kendall_tau_low"] < tau < found["kendall_tau_high"]
    rho = stats.spearmanr(scores, correct.mean(1)).statistic
    assert found["spearman_rho_low"] < rho < found["spearman_rho_high"]


def test_weighted_tau_and_rho_with_equal_weights_are_the_plain_ones(rng):
    x, y = rng.integers(0, 4, size=(5, 9)).astype(float), rng.random((5, 9))
    equal = np.full((5, 9), 1 / 9)
    assert np.allclose(kendall_taus(x, y, equal), kendall_taus(x, y), equal_nan=True)
    assert np.allclose(spearman_rhos(x, y, equal), spearman_rhos(x, y), equal_nan=True)
