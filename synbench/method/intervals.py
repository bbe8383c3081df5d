"""Uncertainty of a score by half-sampling (METHOD.md section 6); pure: arrays in, arrays out.

Each replicate refits the probe on a random half of every task's train split, drawn without
replacement, and evaluates it on a random half of the test split. For a smooth statistic the
spread of half-sample estimates around the full-sample one equals the full-sample standard error
(the variance of a half-sample mean given the data is s^2/m (1 - m/n) = s^2/n at m = n/2), so no
rescaling is needed, and without duplicates the refitted probe is not degraded the way a bootstrap
probe is. The half-sample scores sit below the point estimate (half the samples make a worse
probe), so the interval is centred on the point estimate and takes only their spread.

The halves depend only on the spec's seed, the task and the replicate: every model of a spec sees
the same halves, which makes differences between models paired.

Every refit is exact (the same probe as probe.fit_probe on the half, to rounding); how the CPU
makes them cheaply is in refits.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy.stats import t as student_t

from ..core.errors import SpecError
from .probe import ProbeResult
from .refits import cpu_replicates
from .score import Reference, empirical_curves, reference_at, synbench_score

__all__ = [
    "CI_METHODS",
    "DEFAULT_REPLICATES",
    "CONFIDENCE",
    "check_replicates",
    "half_sample",
    "replicate_tasks",
    "replicate_curves",
    "with_intervals",
    "interval",
    "paired_interval",
    "rank_bands",
    "NOT_MEASURED",
]

CI_METHODS = ("half-sampling", "none")
DEFAULT_REPLICATES = 40  # enough for the spread's own error to cost little width (t quantile 2.02)
MAX_REPLICATES = 1000
CONFIDENCE = 0.95
_STREAM = 0x5EED_CAFE  # separates these draws from every other use of the spec seed


def check_replicates(count: int) -> int:
    """The number of half-sample replicates, validated: 0 (no intervals) or 2 to MAX_REPLICATES."""
    if isinstance(count, bool) or not isinstance(count, int) or count == 1 or not 0 <= count <= MAX_REPLICATES:
        raise SpecError(
            f"ci replicates must be 0 (no intervals) or 2 to {MAX_REPLICATES}; got {count!r}. "
            f"The default, {DEFAULT_REPLICATES}, is the size the README's coverage figures validate."
        )
    return count


def half_sample(seed: int, scale_index: int, split_index: int, replicate: int, size: int) -> np.ndarray:
    """Sorted indices of a random half (``size // 2``) of one split, a pure function of its arguments."""
    rng = np.random.default_rng([_STREAM, seed, scale_index, split_index, replicate])
    return np.sort(rng.permutation(size)[: size // 2])


def replicate_tasks(
    tasks: Iterable[tuple[float, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]],
    eps_values: tuple[float, ...],
    seed: int,
    replicates: int,
    eigen_floor: str = "relative",
    device: str = "cpu",
) -> list[tuple[int, ProbeResult]]:
    """(replicate, result) for every replicate, task and eps: the probe refitted on half-samples.

    ``device`` naming an available accelerator ("cuda") runs the refits with torch there
    (synbench.method.linalg), a task's halves in batched eigendecompositions; otherwise the CPU path runs.
    Both agree to rounding.
    """
    out = []
    for scale_index, (scale, (train_h, train_y), (test_h, test_y)) in enumerate(tasks):
        halves = [
            (half_sample(seed, scale_index, 0, r, len(train_y)), half_sample(seed, scale_index, 1, r, len(test_y)))
            for r in range(replicates)
        ]
        if not halves:
            continue
        if _accelerated(device):
            from .linalg import device_replicates

            per_replicate = device_replicates(
                (train_h, train_y), (test_h, test_y), halves, scale, eps_values, eigen_floor, device
            )
        else:
            per_replicate = cpu_replicates((train_h, train_y), (test_h, test_y), halves, scale, eps_values, eigen_floor)
        out.extend((r, result) for r, results in enumerate(per_replicate) for result in results)
    return out


def _accelerated(device: str) -> bool:
    if device == "cpu":
        return False
    from .linalg import accelerated  # imports torch: only where a device is asked for

    return accelerated(device)


def replicate_curves(pairs: Sequence[tuple[int, ProbeResult]]) -> dict[float, np.ndarray]:
    """Empirical curve of every replicate per eps: eps -> ndarray of shape (replicates, len(grid))."""
    by_replicate: dict[int, list[ProbeResult]] = {}
    for replicate, result in pairs:
        by_replicate.setdefault(replicate, []).append(result)
    curves = [empirical_curves(by_replicate[r]) for r in sorted(by_replicate)]
    return {eps: np.stack([c[eps] for c in curves]) for eps in curves[0]} if curves else {}


def _quantile(replicates: int) -> float:
    # Student's t: the spread is itself estimated from a finite number of replicates
    return float(student_t.ppf(0.5 + CONFIDENCE / 2, df=max(replicates - 1, 1)))


def interval(score: float, replicate_scores: Sequence[float]) -> tuple[float, float]:
    """95% interval: the point estimate plus or minus t x the replicates' standard deviation (never below 0).

    Not a number when the replicates cannot measure a spread: fewer than two, or all equal to one value other
    than the point estimate. The latter happens where the half-sample probes interpolate (r >= n_train / 2 - 2:
    every replicate scores 0 at a high threshold while the full probe does not), and their zero spread is a
    floor, not a precision.
    """
    values = np.asarray(replicate_scores, dtype=np.float64)
    if values.size < 2 or (np.ptp(values) == 0 and not np.isclose(values[0], score, rtol=0, atol=1e-12)):
        return float("nan"), float("nan")
    half_width = _quantile(values.size) * float(values.std(ddof=1))
    return max(score - half_width, 0.0), score + half_width


def with_intervals(rows: Sequence[dict], curves: dict[float, np.ndarray] | None, reference: Reference) -> list[dict]:
    """Score rows (eps, threshold, score) with their interval and replicate scores; ``curves=None``: no interval."""
    out = []
    for row in rows:
        if curves is None:
            extra = {"score_low": np.nan, "score_high": np.nan, "ci_method": "none", "ci_replicates": 0}
            out.append({**row, **extra, "score_replicates": []})
            continue
        at_eps = reference_at(reference, row["eps"])
        replicates = [synbench_score(curve, at_eps, row["threshold"]) for curve in curves[row["eps"]]]
        low, high = interval(row["score"], replicates)
        extra = {"score_low": low, "score_high": high, "ci_method": CI_METHODS[0], "ci_replicates": len(replicates)}
        out.append({**row, **extra, "score_replicates": replicates})
    return out


def paired_interval(
    score_a: float, replicates_a: Sequence[float], score_b: float, replicates_b: Sequence[float]
) -> tuple[float, float, float]:
    """(difference, low, high) of ``a - b`` from replicates on the same half-samples.

    Replicate ``b`` is the same half-sample whatever the count (``half_sample`` does not depend on it),
    so models published with different counts are paired on the first min(Ba, Bb) replicates.
    """
    count = min(len(replicates_a), len(replicates_b))
    a = np.asarray(replicates_a[:count], dtype=np.float64)
    b = np.asarray(replicates_b[:count], dtype=np.float64)
    difference = score_a - score_b
    if count < 2:
        return difference, float("nan"), float("nan")
    half_width = _quantile(count) * float((a - b).std(ddof=1))
    return difference, difference - half_width, difference + half_width


NOT_MEASURED = "not measured"  # the band of a model whose order against its neighbours no interval tested


def _measured(replicates: Sequence[float] | None) -> bool:
    return replicates is not None and len(replicates) >= 2 and bool(np.isfinite(replicates).all())


def rank_bands(scores: Sequence[float], replicates: Sequence[Sequence[float] | None]) -> list[str]:
    """Rank band of each model, given in descending score order (METHOD section 6 of docs/METHOD.md).

    A model with replicates joins the band of the nearest model with replicates ranked above it unless
    their paired 95% interval excludes 0; equal scores always share a band. A band is labelled by the
    first and last rank it spans ("1-3", or "4" alone). A model without replicates (``--ci none``) is
    told apart from nothing: it is ``NOT_MEASURED`` unless it ties with a neighbour.
    """
    band: list[int | None] = []  # the index of each model's band's first model; None: not measured
    above = None  # the nearest measured model so far
    for i, score in enumerate(scores):
        if i and score == scores[i - 1]:
            if band[i - 1] is None:
                band[i - 1] = i - 1  # a tie starts a band even where nothing was measured
            band.append(band[i - 1])
        elif not _measured(replicates[i]):
            band.append(None)
        elif above is None:
            band.append(i)
        else:
            _, low, high = paired_interval(scores[above], replicates[above], score, replicates[i])
            band.append(band[above] if low <= 0 <= high else i)
        if _measured(replicates[i]):
            above = i
    ends = {start: max(i for i, s in enumerate(band) if s == start) for start in set(band) - {None}}
    return [NOT_MEASURED if s is None else f"{s + 1}" if ends[s] == s else f"{s + 1}-{ends[s] + 1}" for s in band]
