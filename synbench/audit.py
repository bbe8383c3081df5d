"""Audit: verify every stored artifact and recompute the published scores from stored features.

Checks each Zarr chunk's crc32c, every group's completeness and completion marker, stored
labels against regenerated ones, every Parquet file's readability, and each published score
against a recomputation (tolerance 1e-9). ``repair`` moves damaged chunk files to
``quarantine/`` (never deleting them) and regenerates exactly those blocks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from os import PathLike

import google_crc32c
import numpy as np
import torch
import zarr

from .audit_tables import SCORE_TOLERANCE, check_tables
from .encoders import resolve_encoder
from .errors import SynBenchError
from .extract import extract_features
from .feature_store import chunk_key, chunk_path, feature_arrays, node_location, values_digest
from .generate import block_labels
from .parquet_store import read_table
from .provenance import utc_now
from .spec import BenchmarkSpec
from .store import FEATURES_DIR, REAL_DIR, Location, location, quarantine, safe_path, symlinks_under

__all__ = ["AuditReport", "audit_root", "SCORE_TOLERANCE"]


@dataclass
class AuditReport:
    """What the audit found and fixed."""

    problems: list[str] = field(default_factory=list)  # one line each: what, where
    repaired: list[str] = field(default_factory=list)
    groups: int = 0
    chunks: int = 0
    parquet_files: int = 0
    scores_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "repaired": self.repaired,
            "groups": self.groups,
            "chunks": self.chunks,
            "parquet_files": self.parquet_files,
            "scores_checked": self.scores_checked,
        }


def _checksum_ok(data: bytes) -> bool:
    """The crc32c codec appends the little-endian crc32c of the compressed bytes."""
    return len(data) >= 4 and google_crc32c.value(data[:-4]) == int.from_bytes(data[-4:], "little")


def _stored_bytes(file: Location) -> bytes | None:
    try:
        return file.read_bytes()
    except FileNotFoundError:
        return None


def _chunk_problem(
    file: Location, array: zarr.Array, block: int, spec: BenchmarkSpec, labels: np.ndarray | None, manifest: dict
) -> str | None:
    """Why one chunk cannot be trusted, or None; ``labels`` are the regenerated ones for a labels chunk."""
    data = _stored_bytes(file)
    if data is None:
        return "missing chunk"
    if not _checksum_ok(data):
        return "corrupt chunk (crc32c mismatch)"
    try:
        values = array[block * spec.block_size : (block + 1) * spec.block_size]
    except Exception as exc:  # checksum fine but undecodable
        return f"undecodable chunk ({exc})"
    if labels is not None and not np.array_equal(values, labels):
        return "labels differ from the regenerated ones"
    if labels is None and not np.isfinite(values).all():
        return "non-finite features"
    expected = manifest.get(chunk_key(array, block))
    if manifest and expected != values_digest(values):
        return "chunk differs from the extraction's manifest (moved or replaced)"
    return None


def _check_group(
    group: zarr.Group, spec: BenchmarkSpec, report: AuditReport, count_chunks: bool = True
) -> list[Location]:
    """Problems of one feature group; returns the chunk files that are damaged or missing."""
    bad_files = []
    manifest = group.attrs.get("chunk_digests") or {}
    if group.attrs.get("complete") and not manifest:
        report.problems.append(f"{node_location(group)}: no chunk manifest (made before synbench recorded one)")
    if not group.attrs.get("complete"):
        report.problems.append(f"{node_location(group)}: no completion marker (extraction unfinished)")
    for scale_index, split, features, labels in feature_arrays(group, len(spec.scales)):
        for array in (features, labels):
            for block in range(array.cdata_shape[0]):
                report.chunks += count_chunks
                file = chunk_path(array, block)
                expected = block_labels(spec, scale_index, split, block) if array is labels else None
                problem = _chunk_problem(file, array, block, spec, expected, manifest)
                if problem:
                    report.problems.append(f"{problem}: file {file}, array {array.path}, chunk {block}")
                    bad_files.append(file)
    return bad_files


_NOTEBOOK = "it was made from a module in memory (synbench.evaluate in a notebook); evaluate it there again"


def _repair_group(
    root: Location, group: zarr.Group, spec: BenchmarkSpec, bad_files: list, report: AuditReport, allow_py: bool
) -> None:
    attrs = dict(group.attrs)
    device = "cuda" if str(attrs.get("device", "")).startswith("cuda") else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        report.problems.append(
            f"{node_location(group)}: made on CUDA; repair it on a CUDA machine so the new chunks match the others"
        )
        return
    try:
        encoder = resolve_encoder(attrs["model"], spec.input_shape, allow_py=allow_py)
    except SynBenchError as exc:  # a notebook's module, a py: module this process may not import: go on
        why = _NOTEBOOK if str(attrs["model"]).startswith("module:") else str(exc)
        report.problems.append(f"{node_location(group)}: cannot regenerate {attrs['model']!r}: {why}")
        return
    if encoder.fingerprint != attrs["model_fingerprint"]:
        report.problems.append(
            f"{node_location(group)}: model {attrs['model']!r} now has another fingerprint; cannot repair"
        )
        return
    stamp = utc_now().replace(":", "")
    for file in bad_files:
        if file.is_file():  # keep the damaged bytes: nothing of the user's is ever deleted
            quarantine(root, file, stamp)
    group.update_attributes({"complete": False})
    result = extract_features(encoder, spec, root, device=device, dtype=str(attrs.get("dtype", "fp32")))
    report.repaired.append(
        f"{node_location(group)}: regenerated {result.written_chunks} chunk(s); damaged files kept in "
        f"{safe_path(root, 'quarantine', stamp)}"
    )


def _check_parquet(root: Location, report: AuditReport) -> None:
    for folder in ("probes", "curves", "leaderboard/parts", "leaderboard/snapshots"):
        for file in sorted((root / folder).glob("*.parquet"), key=str):
            report.parquet_files += 1
            try:
                read_table(file)
            except Exception as exc:
                report.problems.append(f"unreadable Parquet file {file}: {str(exc).splitlines()[0]}")


def _check_real_groups(root: Location, report: AuditReport) -> None:
    """Features of real data sets (``synbench agree``): completeness and every chunk's crc32c."""
    for marker in sorted((root / REAL_DIR).glob("*/*/zarr.json"), key=str):
        group = zarr.open_group(str(marker.parent), mode="r")
        report.groups += 1
        if not group.attrs.get("complete"):
            report.problems.append(f"{marker.parent}: no completion marker (agree's extraction unfinished)")
        for name in ("features", "labels"):
            array = group[name]
            for block in range(array.cdata_shape[0]):
                report.chunks += 1
                file = chunk_path(array, block)
                data = _stored_bytes(file)
                if data is None or not _checksum_ok(data):
                    report.problems.append(f"missing or corrupt chunk: file {file}, array {array.path}, chunk {block}")


def audit_root(root: str | PathLike, repair: bool = False, allow_py: bool = False) -> AuditReport:
    """Audit (and with ``repair``, fix) everything under an artifact root."""
    root = location(root)
    report = AuditReport()
    groups, damaged = {}, set()
    for marker in sorted((root / FEATURES_DIR).glob("*/*/zarr.json"), key=str):
        group = zarr.open_group(str(marker.parent), mode="r+", zarr_format=3)
        spec = BenchmarkSpec.from_dict(group.attrs["spec"])
        report.groups += 1
        before = len(report.problems)
        bad_files = _check_group(group, spec, report)
        if repair and (bad_files or len(report.problems) > before):
            del report.problems[before:]
            _repair_group(root, group, spec, bad_files, report, allow_py)
            group = zarr.open_group(str(marker.parent), mode="r+", zarr_format=3)  # attrs changed on disk
            _check_group(group, spec, report, count_chunks=False)
        if len(report.problems) == before:  # scores are recomputed from sound features only
            groups[(marker.parent.parent.name, marker.parent.name)] = (group, spec)
        else:
            damaged.add((marker.parent.parent.name, marker.parent.name))
    _check_parquet(root, report)
    _check_real_groups(root, report)
    for link in symlinks_under(root):
        report.problems.append(f"symbolic link {link} -> {os.readlink(link)} inside the root; remove it")
    check_tables(root, groups, report, repair)
    return report
