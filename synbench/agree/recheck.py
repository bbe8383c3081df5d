"""What the audit recomputes of ``synbench agree``'s artifacts: the data set a real-data group was made from,
a stored robust table's rows, and a stored agreement table's board columns against the board now."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..board.read import read_board
from ..board.tables import summary_records
from ..store.features import read_real_features
from ..store.roots import Location
from .probing import holdout_split
from .realdata import LabelledImages, load_images
from .robust_probing import corrupted_test_sets, robust_rows

__all__ = ["real_data_set", "robust_table_problems", "board_columns_problems", "BOARD_COLUMNS"]

# Columns an agreement table copies from the board's summary (one row per model and threshold).
BOARD_COLUMNS = (
    "model score score_low score_high best_eps score_dm score_dm_low score_dm_high best_eps_dm underpowered "
    "feature_dim probe_rank r_over_n n_train_needed"
).split()
_ROBUST_KEYS = ("model_fingerprint", "eps")


def real_data_set(name: str, digest: str) -> LabelledImages | None:
    """The labelled data set (or the corrupted held-out images of one: ``digits+noise``) with this digest, loaded
    here, or None when it cannot be (a file elsewhere, another version of it)."""
    base, _, corruption = name.partition("+")
    try:
        images = load_images(base)
    except Exception:
        return None
    if corruption:
        test = holdout_split(images.labels, images.groups)[1]
        found = [part for part in corrupted_test_sets(images, test) if part.digest == digest]
        return found[0] if found else None
    return images if images.digest == digest else None


def _values(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(float)


def robust_table_problems(root: Location, table: pd.DataFrame) -> list[tuple[str, str]]:
    """(fingerprint, why) of each model of a stored robust table whose rows (accuracies, gains, intervals, the
    attack radius) differ from those its stored real features give now. Models whose features are gone, or a
    data set that cannot be loaded here, are left to the lineage check."""
    images = real_data_set(str(table["data"].iloc[0]), str(table["data_digest"].iloc[0]))
    if images is None:
        return []
    train, test = holdout_split(images.labels, images.groups)
    found = []
    for fingerprint, rows in table.groupby("model_fingerprint"):
        digests = [images.digest, *str(rows["corrupted_digests"].iloc[0]).split(",")]
        stored = [read_real_features(root, fingerprint, digest) for digest in digests]
        if any(features is None for features in stored):
            continue
        fresh = pd.DataFrame(robust_rows(stored[0], images.labels, train, test, stored[1:], rows["best_eps"].iloc[0]))
        columns = [column for column in fresh if column in rows and column != "eps"]
        merged = rows.merge(fresh, on="eps", suffixes=("", "_now"))
        now, then = _values(merged, [f"{c}_now" for c in columns]), _values(merged, columns)
        same = len(merged) == len(rows) == len(fresh) and np.allclose(then, now, atol=1e-12, equal_nan=True)
        if not same:
            found.append((fingerprint, f"the robust rows of {rows['model'].iloc[0]!r} differ from its real features'"))
    return found


def board_columns_problems(root: Location, per_model: pd.DataFrame) -> list[str]:
    """Models whose board columns in an agreement table (scores, best eps, flags, name) are not the board's now."""
    spec_hash = str(per_model["spec_hash"].iloc[0])
    try:
        board = summary_records(read_board(root, spec=spec_hash, warn=False))
    except Exception:  # no such spec on the board any more
        board = pd.DataFrame(columns=["model_fingerprint", "threshold", *BOARD_COLUMNS])
    merged = per_model.merge(board, on=["model_fingerprint", "threshold"], how="left", suffixes=("", "_board"))
    found = []
    for _, rows in merged.groupby("model_fingerprint", sort=False):
        columns = [c for c in BOARD_COLUMNS if c in rows and f"{c}_board" in rows]
        names = rows["model"].astype(str).to_numpy() != rows["model_board"].astype(str).to_numpy()
        numeric = [c for c in columns if c != "model"]
        if names.any() or not np.allclose(
            _values(rows, numeric), _values(rows, [f"{c}_board" for c in numeric]), rtol=0, atol=1e-12, equal_nan=True
        ):
            found.append(f"the board columns of {rows['model'].iloc[0]!r} are not the board's now (edited, or stale)")
    return found
