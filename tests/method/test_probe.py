import numpy as np
import pytest
from scipy.optimize import minimize

from synbench.method.probe import evaluate_probe, fit_probe, robust_direction


def _two_gaussians(rng, n=2048, p=12, shift=1.0):
    labels = (rng.random(n) < 0.5).astype(np.uint8)
    mean = np.full(p, shift / np.sqrt(p))
    cov_root = rng.normal(size=(p, p)) / np.sqrt(p) + np.eye(p)
    features = rng.normal(size=(n, p)) @ cov_root + np.where(labels[:, None] == 1, mean, -mean)
    return features, labels


def _generic_solution(mean_diff, eigenvalues, eps):
    """z* by a generic constrained solver (SLSQP), for comparison only."""
    radius = eps * np.linalg.norm(mean_diff)
    result = minimize(
        lambda z: ((mean_diff - z) ** 2 / eigenvalues).sum(),
        x0=mean_diff * eps * 0.5,
        jac=lambda z: -2 * (mean_diff - z) / eigenvalues,
        constraints=[{"type": "ineq", "fun": lambda z: radius**2 - z @ z, "jac": lambda z: -2 * z}],
        method="SLSQP",
        options={"ftol": 1e-16, "maxiter": 2000},
    )
    return result.x


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.3, 0.5, 0.9])
def test_closed_form_matches_a_generic_solver(rng, eps):
    mean_diff = rng.normal(size=10)
    eigenvalues = np.exp(rng.uniform(-3, 3, size=10))
    closed, nu = robust_direction(mean_diff, eigenvalues, eps)
    generic = _generic_solution(mean_diff, eigenvalues, eps)
    assert np.linalg.norm(closed - generic) <= 1e-6 * np.linalg.norm(closed)
    assert np.isclose(np.linalg.norm(closed), eps * np.linalg.norm(mean_diff), rtol=1e-10)
    assert nu > 0


def test_eps_zero_gives_the_standard_classifier_and_eps_one_is_rejected():
    z, nu = robust_direction(np.ones(3), np.ones(3), 0.0)
    assert not z.any() and nu == np.inf
    with pytest.raises(ValueError, match="eps must lie in"):
        robust_direction(np.ones(3), np.ones(3), 1.0)


def test_isotropic_features_reach_bayes_accuracy_and_bound(rng):
    from scipy.stats import norm

    from synbench.method.score import reference_bound

    def isotropic(n):
        labels = (rng.random(n) < 0.5).astype(np.uint8)
        return rng.normal(size=(n, 12)) + np.where(labels[:, None] == 1, 1.5, -1.5) / np.sqrt(12), labels

    probe = fit_probe(*isotropic(2048))
    (result,) = evaluate_probe(probe, *isotropic(40000), scale=1.5, eps_values=(0.0,))
    assert result.rank == 12
    assert result.accuracy == pytest.approx(norm.cdf(1.5), abs=0.01)
    assert result.bound == pytest.approx(float(reference_bound(norm.cdf(1.5))), rel=0.03)


def _scores(features_train, labels_train, features_test, labels_test, eps_values):
    probe = fit_probe(features_train, labels_train)
    return [(r.accuracy, r.bound) for r in evaluate_probe(probe, features_test, labels_test, 1.0, eps_values)]


def test_eps_zero_is_invariant_to_invertible_affine_maps(rng):
    (htr, ytr), (hte, yte) = _two_gaussians(rng), _two_gaussians(rng)
    linear = rng.normal(size=(12, 12)) + 3 * np.eye(12)
    offset = rng.normal(size=12) * 5
    before = _scores(htr, ytr, hte, yte, (0.0,))
    after = _scores(htr @ linear + offset, ytr, hte @ linear + offset, yte, (0.0,))
    assert np.allclose(before, after, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("scale", [1.0, 1e-2, 1e-3, 3e-4, 1e-6, 1e3, 37.0])
def test_any_eps_is_invariant_to_rotation_and_scaling(rng, scale):
    (htr, ytr), (hte, yte) = _two_gaussians(rng), _two_gaussians(rng)
    rotation, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    eps_values = (0.0, 0.1, 0.3, 0.5)
    before = _scores(htr, ytr, hte, yte, eps_values)
    after = _scores(scale * htr @ rotation, ytr, scale * hte @ rotation, yte, eps_values)
    assert np.allclose(before, after, rtol=1e-7, atol=1e-9)


def test_constant_features_keep_no_component(rng):
    labels = (rng.random(256) < 0.5).astype(np.uint8)
    probe = fit_probe(np.ones((256, 5)), labels)
    results = evaluate_probe(probe, np.ones((256, 5)), labels, 1.0, (0.0, 0.2))
    assert probe.rank == 0
    assert all(r.bound == 0 and abs(r.accuracy - 0.5) < 0.1 for r in results)


def test_single_class_train_split_is_a_user_error():
    from synbench.core.errors import DataError, SynBenchError

    with pytest.raises(DataError, match="single class; raise n_train") as caught:
        fit_probe(np.zeros((8, 2)), np.ones(8))
    assert isinstance(caught.value, SynBenchError)  # exit 2 in the CLI, never retried by the flows


def test_absolute_floor_is_the_authors_and_breaks_at_small_scales(rng):
    """The spec option keeps the published behaviour: x1e-3 features lose components under it."""
    features, labels = _two_gaussians(rng, p=12)
    spread = np.linspace(1, 30, 12)  # eigenvalues spanning a decade and more
    relative = fit_probe(features * spread * 1e-3, labels)
    absolute = fit_probe(features * spread * 1e-3, labels, eigen_floor="absolute")
    assert relative.rank == 12 and absolute.rank < 12
    assert fit_probe(features * spread, labels, eigen_floor="absolute").rank == 12


def test_float32_features_score_like_float64(rng):
    (htr, ytr), (hte, yte) = _two_gaussians(rng), _two_gaussians(rng)
    wide = _scores(htr, ytr, hte, yte, (0.0, 0.2, 0.5))
    narrow = _scores(htr.astype(np.float32), ytr, hte.astype(np.float32), yte, (0.0, 0.2, 0.5))
    assert np.allclose(wide, narrow, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("eigen_floor", ["relative", "absolute"])
def test_gram_route_gives_the_covariance_route_scores(rng, eigen_floor):
    """Fewer samples than features: the n x n Gram matrix has the covariance's nonzero spectrum."""
    (htr, ytr), (hte, yte) = _two_gaussians(rng, n=48, p=80), _two_gaussians(rng, n=400, p=80)
    htr[:, 1] = htr[:, 0]  # duplicate and constant features: the rank stays n - 2
    htr[:, 2] = 3.0
    eps_values = (0.0, 0.1, 0.3, 0.5)
    by_gram = fit_probe(htr, ytr, eigen_floor=eigen_floor, route="gram")
    by_covariance = fit_probe(htr, ytr, eigen_floor=eigen_floor, route="covariance")
    assert by_gram.rank == by_covariance.rank == 46
    assert np.allclose(by_gram.eigenvalues, by_covariance.eigenvalues, rtol=1e-9)
    assert np.allclose(np.abs(by_gram.basis.T @ by_covariance.basis), np.eye(46), atol=1e-7)  # same basis up to sign
    gram = evaluate_probe(by_gram, hte, yte, 1.0, eps_values)
    covariance = evaluate_probe(by_covariance, hte, yte, 1.0, eps_values)
    assert [r.accuracy for r in gram] == [r.accuracy for r in covariance]
    assert np.allclose([r.bound for r in gram], [r.bound for r in covariance], rtol=1e-9)
    assert fit_probe(htr, ytr).rank == 46  # "auto" takes the Gram route here


def test_eps_weights_columns_are_the_closed_form_classifier(rng):
    from synbench.method.probe import eps_weights

    mean_diff, eigenvalues = rng.normal(size=6), np.exp(rng.uniform(-2, 2, size=6))
    weights, nus = eps_weights(mean_diff, eigenvalues, (0.0, 0.3))
    assert np.allclose(weights[:, 0], mean_diff / eigenvalues) and nus[0] == np.inf
    z, nu = robust_direction(mean_diff, eigenvalues, 0.3)
    assert np.allclose(weights[:, 1], (mean_diff - z) / eigenvalues) and nus[1] == nu
