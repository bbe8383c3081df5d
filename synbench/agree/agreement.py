"""Does the score predict real linear probing? Features of a labelled data set, a linear probe, rank agreement.

For every model on a spec's board: features of the real data (each model's own preprocessing)
stored like the synthetic ones, a multinomial logistic-regression probe on standardised features
(the data set's own held-out split, else one fixed, seeded, stratified 70/30 split; C = 1.0), and
Kendall's tau and Spearman's rho between the SynBench score (best eps, per threshold) and the
probe's held-out accuracy, over the models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from os import PathLike

import numpy as np
import pandas as pd
import torch

from ..board.ranking import SCORE_KINDS, RankKey
from ..core.errors import DataError, SynBenchError
from ..core.provenance import utc_now, versions
from ..models.encoders import Encoder
from ..stages.extract import resolve_device
from ..store.features import read_real_features, real_group_path, write_real_features
from ..store.lineage import parents_of
from ..store.locks import writer_lock
from ..store.parquet import atomic_write_parquet
from ..store.roots import Location, location, safe_path
from .realdata import LabelledImages, load_images, prepare
from .reruns import board_models

__all__ = [
    "real_features",
    "encode_images",
    "split_indices",
    "probe_accuracy",
    "wilson",
    "rank_agreement",
    "board_models",
    "key_values",
    "model_table",
    "agreement_stats",
    "Agreement",
    "agreement",
    "store_agreement",
    "agree",
]

_CHUNK = 256  # images per forward


def real_features(encoder: Encoder, data: LabelledImages, root: Location, device: str = "auto") -> np.ndarray:
    """Features (n, p) of the data set, stored once under ``real.zarr/<fingerprint>/<data digest>``."""
    lock = real_group_path(root, encoder.fingerprint, data.digest).parent / f".{data.digest}.lock"
    with writer_lock(lock):
        stored = read_real_features(root, encoder.fingerprint, data.digest)
        if stored is not None:
            return stored
        torch_device = resolve_device(device)
        features = encode_images(encoder, data, torch_device)
        provenance = {
            "data": data.name,
            "data_digest": data.digest,
            "model": encoder.ref.text,
            "model_fingerprint": encoder.fingerprint,
            "preprocess": encoder.preprocess.to_dict(),
            "device": str(torch_device),
            "created_at": utc_now(),
            **versions(),
        }
        write_real_features(root, encoder.fingerprint, data.digest, features, data.labels, provenance)
        return features


def encode_images(encoder: Encoder, data: LabelledImages, device: torch.device) -> np.ndarray:
    """Features (n, p) of a data set's samples, each prepared with the encoder's preprocessing."""
    encoder.module.to(device)
    parts = []
    try:
        with torch.no_grad():
            for start in range(0, len(data.labels), _CHUNK):
                batch = prepare(data.images[start : start + _CHUNK], encoder.preprocess).to(device)
                parts.append(encoder.represent(batch).float().cpu().numpy())
    except DataError as exc:
        raise DataError(f"{encoder.ref.text} on {data.name}: {exc}") from None
    finally:
        encoder.module.to("cpu")
    features = np.concatenate(parts)
    if not np.isfinite(features).all():
        raise SynBenchError(f"{encoder.ref.text} returned NaN or Inf features on {data.name}; check its weights.")
    return features


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(min(centre - half, p), 0.0), min(max(centre + half, p), 1.0)  # rounding at p = 0 or 1


def split_indices(labels: np.ndarray, test: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: the data set's own held-out mask, else a seeded stratified 70/30 split."""
    if test is not None:
        return np.flatnonzero(~test), np.flatnonzero(test)
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(labels)), test_size=0.3, random_state=seed, stratify=labels)


def probe_accuracy(features: np.ndarray, labels: np.ndarray, seed: int = 0, test: np.ndarray | None = None) -> dict:
    """Held-out accuracy of a multinomial logistic regression on standardised features, with its 95% interval."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, held_out = split_indices(labels, test, seed)
    test_y = labels[held_out]
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
    probe.fit(features[train], labels[train])
    correct = int((probe.predict(features[held_out]) == test_y).sum())
    low, high = wilson(correct, len(test_y))
    return {"accuracy": correct / len(test_y), "accuracy_low": low, "accuracy_high": high, "n_test": len(test_y)}


def rank_agreement(scores: np.ndarray, accuracies: np.ndarray, seed: int = 0) -> dict:
    """Kendall's tau (exact p-value when no ties) and Spearman's rho (permutation p-value) over models."""
    from scipy import stats

    if len(scores) < 3 or np.ptp(scores) == 0 or np.ptp(accuracies) == 0:
        return {
            "kendall_tau": float("nan"),
            "kendall_p": float("nan"),
            "spearman_rho": float("nan"),
            "spearman_p": float("nan"),
            "n_models": len(scores),
        }
    kendall = stats.kendalltau(scores, accuracies)
    permutation = stats.permutation_test(
        (scores, accuracies),
        lambda x, y: stats.spearmanr(x, y).statistic,
        permutation_type="pairings",
        n_resamples=9999,
        random_state=seed,
    )
    return {
        "kendall_tau": float(kendall.statistic),
        "kendall_p": float(kendall.pvalue),
        "spearman_rho": float(permutation.statistic),
        "spearman_p": float(permutation.pvalue),
        "n_models": len(scores),
    }


def key_values(per_model: pd.DataFrame, key: RankKey) -> pd.DataFrame:
    """Each powered model's value of a rank key next to its real accuracy: columns model, value, accuracy,
    accuracy_low, accuracy_high."""
    powered = per_model[~per_model["underpowered"].fillna(False).astype(bool)]
    if key.threshold is not None:
        powered = powered[(powered["threshold"] - key.threshold).abs() < 1e-9]
    values = powered.groupby("model_fingerprint", sort=False).agg(
        model=("model", "first"),
        value=(key.kind, "mean"),
        **{column: (column, "first") for column in ("accuracy", "accuracy_low", "accuracy_high")},
    )
    return values[values["value"].notna()].reset_index(drop=True)


def model_table(per_model: pd.DataFrame) -> pd.DataFrame:
    """One row per model: its power flag, each score averaged over the thresholds (best eps), real accuracy."""
    table = per_model.groupby("model_fingerprint", sort=False).agg(
        model=("display_name" if "display_name" in per_model else "model", "first"),
        underpowered=("underpowered", "first"),
        **{f"{kind}@mean": (kind, "mean") for kind in SCORE_KINDS if kind in per_model},
        accuracy=("accuracy", "first"),
        accuracy_low=("accuracy_low", "first"),
        accuracy_high=("accuracy_high", "first"),
    )
    return table.reset_index(drop=True)


def agreement_stats(per_model: pd.DataFrame) -> pd.DataFrame:
    """Rank agreement with real accuracy for every rank key: both scores, each threshold and their mean."""
    thresholds = sorted(per_model["threshold"].unique())
    underpowered = per_model.loc[per_model["underpowered"].fillna(False).astype(bool), "model"].nunique()
    rows = []
    for kind in SCORE_KINDS:
        if kind not in per_model:
            continue
        for threshold in [*thresholds, None]:
            key = RankKey(kind, threshold)
            values = key_values(per_model, key)
            rows.append(
                {
                    "rank_key": str(key),
                    "score_kind": kind,
                    "threshold": np.nan if threshold is None else threshold,
                    **rank_agreement(values["value"].to_numpy(), values["accuracy"].to_numpy()),
                    "n_underpowered_left_out": underpowered,
                }
            )
    return pd.DataFrame(rows)


@dataclass
class Agreement:
    """What ``agreement`` found: per-model rows (accuracy next to the scores), statistics per rank key, and the
    models it skipped (``{"model", "reason"}``)."""

    per_model: pd.DataFrame
    stats: pd.DataFrame
    skipped: list[dict] = field(default_factory=list)


def agreement(
    root: str | PathLike,
    data: str = "digits",
    spec: str | None = None,
    models: list[str] | None = None,
    device: str = "auto",
    allow_py: bool | None = None,
) -> Agreement:
    """Real accuracy of every model on the board that can be rerun, next to its scores, and the agreement
    statistics; nothing is written but each model's real features (``real_features``)."""
    root = location(root)
    images = load_images(data)
    rows = []
    found, skipped = board_models(root, spec, models, allow_py)
    for model_rows, encoder in found:
        result = probe_accuracy(real_features(encoder, images, root, device), images.labels, test=images.test)
        for _, row in model_rows.iterrows():
            rows.append({**row.to_dict(), **result, "data": images.name, "data_digest": images.digest})
    per_model = pd.DataFrame(rows)
    stats = agreement_stats(per_model).assign(
        data=images.name, data_digest=images.digest, spec_hash=per_model["spec_hash"].iloc[0], created_at=utc_now()
    )
    return Agreement(per_model, stats, skipped)


def store_agreement(root: str | PathLike, result: Agreement) -> list[Location]:
    """Write the per-model rows and the statistics under ``agreement/``; returns their paths."""
    root = location(root)
    first = result.per_model.iloc[0]
    name = f"{first['data_digest']}-{first['spec_hash']}"
    models_file, stats_file = (safe_path(root, "agreement", f"{name}-{kind}.parquet") for kind in ("models", "stats"))
    real = [real_group_path(root, fp, first["data_digest"]) for fp in result.per_model["model_fingerprint"].unique()]
    atomic_write_parquet(models_file, result.per_model, parents_of(root, *real))
    atomic_write_parquet(stats_file, result.stats, parents_of(root, models_file))
    return [models_file, stats_file]


def agree(
    root: str | PathLike,
    data: str = "digits",
    spec: str | None = None,
    models: list[str] | None = None,
    device: str = "auto",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-model real accuracy next to its scores, and the agreement statistics per threshold; both stored."""
    result = agreement(root, data, spec, models, device)
    store_agreement(root, result)
    return result.per_model, result.stats
