"""Robust linear probing on real features: a multinomial linear head trained against worst-case l2 perturbations.

The head sees standardised features (train mean and std, as scikit-learn's StandardScaler). Its
perturbation radius is ``eps`` times the class-mean half-distance of the standardised train
features (the mean over class pairs of ``||m_a - m_b|| / 2``): METHOD.md 3.4's relative budget
``eps ||mu~||`` carried to real data. For a linear head the worst case is closed form: a perturbation
of norm ``rho`` shrinks the margin of class ``y`` over ``j`` by at most ``rho ||w_y - w_j||``, and a
sample keeps its class under every such perturbation iff each of those margins stays positive.
Training minimises ``C * sum_i CE(z_i + rho ||w_j - w_{y_i}||) + ||W||^2 / 2`` (the intercept not
penalised): at ``eps = 0`` that is scikit-learn's multinomial ``LogisticRegression(C)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

__all__ = ["LinearHead", "half_distance", "robust_loss", "fit_robust_head", "worst_case_margins", "robust_accuracy"]


@dataclass(frozen=True)
class LinearHead:
    """A linear multinomial head on standardised features."""

    weights: np.ndarray  # (k, p): one row per class
    bias: np.ndarray  # (k,)
    centre: np.ndarray  # (p,): train mean subtracted before the head
    scale: np.ndarray  # (p,): train std the features are divided by (1 where a feature is constant)
    radius: float  # training perturbation radius, in standardised units

    def standardise(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, dtype=np.float64) - self.centre) / self.scale

    def logits(self, features: np.ndarray) -> np.ndarray:
        return self.standardise(features) @ self.weights.T + self.bias

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.logits(features).argmax(axis=1)


def _standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centre = features.mean(axis=0)
    scale = features.std(axis=0)
    return centre, np.where(scale > 0, scale, 1.0)


def half_distance(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean over class pairs of half the distance between the class means of (standardised) ``features``."""
    means = [features[labels == label].mean(axis=0) for label in np.unique(labels)]
    return float(np.mean([np.linalg.norm(a - b) / 2 for a, b in itertools.combinations(means, 2)]))


def _pair_norms(weights: np.ndarray) -> np.ndarray:
    """``||w_a - w_b||`` for every class pair (k, k), smoothed where rows coincide; the diagonal is unused."""
    gram = weights @ weights.T
    squared = np.maximum(gram.diagonal()[:, None] + gram.diagonal()[None, :] - 2 * gram, 0)
    return np.sqrt(squared + 1e-12)


def robust_loss(
    weights: np.ndarray, bias: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float, c: float
) -> tuple[float, np.ndarray, np.ndarray]:
    """The training objective divided by ``c n`` (same minimiser) and its gradients in ``weights`` and ``bias``.

    Every rival class ``j`` of a sample of class ``y`` gets its logit raised by ``radius ||w_y - w_j||``,
    the most an l2 perturbation of norm ``radius`` can add to it against ``y``.
    """
    n, classes = len(y), len(bias)
    rivals = 1.0 - np.eye(classes)
    norms = _pair_norms(weights)
    logits = x @ weights.T + bias + radius * (norms * rivals)[y]
    logits -= logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(logits).sum(axis=1))
    loss = float((log_norm - logits[np.arange(n), y]).mean() + (weights**2).sum() / (2 * c * n))
    residual = np.exp(logits - log_norm[:, None])
    residual[np.arange(n), y] -= 1
    residual /= n
    grad_weights = residual.T @ x + weights / (c * n)
    if radius > 0:  # d||w_a - w_j|| / dw_a = (w_a - w_j) / ||w_a - w_j||, for the pairs each sample used
        by_pair = np.zeros((classes, classes))
        np.add.at(by_pair, y, residual)
        pull = (by_pair + by_pair.T) * rivals / norms
        grad_weights += radius * (pull.sum(axis=1)[:, None] * weights - pull @ weights)
    return loss, grad_weights, residual.sum(axis=0)


def fit_robust_head(
    features: np.ndarray, labels: np.ndarray, eps: float, c: float = 1.0, tolerance: float = 1e-6
) -> LinearHead:
    """Train the head against l2 feature perturbations of radius ``eps`` x the class-mean half-distance.

    Args:
        features: ndarray (n, p) of train features; labels: ndarray (n,) of class indices 0..k-1.
        eps: relative radius, >= 0 (0: plain multinomial logistic regression).
        c: inverse L2 strength, as scikit-learn's ``C``.
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0; got {eps}")
    raw = np.asarray(features, dtype=np.float64)
    centre, scale = _standardisation(raw)
    x = (raw - centre) / scale
    y = np.asarray(labels, dtype=np.int64)
    classes, dim = int(y.max()) + 1, x.shape[1]
    radius = eps * half_distance(x, y) if eps > 0 else 0.0

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad_weights, grad_bias = robust_loss(
            flat[: classes * dim].reshape(classes, dim), flat[classes * dim :], x, y, radius, c
        )
        return loss, np.concatenate([grad_weights.ravel(), grad_bias])

    start = np.zeros(classes * dim + classes)
    # small products: one BLAS thread is fastest, and several spin against each other on a busy machine
    with threadpool_limits(1):
        result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 5000, "gtol": tolerance})
    return LinearHead(result.x[: classes * dim].reshape(classes, dim), result.x[classes * dim :], centre, scale, radius)


def worst_case_margins(head: LinearHead, features: np.ndarray, labels: np.ndarray, radius: float) -> np.ndarray:
    """Per sample, the least margin of its class over any other under any l2 perturbation of norm ``radius``
    (standardised units): ``min_j (z_y - z_j - radius ||w_y - w_j||)``; positive iff the class survives."""
    logits = head.logits(features)
    y = np.asarray(labels, dtype=np.int64)
    rows = np.arange(len(y))
    gaps = logits[rows, y][:, None] - logits
    norms = np.linalg.norm(head.weights[:, None, :] - head.weights[None, :, :], axis=2)
    margins = gaps - radius * norms[y]
    margins[rows, y] = np.inf
    return margins.min(axis=1)


def robust_accuracy(head: LinearHead, features: np.ndarray, labels: np.ndarray, radius: float) -> float:
    """Fraction of samples whose class survives every l2 perturbation of norm ``radius`` (0: clean accuracy)."""
    return float((worst_case_margins(head, features, labels, radius) > 0).mean())
