"""Does the score predict real linear probing? Features of a labelled data set, a linear probe, rank agreement.

For every model on a spec's board: features of the real data (each model's own preprocessing)
stored like the synthetic ones, the probe's repeated stratified k-fold accuracy (``probing``; grouped
by region where the data set groups its samples) with its interval, and Kendall's tau and Spearman's
rho between the SynBench score (best eps, per threshold) and that accuracy, over the models, with
bootstrap intervals (``statistics``); a data set on which the models cannot be told apart is reported
as saturated instead. Tables written before k-fold (one 70/30 split, no intervals on tau and rho)
are still read and recomputed as they were made.
"""

from __future__ import annotations

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
from .probing import KFOLD_METHOD, kfold_accuracy, probe_accuracy
from .realdata import LabelledImages, load_images, prepare
from .reruns import board_models
from .statistics import SATURATED, bootstrap_agreement, rank_agreement, saturated

__all__ = [
    "real_features",
    "encode_images",
    "board_models",
    "accuracy_of",
    "key_values",
    "model_table",
    "agreement_stats",
    "stats_view",
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


_CARRIED = ("accuracy", "accuracy_low", "accuracy_high", "n_repeats", "correct_counts", "sample_groups")
_NO_INTERVALS = {f"{name}_{end}": np.nan for name in ("kendall_tau", "spearman_rho") for end in ("low", "high")}


def key_values(per_model: pd.DataFrame, key: RankKey) -> pd.DataFrame:
    """Each powered model's value of a rank key next to its real accuracy: columns model, value, accuracy,
    accuracy_low, accuracy_high (k-fold tables also n_repeats, correct_counts, sample_groups)."""
    powered = per_model[~per_model["underpowered"].fillna(False).astype(bool)]
    if key.threshold is not None:
        powered = powered[(powered["threshold"] - key.threshold).abs() < 1e-9]
    values = powered.groupby("model_fingerprint", sort=False).agg(
        model=("model", "first"),
        value=(key.kind, "mean"),
        **{column: (column, "first") for column in _CARRIED if column in powered},
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
        n_test=("n_test", "first"),
    )
    return table.reset_index(drop=True)


def _key_agreement(values: pd.DataFrame) -> dict:
    """tau and rho of one rank key; with k-fold accuracies also their bootstrap intervals, or saturation."""
    scores, accuracy = values["value"].to_numpy(float), values["accuracy"].to_numpy(float)
    if "correct_counts" not in values:  # a table made before k-fold: recomputed as it was made
        return rank_agreement(scores, accuracy)
    low, high = values["accuracy_low"].to_numpy(float), values["accuracy_high"].to_numpy(float)
    if len(values) >= 2 and saturated(accuracy, low, high):
        none = rank_agreement(scores[:0], accuracy[:0]) | _NO_INTERVALS
        return none | {"n_models": len(values), "saturated": True, "note": SATURATED}
    found = rank_agreement(scores, accuracy) | _NO_INTERVALS | {"saturated": False, "note": ""}
    if not np.isfinite(found["kendall_tau"]):
        return found | {"note": "fewer than 3 models, or all tied"}
    correct = np.stack(
        [np.asarray(c, float) / r for c, r in zip(values["correct_counts"], values["n_repeats"], strict=True)]
    )
    return found | bootstrap_agreement(scores, correct, np.asarray(values["sample_groups"].iloc[0]))


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
            rows.append(
                {
                    "rank_key": str(key),
                    "score_kind": kind,
                    "threshold": np.nan if threshold is None else threshold,
                    **_key_agreement(key_values(per_model, key)),
                    "n_underpowered_left_out": underpowered,
                }
            )
    return pd.DataFrame(rows)


def _cell(row: pd.Series, name: str) -> str:
    """A statistic with its 95% interval; where there is none, the row's note (saturation) in the tau column."""
    if pd.isna(row[name]):
        return str(row.get("note") or "—") if name == "kendall_tau" else "—"
    if pd.isna(row.get(f"{name}_low", np.nan)):
        return f"{row[name]:.2f}"
    return f"{row[name]:.2f} [{row[f'{name}_low']:.2f}, {row[f'{name}_high']:.2f}]"


def stats_view(stats: pd.DataFrame) -> pd.DataFrame:
    """The statistics as people read them: tau and rho each with its 95% interval, or why there is none."""
    rows = [row for _, row in stats.iterrows()]
    return pd.DataFrame(
        {
            "rank key": stats["rank_key"],
            "Kendall tau [95%]": [_cell(row, "kendall_tau") for row in rows],
            "p (tau)": stats["kendall_p"],
            "Spearman rho [95%]": [_cell(row, "spearman_rho") for row in rows],
            "p (rho)": stats["spearman_p"],
            "models": stats["n_models"],
            "underpowered left out": stats["n_underpowered_left_out"],
        }
    )


def accuracy_of(features: np.ndarray, data: LabelledImages, rows: pd.DataFrame) -> dict:
    """A model's accuracy recomputed from its real features the way its agreement rows were made (the audit)."""
    if "accuracy_method" in rows and rows["accuracy_method"].iloc[0] == KFOLD_METHOD:
        return kfold_accuracy(features, data.labels, data.groups)
    return probe_accuracy(features, data.labels)


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
        result = kfold_accuracy(real_features(encoder, images, root, device), images.labels, images.groups)
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
