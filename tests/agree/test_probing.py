"""The powered probe (issue 30, item 1): repeated stratified k-fold, every sample tested, an interval that counts
each sample once and dependent samples by their design effect; photo tiles from disjoint regions."""

from __future__ import annotations

import numpy as np
import pytest

from synbench.agree import datasets
from synbench.agree.datasets import PHOTOS, photo_tiles
from synbench.agree.probing import (
    REPEATS,
    clustered_interval,
    fold_splits,
    holdout_split,
    kfold_accuracy,
    kfold_correct,
    wilson,
)
from synbench.agree.realdata import load_images


def _blobs(rng: np.random.Generator, n: int = 300, classes: int = 3, spread: float = 1.0):
    labels = np.arange(n) % classes
    return rng.normal(scale=spread, size=(n, 5)) + 1.2 * np.eye(5)[labels], labels


def test_every_sample_is_tested_once_per_repeat_by_seeded_stratified_folds(rng):
    features, labels = _blobs(rng)
    result = kfold_accuracy(features, labels)
    counts = np.asarray(result["correct_counts"])
    assert result["n_test"] == 300 == len(counts) and result["n_folds"] == 5 and result["n_repeats"] == REPEATS
    assert counts.min() >= 0 and counts.max() <= REPEATS and 0 < (counts % REPEATS).sum()  # some flip by fold
    assert result["accuracy"] == pytest.approx(counts.sum() / (REPEATS * 300))
    assert np.array_equal(kfold_correct(features, labels), counts)  # seeded: the same folds again
    assert not np.array_equal(kfold_correct(features, labels, seed=7), counts)
    tested = np.zeros(300, int)
    for train, test in fold_splits(labels, None, 5, 0):
        tested[test] += 1
        assert np.array_equal(np.bincount(labels[test]), [20, 20, 20])  # stratified
        assert not set(train) & set(test)
    assert (tested == 1).all()


def test_grouped_folds_never_split_a_group_and_hold_whole_groups_out():
    labels = np.repeat(np.arange(4), 40)
    groups = np.repeat(np.arange(32), 5)  # 8 groups of 5 per class
    for seed in range(REPEATS):
        for train, test in fold_splits(labels, groups, 5, seed):
            assert not set(groups[train]) & set(groups[test])
    train, test = holdout_split(labels, groups)
    assert not set(groups[train]) & set(groups[test]) and 0.25 < len(test) / len(labels) < 0.45
    assert len(holdout_split(labels, None)[1]) == 48  # ungrouped: the old 70/30 split


def test_the_interval_counts_each_sample_once_not_once_per_repeat():
    correct = np.r_[np.ones(180), np.zeros(20)]  # 0.9 of 200, the same in every repeat
    accuracy, low, high = clustered_interval(correct, np.arange(200))
    assert accuracy == pytest.approx(0.9)
    once, pooled = wilson(180, 200), wilson(900, 1000)  # as if the 5 repeats were 1000 trials
    assert low == pytest.approx(once[0], abs=2e-3) and high == pytest.approx(once[1], abs=2e-3)
    assert high - low > 2 * (pooled[1] - pooled[0])


def test_dependent_samples_count_by_their_design_effect():
    outcomes = np.r_[np.ones(18), np.zeros(2)]
    copies = np.repeat(outcomes, 10)  # each outcome ten times: 20 independent samples, not 200
    _, low, high = clustered_interval(copies, np.repeat(np.arange(20), 10))
    independent = wilson(18, 20)
    assert low == pytest.approx(independent[0], abs=0.02) and high == pytest.approx(independent[1], abs=0.02)
    _, low_200, high_200 = clustered_interval(copies, np.arange(200))
    assert high - low > 2.5 * (high_200 - low_200)
    assert clustered_interval(np.ones(50), np.repeat(np.arange(5), 10))[1:] == pytest.approx(wilson(50, 50))


def test_photo_tiles_are_reproducible_overlapping_multiscale_and_from_disjoint_regions(monkeypatch):
    images, labels, groups = photo_tiles()
    again = photo_tiles()
    assert all(np.array_equal(a, b) for a, b in zip((images, labels, groups), again, strict=True))
    assert images.shape[1:] == (3, 32, 32) and images.dtype == np.float32 and set(labels) == set(range(len(PHOTOS)))
    assert len(labels) > 1400 and np.bincount(labels).min() >= 80  # was 40 tiles a photo and 178 tested
    assert len(np.unique(groups)) == 8 * len(PHOTOS)
    assert all(len(np.unique(labels[groups == group])) == 1 for group in np.unique(groups))
    assert (images.std(axis=(1, 2, 3)) > 0.005).all()  # no flat tile (the black border of retina)
    # on a photo whose pixels hold their own coordinates, each tile's block means give the pixels it covers
    rows, cols = np.meshgrid(np.arange(300), np.arange(400), indexing="ij")
    coordinates = np.stack([rows / 1000, cols / 1000, np.full(rows.shape, 0.5)], axis=-1).astype(np.float32)
    monkeypatch.setattr(datasets, "_photo", lambda name: coordinates)
    tiles, tile_labels, tile_groups = photo_tiles()
    first = tile_labels == 0
    spans = []
    for tile in tiles[first]:
        row, col = tile[0] * 1000, tile[1] * 1000
        step = row[1, 0] - row[0, 0]  # the tile side / 32
        half = (step - 1) / 2
        spans.append((row.min() - half, row.max() + half, col.min() - half, col.max() + half, round(step)))
    spans = np.array(spans)
    assert set(spans[:, 4]) == {1, 2, 3}  # 32, 64 and 96 pixel tiles
    region = tile_groups[first]

    def overlap(a, b):
        return a[0] <= b[1] and b[0] <= a[1] and a[2] <= b[3] and b[2] <= a[3]

    pairs = [(i, j) for i in range(len(spans)) for j in range(i + 1, len(spans))]
    assert not any(overlap(spans[i], spans[j]) for i, j in pairs if region[i] != region[j])  # no shared pixel
    assert any(overlap(spans[i], spans[j]) for i, j in pairs if region[i] == region[j])  # tiles overlap


def test_the_new_photos_have_a_new_digest_and_the_other_sets_keep_theirs():
    assert load_images("photos").digest != "6e9e7c205739f821"  # the single-split photos of 3f1eb2f
    assert load_images("lfw").digest == "757cd279556438ba" and load_images("digits").digest == "8308f2a13bd4bbcb"
