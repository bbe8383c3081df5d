"""Audit: verify every stored artifact and recompute the published scores from stored features.

Checks each Zarr chunk's crc32c, every group's completeness and completion marker, stored labels against
regenerated ones, every Parquet file's readability and recorded parents, each published part (every column a
reader sees) against a recomputation (tolerance 1e-9), agreement tables, snapshots, removal records and recipes.
What it cannot recompute (a group made from a module in memory, real-data features without ``deep``) it names
in ``notes``.

``repair`` holds one lock per root (two repairs run one after the other), sets links inside the root aside,
and fixes in passes until a pass finds nothing to fix (at most ``MAX_PASSES``): parents are rebuilt before
what is made from them, and a group that a table throws doubt on is first checked against its sources.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from os import PathLike

import zarr

from ..core.provenance import utc_now
from ..core.spec import BenchmarkSpec
from ..store.locks import writer_lock
from ..store.parquet import read_table
from ..store.roots import FEATURES_DIR, Location, location, quarantine, symlinks_under
from .agreement import check_agreement, check_real_groups
from .graph import GRAPH_FOLDERS, HISTORY
from .groups import NOTEBOOK, check_group, compare_with_sources, repair_group, set_aside_group
from .history import check_history
from .recompute import SCORE_TOLERANCE
from .tables import check_tables

__all__ = ["AuditReport", "audit_root", "SCORE_TOLERANCE", "MAX_PASSES"]

MAX_PASSES = 4  # repair passes before the closing audit: each rebuilds what the one before made sound
_LOCK = ".audit-repair.lock"


@dataclass
class AuditReport:
    """What the audit found and fixed, and what it could not check."""

    problems: list[str] = field(default_factory=list)  # one line each: what, where
    repaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the audit names but cannot recompute
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
            "notes": self.notes,
            "groups": self.groups,
            "chunks": self.chunks,
            "parquet_files": self.parquet_files,
            "scores_checked": self.scores_checked,
        }


def _check_parquet(root: Location, report: AuditReport) -> None:
    for folder in (*GRAPH_FOLDERS, HISTORY):
        for file in sorted((root / folder).glob("*.parquet"), key=str):
            report.parquet_files += 1
            try:
                read_table(file)
            except Exception as exc:
                report.problems.append(f"unreadable Parquet file {file}: {str(exc).splitlines()[0]}")


def _check_links(root: Location, report: AuditReport, repair: bool, stamp: str) -> None:
    """Links inside the root are never read through; repair moves each link (not what it points to) aside."""
    for link in symlinks_under(root):
        if link.relative_to(root).parts[0] == "quarantine":  # set aside already: kept, never read
            continue
        target = os.readlink(link)
        if repair:
            quarantine(root, link, stamp)
            report.repaired.append(f"moved the symbolic link {link} -> {target} to quarantine/{stamp}")
        else:
            report.problems.append(f"symbolic link {link} -> {target} inside the root; remove it")


class _Sources:
    """Feature groups checked against their sources (the deep check), each at most once per audit."""

    def __init__(self, root: Location, report: AuditReport, allow_py: bool, verified: dict) -> None:
        self.root, self.report, self.allow_py, self.verified = root, report, allow_py, verified
        self.groups: dict = {}

    def vouch(self, key: tuple[str, str]) -> str:
        """ "sound", "regenerated" (it differed), "set aside" (it can never be checked), or why not now."""
        if self.verified.get(key) == "sound":
            return "sound"
        group, spec = self.groups[key]
        status, found = compare_with_sources(group, spec, self.allow_py)
        if status == "same":
            self.verified[key] = "sound"
            return "sound"
        if status == "differs":
            self.report.problems.append(f"{FEATURES_DIR}/{key[0]}/{key[1]}: {found}")
            repair_group(self.root, group, spec, [], self.report, self.allow_py, from_sources=True)
            return "regenerated"
        if str(group.attrs.get("model", "")).startswith("module:"):  # in doubt, and nothing can settle it
            why = f"a table made from it disagrees; {NOTEBOOK}"
            self.report.repaired.append(set_aside_group(self.root, group, why))
            return "set aside"
        return found


def _published_models(root: Location) -> tuple[str, ...]:
    """The model references the root's parts name (candidates for a feature group whose record is wrong)."""
    found = set()
    for file in (root / "leaderboard" / "parts").glob("*.parquet"):
        try:
            found.add(str(read_table(file).column("model")[0]))
        except Exception:  # an unreadable or empty part is reported by the part checks
            continue
    return tuple(sorted(found))


def _check_groups(root: Location, report: AuditReport, repair: bool, deep: bool, sources: _Sources) -> dict:
    """Every feature group; returns the sound ones by (fingerprint, data hash)."""
    groups, markers = {}, sorted((root / FEATURES_DIR).glob("*/*/zarr.json"), key=str)
    known = tuple(sorted({str(zarr.open_group(str(m.parent), mode="r").attrs.get("model", "")) for m in markers}))
    known += _published_models(root)  # a group's record may be edited: what its parts were published as
    for marker in markers:
        key = (marker.parent.parent.name, marker.parent.name)
        group = zarr.open_group(str(marker.parent), mode="r+", zarr_format=3)
        spec = BenchmarkSpec.from_dict(group.attrs["spec"])
        report.groups += 1
        before = len(report.problems)
        bad_files, from_sources = check_group(group, spec, key, report)
        if str(group.attrs.get("model", "")).startswith("module:"):
            report.notes.append(
                f"{FEATURES_DIR}/{key[0]}/{key[1]} ({group.attrs['model']}): checked against its "
                "manifest only; made from a module in memory, it cannot be regenerated"
            )
        elif deep and len(report.problems) == before and sources.verified.get(key) != "sound":
            status, found = compare_with_sources(group, spec, sources.allow_py)
            if status == "differs":
                report.problems.append(f"{FEATURES_DIR}/{key[0]}/{key[1]}: {found}; it is regenerated from the encoder")
            elif status == "cannot":
                report.problems.append(f"{FEATURES_DIR}/{key[0]}/{key[1]}: not regenerated (deep audit): {found}")
            sources.verified[key] = "sound" if status == "same" else status
            from_sources = status == "differs"
        if repair and (bad_files or len(report.problems) > before):
            del report.problems[before:]
            if repair_group(root, group, spec, bad_files, report, sources.allow_py, from_sources, known):
                group = zarr.open_group(str(marker.parent), mode="r+", zarr_format=3)  # attrs changed on disk
                check_group(group, spec, key, report, count_chunks=False)
        if len(report.problems) == before:  # scores are recomputed from sound features only
            groups[key] = (group, spec)
    sources.groups = groups
    return groups


def _audit_pass(root: Location, repair: bool, allow_py: bool, deep: bool, verified: dict) -> AuditReport:
    report = AuditReport()
    _check_links(root, report, repair, utc_now().replace(":", ""))
    sources = _Sources(root, report, allow_py, verified)
    groups = _check_groups(root, report, repair, deep, sources)
    _check_parquet(root, report)
    check_real_groups(root, report, repair, deep, allow_py)
    check_tables(root, groups, report, repair, allow_py, sources.vouch)
    check_agreement(root, report, repair)
    check_history(root, groups, report, repair)
    return report


def audit_root(root: str | PathLike, repair: bool = False, allow_py: bool = False, deep: bool = False) -> AuditReport:
    """Audit (and with ``repair``, fix) everything under an artifact root.

    ``deep`` also regenerates every feature group (and real-data group) from its sources in a scratch root and
    compares it chunk by chunk: the only check that reaches the sources of the artifact graph.
    """
    root = location(root)
    verified: dict = {}  # groups found sound against their sources: not regenerated again in a later pass
    with writer_lock(root / _LOCK) if repair else nullcontext():
        repaired = []
        for _ in range(MAX_PASSES if repair else 0):
            report = _audit_pass(root, True, allow_py, deep, verified)
            repaired += report.repaired
            if not report.repaired:  # nothing left to fix: this pass is the closing audit
                report.repaired = repaired
                return report
        report = _audit_pass(root, False, allow_py, deep, verified)
        report.repaired = repaired
        return report
