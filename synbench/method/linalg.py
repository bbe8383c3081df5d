"""The probe and its half-sample refits with torch on an accelerator (METHOD.md sections 3 and 6).

The same math as probe.py and intervals.py, in float64: the covariance or Gram matrix of every
half-sample of a task is built on the device and all of them are eigendecomposed in one batched
call; only vectors of length rank and the test margins come back to the host, where the eps-solve
(probe.robust_direction) and the scoring (probe.score_margins) are shared with the CPU path.
Results agree with the CPU path to rounding (tests/test_linalg.py). Pure: arrays in, arrays out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from .probe import (
    FittedProbe,
    ProbeResult,
    class_mask,
    eps_weights,
    evaluate_probe,
    kept_from,
    score_margins,
)
from .probe_solve import probe_tasks

__all__ = ["accelerated", "device_fit", "device_probe_tasks", "device_replicates"]

_BATCH_ELEMENTS = 2**27  # float64 values gathered per batch of halves (1 GiB): bounds device memory


def accelerated(device: str) -> bool:
    """True when ``device`` names an accelerator torch can use; "cpu" and absent devices take the NumPy path."""
    if device == "cpu":
        return False
    kind = torch.device(device).type
    return (kind == "cuda" and torch.cuda.is_available()) or (kind == "mps" and torch.backends.mps.is_available())


def _on(features: np.ndarray, device: str) -> torch.Tensor:
    return torch.as_tensor(np.asarray(features), device=device).to(torch.float64)


def _one_hot(y: torch.Tensor) -> torch.Tensor:
    """(..., n, 2) class indicators divided by class sizes: ``one_hot^T h`` are the class means (1 then 0)."""
    columns = torch.stack([y, ~y], dim=-1).to(torch.float64)
    return columns / columns.sum(dim=-2, keepdim=True)


def _spectra(centred: torch.Tensor, use_gram: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched eigh of the pooled covariance (or of the Gram matrix), both divided by n - 2."""
    dof = centred.shape[-2] - 2
    square = centred @ centred.mT if use_gram else centred.mT @ centred
    return torch.linalg.eigh(square / dof)


def _probe(centred, eigenvalues, vectors, means, use_gram: bool, eigen_floor: str) -> FittedProbe:
    """One FittedProbe (arrays on the device for basis and centre) from one eigendecomposition."""
    first = kept_from(eigenvalues.cpu().numpy(), eigen_floor)
    kept, vectors = eigenvalues[first:], vectors[:, first:]
    mean_diff = means[0] - means[1]
    if use_gram:
        scaling = torch.rsqrt((centred.shape[0] - 2) * kept)
        basis = centred.mT @ (vectors * scaling)
        half = scaling * (vectors.mT @ (centred @ mean_diff)) / 2
    else:
        basis, half = vectors, vectors.mT @ mean_diff / 2
    return FittedProbe(basis, kept.cpu().numpy(), half.cpu().numpy(), (means[0] + means[1]) / 2)


def _results(probe: FittedProbe, test_h, test_y: np.ndarray, scale: float, eps_values) -> list[ProbeResult]:
    if probe.rank == 0:
        accuracy = float((~test_y.astype(bool)).mean())
        return [ProbeResult(scale, eps, accuracy, 0.0, 0, float("nan")) for eps in eps_values]
    weights, nus = eps_weights(probe.half_mean_diff, probe.eigenvalues, eps_values)
    feature_weights = probe.basis @ torch.as_tensor(weights, device=probe.basis.device)
    margins = ((test_h - probe.centre) @ feature_weights).cpu().numpy()
    return score_margins(margins, test_y, probe.half_mean_diff @ weights, scale, eps_values, nus, probe.rank)


def device_fit(features: np.ndarray, labels: np.ndarray, eigen_floor: str = "relative", device: str = "cuda"):
    """probe.fit_probe on ``device``; the FittedProbe returned holds NumPy arrays."""
    h, y = _on(features, device), torch.as_tensor(class_mask(labels), device=device)
    means = _one_hot(y).mT @ h
    centred = h - torch.where(y[:, None], means[0], means[1])
    use_gram = h.shape[0] < h.shape[1]
    eigenvalues, vectors = _spectra(centred, use_gram)
    probe = _probe(centred, eigenvalues, vectors, means, use_gram, eigen_floor)
    return FittedProbe(probe.basis.cpu().numpy(), probe.eigenvalues, probe.half_mean_diff, probe.centre.cpu().numpy())


def device_probe_tasks(
    tasks: Iterable[tuple[float, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]],
    eps_values: tuple[float, ...],
    eigen_floor: str = "relative",
    device: str = "cuda",
) -> list[ProbeResult]:
    """probe_solve.probe_tasks with the fits on ``device``; probe_tasks itself where no accelerator is there."""
    if not accelerated(device):
        return probe_tasks(tasks, eps_values, eigen_floor)
    results = []
    for scale, train, test in tasks:
        results.extend(evaluate_probe(device_fit(*train, eigen_floor, device), *test, scale, eps_values))
    return results


def device_replicates(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    halves: Sequence[tuple[np.ndarray, np.ndarray]],
    scale: float,
    eps_values: tuple[float, ...],
    eigen_floor: str,
    device: str,
) -> list[list[ProbeResult]]:
    """intervals.replicate_tasks' refits of one task for every (train half, test half) in ``halves``."""
    h, test_h, test_y = _on(train[0], device), _on(test[0], device), np.asarray(test[1])
    labels = torch.as_tensor(np.asarray(train[1]).astype(bool), device=device)
    half_size = len(halves[0][0]) if halves else 0
    use_gram = half_size < h.shape[1]
    per_batch = max(1, _BATCH_ELEMENTS // max(half_size * h.shape[1], 1))
    out = []
    for start in range(0, len(halves), per_batch):
        chunk = halves[start : start + per_batch]
        index = torch.as_tensor(np.stack([train_half for train_half, _ in chunk]), device=device)
        for train_half, _ in chunk:
            class_mask(train[1][train_half])  # a one-class half is the same user error as on the CPU
        sub, y = h[index], labels[index]  # (b, m, p), (b, m)
        means = _one_hot(y).mT @ sub  # (b, 2, p)
        centred = sub - torch.where(y[..., None], means[:, :1], means[:, 1:])
        eigenvalues, vectors = _spectra(centred, use_gram)
        for b, (_, test_half) in enumerate(chunk):
            probe = _probe(centred[b], eigenvalues[b], vectors[b], means[b], use_gram, eigen_floor)
            half_index = torch.as_tensor(test_half, device=device)
            out.append(_results(probe, test_h[half_index], test_y[test_half], scale, eps_values))
    return out
