"""One agreement table over zoos, data sets and rank keys (issue 30, item 4): Kendall tau with its 95% interval.

Each zoo is a root whose board holds it, and the spec of that board (a preset or a spec file: the same
zoo under another synthetic distribution is another spec, e.g. one with ``covariance = "natural"``).
For every zoo and data set the script runs ``synbench agree`` (stored as agree stores it, so the
audit checks it), then prints one table: rank key x (zoo, data set), each cell tau [low, high] or
"saturated", and each key's mean and worst tau over the cells that rank something. ``--json`` keeps
every number; ``--combine`` prints one table from several runs (one per synthetic distribution).

    python benchmarks/agreement_table.py --zoo real=data/realzoo:examples/real_zoo.toml \\
        --zoo layers=data/layerzoo:examples/real_zoo.toml --zoo demo=data:demo --json isotropic.json
    python benchmarks/agreement_table.py --zoo ... (natural spec files) --label natural --json natural.json
    python benchmarks/agreement_table.py --combine isotropic.json natural.json

``--accuracy-from ROOT`` takes each model's k-fold accuracy from ROOT's stored agreement rows (matched by
fingerprint and data set; they do not depend on the spec) for a zoo scored again under another distribution.
``--reuse`` reads the per-model rows an earlier ``synbench agree`` stored for a zoo and data set (each model's
k-fold accuracy) and recomputes the statistics from them, instead of probing again.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from synbench.agree.agreement import agree, agreement_stats
from synbench.agree.realdata import load_images
from synbench.board.read import read_board
from synbench.board.tables import summary_records
from synbench.core.spec import load_spec
from synbench.store.parquet import read_table

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


def table(every: pd.DataFrame, columns: list[str], rows: list[str]) -> pd.DataFrame:
    """Rows (label and) rank key x columns (zoo, data set): tau [interval] or saturated; mean and worst tau."""
    every = every.assign(cell=[cell(row) for _, row in every.iterrows()])
    wide = every.pivot(index=rows, columns="column", values="cell")[columns]
    ranked = every[~every["saturated"].astype(bool)].groupby(rows)["kendall_tau"]
    return wide.assign(**{"mean tau": ranked.mean().round(3), "worst tau": ranked.min().round(2)}).reset_index()


def stored_agreement(root: str, data: str, spec_hash: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The per-model rows an earlier ``synbench agree`` stored for this data set and spec, and their statistics
    recomputed (no probe is refitted)."""
    file = Path(root) / "agreement" / f"{load_images(data).digest}-{spec_hash}-models.parquet"
    if not file.is_file():
        return None
    per_model = read_table(file).to_pandas()
    return per_model, agreement_stats(per_model)


_ACCURACY = ["accuracy", "accuracy_low", "accuracy_high", "n_test", "n_groups", "n_folds", "n_repeats"]
_ACCURACY += ["accuracy_method", "correct_counts", "sample_groups", "data", "data_digest"]


def carried_agreement(root: str, data: str, spec_hash: str, source: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """This spec's board next to each model's k-fold accuracy taken from another root's stored agreement rows
    (any spec): the accuracy is a function of the model's fingerprint and the data set alone, so a zoo scored
    under a second distribution needs no second probing. None unless every model of the board is found."""
    digest = load_images(data).digest
    stored = [read_table(file).to_pandas() for file in Path(source).glob(f"agreement/{digest}-*-models.parquet")]
    if not stored:
        return None
    accuracy = pd.concat(stored).drop_duplicates("model_fingerprint").set_index("model_fingerprint")[_ACCURACY]
    board = summary_records(read_board(root, spec=spec_hash, warn=False))
    if not set(board["model_fingerprint"]) <= set(accuracy.index):
        return None
    per_model = board.join(accuracy, on="model_fingerprint")
    return per_model, agreement_stats(per_model)


def combine(files: list[str]) -> None:
    """One table from several runs' --json files (e.g. isotropic and natural): rows label x rank key."""
    runs = [json.loads(Path(file).read_text()) for file in files]
    every = pd.concat(
        [pd.DataFrame(run["stats"]).assign(label=run.get("label", "isotropic")) for run in runs], ignore_index=True
    )
    columns = list(dict.fromkeys(column for run in runs for column in run["cells"]))
    print(table(every, columns, ["label", "rank_key"]).to_markdown(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", action="append", help="NAME=ROOT:SPEC (repeat for each zoo)")
    parser.add_argument("--data", default=",".join(DATA_SETS), help="data sets, comma-separated")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="write every statistic and accuracy range here")
    parser.add_argument("--label", default="isotropic", help="the synthetic distribution these specs use")
    parser.add_argument("--reuse", action="store_true", help="recompute the statistics from stored per-model rows")
    parser.add_argument(
        "--accuracy-from",
        nargs="+",
        default=[],
        metavar="ROOT",
        help="roots whose stored k-fold accuracies (by fingerprint) serve a zoo scored under another distribution",
    )
    parser.add_argument("--combine", nargs="+", metavar="JSON", help="print one table from earlier --json files")
    args = parser.parse_args()
    if args.combine:
        return combine(args.combine)
    if not args.zoo:
        raise SystemExit("name at least one --zoo NAME=ROOT:SPEC, or --combine earlier --json files")
    stats, found = [], {}
    for name, root, spec_hash in map(parse_zoo, args.zoo):
        for data in args.data.split(","):
            start = time.perf_counter()
            stored = stored_agreement(root, data, spec_hash) if args.reuse else None
            for source in args.accuracy_from if stored is None else []:
                stored = stored or carried_agreement(root, data, spec_hash, source)
            per_model, found_stats = stored or agree(root, data, spec=spec_hash, device=args.device)
            seconds = time.perf_counter() - start
            column = f"{name}, {data}"
            stats.append(found_stats.assign(column=column))
            found[column] = {"accuracy": accuracy_range(per_model), "seconds": round(seconds, 1), "spec": spec_hash}
            print(
                f"{column}: accuracy {found[column]['accuracy']}, n_test {per_model['n_test'].iloc[0]}, {seconds:.0f} s"
            )
    every = pd.concat(stats, ignore_index=True)
    if args.json:
        records = json.loads(every.replace({np.nan: None}).to_json(orient="records"))
        Path(args.json).write_text(json.dumps({"label": args.label, "cells": found, "stats": records}, indent=1))
    print(table(every, list(found), ["rank_key"]).to_markdown(index=False))
    print("tau [95% bootstrap interval over models and test samples]; mean and worst over the cells not saturated")


if __name__ == "__main__":
    main()
