"""The probe by tridiagonal solves (probe.fit_and_evaluate) against the eigendecomposition (fit_probe)."""

import numpy as np
import pytest

from synbench.method.probe import evaluate_probe, fit_probe
from synbench.method.probe_solve import fit_and_evaluate
from synbench.method.tridiagonal import tridiagonal_form

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
    assert form.count_at_most(np.linalg.eigvalsh(matrix)[2:4].mean()) == 3
    values, vectors = form.eigenpairs(0, 2)
    assert len(values) == 3 and np.allclose(tridiagonal @ vectors, vectors * values, atol=1e-9)


def _whitened(rng, n, p):
    """Features whose pooled covariance is exactly the identity: one cluster of p equal eigenvalues."""
    features, labels = _features(rng, n, p)
    features = features.astype(np.float64)
    y = labels == 1
    means = features[y].mean(axis=0), features[~y].mean(axis=0)
    centred = features - np.where(y[:, None], *means)
    root = np.linalg.cholesky(centred.T @ centred / (n - 2))
    return np.linalg.solve(root, centred.T).T + np.where(y[:, None], 1.0, -1.0) * 0.3, labels


@pytest.mark.parametrize(
    "case",
    ["one feature", "constant, Gram route", "equal eigenvalues", "tiny eps"],
)
def test_edge_cases_give_the_eigendecomposition_results(rng, case):
    """Found by attacking the solves: each crashed or disagreed before it was handled."""
    eps, floor = EPS, "relative"
    if case == "one feature":
        train = test = (np.array([[0.3], [1.2], [-0.4], [2.0]]), np.array([0, 1, 0, 1]))
    elif case == "constant, Gram route":  # every eigenvalue under the floor, and eps 0 alone
        train = test = (np.full((10, 20), 2.0), np.repeat([0, 1], 5))
        eps = (0.0,)
    elif case == "equal eigenvalues":  # bisection gives up inside the cluster
        train, test = _whitened(rng, 120, 60), _whitened(rng, 120, 60)
    else:
        train, test = _features(rng, 60, 120, rank=50), _features(rng, 200, 120, rank=50)
        eps = (0.0, 1e-8, 1e-3)
    fast = fit_and_evaluate(train, test, 1.0, eps, floor)
    _assert_same(fast, evaluate_probe(fit_probe(*train, eigen_floor=floor), *test, 1.0, eps))


@pytest.mark.parametrize(("n", "p"), [(600, 40), (60, 90)])
def test_an_indefinite_shifted_solve_falls_back_to_eigenvectors(rng, monkeypatch, n, p):
    """A dropped eigenvalue that rounding pushed below the solves' shift (absolute floor at a large
    spread, eps near 0) makes a shifted solve indefinite: the kept eigenvectors of T answer instead."""
    from synbench.method import tridiagonal

    def indefinite(*args):
        raise tridiagonal.NotPositiveDefinite("forced")

    train, test = _features(rng, n, p, rank=30), _features(rng, 300, p, rank=30)
    reference = evaluate_probe(fit_probe(*train), *test, 1.0, EPS)
    monkeypatch.setattr(tridiagonal.TridiagonalForm, "solve", indefinite)
    _assert_same(fit_and_evaluate(train, test, 1.0, EPS), reference)


def test_margins_keep_their_digits_under_a_large_offset(rng):
    train, test = _features(rng, 600, 40), _features(rng, 400, 40)
    offset = 1e8
    fast = fit_and_evaluate((train[0] + offset, train[1]), (test[0] + offset, test[1]), 1.0, EPS)
    reference = evaluate_probe(fit_probe(train[0] + offset, train[1]), test[0] + offset, test[1], 1.0, EPS)
    _assert_same(fast, reference)


def test_a_half_sample_holding_one_class_is_refused_on_both_routes(rng):
    from synbench.core.errors import DataError
    from synbench.method.intervals import replicate_tasks

    for p in (10, 50):  # covariance route, then the Gram route (20 per half < 50 features)
        features, _ = _features(rng, 40, p)
        labels = np.zeros(40, dtype=np.uint8)
        labels[[3, 17]] = 1  # some halves draw neither
        with pytest.raises(DataError, match="holds a single class"):
            replicate_tasks([(1.0, (features, labels), (features, labels))], EPS, 0, 6)


@pytest.mark.parametrize("magnitude", [1e-160, 1.0, 1e150])
def test_one_eigenvector_at_extreme_magnitudes(rng, magnitude):
    """A single eigenvector comes from inverse iteration (stebz) on T scaled to entries of at most 1:
    unscaled, it returns NaN above ~1e150 and the wrong pair below ~1e-155."""
    diagonal, off_diagonal = rng.random(60), rng.random(59)
    values, vectors = np.linalg.eigh(np.diag(diagonal) + np.diag(off_diagonal, 1) + np.diag(off_diagonal, -1))
    scaled = tridiagonal_form(np.diag(diagonal * magnitude) + np.diag(off_diagonal * magnitude, -1))
    form = type(scaled)(scaled.reflectors, scaled.tau, diagonal * magnitude, off_diagonal * magnitude)
    value, vector = form.eigenpairs(0, 0)
    assert value[0] / magnitude == pytest.approx(values[0], rel=1e-12)
    assert abs(vector[:, 0] @ vectors[:, 0]) == pytest.approx(1.0, abs=1e-12)


def test_features_of_1e76_with_one_eigenvalue_under_the_floor(rng):
    train, test = _features(rng, 200, 16, rank=15), _features(rng, 100, 16)
    train = (train[0].astype(np.float64) * 1e76, train[1])
    test = (test[0].astype(np.float64) * 1e76, test[1])
    reference = evaluate_probe(fit_probe(*train), *test, 1.0, EPS)
    assert reference[0].rank == 15
    _assert_same(fit_and_evaluate(train, test, 1.0, EPS), reference)


def test_a_float32_eps_is_solved_in_float64(rng):
    train, test = _features(rng, 60, 20), _features(rng, 40, 20)
    eps = (np.float32(0.3), np.float32(0.7))
    fast, reference = fit_and_evaluate(train, test, 1.0, eps), evaluate_probe(fit_probe(*train), *test, 1.0, eps)
    _assert_same(fast, reference)
    assert fast[0].nu == pytest.approx(fit_and_evaluate(train, test, 1.0, (float(eps[0]),))[0].nu, rel=1e-13)


def test_a_spectrum_of_16_decades_under_the_absolute_floor_does_not_crash(rng):
    """Eigenvalues near the absolute floor are rounding noise at a spectrum of 1e16: the count by bisection
    and MRRR's values may disagree, and the values at or under the floor are dropped, not divided by."""
    from synbench.method.intervals import replicate_tasks

    train, test = _features(rng, 40, 21), _features(rng, 50, 21)
    spread = np.logspace(-8, 8, 21)
    tasks = [(1.0, (train[0] * spread, train[1]), (test[0] * spread, test[1]))]
    results = [result for _, result in replicate_tasks(tasks, (0.0, 1e-8, 0.1, 0.5, 0.99), 5, 4, "absolute")]
    assert len(results) == 20 and all(np.isfinite(r.bound) and 0 < r.rank <= 21 for r in results)


def test_a_far_outlier_under_the_absolute_floor_does_not_crash():
    """An outlier 1e8 away makes a spectrum of 1e16 whose small end is rounding; bisection put the smallest
    kept eigenvalue at -0.0016 where the count had found none under the floor (brentq met NaN): the
    eigenvector route, which drops values under the floor, takes over."""
    from synbench.method.intervals import half_sample
    from synbench.method.probe_solve import fit

    rng = np.random.default_rng(11)
    labels = rng.random(128) < 0.5
    mean = np.zeros(65)
    mean[0] = 0.5
    features = rng.standard_normal((128, 65)) + np.where(labels[:, None], mean, -mean)
    rng.random(101), rng.standard_normal((101, 65))  # skipped: the draws of the test split this case was found with
    features[5] += 1e8 * rng.standard_normal(65) / np.sqrt(65)
    half = half_sample(3, 0, 0, 18, 128)
    solved = fit((features[half], labels[half]), (0.0, 0.05, 0.3, 0.99), "absolute")
    assert np.isfinite(solved.directions).all() and 0 < solved.rank <= 62


def test_products_by_scipys_blas_equal_numpys(rng):
    from synbench.method.blas import product

    a, b, c = rng.normal(size=(50, 30)), rng.normal(size=(30, 4)), rng.normal(size=(50, 4))
    for layout in (a, np.asfortranarray(a)):
        assert np.allclose(product(layout, b), a @ b, rtol=1e-12, atol=1e-12)
        assert np.allclose(product(layout, c, True), a.T @ c, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("n", "p"), [(300, 40), (60, 90)])  # covariance route, Gram route
@pytest.mark.parametrize("magnitude", [1e-150, 1e-100, 1e60])
def test_scaling_the_features_to_extreme_magnitudes_changes_nothing(rng, n, p, magnitude):
    """T is solved scaled by a power of two where its entries leave 1e-77..1e77: its O(n) solves square
    them (features x 1e-100 made brentq fail; the Gram route's norm underflowed to 0)."""
    (train_h, train_y), (test_h, test_y) = _features(rng, n, p), _features(rng, 200, p)
    train_h, test_h = train_h.astype(np.float64), test_h.astype(np.float64)
    plain = fit_and_evaluate((train_h, train_y), (test_h, test_y), 1.0, EPS)
    scaled = fit_and_evaluate((train_h * magnitude, train_y), (test_h * magnitude, test_y), 1.0, EPS)
    assert [(r.rank, r.accuracy) for r in scaled] == [(r.rank, r.accuracy) for r in plain]
    assert np.allclose([r.bound for r in scaled], [r.bound for r in plain], rtol=1e-9, atol=0)
    assert np.allclose([r.nu * magnitude**2 for r in scaled[1:]], [r.nu for r in plain[1:]], rtol=1e-9)
