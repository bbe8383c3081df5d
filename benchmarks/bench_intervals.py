"""Cost of the score intervals (issues 12, 21): half-sample replicates against the probe stage, same run.

For p in {768, 1280, 2048} and n in {512, 2048} (train + test of that size each, 6 eps, 40
replicates), times per task (medians of alternating rounds): the probe stage (one fit, every
eps), the intervals as shipped (replicate_tasks: exact refits by tridiagonal solves, the Gram
route with one Gram matrix shared by every half where a half has fewer points than features),
and the refits as release 0 made them (a p x p covariance eigendecomposed per half), timed on a
few replicates and scaled to 40. Prints the ratios to the probe stage; the target (issue 21) is
intervals <= 2x the probe stage.

    python benchmarks/bench_intervals.py [--sizes 768x2048,1280x512] [--rounds 3] [--old-replicates 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from synbench.method.intervals import DEFAULT_REPLICATES, half_sample, replicate_tasks
from synbench.method.probe import evaluate_probe, fit_probe
from synbench.method.probe_solve import probe_tasks

EPS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
PAUSE = 0.3  # s before each timing: BLAS threads left spinning by the previous one go idle
SIZES = "768x512,768x2048,1280x512,1280x2048,2048x512,2048x2048"


def task(rng: np.random.Generator, p: int, n: int) -> tuple:
    mixing = rng.normal(size=(p, p)) / np.sqrt(p)

    def split() -> tuple[np.ndarray, np.ndarray]:
        labels = (rng.random(n) < 0.5).astype(np.uint8)
        shift = np.where(labels[:, None] == 1, 0.05, -0.05)
        return (rng.normal(size=(n, p)) @ mixing + shift).astype(np.float32), labels

    return 1.0, split(), split()


def old_refits(work: tuple, replicates: int) -> float:
    """Seconds per replicate of release 0's refit: the p x p covariance of every half."""
    scale, (train_h, train_y), (test_h, test_y) = work
    start = time.perf_counter()
    for replicate in range(replicates):
        train, test = half_sample(0, 0, 0, replicate, len(train_y)), half_sample(0, 0, 1, replicate, len(test_y))
        probe = fit_probe(train_h[train], train_y[train], route="covariance")
        evaluate_probe(probe, test_h[test], test_y[test], scale, EPS)
    return (time.perf_counter() - start) / replicates


def _seconds(function, *args) -> float:
    time.sleep(PAUSE)
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=SIZES, help="comma-separated PxN: features x samples per split")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timings of each; medians printed")
    parser.add_argument("--old-replicates", type=int, default=3, help="release-0 refits timed per size (0: skip)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{len(EPS)} eps, {DEFAULT_REPLICATES} replicates; seconds per task")
    print("    p     n | probe stage | intervals (ratio) | release-0 intervals (ratio)")
    for size in args.sizes.split(","):
        p, n = (int(part) for part in size.split("x"))
        work = task(rng, p, n)
        probes, intervals = [], []
        for _ in range(args.rounds):  # alternating, so that a slow spell of a shared machine hits both
            probes.append(_seconds(probe_tasks, [work], EPS))
            intervals.append(_seconds(replicate_tasks, [work], EPS, 0, DEFAULT_REPLICATES))
        probe_s, replicate_s = float(np.median(probes)), float(np.median(intervals))
        old = "skipped"
        if args.old_replicates:
            old_s = old_refits(work, args.old_replicates) * DEFAULT_REPLICATES
            old = f"{old_s:8.2f} s ({old_s / probe_s:5.1f}x)"
        verdict = "ok" if replicate_s <= 2 * probe_s else "over 2x"
        print(
            f"{p:5d} {n:5d} | {probe_s:9.2f} s | {replicate_s:7.2f} s ({replicate_s / probe_s:5.1f}x, {verdict}) "
            f"| {old}",
            flush=True,
        )


if __name__ == "__main__":
    main()
