import numpy as np
import pytest
import torch
from scipy.stats import norm

from synbench.core.spec import load_spec
from synbench.method.generate import block_inputs
from synbench.method.probe import evaluate_probe, fit_probe
from synbench.method.score import THRESHOLD_GRID, reference_bound, reference_curve, score_table, synbench_score
from synbench.models.encoders import resolve_encoder


def _features(spec, encoder, scale_index, split):
    parts = [block_inputs(spec, encoder.preprocess, scale_index, split, b) for b in range(spec.n_blocks(split))]
    labels = np.concatenate([p[0] for p in parts])
    features = np.concatenate([encoder.represent(p[1]).numpy() for p in parts])
    return features, labels


def run_in_memory(spec, model_ref):
    encoder = resolve_encoder(model_ref)
    results = []
    for index, scale in enumerate(spec.scales):
        probe = fit_probe(*_features(spec, encoder, index, "train"))
        results.extend(evaluate_probe(probe, *_features(spec, encoder, index, "test"), scale, spec.eps))
    return results, score_table(results, spec.scales, spec.thresholds)


@pytest.mark.parametrize("scale", [0.3, 1.0, 2.5])
def test_reference_bound_matches_monte_carlo(rng, scale):
    d, n = 16, 400_000
    mu = np.full(d, scale / np.sqrt(d))
    labels = rng.random(n) < 0.5
    # project onto mu directly: mu^T (x - 0.5) = sgn(y) ||mu||^2 + ||mu|| N(0, 1)
    signed = np.where(labels, 1.0, -1.0)
    projection = signed * scale**2 + scale * rng.normal(size=n)
    correct = (projection > 0) == labels
    simulated = (np.abs(projection[correct]) / scale**2).mean()
    assert correct.mean() == pytest.approx(norm.cdf(scale), abs=3e-3)
    assert simulated == pytest.approx(float(reference_bound(norm.cdf(scale))), rel=5e-3)
    # the same through full d-dimensional samples: mu^T (x - 0.5) / ||mu||^2 over correct ones
    x = signed[:20000, None] * mu + rng.normal(size=(20000, d))
    margin = x @ mu
    right = (margin > 0) == labels[:20000]
    assert (np.abs(margin[right]) / scale**2).mean() == pytest.approx(simulated, rel=0.03)


def test_reference_curve_is_the_average_over_tasks_above_each_threshold():
    spec = load_spec("paper")
    reference = reference_curve(spec.scales)
    assert reference.shape == THRESHOLD_GRID.shape and reference[0] > reference[-1] == 0
    # by hand at a = 0.9: tasks with Phi(s) > 0.9 are s >= 1.3 (Phi(1.3) = 0.903)
    at_09 = int(np.argmin(np.abs(THRESHOLD_GRID - 0.9)))
    kept = [s for s in spec.scales if norm.cdf(s) > THRESHOLD_GRID[at_09]]
    assert kept[0] == 1.3
    expected = sum(float(reference_bound(norm.cdf(s))) for s in kept) / len(spec.scales)
    assert reference[at_09] == pytest.approx(expected, rel=1e-12)
    # a curve that is half the reference scores one half; one zero above 0.8 loses that share
    assert synbench_score(reference / 2, reference, 0.6) == pytest.approx(0.5, rel=1e-12)
    cut = np.where(THRESHOLD_GRID >= 0.8, 0.0, reference)
    share = reference[THRESHOLD_GRID >= 0.8].sum() / reference.sum()
    assert synbench_score(cut, reference, 0.6) == pytest.approx(1 - share, rel=1e-12)


def test_identity_on_quick_spec_scores_near_one():
    spec = load_spec("quick", eps=(0.0,))
    results, table = run_in_memory(spec, "identity:3x4x4")
    accuracy = np.array([r.accuracy for r in results])
    expected = norm.cdf(np.array(spec.scales))
    # binomial sampling error at n = 1024 plus the plug-in estimate's small loss at d = 48
    assert np.all(np.abs(accuracy - expected) < 4 * np.sqrt(expected * (1 - expected) / 1024) + 0.02)
    score = next(row["score"] for row in table if row["threshold"] == 0.6)
    assert 0.95 <= score <= 1.02


@pytest.mark.parametrize("model_ref", ["noise:3x4x4", "py:encoders_for_tests:constant"])
def test_encoders_that_ignore_the_input_score_near_zero(model_ref):
    spec = load_spec("quick", eps=(0.0, 0.2), scales=(0.5, 1.5, 2.5, 3.5, 4.5))
    results, table = run_in_memory(spec, model_ref)
    assert all(abs(r.accuracy - 0.5) < 0.07 for r in results)
    assert all(row["score"] < 0.05 for row in table)


def test_best_eps_is_marked_once_per_threshold():
    spec = load_spec("quick", eps=(0.0, 0.2, 0.4), scales=(0.5, 1.5, 3.0))
    _, table = run_in_memory(spec, "identity:1x4x4")
    for t in spec.thresholds:
        rows = [r for r in table if r["threshold"] == t]
        best = [r for r in rows if r["best_eps"]]
        assert len(best) == 1 and best[0]["score"] == max(r["score"] for r in rows)


def test_more_samples_shrink_the_spread_across_seeds():
    def spread(n):
        scores = []
        for seed in range(5):
            spec = load_spec("quick", eps=(0.0,), n_train=n, n_test=n, seed=seed, thresholds=(0.6,))
            scores.append(run_in_memory(spec, "identity:1x4x4")[1][0]["score"])
        return np.std(scores)

    assert spread(1024) < spread(64)


@pytest.mark.slow
@pytest.mark.parametrize("shape, expected", [("3x4x4", 0.98), ("3x8x8", 0.96), ("3x16x16", 0.85)])
def test_identity_paper_spec_matches_the_independent_figures(shape, expected):
    """METHOD.md 5: an independent implementation gives about 0.98 / 0.96 / 0.85 at d = 48 / 192 / 768."""
    spec = load_spec("paper", eps=(0.0,), thresholds=(0.6,))
    _, table = run_in_memory(spec, f"identity:{shape}")
    assert table[0]["score"] == pytest.approx(expected, abs=0.02)


class _Scaled(torch.nn.Module):
    pretrained_cfg = {"input_size": (3, 8, 8), "mean": (0.0,) * 3, "std": (1.0,) * 3}

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.flatten(1) * self.factor


@pytest.mark.parametrize("factor", [1e-3, 1e3])
def test_scaled_identity_features_score_like_identity(factor):
    """L2-normalised-style embeddings (tiny per-dimension variance) score what the raw features score."""
    from synbench.api import evaluate

    spec = load_spec("demo", eps=(0.0, 0.2, 0.5))
    base = evaluate("identity:3x8x8", spec=spec)
    scaled = evaluate(_Scaled(factor), spec=spec)
    assert len(base) == len(scaled) == 3 * 4
    for column in ("score", "score_low", "score_high"):  # the intervals' refits are scale-invariant too
        assert np.allclose(base[column], scaled[column], rtol=0, atol=1e-9)


def test_a_py_encoder_of_identity_features_times_1e3_scores_like_identity(tmp_path):
    from synbench.api import evaluate

    base = evaluate("identity:3x8x8", spec="demo", root=tmp_path, device="cpu")
    scaled = evaluate("py:encoders_for_tests:scaled_identity", spec="demo", root=tmp_path, device="cpu")
    assert len(base) == len(scaled) == 6 * 4
    assert np.abs(base["score"].to_numpy() - scaled["score"].to_numpy()).max() < 1e-6
