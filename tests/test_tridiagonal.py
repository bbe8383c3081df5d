"""The probe by tridiagonal solves (probe.fit_and_evaluate) against the eigendecomposition (fit_probe)."""

import numpy as np
import pytest

from synbench.probe import evaluate_probe, fit_probe
from synbench.probe_solve import fit_and_evaluate
from synbench.tridiagonal import tridiagonal_form

EPS = (0.0, 0.1, 0.3, 0.5, 0.8)


def _features(rng, n, p, spectrum_decay=0.0, rank=None):
    labels = (rng.random(n) < 0.5).astype(np.uint8)
    mixing = rng.normal(size=(rank or p, p)) / np.sqrt(p) * np.exp(-spectrum_decay * np.arange(rank or p) / p)[:, None]
    mean = rng.normal(size=p) / np.sqrt(p)
    features = rng.normal(size=(n, rank or p)) @ mixing + np.where(labels[:, None] == 1, mean, -mean) + 5.0
    return features.astype(np.float32), labels


def _assert_same(fast, reference):
    assert [r.rank for r in fast] == [r.rank for r in reference]
    assert [r.accuracy for r in fast] == [r.accuracy for r in reference]
    assert np.allclose([r.bound for r in fast], [r.bound for r in reference], rtol=1e-8, atol=0)
    assert np.allclose([r.nu for r in fast], [r.nu for r in reference], rtol=1e-8, atol=0, equal_nan=True)


@pytest.mark.parametrize("eigen_floor", ["relative", "absolute"])
@pytest.mark.parametrize(
    ("n", "p", "decay", "rank", "expected_rank"),
    [
        (600, 40, 0.0, None, 40),  # covariance route, every eigenvalue kept
        (600, 40, 12.0, None, None),  # covariance route, the floor drops the smallest
        (600, 40, 0.0, 25, 25),  # features in a 25-dim subspace: 15 eigenvalues exactly zero
        (60, 90, 0.0, None, 58),  # Gram route: n - 2
        (60, 90, 0.0, 30, 30),  # Gram route with a rank-deficient spectrum
    ],
)
def test_tridiagonal_solves_give_the_eigendecomposition_results(rng, eigen_floor, n, p, decay, rank, expected_rank):
    train, test = _features(rng, n, p, decay, rank), _features(rng, 500, p, decay, rank)
    fast = fit_and_evaluate(train, test, 1.5, EPS, eigen_floor)
    reference = evaluate_probe(fit_probe(*train, eigen_floor=eigen_floor), *test, 1.5, EPS)
    _assert_same(fast, reference)
    if expected_rank is not None and eigen_floor == "relative":
        assert fast[0].rank == expected_rank
    if decay:
        assert 0 < fast[0].rank < p  # the case exercises the dropped eigenvalues


def test_constant_features_and_equal_class_means(rng):
    features, labels = _features(rng, 300, 8)
    constant = np.full_like(features, 2.0)
    _assert_same(
        fit_and_evaluate((constant, labels), (constant, labels), 1.0, EPS),
        evaluate_probe(fit_probe(constant, labels), constant, labels, 1.0, EPS),
    )
    same_means = np.concatenate([features[:150], features[:150]])
    twins = np.repeat([1, 0], 150).astype(np.uint8)
    fast = fit_and_evaluate((same_means, twins), (features, labels), 1.0, EPS)
    _assert_same(fast, evaluate_probe(fit_probe(same_means, twins), features, labels, 1.0, EPS))
    assert all(r.bound == 0.0 for r in fast)


def test_tridiagonal_form_reproduces_the_matrix(rng):
    root = rng.normal(size=(30, 30))
    matrix = root @ root.T
    form = tridiagonal_form(np.tril(matrix))  # only the lower triangle is read
    tridiagonal = np.diag(form.diagonal) + np.diag(form.off_diagonal, 1) + np.diag(form.off_diagonal, -1)
    q = form.to_original(np.eye(30))
    assert np.allclose(q @ tridiagonal @ q.T, matrix, atol=1e-10)
    assert np.allclose(form.to_tridiagonal(q), np.eye(30), atol=1e-12)
    assert np.allclose(form.multiply(np.eye(30)), tridiagonal)
    assert form.eigenvalue(0) == pytest.approx(np.linalg.eigvalsh(matrix)[0], rel=1e-10)
    values, vectors = form.lowest(np.linalg.eigvalsh(matrix)[2:4].mean())
    assert len(values) == 3 and np.allclose(tridiagonal @ vectors, vectors * values, atol=1e-9)
