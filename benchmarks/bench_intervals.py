"""Cost of the score intervals (issue 12): half-sample replicates against the probe stage, same run.

For p = 64, 192, 768 on the quick spec's split sizes (n = 1024 + 1024, 6 eps), times the probe stage
(one fit, every eps) and the replicates (DEFAULT_REPLICATES fits on half-samples) over a few tasks,
and prints their ratio. The eigendecomposition of each refitted covariance dominates.

    python benchmarks/bench_intervals.py [--tasks 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from synbench.intervals import DEFAULT_REPLICATES, replicate_tasks
from synbench.probe import probe_tasks
from synbench.spec import load_spec


def tasks(rng: np.random.Generator, p: int, n: int, count: int) -> list:
    mixing = rng.normal(size=(p, p)) / np.sqrt(p)

    def split() -> tuple[np.ndarray, np.ndarray]:
        labels = (rng.random(n) < 0.5).astype(np.uint8)
        shift = np.where(labels[:, None] == 1, 0.05, -0.05)
        return (rng.normal(size=(n, p)) @ mixing + shift).astype(np.float32), labels

    return [(0.5 + i, split(), split()) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3, help="tasks timed per p (the quick spec has 25)")
    args = parser.parse_args()
    spec = load_spec("quick")
    rng = np.random.default_rng(0)
    print(
        f"quick spec splits: n = {spec.n_train} + {spec.n_test}, {len(spec.eps)} eps, {DEFAULT_REPLICATES} replicates"
    )
    for p in (64, 192, 768):
        work = tasks(rng, p, spec.n_train, args.tasks)
        start = time.perf_counter()
        probe_tasks(work, spec.eps)
        probe_s = (time.perf_counter() - start) / args.tasks
        start = time.perf_counter()
        replicate_tasks(work, spec.eps, spec.seed, DEFAULT_REPLICATES)
        replicate_s = (time.perf_counter() - start) / args.tasks
        print(
            f"p = {p:4d}: probe stage {probe_s * 1000:7.1f} ms/task, intervals {replicate_s * 1000:8.1f} ms/task, "
            f"ratio {replicate_s / probe_s:5.1f}x ({replicate_s / DEFAULT_REPLICATES / probe_s:.2f}x per replicate); "
            f"quick spec ({len(spec.scales)} tasks): {replicate_s * len(spec.scales):.1f} s"
        )


if __name__ == "__main__":
    main()
