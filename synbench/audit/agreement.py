"""Audit of what ``synbench agree`` stores: real-data feature groups and agreement and robust tables.

A real-data group is checked against its manifest; only ``deep`` extracts it again (from the model and the
data set) and compares, so without it the audit names the groups it could not recompute. An agreement table
is recomputed where it can be: its statistics from its per-model rows, each model's accuracy from the stored
real features, its board columns against the board now; a robust table's rows (accuracies, gains and their
intervals) from the stored real features, its best eps against the board's choice. When a table disagrees
with the real features it was made from, either may be forged: repair sets both aside, and ``agree`` remakes
them from the model and the data set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import zarr

from ..agree.agreement import accuracy_of, agreement_stats, encode_images
from ..agree.recheck import board_columns_problems, real_data_set, robust_table_problems
from ..agree.robust_probing import selected_eps
from ..board.ranking import parse_rank_key
from ..board.read import read_board
from ..board.tables import summary_records
from ..core.errors import SynBenchError
from ..core.provenance import utc_now
from ..models.encoders import resolve_as_stored
from ..stages.extract import resolve_device
from ..store.features import arrays_manifest, checksum_ok, manifest_digest, real_manifest
from ..store.lineage import node_name
from ..store.parquet import read_table
from ..store.roots import REAL_DIR, Location, existing_files
from .graph import quarantined, set_aside_folder

__all__ = ["check_real_groups", "check_agreement"]


def check_real_groups(root: Location, report, repair: bool, deep: bool, allow_py: bool) -> None:
    """Features of real data sets: completion marker and every chunk against the manifest, and with ``deep`` the
    features extracted again. ``repair`` moves a damaged group to quarantine/ (agree re-extracts it; the tables
    made from it follow it there through the lineage check). An unfinished group is left alone: agree may still
    be writing it."""
    stamp, unchecked = utc_now().replace(":", ""), 0
    for marker in sorted((root / REAL_DIR).glob("*/*/zarr.json"), key=str):
        problem = _real_group_problem(marker.parent, report)
        if not problem and deep:
            problem = _extracted_again(zarr.open_group(str(marker.parent), mode="r"), allow_py)
        unchecked += not deep and not problem
        if not problem:
            continue
        where = node_name(root, marker.parent)
        if not repair or problem.startswith(("no completion marker", "not extracted again")):
            report.problems.append(f"{where}: {problem}")
            continue
        report.repaired.append(set_aside_folder(root, marker.parent, stamp, problem))
    if unchecked:
        report.notes.append(
            f"{unchecked} real-data group(s) under {REAL_DIR}/ checked against their manifests only; "
            "synbench audit --deep extracts them again from the model and the data set"
        )


def _real_group_problem(folder: Location, report) -> str | None:
    group = zarr.open_group(str(folder), mode="r")
    report.groups += 1
    if not group.attrs.get("complete"):
        return "no completion marker (agree's extraction unfinished)"
    manifest = group.attrs.get("chunk_digests") or {}
    if not manifest or group.attrs.get("content_digest") != manifest_digest(manifest):
        return "no chunk manifest it was completed with"
    try:
        found = real_manifest(group)
    except Exception as exc:  # zarr checks each chunk's crc32c as it decodes: name the files that fail it
        corrupt = _corrupt_chunks(folder)
        if corrupt:
            return f"corrupt chunk (crc32c mismatch) in {', '.join(corrupt[:4])}"
        return f"unreadable chunk ({str(exc).splitlines()[0][:120]})"
    report.chunks += len(found)
    wrong = sorted(key for key, digest in found.items() if manifest.get(key) != digest)
    return f"chunks {', '.join(wrong[:4])} differ from the manifest (moved or replaced)" if wrong else None


def _corrupt_chunks(group: Location) -> list[str]:
    """Chunk files of a group (``<array>/c/...``) whose crc32c does not match their bytes."""
    chunks = sorted(name for name in existing_files(group) if "/c/" in name)
    return [name for name in chunks if not checksum_ok((group / name).read_bytes())]


def _extracted_again(group: zarr.Group, allow_py: bool) -> str | None:
    """The deep check of a real-data group: its model run on its data set again, the manifests compared."""
    attrs = dict(group.attrs)
    data = real_data_set(str(attrs.get("data", "")), str(attrs.get("data_digest", "")))
    if data is None:
        return None  # a data set elsewhere: not extracted again (the note says how many were not)
    try:
        encoder = resolve_as_stored(str(attrs.get("model")), attrs.get("preprocess"), allow_py)
        features = encode_images(encoder, data, resolve_device("cpu"))
    except SynBenchError as exc:
        return f"not extracted again (deep audit): {exc}"
    if encoder.fingerprint != attrs.get("model_fingerprint"):
        return f"not extracted again (deep audit): {attrs.get('model')!r} now has another fingerprint"
    fresh = arrays_manifest({"features": features, "labels": data.labels})
    wrong = sorted(key for key, digest in fresh.items() if attrs.get("chunk_digests", {}).get(key) != digest)
    return f"chunks {', '.join(wrong[:4])} differ from the model's features on {data.name} now" if wrong else None


def check_agreement(root: Location, report, repair: bool = False) -> None:
    """Agreement and robust tables against their recomputation. ``repair`` moves a table that differs, with its
    statistics, to quarantine/ (only ``synbench agree`` can remake them), and with it the real-data groups of the
    models whose values differ from them."""
    stamp = utc_now().replace(":", "")
    for models_file in sorted((root / "agreement").glob("*-models.parquet"), key=str):
        stats_file = models_file.with_name(models_file.name.replace("-models.parquet", "-stats.parquet"))
        try:
            per_model = read_table(models_file).to_pandas()
            stats = read_table(stats_file).to_pandas() if stats_file.is_file() else None
        except Exception:
            continue
        where = node_name(root, models_file)
        doubtful = _accuracy_problems(root, per_model)
        found = [f"{where}: {line}" for _, line in doubtful]
        found += [f"{where}: {line}" for line in board_columns_problems(root, per_model)]
        if stats is not None and _stats_differ(stats, agreement_stats(per_model)):
            found.append(f"{node_name(root, stats_file)}: its statistics differ from its per-model rows'")
        groups = [(fp, str(per_model["data_digest"].iloc[0])) for fp, _ in doubtful]
        _settle(root, report, repair, found, [models_file, stats_file], groups, stamp)
    for robust_file in sorted((root / "agreement").glob("*-robust.parquet"), key=str):
        try:
            table = read_table(robust_file).to_pandas()
        except Exception:  # reported as unreadable by the Parquet check
            continue
        where = node_name(root, robust_file)
        doubtful = robust_table_problems(root, table)
        found = [f"{where}: {line}" for line in [*(line for _, line in doubtful), *_choice_problems(root, table)]]
        digests = {str(table["data_digest"].iloc[0]), *str(table["corrupted_digests"].iloc[0]).split(",")}
        groups = [(fp, digest) for fp, _ in doubtful for digest in sorted(digests)]
        _settle(root, report, repair, found, [robust_file], groups, stamp)


def _settle(root: Location, report, repair: bool, found: list[str], files: list, groups: list, stamp: str) -> None:
    """Report an agreement table's problems or, on repair, move it, the tables made with it and the real-data
    groups it disagrees with to quarantine/."""
    if not repair:
        report.problems.extend(found)
    elif found:
        report.repaired.extend(quarantined(root, file, stamp) for file in files if file.is_file())
        for fingerprint, digest in groups:
            folder = root / REAL_DIR / fingerprint / digest
            if (folder / "zarr.json").is_file():
                report.repaired.append(set_aside_folder(root, folder, stamp, "a table made from it disagrees with it"))


_KFOLD_COLUMNS = ["accuracy_low", "accuracy_high", "n_test", "n_repeats", "correct_counts", "sample_groups"]


def _accuracy_problems(root: Location, per_model: pd.DataFrame) -> list[tuple[str, str]]:
    """(fingerprint, why) of models whose stored accuracy, interval and (k-fold tables) per-sample counts differ
    from those their stored real features give now, recomputed the way the table was made."""
    data = real_data_set(str(per_model["data"].iloc[0]), str(per_model["data_digest"].iloc[0]))
    found = []
    for fingerprint, rows in per_model.groupby("model_fingerprint") if data is not None else []:
        group_path = root / REAL_DIR / fingerprint / str(rows["data_digest"].iloc[0])
        if not (group_path / "zarr.json").is_file():
            continue
        try:
            result = accuracy_of(zarr.open_group(str(group_path), mode="r")["features"][:], data, rows)
        except Exception:  # a damaged real-data group is reported by check_real_groups
            continue
        compared = ["accuracy"] + (_KFOLD_COLUMNS if "correct_counts" in result else [])  # older: Wilson at z 1.96
        if not all(_same_column(rows, name, result[name]) for name in compared if name in rows):
            found.append(
                (
                    fingerprint,
                    f"the accuracy of {rows['model'].iloc[0]!r} differs from the stored real features' "
                    f"({rows['accuracy'].iloc[0]:.4f} vs {result['accuracy']:.4f})",
                )
            )
    return found


def _same_column(rows: pd.DataFrame, name: str, value) -> bool:
    """Every row of a model holds ``value`` in column ``name`` (a number, a word or a list of counts)."""
    if isinstance(value, str):
        return bool((rows[name].astype(str) == value).all())
    if isinstance(value, list):
        return all(np.array_equal(np.asarray(stored), np.asarray(value)) for stored in rows[name])
    return bool(np.allclose(rows[name].to_numpy(float), float(value), rtol=0, atol=1e-12))


def _choice_problems(root: Location, table: pd.DataFrame) -> list[str]:
    """Models of a robust table whose eps is not the one the board's rank key selects for them now."""
    chosen = table[table["selected_by"] != "--robust-eps"]
    if chosen.empty:
        return []
    try:
        board = summary_records(read_board(root, spec=str(table["spec_hash"].iloc[0]), warn=False))
    except Exception:
        board = pd.DataFrame(columns=["model_fingerprint"])
    found = []
    for fingerprint, rows in chosen.groupby("model_fingerprint", sort=False):
        model_rows = board[board["model_fingerprint"] == fingerprint]
        try:
            eps = selected_eps(model_rows, parse_rank_key(str(rows["selected_by"].iloc[0])))[0]
        except (SynBenchError, KeyError):  # not on the board any more
            eps = None
        eps = eps if len(model_rows) else None
        if eps is None or not np.isclose(eps, float(rows["best_eps"].iloc[0])):
            found.append(f"the eps of {rows['model'].iloc[0]!r} is not the one the board selects now")
    return found


_INTERVALS = ["kendall_tau_low", "kendall_tau_high", "spearman_rho_low", "spearman_rho_high", "saturated"]


def _stats_differ(stored: pd.DataFrame, expected: pd.DataFrame) -> bool:
    columns = ["kendall_tau", "kendall_p", "spearman_rho", "spearman_p", "n_models"]
    columns += [column for column in _INTERVALS if column in expected]  # k-fold tables: the bootstrap too
    if len(stored) != len(expected) or not set(columns) <= set(stored):
        return True
    left = stored.sort_values("rank_key")[columns].to_numpy(float)
    right = expected.sort_values("rank_key")[columns].to_numpy(float)
    return not np.allclose(left, right, rtol=0, atol=1e-9, equal_nan=True)
