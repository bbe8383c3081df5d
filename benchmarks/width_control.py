"""The width control of METHOD.md section 7: a lossless representation of width p, both scores.

Isotropic Gaussian features of width p (the identity of a p-pixel input), n = N + N samples per task,
scales 0.1 to 4.9 in steps of 0.2, eps 0: the paper's score falls with p / n because of the probe,
the dimension-matched score stays at 1. Prints both at t = 0.6 and 0.9 per width, the probe's rank
and flags, and the time the oracle took against the probe stage (same run).

    python benchmarks/width_control.py --widths 64,256,768,1024,1536,2048 --n 2048
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from synbench.method.oracle import simulate_oracle
from synbench.method.probe_solve import probe_tasks
from synbench.method.score import add_dimension_matched, empirical_curves, power_flags, reference_curve, score_rows


def lossless_tasks(rng: np.random.Generator, width: int, n: int, scales: tuple[float, ...]) -> list:
    def split(scale: float) -> tuple[np.ndarray, np.ndarray]:
        labels = (rng.random(n) < 0.5).astype(np.uint8)
        signs = np.where(labels[:, None] == 1, 1.0, -1.0)
        return (signs * scale / np.sqrt(width) + rng.standard_normal((n, width))).astype(np.float32), labels

    return [(scale, split(scale), split(scale)) for scale in scales]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="64,256,768,1024,1536,2048")
    parser.add_argument("--n", type=int, default=2048, help="samples per split")
    parser.add_argument("--step", type=float, default=0.2, help="scale step (the paper spec: 0.1)")
    args = parser.parse_args()
    scales = tuple(round(0.1 + i * args.step, 10) for i in range(int(round(4.8 / args.step)) + 1))
    thresholds, eps = (0.6, 0.9), (0.0,)
    reference = reference_curve(scales)
    rng = np.random.default_rng(0)
    print(f"n = {args.n} + {args.n}, {len(scales)} scales, eps 0; score / score_dm at t = 0.6 and 0.9")
    for width in (int(w) for w in args.widths.split(",")):
        tasks = lossless_tasks(rng, width, args.n, scales)
        start = time.perf_counter()
        results = probe_tasks(tasks, eps)
        probe_s = time.perf_counter() - start
        rank = max(r.rank for r in results)
        start = time.perf_counter()
        oracle = simulate_oracle(scales, args.n, args.n, eps, rank)
        oracle_s = time.perf_counter() - start
        rows = score_rows(empirical_curves(results), reference, thresholds)
        rows = add_dimension_matched(rows, reference, {0.0: oracle.contribution.mean(axis=0)[0]})
        flags = power_flags([r.rank for r in results], args.n, width)
        cells = "  ".join(f"t={row['threshold']:g}: {row['score']:.3f} / {row['score_dm']:.3f}" for row in rows)
        print(
            f"p = {width:5d} (r {rank}, r/n {flags['r_over_n']:.2f}{', UNDERPOWERED' if flags['underpowered'] else ''})"
            f"  {cells}   probe stage {probe_s:6.1f} s, oracle {oracle_s:5.1f} s"
        )


if __name__ == "__main__":
    main()
