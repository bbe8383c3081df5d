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

import numpy as np
import torch
import zarr

from ..core.errors import SynBenchError
from ..core.provenance import utc_now
from ..core.spec import BenchmarkSpec
from ..method.generate import block_labels
from ..models.encoders import resolve_as_stored
from ..stages.extract import extract_features
from ..store.features import (
    checksum_ok,
    chunk_key,
    chunk_path,
    feature_arrays,
    manifest_digest,
    missing_arrays,
    node_location,
    values_digest,
)
from ..store.parquet import read_table
from ..store.roots import FEATURES_DIR, Location, existing_files, location, quarantine, safe_path, symlinks_under
from .graph import GRAPH_FOLDERS, SCORE_TOLERANCE, check_agreement, check_real_groups, deep_check
from .tables import check_tables

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
    if not checksum_ok(data):
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
) -> tuple[list[Location], bool]:
    """Problems of one feature group: the chunk files that are damaged or missing, and whether the group as a
    whole cannot be verified (arrays missing, no manifest, a manifest that is not the one it was completed with),
    so that only regenerating it from the generator and the encoder can repair it."""
    where = node_location(group)
    manifest = group.attrs.get("chunk_digests") or {}
    complete = bool(group.attrs.get("complete"))
    unverifiable = []
    if missing := missing_arrays(group, len(spec.scales)):
        unverifiable.append(f"arrays {', '.join(missing[:3])} are missing (a writer was killed while creating them)")
    if complete and not manifest:
        unverifiable.append("no chunk manifest (made before synbench recorded one, or removed)")
    elif complete and group.attrs.get("content_digest") != manifest_digest(manifest):
        unverifiable.append("its chunk manifest is not the one the extraction completed with")
    if not complete:
        report.problems.append(f"{where}: no completion marker (extraction unfinished)")
    report.problems += [f"{where}: {problem}; it is regenerated from the encoder" for problem in unverifiable]
    if unverifiable and missing:
        return [], True
    bad_files = []
    for scale_index, split, features, labels in feature_arrays(group, len(spec.scales)):
        for array in (features, labels):
            for block in range(array.cdata_shape[0]):
                report.chunks += count_chunks
                file = chunk_path(array, block)
                expected = block_labels(spec, scale_index, split, block) if array is labels else None
                problem = _chunk_problem(file, array, block, spec, expected, manifest if not unverifiable else {})
                if problem:
                    report.problems.append(f"{problem}: file {file}, array {array.path}, chunk {block}")
                    bad_files.append(file)
    return bad_files, bool(unverifiable)


_NOTEBOOK = "it was made from a module in memory (synbench.evaluate in a notebook); evaluate it there again"


def _repair_group(
    root: Location,
    group: zarr.Group,
    spec: BenchmarkSpec,
    bad_files: list,
    report: AuditReport,
    allow_py: bool,
    from_sources: bool = False,
) -> None:
    """Quarantine the damaged chunks (all of them when ``from_sources``: nothing stored can be trusted) and
    regenerate them from the generator and the encoder."""
    attrs = dict(group.attrs)
    device = "cuda" if str(attrs.get("device", "")).startswith("cuda") else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        report.problems.append(
            f"{node_location(group)}: made on CUDA; repair it on a CUDA machine so the new chunks match the others"
        )
        return
    try:
        encoder = resolve_as_stored(attrs["model"], attrs.get("preprocess"), allow_py)
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
    where = node_location(group)
    if from_sources:  # every chunk and the group's metadata: the extraction starts afresh
        bad_files = [where / name for name in sorted(existing_files(where))]
    for file in bad_files:
        if file.is_file():  # keep the damaged bytes: nothing of the user's is ever deleted
            quarantine(root, file, stamp)
    if not from_sources:
        group.update_attributes({"complete": False})
    result = extract_features(encoder, spec, root, device=device, dtype=str(attrs.get("dtype", "fp32")))
    report.repaired.append(
        f"{where}: regenerated {result.written_chunks} chunk(s) from the encoder; damaged files kept in "
        f"{safe_path(root, 'quarantine', stamp)}"
    )


def _check_parquet(root: Location, report: AuditReport) -> None:
    for folder in (*GRAPH_FOLDERS, "leaderboard/snapshots"):
        for file in sorted((root / folder).glob("*.parquet"), key=str):
            report.parquet_files += 1
            try:
                read_table(file)
            except Exception as exc:
                report.problems.append(f"unreadable Parquet file {file}: {str(exc).splitlines()[0]}")


def audit_root(root: str | PathLike, repair: bool = False, allow_py: bool = False, deep: bool = False) -> AuditReport:
    """Audit (and with ``repair``, fix) everything under an artifact root.

    ``deep`` also regenerates every feature group from the generator and the encoder (in a scratch root) and
    compares it chunk by chunk: the only check that reaches the sources of the artifact graph.
    """
    root = location(root)
    report = AuditReport()
    groups, damaged = {}, set()
    for marker in sorted((root / FEATURES_DIR).glob("*/*/zarr.json"), key=str):
        group = zarr.open_group(str(marker.parent), mode="r+", zarr_format=3)
        spec = BenchmarkSpec.from_dict(group.attrs["spec"])
        report.groups += 1
        before = len(report.problems)
        bad_files, from_sources = _check_group(group, spec, report)
        if deep and len(report.problems) == before:
            from_sources = deep_check(group, spec, report, allow_py)
        if repair and (bad_files or len(report.problems) > before):
            del report.problems[before:]
            _repair_group(root, group, spec, bad_files, report, allow_py, from_sources)
            group = zarr.open_group(str(marker.parent), mode="r+", zarr_format=3)  # attrs changed on disk
            _check_group(group, spec, report, count_chunks=False)
        if len(report.problems) == before:  # scores are recomputed from sound features only
            groups[(marker.parent.parent.name, marker.parent.name)] = (group, spec)
        else:
            damaged.add((marker.parent.parent.name, marker.parent.name))
    _check_parquet(root, report)
    check_real_groups(root, report, repair)
    for link in symlinks_under(root):
        report.problems.append(f"symbolic link {link} -> {os.readlink(link)} inside the root; remove it")
    check_tables(root, groups, report, repair)
    check_agreement(root, report, repair)
    return report
