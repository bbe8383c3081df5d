"""Coverage of the score intervals (issue 12; METHOD.md section 6), on the identity control.

For each seed of a spec, score identity:CxHxW in memory and compute its half-sampling intervals;
then count, per (eps, t), the seeds whose interval covers the mean score across seeds (nominal 95%;
required >= 85%). Also prints the mean half-width against 1.96 x the across-seed sd (1.0 = exact).

    python benchmarks/ci_coverage.py --shapes 3x4x4,3x8x8 --seeds 30 --spec demo
    python benchmarks/ci_coverage.py --first-seed 1000   # held-out seeds, to re-check after a change
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from synbench.core.spec import load_spec
from synbench.method.generate import block_inputs
from synbench.method.intervals import DEFAULT_REPLICATES, replicate_curves, replicate_tasks, with_intervals
from synbench.method.probe_solve import probe_tasks
from synbench.method.score import empirical_curves, reference_curve, score_rows
from synbench.models.encoders import resolve_encoder


def identity_tasks(spec, encoder) -> list:
    def split(scale_index: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        blocks = [block_inputs(spec, encoder.preprocess, scale_index, name, b) for b in range(spec.n_blocks(name))]
        features = np.concatenate([encoder.represent(inputs).numpy() for _, inputs in blocks])
        return features, np.concatenate([labels for labels, _ in blocks])

    return [(scale, split(i, "train"), split(i, "test")) for i, scale in enumerate(spec.scales)]


def seed_rows(spec, encoder, replicates: int) -> tuple[list[dict], float, float]:
    """Scored rows with intervals for one seed, and the seconds the probe stage and the replicates took."""
    tasks = identity_tasks(spec, encoder)
    start = time.perf_counter()
    results = probe_tasks(tasks, spec.eps)
    probe_s = time.perf_counter() - start
    start = time.perf_counter()
    curves = replicate_curves(replicate_tasks(tasks, spec.eps, spec.seed, replicates))
    replicate_s = time.perf_counter() - start
    reference = reference_curve(spec.scales)
    rows = with_intervals(score_rows(empirical_curves(results), reference, spec.thresholds), curves, reference)
    return rows, probe_s, replicate_s


def coverage(shape: str, spec_name: str, seeds: int, replicates: int, first_seed: int = 0) -> pd.DataFrame:
    encoder = resolve_encoder(f"identity:{shape}")
    rows, probe_total, replicate_total = [], 0.0, 0.0
    for seed in range(first_seed, first_seed + seeds):
        made, probe_s, replicate_s = seed_rows(load_spec(spec_name, seed=seed), encoder, replicates)
        rows += [{**row, "seed": seed} for row in made]
        probe_total, replicate_total = probe_total + probe_s, replicate_total + replicate_s
    frame = pd.DataFrame(rows)
    groups = frame.groupby(["eps", "threshold"])
    mean = groups["score"].transform("mean")
    frame["covers"] = (frame["score_low"] <= mean) & (mean <= frame["score_high"])
    frame["half_width"] = (frame["score_high"] - frame["score_low"]) / 2
    table = groups.agg(
        mean_score=("score", "mean"),
        sd_across_seeds=("score", "std"),
        mean_half_width=("half_width", "mean"),
        coverage=("covers", "mean"),
    )
    table["width_ratio"] = table["mean_half_width"] / (1.96 * table["sd_across_seeds"])
    print(
        f"\nidentity:{shape} (d = {encoder.preprocess.dim}), spec {spec_name}, "
        f"seeds {first_seed}-{first_seed + seeds - 1}, {replicates} replicates: "
        f"replicates took {replicate_total / probe_total:.1f}x the probe stage"
    )
    print(table.round(4).to_string())
    print(
        f"coverage: min {table['coverage'].min():.2f}, mean {table['coverage'].mean():.3f}; "
        f"width ratio: median {table['width_ratio'].median():.2f}, range "
        f"{table['width_ratio'].min():.2f}-{table['width_ratio'].max():.2f}"
    )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="3x4x4,3x8x8", help="identity input shapes (d = C*H*W)")
    parser.add_argument("--spec", default="demo")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--replicates", type=int, default=DEFAULT_REPLICATES)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run from here (held-out checks: e.g. 1000)")
    args = parser.parse_args()
    for shape in args.shapes.split(","):
        coverage(shape, args.spec, args.seeds, args.replicates, args.first_seed)


if __name__ == "__main__":
    main()
