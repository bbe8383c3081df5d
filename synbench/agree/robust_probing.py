"""``synbench agree --robust``: eps-robust linear probing on real features, eps chosen by the board.

The paper's second claim: a linear probe trained against feature perturbations of the strength
that the SynBench score selects (the best eps) generalises better, clean and on corrupted inputs.
Per model: a head at eps = 0 and one at the selected eps (``robust.fit_robust_head``), both on the
same train split (``probing.holdout_split``: stratified 70/30; grouped data hold out whole groups); for
each, held-out accuracy clean, under the worst-case l2 feature attack of the selected eps's radius,
and on the held-out images corrupted (``datasets.corrupt``: Gaussian pixel
noise and blur) and passed through the encoder. 95% Wilson intervals; the selected head's gain over
eps = 0 with a paired 95% interval (same test images).
"""

from __future__ import annotations

import math
from os import PathLike

import numpy as np
import pandas as pd

from ..board.ranking import DEFAULT_RANK_KEY, RankKey
from ..core.errors import SynBenchError
from ..core.provenance import utc_now
from ..method.robust import LinearHead, fit_robust_head, half_distance, worst_case_margins
from ..store.features import real_group_path
from ..store.lineage import parents_of
from ..store.parquet import atomic_write_parquet
from ..store.roots import Location, location, safe_path
from .agreement import board_models, real_features
from .datasets import CORRUPTIONS, corrupt
from .probing import holdout_split, wilson
from .realdata import LabelledImages, load_images

__all__ = [
    "selected_eps",
    "corrupted_test_sets",
    "robust_rows",
    "robust_agreement",
    "store_robust",
    "robust_table",
    "ROBUST_COLUMNS",
]

ROBUST_COLUMNS = ["model", "eps", "accuracy", "accuracy_attacked", "accuracy_corrupted"]


def selected_eps(model_rows: pd.DataFrame, rank_key: RankKey = DEFAULT_RANK_KEY) -> tuple[float, str]:
    """(eps, rank key): the eps the board's rank key selects for a model (its summary rows, one per threshold).

    At one threshold: the best eps of the key's score there. For ``mean``: the best eps that most thresholds
    share (ties go to the smaller eps).
    """
    column = "best_eps" if rank_key.kind == "score" else "best_eps_dm"
    rows = model_rows
    if rank_key.threshold is not None:
        rows = model_rows[np.isclose(model_rows["threshold"], rank_key.threshold)]
        if rows.empty:
            known = ", ".join(f"{t:g}" for t in sorted(model_rows["threshold"].unique()))
            raise SynBenchError(f"the board has no scores at threshold {rank_key.threshold:g}; use one of {known}.")
    counts = rows[column].dropna().value_counts()
    if counts.empty:
        return 0.0, str(rank_key)
    return float(min(counts[counts == counts.max()].index)), str(rank_key)


def corrupted_test_sets(data: LabelledImages, test: np.ndarray, seed: int = 0) -> list[LabelledImages]:
    """The held-out images under each corruption, as data sets of their own (their features are stored too)."""
    return [
        LabelledImages(f"{data.name}+{kind}", corrupt(data.images[test], kind, seed), data.labels[test])
        for kind in CORRUPTIONS
    ]


def _rate(correct: np.ndarray, prefix: str) -> dict:
    low, high = wilson(int(correct.sum()), len(correct))
    return {prefix: float(correct.mean()), f"{prefix}_low": low, f"{prefix}_high": high}


def _paired_gain(better: np.ndarray, base: np.ndarray, prefix: str) -> dict:
    """Mean of the paired differences of two classifiers' correctness on the same samples, 95% normal interval."""
    difference = better.astype(float) - base.astype(float)
    half = 1.96 * difference.std(ddof=1) / math.sqrt(len(difference)) if len(difference) > 1 else float("nan")
    return {
        prefix: float(difference.mean()),
        f"{prefix}_low": difference.mean() - half,
        f"{prefix}_high": difference.mean() + half,
    }


def robust_rows(
    features: np.ndarray,
    labels: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    corrupted: list[np.ndarray],
    eps: float,
) -> list[dict]:
    """Rows for eps = 0 and ``eps`` (one row when equal): clean, attacked and corrupted accuracy of each head.

    ``corrupted``: features of the held-out images under each corruption, in the order of ``test``.
    The attack radius is ``eps`` x the class-mean half-distance of the standardised train features.
    """
    heads: dict[float, LinearHead] = {e: fit_robust_head(features[train], labels[train], e) for e in sorted({0.0, eps})}
    plain = heads[0.0]
    radius = eps * half_distance(plain.standardise(features[train]), labels[train])
    test_y = labels[test]
    outcomes = {}
    for value, head in heads.items():
        clean = head.predict(features[test]) == test_y
        attacked = worst_case_margins(head, features[test], test_y, radius) > 0
        each = [head.predict(part) == test_y for part in corrupted]
        outcomes[value] = (clean, attacked, np.concatenate(each), each)
    rows = []
    for value, (clean, attacked, pooled, each) in outcomes.items():
        row = {"eps": value, "attack_eps": eps, "attack_radius": radius, "n_test": len(test_y)}
        row |= _rate(clean, "accuracy") | _rate(attacked, "accuracy_attacked") | _rate(pooled, "accuracy_corrupted")
        row |= {f"accuracy_{kind}": float(part.mean()) for kind, part in zip(CORRUPTIONS, each, strict=True)}
        if value != 0.0:
            base_clean, base_attacked, base_pooled, _ = outcomes[0.0]
            row |= _paired_gain(clean, base_clean, "gain") | _paired_gain(pooled, base_pooled, "gain_corrupted")
            row |= _paired_gain(attacked, base_attacked, "gain_attacked")
        rows.append(row)
    return rows


def robust_agreement(
    root: str | PathLike,
    data: str = "digits",
    spec: str | None = None,
    models: list[str] | None = None,
    device: str = "auto",
    eps: float | None = None,
    rank_key: RankKey = DEFAULT_RANK_KEY,
    allow_py: bool | None = None,
) -> pd.DataFrame:
    """Robust probing rows (``robust_rows``) for every model on the board that can be rerun; nothing is written
    but real features.

    ``eps``: train every robust head at this eps; default the eps the board's rank key selects (``selected_eps``).
    """
    if eps is not None and not 0 <= eps < 1:
        raise SynBenchError(f"--robust-eps must lie in [0, 1), as the board's eps do; got {eps:g}.")
    root = location(root)
    images = load_images(data)
    train, test = holdout_split(images.labels, images.groups)
    corrupted_sets = corrupted_test_sets(images, test)
    rows = []
    for model_rows, encoder in board_models(root, spec, models, allow_py)[0]:
        chosen, at = (float(eps), "--robust-eps") if eps is not None else selected_eps(model_rows, rank_key)
        features = real_features(encoder, images, root, device)
        corrupted = [real_features(encoder, part, root, device) for part in corrupted_sets]
        info = {
            "model": model_rows["model"].iloc[0],
            "model_fingerprint": encoder.fingerprint,
            "best_eps": chosen,
            "selected_by": at,
            "spec_hash": model_rows["spec_hash"].iloc[0],
            "data": images.name,
            "data_digest": images.digest,
            "corrupted_digests": ",".join(part.digest for part in corrupted_sets),
        }
        rows += [{**info, **row} for row in robust_rows(features, images.labels, train, test, corrupted, chosen)]
    return pd.DataFrame(rows).assign(created_at=utc_now())


def store_robust(root: str | PathLike, table: pd.DataFrame) -> Location:
    """Write the robust rows under ``agreement/``."""
    name = f"{table['data_digest'].iloc[0]}-{table['spec_hash'].iloc[0]}-robust.parquet"
    root = location(root)
    path = safe_path(root, "agreement", name)
    digests = {table["data_digest"].iloc[0], *table["corrupted_digests"].iloc[0].split(",")}
    fingerprints = table["model_fingerprint"].unique()
    real = [real_group_path(root, fp, digest) for fp in fingerprints for digest in sorted(digests)]
    atomic_write_parquet(path, table, parents_of(root, *real))
    return path


def robust_table(table: pd.DataFrame) -> str:
    """The robust rows as a text table: each accuracy with its interval, the selected head's gains."""

    def cell(row: pd.Series, prefix: str) -> str:
        if prefix not in row or pd.isna(row[prefix]):
            return ""
        return f"{row[prefix]:.3f} [{row[f'{prefix}_low']:.3f}, {row[f'{prefix}_high']:.3f}]"

    shown = pd.DataFrame(
        {
            "model": table["model"],
            "eps": table["eps"],
            "clean": [cell(row, "accuracy") for _, row in table.iterrows()],
            "attacked": [cell(row, "accuracy_attacked") for _, row in table.iterrows()],
            "corrupted": [cell(row, "accuracy_corrupted") for _, row in table.iterrows()],
            "gain clean": [cell(row, "gain") for _, row in table.iterrows()],
            "gain corrupted": [cell(row, "gain_corrupted") for _, row in table.iterrows()],
        }
    )
    first = table.iloc[0]
    return (
        shown.to_markdown(index=False, tablefmt="simple_outline", floatfmt=".2f")
        + f"\nRobust linear heads on {first['data']} (n_test {first['n_test']}): attacked = worst-case l2 feature "
        "perturbation of the best eps's radius; corrupted = held-out images with Gaussian noise (std 0.10) and "
        "blur (std 1 px per 32 px), pooled; gains vs eps 0, paired 95% intervals."
    )
