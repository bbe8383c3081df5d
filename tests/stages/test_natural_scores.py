"""Scores on a natural spec end to end (METHOD.md sections 2 and 7): the per-eps reference, the oracle in the
inputs' geometry, the controls, and the audit that recomputes them; the isotropic path untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import synbench
from synbench.audit.root import audit_root
from synbench.core.spec import BenchmarkSpec, load_spec
from synbench.method.natural import NaturalCovariance, robust_separation
from synbench.method.score import reference_curve
from synbench.stages.curves import load_curves, oracle_path, spec_reference
from synbench.store.roots import content_key

SPEC = BenchmarkSpec(
    name="natural-small",
    scales=(0.5, 1.5, 2.5, 3.5, 4.5),
    n_train=256,
    n_test=256,
    eps=(0.0, 0.2, 0.5),
    block_size=128,
    covariance="natural",
)


def _linear(matrix: np.ndarray) -> nn.Module:
    layer = nn.Linear(len(matrix), len(matrix), bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(matrix.T).float())
    return nn.Sequential(nn.Flatten(), layer)


def _holds_one(rows) -> bool:
    return bool(((rows["score_dm_low"] <= 1) & (1 <= rows["score_dm_high"])).all())


def test_identity_and_its_rotations_score_one_at_every_eps_and_noise_zero(tmp_path):
    root = tmp_path / "root"
    identity = synbench.evaluate("identity:3x4x4", spec=SPEC, root=root, ci_replicates=20)
    assert _holds_one(identity), identity[["eps", "threshold", "score_dm", "score_dm_low", "score_dm_high"]]
    rotation, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(48, 48)))
    rotated = synbench.evaluate(
        _linear(3 * rotation), spec=SPEC, root=root, ci_replicates=20, input_shape=(3, 4, 4), mean=(0.0,), std=(1.0,)
    )
    for column in ("score", "score_dm", "score_dm_low", "score_dm_high"):  # the probe is rotation invariant
        np.testing.assert_allclose(rotated[column], identity[column], rtol=1e-6)
    noise = synbench.evaluate("noise:3x4x4", spec=SPEC, root=root, ci_replicates=0)
    assert noise["score"].max() < 0.02 and noise["score_dm"].max() < 0.02
    curves, reference, _ = load_curves(root / "curves" / identity["curves_file"].iloc[0])
    assert np.array_equal(reference[0.0], reference_curve(SPEC.scales))  # eps = 0: the Mahalanobis scale
    covariance = NaturalCovariance((3, 4, 4))
    for eps in (0.2, 0.5):  # each eps has its own reference: the tasks at q = s rho(eps), rho < 1
        rho = robust_separation(covariance.eigenvalues, covariance.mean_coordinates, eps)
        assert rho < 0.96 and np.array_equal(reference[eps], reference_curve(np.array(SPEC.scales) * rho))
    assert audit_root(root).problems == []  # the audit recomputes the per-eps reference and the natural oracle


def test_an_invertible_linear_map_scores_the_identity_at_eps_zero(tmp_path):
    """Affine equivariance at eps = 0 (condition 10: with the inputs' own ~660 the floor keeps every component)."""
    rotation, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(48, 48)))
    spec = BenchmarkSpec.from_dict({**SPEC.to_dict(), "eps": [0.0]})
    root = tmp_path / "root"
    identity = synbench.evaluate("identity:3x4x4", spec=spec, root=root, ci_replicates=0)
    mapped = synbench.evaluate(
        _linear(rotation @ np.diag(np.logspace(0, 1, 48))),
        spec=spec,
        root=root,
        ci_replicates=0,
        input_shape=(3, 4, 4),
        mean=(0.0,),
        std=(1.0,),
    )
    for column in ("score", "score_dm"):
        np.testing.assert_allclose(mapped[column], identity[column], rtol=1e-6)


def test_isotropic_specs_keep_their_reference_and_oracle_files():
    spec = load_spec("demo")
    assert type(spec_reference(spec)) is np.ndarray
    assert np.array_equal(spec_reference(spec, (1, 8, 8)), reference_curve(spec.scales))
    key = content_key(list(spec.scales), spec.n_train, spec.n_test, spec.seed, list(spec.eps), "relative", 3)
    assert oracle_path("/r", spec, 12, (1, 8, 8)).name == f"{key}-r12-k64.parquet"  # no shape in the name
    natural = BenchmarkSpec.from_dict({**spec.to_dict(), "covariance": "natural"})
    assert oracle_path("/r", natural, 12, (1, 8, 8)) != oracle_path("/r", natural, 12, (3, 8, 8))
    assert isinstance(spec_reference(natural, (3, 8, 8)), dict)


@pytest.mark.slow
def test_the_natural_demo_spec_scores_identity_one_and_noise_zero(tmp_path):
    """Issue 30 item 3, done when: the demo spec with covariance = "natural"; identity:3x8x8's score_dm interval
    holds 1 at every eps and threshold, noise:3x8x8 scores 0."""
    path = tmp_path / "natural-demo.toml"
    path.write_text('base = "demo"\ncovariance = "natural"\n')
    spec, root = load_spec(path), tmp_path / "root"
    identity = synbench.evaluate("identity:3x8x8", spec=spec, root=root)
    assert len(identity) == 24 and _holds_one(identity)
    noise = synbench.evaluate("noise:3x8x8", spec=spec, root=root)
    assert noise["score"].max() < 0.01 and noise["score_dm"].max() < 0.01
