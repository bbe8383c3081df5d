"""Robust linear probing (closed-form worst case, eps = 0 is plain logistic regression), the packaged real
data sets, their corruptions, and ``synbench agree --robust``."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from synbench.agree.datasets import PHOTOS, corrupt, lfw_faces
from synbench.agree.realdata import load_images
from synbench.method.robust import fit_robust_head, half_distance, robust_accuracy, robust_loss, worst_case_margins


def _blobs(rng: np.random.Generator, n: int = 300, classes: int = 3, dim: int = 6) -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(n) % classes
    centres = rng.normal(scale=2.0, size=(classes, dim))
    return centres[labels] + rng.normal(size=(n, dim)) * rng.uniform(0.5, 3, size=dim), labels


def test_worst_case_margin_is_the_closed_form_and_a_brute_search_never_beats_it(rng):
    features, labels = _blobs(rng, n=40, classes=4, dim=5)
    head = fit_robust_head(features, labels, eps=0.2)
    radius = 0.7
    closed = worst_case_margins(head, features, labels, radius)
    x = head.standardise(features)
    directions = rng.normal(size=(20000, 5))
    deltas = radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    for i in range(len(labels)):
        y = labels[i]
        logits = (x[i] + deltas) @ head.weights.T + head.bias
        brute = (logits[:, y][:, None] - np.delete(logits, y, axis=1)).min()
        assert brute >= closed[i] - 1e-9  # no perturbation of norm `radius` does better than the closed form
        # ... and the closed form's own perturbation reaches it: along -(w_y - w_j) for the weakest rival j
        rivals = [j for j in range(4) if j != y]
        margins = [(x[i] @ (head.weights[y] - head.weights[j]) + head.bias[y] - head.bias[j]) for j in rivals]
        norms = [np.linalg.norm(head.weights[y] - head.weights[j]) for j in rivals]
        j = rivals[int(np.argmin(np.array(margins) - radius * np.array(norms)))]
        step = -radius * (head.weights[y] - head.weights[j]) / np.linalg.norm(head.weights[y] - head.weights[j])
        attacked = (x[i] + step) @ head.weights.T + head.bias
        assert attacked[y] - attacked[j] == pytest.approx(closed[i], abs=1e-9)
        assert brute <= closed[i] + 0.05 * radius  # the brute search comes close from above


@pytest.mark.parametrize("radius", [0.0, 0.7])
def test_the_training_gradient_matches_finite_differences(rng, radius):
    from scipy.optimize import check_grad

    x, y = rng.normal(size=(30, 5)), np.arange(30) % 4

    def parts(flat: np.ndarray) -> tuple:
        return robust_loss(flat[:20].reshape(4, 5), flat[20:], x, y, radius, 1.0)

    point = rng.normal(size=24)
    gradient = np.concatenate([parts(point)[1].ravel(), parts(point)[2]])
    error = check_grad(lambda v: parts(v)[0], lambda v: np.concatenate([parts(v)[1].ravel(), parts(v)[2]]), point)
    assert error < 1e-5 * np.linalg.norm(gradient)


def test_eps_zero_is_scikit_learns_logistic_regression(rng):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    features, labels = _blobs(rng)
    head = fit_robust_head(features, labels, eps=0.0)
    scaler = StandardScaler().fit(features)
    plain = LogisticRegression(C=1.0, tol=1e-10, max_iter=10000).fit(scaler.transform(features), labels)
    assert head.radius == 0
    assert np.allclose(head.weights, plain.coef_, atol=2e-3 * np.abs(plain.coef_).max())
    assert np.allclose(head.bias - head.bias.mean(), plain.intercept_ - plain.intercept_.mean(), atol=2e-3)
    test, test_labels = _blobs(np.random.default_rng(7))
    assert np.array_equal(head.predict(test), plain.predict(scaler.transform(test)))


def test_a_robust_head_survives_its_attack_better_than_the_plain_one(rng):
    features, labels = _blobs(rng, n=600)
    plain, robust = fit_robust_head(features, labels, 0.0), fit_robust_head(features, labels, 0.4)
    assert robust.radius == pytest.approx(0.4 * half_distance(plain.standardise(features), labels))
    assert robust_accuracy(robust, features, labels, robust.radius) > robust_accuracy(
        plain, features, labels, robust.radius
    )
    assert robust_accuracy(plain, features, labels, 0.0) == pytest.approx(np.mean(plain.predict(features) == labels))


def test_named_sets_load_through_the_data_option():
    photos = load_images("photos")
    assert photos.groups is not None and len(np.unique(photos.groups)) == 8 * len(PHOTOS) and photos.name == "photos"
    assert photos.digest == load_images("photos").digest
    faces = load_images("lfw")
    assert faces.images.shape == (200, 1, 25, 25) and faces.groups is None
    assert np.array_equal(np.bincount(faces.labels), [100, 100])
    assert np.array_equal(faces.images[:, 0], lfw_faces()[0][:, 0])


def test_corruptions_are_seeded_clipped_and_of_their_stated_strength():
    grey = np.full((4, 3, 32, 32), 0.5, dtype=np.float32)
    noisy = corrupt(grey, "noise")
    assert np.array_equal(noisy, corrupt(grey, "noise")) and not np.array_equal(noisy, corrupt(grey, "noise", seed=1))
    assert noisy.std() == pytest.approx(0.10, rel=0.05) and 0 <= noisy.min() and noisy.max() <= 1
    edge = np.zeros((1, 1, 32, 32), dtype=np.float32)
    edge[..., 16:] = 1
    blurred = corrupt(edge, "blur")
    assert blurred.mean() == pytest.approx(0.5, abs=1e-6) and 0 < blurred[0, 0, 0, 15] < 0.5 < blurred[0, 0, 0, 16] < 1
    assert corrupt(grey, "blur") == pytest.approx(grey)


def test_agree_robust_json_has_rows_for_eps_zero_and_the_best_eps(tmp_path):
    from synbench.api import evaluate
    from synbench.cli.main import main

    root = tmp_path / "root"
    for ref in ("identity:1x8x8", "noise:1x8x8", "noise:1x8x8@1"):  # agree needs 3 powered models
        evaluate(ref, spec="demo", eps=(0.0, 0.3), root=root, device="cpu", ci_replicates=0)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["agree", "--root", str(root), "--data", "digits", "--robust", "--format", "json"])
    assert code == 0
    result = json.loads(buffer.getvalue())
    rows = {(row["model"], row["eps"]): row for row in result["robust"]}
    identity_best = rows[("identity:1x8x8", 0.0)]["best_eps"]
    assert identity_best == 0.3  # the identity's best eps on the demo board
    noise_rows = {key for key in rows if key[0] != "identity:1x8x8"}
    assert {key for key in rows if key[0] == "identity:1x8x8"} == {("identity:1x8x8", 0.0), ("identity:1x8x8", 0.3)}
    assert {model for model, _ in noise_rows} == {"noise:1x8x8", "noise:1x8x8@1"}
    for row in rows.values():
        for field in ("accuracy", "accuracy_attacked", "accuracy_corrupted"):
            assert row[f"{field}_low"] <= row[field] <= row[f"{field}_high"]
        assert row["n_test"] == 540 and row["data"] == "digits"
    plain, robust = rows[("identity:1x8x8", 0.0)], rows[("identity:1x8x8", 0.3)]
    assert plain["accuracy"] > 0.9 and plain["accuracy_attacked"] < plain["accuracy"]
    assert robust["accuracy_attacked"] > plain["accuracy_attacked"]  # trained for the attack, it survives it better
    assert robust["gain_attacked"] == pytest.approx(robust["accuracy_attacked"] - plain["accuracy_attacked"])
    assert rows[("noise:1x8x8", 0.0)]["accuracy"] < 0.3
    assert len(list((root / "real.zarr").glob("*/*/zarr.json"))) == 9  # clean, noise and blur, per model
    from synbench.audit.root import audit_root
    from synbench.store.parquet import atomic_write_parquet, read_table, stored_parents

    stored = next((root / "agreement").glob("*-robust.parquet"))
    table = read_table(stored)
    edited = table.to_pandas()
    edited.loc[edited["model"] == "noise:1x8x8", "accuracy"] = 0.9  # re-digested: only a recomputation sees it
    atomic_write_parquet(stored, edited, stored_parents(table))
    problems = audit_root(root).problems
    assert problems == [f"agreement/{stored.name}: the robust rows of 'noise:1x8x8' differ from its real features'"]
    assert audit_root(root, repair=True).ok and not stored.is_file()
