"""The audit's walk over the artifact graph (lineage.py): recorded parents, real-data groups, agreement
tables, and the deep check of feature groups against their sources.

Every Parquet table names the digests of the nodes it was made from. A table whose own digest does not
match its rows, that records no digest or no parents, or one of whose parents is missing or has changed
since, cannot be trusted: ``repair`` quarantines it and, where it can, rebuilds it from its parents
(``tables.py`` and ``parts.py`` recompute probe tables, replicates, oracles, curves and parts from the features
anyway). Feature groups are checked against their manifest; ``deep`` regenerates them from the generator
and the encoder in a scratch root and compares every chunk.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable

import numpy as np
import pandas as pd
import zarr

from ..core.errors import SynBenchError
from ..core.provenance import utc_now
from ..core.spec import BenchmarkSpec
from ..models.encoders import resolve_as_stored
from ..stages.extract import extract_features
from ..store.features import checksum_ok, manifest_digest, node_location, real_manifest
from ..store.lineage import node_digest, node_name, node_path
from ..store.parquet import read_table, stored_digest, stored_parents
from ..store.roots import REAL_DIR, Location, existing_files, quarantine

__all__ = [
    "SCORE_TOLERANCE",
    "GRAPH_FOLDERS",
    "check_lineage",
    "check_real_groups",
    "check_agreement",
    "deep_check",
    "foreign_inputs",
    "replicates_differ",
]

SCORE_TOLERANCE = 1e-9  # a recomputed score, interval or replicate must agree with the stored one to this

# Folders of Parquet nodes; snapshots are history: their parts may be republished since, so only their own
# digest is checked.
GRAPH_FOLDERS = ("probes", "oracles", "curves", "leaderboard/parts", "agreement")
_HISTORY = "leaderboard/snapshots"


def _lineage_problem(root: Location, table, history: bool) -> str | None:
    digest, parents = stored_digest(table), stored_parents(table)
    if digest is None:
        return "records no digest of its rows (not written by synbench, or rewritten by hand)"
    if history:
        return None
    if parents is None:
        return "records no parents (written before synbench kept its artifact graph, or by hand)"
    for name, recorded in sorted(parents.items()):
        current = node_digest(node_path(root, name))
        if current is None:
            return f"was made from {name}, which is missing or unreadable"
        if current != recorded:
            return f"was made from {name} at digest {recorded[:12]}, which now has digest {current[:12]}"
    return None


def check_lineage(
    root: Location, report, fixes: list[Callable], republish: Callable[[Location], str]
) -> list[Callable]:
    """Every Parquet node's own digest and its recorded parents. A node that fails, and every node made from it,
    is untrusted: on repair it is quarantined, and each untrusted part is republished from its feature group
    (``republish(file)``), which rebuilds the tables it needs from their parents. Returns the republishing fixes,
    to run after every other fix (a part is made last, from the rebuilt tables)."""
    parents, untrusted = {}, {}
    for folder in (*GRAPH_FOLDERS, _HISTORY):
        for file in sorted((root / folder).glob("*.parquet"), key=str):
            try:
                table = read_table(file)
            except Exception:  # reported as unreadable by the Parquet check
                continue
            name = node_name(root, file)
            parents[name] = stored_parents(table) or {}
            if problem := _lineage_problem(root, table, folder == _HISTORY):
                report.problems.append(f"{name}: {problem}")
                untrusted[name] = file
    changed = True
    while changed:  # what was made from an untrusted node is untrusted too
        changed = False
        for name, made_from in parents.items():
            if name not in untrusted and set(made_from) & set(untrusted) and not name.startswith(_HISTORY):
                report.problems.append(f"{name}: was made from {sorted(set(made_from) & set(untrusted))[0]}, untrusted")
                untrusted[name], changed = node_path(root, name), True
    parts = [file for name, file in untrusted.items() if name.startswith("leaderboard/parts/")]
    others = [file for name, file in untrusted.items() if not name.startswith("leaderboard/parts/")]
    stamp = utc_now().replace(":", "")
    fixes += [lambda file=file: _quarantined(root, file, stamp) for file in others]
    return [lambda file=file: republish(file) for file in parts]


def _quarantined(root: Location, file: Location, stamp: str) -> str:
    if file.is_file():
        quarantine(root, file, stamp)
    rerun = " (rerun synbench agree to remake it)" if file.parent.name == "agreement" else ""
    return f"moved {node_name(root, file)} to quarantine/{stamp}{rerun}"


def check_real_groups(root: Location, report, repair: bool = False) -> None:
    """Features of real data sets (``synbench agree``): completion marker and every chunk against the manifest.
    ``repair`` moves a damaged group to quarantine/ (agree re-extracts it; the tables made from it follow it
    there through the lineage check). An unfinished group is left alone: agree may still be writing it."""
    stamp = utc_now().replace(":", "")
    for marker in sorted((root / REAL_DIR).glob("*/*/zarr.json"), key=str):
        problem = _real_group_problem(marker.parent, report)
        if not problem:
            continue
        where = node_name(root, marker.parent)
        if not repair or problem.startswith("no completion marker"):
            report.problems.append(f"{where}: {problem}")
            continue
        for name in sorted(existing_files(marker.parent)):
            quarantine(root, marker.parent / name, stamp)
        report.repaired.append(f"moved {where} ({problem}) to quarantine/{stamp}; rerun synbench agree to remake it")


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


def check_agreement(root: Location, report, repair: bool = False) -> None:
    """Agreement tables against a recomputation of their statistics from their per-model rows and of those
    rows' accuracies from the stored real features. ``repair`` moves a table that differs, with its statistics,
    to quarantine/: only ``synbench agree`` can remake them."""
    from ..agree.agreement import agreement_stats
    from ..agree.robust_probing import robust_table_problems

    stamp = utc_now().replace(":", "")
    for models_file in sorted((root / "agreement").glob("*-models.parquet"), key=str):
        stats_file = models_file.with_name(models_file.name.replace("-models.parquet", "-stats.parquet"))
        try:
            per_model = read_table(models_file).to_pandas()
            stats = read_table(stats_file).to_pandas() if stats_file.is_file() else None
        except Exception:
            continue
        found = _agreement_problems(root, models_file, per_model)
        if stats is not None and _stats_differ(stats, agreement_stats(per_model)):
            found.append(f"{node_name(root, stats_file)}: its statistics differ from its per-model rows'")
        _settle(root, report, repair, found, [models_file, stats_file], stamp)
    for robust_file in sorted((root / "agreement").glob("*-robust.parquet"), key=str):
        try:
            table = read_table(robust_file).to_pandas()
        except Exception:  # reported as unreadable by the Parquet check
            continue
        found = [f"{node_name(root, robust_file)}: {line}" for line in robust_table_problems(root, table)]
        _settle(root, report, repair, found, [robust_file], stamp)


def _settle(root: Location, report, repair: bool, found: list[str], files: list[Location], stamp: str) -> None:
    """Report an agreement table's problems or, on repair, move it (and the tables made with it) to quarantine/."""
    if not repair:
        report.problems.extend(found)
    elif found:
        report.repaired.extend(_quarantined(root, file, stamp) for file in files if file.is_file())


def _agreement_problems(root: Location, models_file: Location, per_model: pd.DataFrame) -> list[str]:
    """Models whose stored accuracy (and, for k-fold tables, per-sample correctness) differs from what their stored
    real features give now, recomputed the way the table was made."""
    from ..agree.agreement import accuracy_of

    found, data = [], _data_of(per_model)
    for fingerprint, rows in per_model.groupby("model_fingerprint"):
        group_path = root / REAL_DIR / fingerprint / str(rows["data_digest"].iloc[0])
        if data is None or not (group_path / "zarr.json").is_file():
            continue
        try:
            result = accuracy_of(zarr.open_group(str(group_path), mode="r")["features"][:], data, rows)
        except Exception:  # a damaged real-data group is reported by check_real_groups
            continue
        stored = rows.iloc[0]
        same = np.isclose(result["accuracy"], stored["accuracy"], atol=1e-12)
        if "correct_counts" in result:
            same = same and np.array_equal(np.asarray(stored["correct_counts"]), result["correct_counts"])
            same = same and np.allclose(
                [stored["accuracy_low"], stored["accuracy_high"]], [result["accuracy_low"], result["accuracy_high"]]
            )
        if not same:
            found.append(
                f"{node_name(root, models_file)}: the accuracy of {stored['model']!r} differs from the "
                f"stored real features' ({stored['accuracy']:.4f} vs {result['accuracy']:.4f})"
            )
    return found


def foreign_inputs(rows: pd.DataFrame, key: tuple[str, str]) -> str:
    """The curves or replicate table a part names when they were not made from its own features ("" if none)."""
    own = f"{key[0]}-{key[1]}-"
    for column in ("curves_file", "replicates_file"):
        names = set(rows[column].fillna("")) if column in rows else {""}
        if len(names) > 1 or any(name and not str(name).startswith(own) for name in names):
            return f"a {column.split('_')[0]} table ({', '.join(sorted(map(str, names)))})"
    return ""


def replicates_differ(rows: pd.DataFrame, expected: pd.DataFrame) -> bool:
    """Whether a part's half-sample replicate scores differ from the recomputed ones (they feed compare and bands)."""
    on = ["eps", "threshold"]
    merged = rows.merge(expected, on=on, suffixes=("", "_expected"))
    for column in ("score_replicates", "score_dm_replicates"):
        if f"{column}_expected" not in merged:
            continue
        for stored, wanted in zip(merged.get(column, [None] * len(merged)), merged[f"{column}_expected"], strict=True):
            stored = np.asarray([] if stored is None else stored, dtype=float)
            wanted = np.asarray(wanted, dtype=float)
            if stored.shape != wanted.shape or not np.allclose(
                stored, wanted, rtol=0, atol=SCORE_TOLERANCE, equal_nan=True
            ):
                return True
    return False


def _data_of(per_model: pd.DataFrame):
    """The data set an agreement table was made on, or None when it cannot be loaded here (a file elsewhere) or
    is not the same any more (the photos of an older release): its accuracies are then not recomputed."""
    from ..agree.realdata import load_images

    try:
        images = load_images(str(per_model["data"].iloc[0]))
    except Exception:
        return None
    return images if images.digest == per_model["data_digest"].iloc[0] else None


_INTERVALS = ["kendall_tau_low", "kendall_tau_high", "spearman_rho_low", "spearman_rho_high", "saturated"]


def _stats_differ(stored: pd.DataFrame, expected: pd.DataFrame) -> bool:
    columns = ["kendall_tau", "kendall_p", "spearman_rho", "spearman_p", "n_models"]
    columns += [column for column in _INTERVALS if column in expected]  # k-fold tables: the bootstrap too
    if len(stored) != len(expected) or not set(columns) <= set(stored):
        return True
    left = stored.sort_values("rank_key")[columns].to_numpy(float)
    right = expected.sort_values("rank_key")[columns].to_numpy(float)
    return not np.allclose(left, right, rtol=0, atol=1e-9, equal_nan=True)


def deep_check(group: zarr.Group, spec: BenchmarkSpec, report, allow_py: bool) -> bool:
    """Regenerate a feature group from the generator and the encoder in a scratch root and compare its manifest
    chunk by chunk; True when the stored group differs (it must be regenerated from the sources)."""
    attrs = dict(group.attrs)
    where = node_location(group)
    try:
        encoder = resolve_as_stored(attrs["model"], attrs.get("preprocess"), allow_py)
    except SynBenchError as exc:
        report.problems.append(f"{where}: not regenerated (deep audit): {exc}")
        return False
    device = "cuda" if str(attrs.get("device", "")).startswith("cuda") else "cpu"
    with tempfile.TemporaryDirectory(prefix="synbench-deep-") as scratch:
        from ..store.roots import open_root

        result = extract_features(encoder, spec, open_root(scratch), device=device, dtype=str(attrs.get("dtype")))
        fresh = zarr.open_group(str(result.path), mode="r").attrs["chunk_digests"]
    stored = attrs.get("chunk_digests") or {}
    wrong = sorted(key for key, digest in fresh.items() if stored.get(key) != digest)
    if wrong:
        report.problems.append(
            f"{where}: {len(wrong)} chunk(s) differ from what the generator and the encoder give now "
            f"(e.g. {wrong[0]}); it is regenerated from the encoder"
        )
    return bool(wrong)
