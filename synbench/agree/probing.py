"""Linear probing on real features: repeated stratified k-fold accuracy with an interval that counts each tested
sample once (and each group of dependent samples by its design effect), and the single seeded 70/30 split of
agreement tables written before it.

The probe is a multinomial logistic regression (C = 1.0) on standardised features, refitted on every
training fold. Every sample is tested once per repeat; ``correct_counts[i]`` is how many of the repeats
predicted sample i right. METHOD.md section 9 gives the interval and why it is honest for repeated CV.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

__all__ = [
    "FOLDS",
    "REPEATS",
    "KFOLD_METHOD",
    "wilson",
    "probe",
    "split_indices",
    "holdout_split",
    "probe_accuracy",
    "fold_splits",
    "fold_count",
    "kfold_correct",
    "kfold_accuracy",
    "clustered_interval",
]

FOLDS, REPEATS = 5, 5  # repeated stratified k-fold: 5 folds x 5 seeded repeats
KFOLD_METHOD = "kfold"  # the accuracy_method of agreement rows written with it; older rows have none


def wilson(successes: float, n: float, z: float = NormalDist().inv_cdf(0.975)) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``successes / n`` (``n`` may be an effective, non-integer size).

    scipy's ``binomtest(k, n).proportion_ci(method="wilson")`` gives the same interval for whole counts, but takes
    integers only: the k-fold interval divides the counts by a design effect.
    """
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(min(centre - half, p), 0.0), min(max(centre + half, p), 1.0)  # rounding at p = 0 or 1


def probe():
    """A fresh probe: standardised features, multinomial logistic regression (C = 1.0)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))


def split_indices(labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices of one seeded, stratified 70/30 split (agreement tables before k-fold)."""
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(labels)), test_size=0.3, random_state=seed, stratify=labels)


def holdout_split(labels: np.ndarray, groups: np.ndarray | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One train/test split (``--robust``): ``split_indices``, or with groups the first of three seeded stratified
    group folds (a third of each class's groups held out whole)."""
    if groups is None:
        return split_indices(labels, seed)
    return next(iter(fold_splits(labels, groups, 3, seed)))


def probe_accuracy(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict:
    """Accuracy on the held-out 30% of ``split_indices``, with its 95% Wilson interval: how agreement tables
    were made before k-fold, kept so that the audit recomputes them."""
    train, held_out = split_indices(labels, seed)
    correct = int((probe().fit(features[train], labels[train]).predict(features[held_out]) == labels[held_out]).sum())
    low, high = wilson(correct, len(held_out))
    return {"accuracy": correct / len(held_out), "accuracy_low": low, "accuracy_high": high, "n_test": len(held_out)}


def fold_splits(labels: np.ndarray, groups: np.ndarray | None, folds: int, seed: int):
    """(train, test) index pairs of one seeded stratified k-fold; grouped: every group wholly in one fold."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if groups is None:
        return StratifiedKFold(folds, shuffle=True, random_state=seed).split(labels, labels)
    return StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(labels, labels, groups)


def fold_count(labels: np.ndarray, groups: np.ndarray | None) -> int:
    """FOLDS, or fewer when a class has fewer samples (or groups) than that: at least 2."""
    units = labels if groups is None else np.unique(np.stack([labels, groups]), axis=1)[0]
    return int(max(2, min(FOLDS, np.bincount(units).min())))


def kfold_correct(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None, seed: int = 0
) -> np.ndarray:
    """Per sample, how many of the REPEATS predicted it right: int array of shape (n,).

    Repeat r splits by a stratified k-fold seeded ``seed + r`` (grouped: every group in one fold, so no
    test sample shares a group with a training sample) and tests every sample once.
    """
    from threadpoolctl import threadpool_limits

    counts = np.zeros(len(labels), dtype=np.int64)
    folds = fold_count(labels, groups)
    with threadpool_limits(1, user_api="blas"):  # one BLAS thread: faster on these sizes, same sums on every run
        for repeat in range(REPEATS):
            for train, test in fold_splits(labels, groups, folds, seed + repeat):
                counts[test] += probe().fit(features[train], labels[train]).predict(features[test]) == labels[test]
    return counts


def clustered_interval(correct: np.ndarray, groups: np.ndarray) -> tuple[float, float, float]:
    """(accuracy, low, high): the mean of per-sample correctness in [0, 1] (shape (n,)), its 95% Wilson interval at
    the effective sample size n / deff, deff the design effect of ``groups`` (at least 1; about 1 when each
    sample is its own group). METHOD.md section 9."""
    n, p = len(correct), float(correct.mean())
    _, unit = np.unique(groups, return_inverse=True)
    totals, sizes = np.bincount(unit, weights=correct), np.bincount(unit)
    units = len(sizes)
    clustered = units / max(units - 1, 1) * float(((totals - p * sizes) ** 2).sum()) / n**2
    binomial = p * (1 - p) / n
    design_effect = max(1.0, clustered / binomial) if binomial > 0 else 1.0
    low, high = wilson(p * n / design_effect, n / design_effect)
    return p, low, high


def kfold_accuracy(features: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None, seed: int = 0) -> dict:
    """Repeated stratified k-fold accuracy of the probe with its 95% interval; ``n_test`` samples, each tested once
    per repeat. Also the per-sample ``correct_counts`` and ``sample_groups`` the agreement statistics resample."""
    counts = kfold_correct(features, labels, groups, seed)
    units = np.arange(len(labels)) if groups is None else np.asarray(groups)
    accuracy, low, high = clustered_interval(counts / REPEATS, units)
    return {
        "accuracy": accuracy,
        "accuracy_low": low,
        "accuracy_high": high,
        "n_test": len(labels),
        "n_groups": len(np.unique(units)),
        "n_folds": fold_count(labels, groups),
        "n_repeats": REPEATS,
        "accuracy_method": KFOLD_METHOD,
        "correct_counts": counts.tolist(),
        "sample_groups": units.tolist(),
    }
