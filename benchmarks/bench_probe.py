"""Probe stage speed: our closed-form eps-solve vs a generic convex solver, on the same features.

Prints, measured in this run (p = 768, n = 2048 + 2048, 6 eps): the whole probe stage per scale,
the eps-solve alone, the same solve by scipy's SLSQP, their ratio, and peak memory of the stage.
Targets (issue 3): eps-solve >= 100x the generic solver; probe stage <= 0.15 s per scale on 2 cores.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
from scipy.optimize import minimize

from synbench.probe import evaluate_probe, fit_probe, robust_direction

P, N, EPS = 768, 2048, (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


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


def main() -> None:
    rng = np.random.default_rng(0)
    train, test = features(rng, N), features(rng, N)
    stage_times = []
    for _ in range(15):
        start = time.perf_counter()
        evaluate_probe(fit_probe(*train), *test, 1.0, EPS)
        stage_times.append(time.perf_counter() - start)
    tracemalloc.start()  # a separate run: tracing slows every allocation
    evaluate_probe(fit_probe(*train), *test, 1.0, EPS)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
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
    print(f"eps-solve, closed form ({len(robust)} eps): {ours_s * 1e3:.2f} ms")
    print(f"eps-solve, scipy SLSQP  ({len(robust)} eps): {generic_s * 1e3:.1f} ms")
    ratio = generic_s / ours_s
    ratio_verdict = "ok" if ratio >= 100 else "MISSED"
    print(f"speed-up: {ratio:.0f}x (target >= 100x: {ratio_verdict}); max rel. difference {worst:.1e}")
    square_mib = P * P * 8 / 2**20
    print(f"peak Python-heap memory of the stage: {peak / 2**20:.1f} MiB (p^2 float64 = {square_mib:.1f} MiB)")


if __name__ == "__main__":
    main()
