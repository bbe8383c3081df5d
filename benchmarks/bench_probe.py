"""Probe stage speed: ours vs the authors' probe and vs a generic convex solver, on the same features.

Prints, measured in this run (p = 768, n = 2048 + 2048, 6 eps): the whole probe stage per scale,
the same stage as the authors' code does it (a re-implementation, see ``authors_probe``), their
ratio, the eps-solve alone against scipy's SLSQP, and peak memory of the stage.
Targets: probe stage >= 10x the authors' (issue 21); eps-solve >= 100x the generic solver and
probe stage <= 0.15 s per scale on 2 cores (issue 3).
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import torch
from scipy.optimize import minimize

from synbench.method.probe import fit_probe, robust_direction
from synbench.method.probe_solve import fit_and_evaluate

P, N, EPS = 768, 2048, (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
ROUNDS = 5
PAUSE = 0.5  # s before each timed round: the BLAS threads the other side left spinning go idle


def features(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    labels = (rng.random(n) < 0.5).astype(np.uint8)
    mixing = rng.normal(size=(P, P)) / np.sqrt(P)
    return (rng.normal(size=(n, P)) @ mixing + np.where(labels[:, None] == 1, 0.05, -0.05)).astype(np.float32), labels


def generic_solve(mean_diff: np.ndarray, eigenvalues: np.ndarray, eps: float) -> np.ndarray:
    radius_sq = (eps * np.linalg.norm(mean_diff)) ** 2
    return minimize(
        lambda z: ((mean_diff - z) ** 2 / eigenvalues).sum(),
        x0=np.zeros_like(mean_diff),
        jac=lambda z: -2 * (mean_diff - z) / eigenvalues,
        constraints=[{"type": "ineq", "fun": lambda z: radius_sq - z @ z, "jac": lambda z: -2 * z}],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 1000},
    ).x


def authors_probe(train, test, eps_values, batch_size: int = 256) -> list[tuple[float, float]]:
    """Our re-implementation, for timing only, of what the authors' ``get_bound_rep`` and the lines
    that feed it do (IBM/synbench, evaluate_synbench.py; nothing of theirs is imported or copied):
    per-class ``np.cov``, ``torch.svd`` of the pooled covariance with the absolute floor, per eps a
    QCQP solved by cvxpy with SCS, then margins over the test set in batches of 256 (float32).
    Returns (bound, accuracy) per eps; without cvxpy installed the eps-solve is our closed form and
    the ratio printed is a lower bound (the script says so)."""
    (h, y), (test_h, test_y) = train, test
    ones, zeros = h[y == 1], h[y == 0]
    cov = (np.cov(ones, rowvar=False) * (len(ones) - 1) + np.cov(zeros, rowvar=False) * (len(zeros) - 1)) / (len(h) - 2)
    mean1, mean0 = torch.tensor(ones.mean(axis=0)), torch.tensor(zeros.mean(axis=0))
    vectors, values, _ = torch.svd(torch.tensor(cov), some=True)
    basis, kept = vectors[:, values > 1e-6].float(), values[values > 1e-6].float()
    mu = basis.t() @ ((mean1 - mean0) / 2).float()
    centre = ((mean1 + mean0) / 2).float()
    out = []
    for eps in eps_values:
        z = _qcqp(mu.numpy().astype(np.float64), kept.numpy().astype(np.float64), eps)
        w = (mu - torch.tensor(z).float()) / kept
        direction, scaled = basis @ w, abs(float(mu @ w))
        bound_sum, accuracy_sum, batches = 0.0, 0.0, 0
        for start in range(0, len(test_y), batch_size):
            x = torch.from_numpy(test_h[start : start + batch_size]) - centre
            labels = torch.from_numpy(test_y[start : start + batch_size]) == 1
            margin = x @ direction
            correct = (margin > 0) == labels
            bound_sum += float((margin.abs() / scaled)[correct].mean())
            accuracy_sum += float(correct.float().mean())
            batches += 1
        out.append((bound_sum / batches, accuracy_sum / batches))
    return out


def _qcqp(mu: np.ndarray, eigenvalues: np.ndarray, eps: float) -> np.ndarray:
    try:
        import cvxpy as cp
    except ImportError:  # the closed form: the authors' solver is far slower, so the ratio is understated
        return robust_direction(mu, eigenvalues, eps)[0]
    z = cp.Variable(len(mu))
    problem = cp.Problem(
        cp.Minimize(cp.quad_form(mu - z, np.diag(1 / eigenvalues))), [cp.pnorm(z) <= eps * np.linalg.norm(mu)]
    )
    problem.solve(solver="SCS")
    return np.asarray(z.value)


def main() -> None:
    rng = np.random.default_rng(0)
    train, test = features(rng, N), features(rng, N)
    stage_times = []
    for _ in range(15):
        start = time.perf_counter()
        fit_and_evaluate(train, test, 1.0, EPS)
        stage_times.append(time.perf_counter() - start)
    tracemalloc.start()  # a separate run: tracing slows every allocation
    fit_and_evaluate(train, test, 1.0, EPS)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    authors_times, paired = [], []  # rounds alternate ours and theirs: a loaded machine slows both alike
    for _ in range(ROUNDS):
        time.sleep(PAUSE)
        start = time.perf_counter()
        authors = authors_probe(train, test, EPS)
        authors_times.append(time.perf_counter() - start)
        time.sleep(PAUSE)
        start = time.perf_counter()
        fit_and_evaluate(train, test, 1.0, EPS)
        paired.append(time.perf_counter() - start)
    ours_results = fit_and_evaluate(train, test, 1.0, EPS, "absolute")
    gap = max(abs(a - r.accuracy) for (_, a), r in zip(authors, ours_results, strict=True))
    probe = fit_probe(*train)
    robust = [e for e in EPS if e > 0]
    start = time.perf_counter()
    ours = [robust_direction(probe.half_mean_diff, probe.eigenvalues, e)[0] for e in robust]
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = [generic_solve(probe.half_mean_diff, probe.eigenvalues, e) for e in robust]
    generic_s = time.perf_counter() - start
    worst = max(np.linalg.norm(a - b) / np.linalg.norm(a) for a, b in zip(ours, theirs, strict=True))
    stage, fastest = float(np.median(stage_times)), min(stage_times)
    print(f"features: p={P}, n={N}+{N}, eps={EPS}, rank kept={probe.rank}")
    stage_verdict = "ok" if stage <= 0.15 else "MISSED"
    print(f"probe stage per scale (median of 15): {stage:.3f} s (fastest {fastest:.3f} s; <= 0.15 s: {stage_verdict})")
    try:
        import cvxpy  # noqa: F401

        solver = "cvxpy + SCS, as theirs"
    except ImportError:
        solver = "cvxpy missing: our closed form stands in, so the ratio is a LOWER BOUND"
    speed_up = min(authors_times) / min(paired)
    verdict = "ok" if speed_up >= 10 else "MISSED"
    print(f"authors' probe re-implemented ({solver}), fastest of {ROUNDS}: {min(authors_times):.3f} s per scale")
    rounds = ", ".join(f"{a / b:.1f}x" for a, b in zip(authors_times, paired, strict=True))
    print(
        f"probe stage speed-up over the authors' (fastest of {ROUNDS} alternating rounds each): {speed_up:.1f}x "
        f"(target >= 10x: {verdict}); per round: {rounds}"
    )
    print(f"  their test accuracy differs from ours (absolute floor) by at most {gap:.4f} (float32 margins, SCS)")
    print(f"eps-solve, closed form ({len(robust)} eps): {ours_s * 1e3:.2f} ms")
    print(f"eps-solve, scipy SLSQP  ({len(robust)} eps): {generic_s * 1e3:.1f} ms")
    ratio = generic_s / ours_s
    ratio_verdict = "ok" if ratio >= 100 else "MISSED"
    print(f"speed-up: {ratio:.0f}x (target >= 100x: {ratio_verdict}); max rel. difference {worst:.1e}")
    square_mib = P * P * 8 / 2**20
    print(f"peak Python-heap memory of the stage: {peak / 2**20:.1f} MiB (p^2 float64 = {square_mib:.1f} MiB)")


if __name__ == "__main__":
    main()
