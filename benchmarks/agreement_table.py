"""One agreement table over zoos, data sets and rank keys (issue 30, item 4): Kendall tau with its 95% interval.

Each zoo is a root whose board holds it, and the spec of that board (a preset or a spec file: the same
zoo under another synthetic distribution is another spec, e.g. one with ``covariance = "natural"``).
For every zoo and data set the script runs ``synbench agree`` (stored as agree stores it, so the
audit checks it), then prints one table: rank key x (zoo, data set), each cell tau [low, high] or
"saturated", and each key's mean tau over the cells that rank something. ``--json`` keeps every
number for a later table across distributions.

    python benchmarks/agreement_table.py --zoo real=data/realzoo:examples/real_zoo.toml \\
        --zoo layers=data/layerzoo:examples/real_zoo.toml --zoo demo=data:demo --json isotropic.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from synbench.agree.agreement import agree
from synbench.core.spec import load_spec

DATA_SETS = ("digits", "photos", "lfw")


def parse_zoo(text: str) -> tuple[str, str, str]:
    """NAME=ROOT:SPEC -> (name, root, spec hash)."""
    name, _, rest = text.partition("=")
    root, _, spec = rest.rpartition(":")
    if not name or not root or not spec:
        raise SystemExit(f"--zoo {text!r}: write NAME=ROOT:SPEC, e.g. real=data/realzoo:examples/real_zoo.toml")
    return name, root, load_spec(spec).spec_hash


def cell(row: pd.Series) -> str:
    if row["saturated"]:
        return "saturated"
    if pd.isna(row["kendall_tau"]):
        return "—"
    return f"{row['kendall_tau']:.2f} [{row['kendall_tau_low']:.2f}, {row['kendall_tau_high']:.2f}]"


def accuracy_range(per_model: pd.DataFrame) -> str:
    models = per_model.drop_duplicates("model_fingerprint")
    return f"{models['accuracy'].min():.3f}-{models['accuracy'].max():.3f} ({len(models)} models)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", action="append", required=True, help="NAME=ROOT:SPEC (repeat for each zoo)")
    parser.add_argument("--data", default=",".join(DATA_SETS), help="data sets, comma-separated")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="write every statistic and accuracy range here")
    args = parser.parse_args()
    stats, found = [], {}
    for name, root, spec_hash in map(parse_zoo, args.zoo):
        for data in args.data.split(","):
            start = time.perf_counter()
            per_model, table = agree(root, data, spec=spec_hash, device=args.device)
            seconds = time.perf_counter() - start
            column = f"{name}, {data}"
            stats.append(table.assign(column=column))
            found[column] = {"accuracy": accuracy_range(per_model), "seconds": round(seconds, 1), "spec": spec_hash}
            print(
                f"{column}: accuracy {found[column]['accuracy']}, n_test {per_model['n_test'].iloc[0]}, {seconds:.0f} s"
            )
    every = pd.concat(stats, ignore_index=True)
    wide = every.assign(cell=[cell(row) for _, row in every.iterrows()]).pivot(
        index="rank_key", columns="column", values="cell"
    )[list(found)]
    ranked = every[~every["saturated"]]
    wide["mean tau"] = ranked.groupby("rank_key")["kendall_tau"].mean().round(3)
    wide["worst tau"] = ranked.groupby("rank_key")["kendall_tau"].min().round(2)
    print(wide.reset_index().to_markdown(index=False))
    print("tau [95% bootstrap interval over models and test samples]; mean and worst over the cells not saturated")
    if args.json:
        records = json.loads(every.replace({np.nan: None}).to_json(orient="records"))
        Path(args.json).write_text(json.dumps({"cells": found, "stats": records}, indent=1))


if __name__ == "__main__":
    main()
