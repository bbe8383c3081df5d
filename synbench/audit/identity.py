"""What a published part shows besides its scores: the spec it belongs to, the model it names, its display name
and the provenance columns its feature group records. ``parts.py`` checks each part against these.

A part's spec is the one its rows describe (eps, thresholds, floor and name over its features' data); the
root's specs by hash (each sound feature group's, authoritative for its name, and each part's that hashes
to the spec it claims) say which spec a part with dropped rows or an edited hash belongs to.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pandas as pd

from ..board.edit import MAX_NAME
from ..board.names import entry_aliases, names_a_fingerprint, with_display_names
from ..core.errors import SynBenchError
from ..core.spec import BenchmarkSpec
from ..models.encoders import resolve_as_stored
from ..models.references import parse_reference
from ..store.roots import Location
from .recompute import Groups, Recompute

__all__ = ["Specs", "part_spec", "ModelNames", "display_problem", "column_problem"]

_CONTROLS = ("identity", "noise")  # cheap to resolve: their names are always checked against the fingerprint
_HASH = re.compile(r"[0-9a-f]{16}")
# Columns build_rows writes from the feature group's record or the probe (METHOD.md 7): the same on every row.
_PROVENANCE = (
    "model_fingerprint architecture weights_digest data_hash eigen_floor input_shape feature_dim probe_rank r_over_n "
    "underpowered n_train_needed device dtype ci_method"
).split()
_VERSIONS = ("synbench_version", "torch_version", "timm_version", "zarr_version", "numpy_version")


class Specs:
    """The specs a root records, by spec hash, and the names its feature groups give each hash."""

    def __init__(self, groups: Groups) -> None:
        self.by_hash: dict[str, BenchmarkSpec] = {}
        self.names: dict[str, set[str]] = {}
        for _, spec in groups.values():
            self.by_hash.setdefault(spec.spec_hash, spec)
            self.names.setdefault(spec.spec_hash, set()).add(spec.name)

    def add(self, spec: BenchmarkSpec | None) -> None:
        if spec is not None:
            self.by_hash.setdefault(spec.spec_hash, spec)


def described_spec(rows: pd.DataFrame, recompute: Recompute, key: tuple[str, str]) -> BenchmarkSpec | None:
    """The spec a part's own rows describe over its features' data, or None when they describe none."""
    floor = str(rows["eigen_floor"].iloc[0]) if "eigen_floor" in rows else "relative"
    name = str(rows["spec_name"].iloc[0])
    try:
        return recompute.spec(key, rows["eps"].unique(), floor, rows["threshold"].unique(), name)
    except (SynBenchError, ValueError, TypeError):
        return None


def _name_hash(file: Location) -> str | None:
    pieces = file.name.split("-")
    return pieces[1] if len(pieces) > 2 and _HASH.fullmatch(pieces[1]) else None


def _spec_name(spec_hash: str, shown: str, specs: Specs, own: BenchmarkSpec) -> str:
    """The name a part of ``spec_hash`` shows: its features' spec's where that is the one, else any name a feature
    group gives that hash (the part's own when it is one of them)."""
    if own.spec_hash == spec_hash:
        return own.name
    allowed = specs.names.get(spec_hash)
    return shown if not allowed or shown in allowed else sorted(allowed)[0]


def part_spec(
    rows: pd.DataFrame, file: Location, specs: Specs, described: BenchmarkSpec | None, own: BenchmarkSpec
) -> tuple[BenchmarkSpec | None, str | None]:
    """The spec a part belongs to (None: none can be told) and why the part does not fit it (None: it does)."""
    claimed, shown = str(rows["spec_hash"].iloc[0]), str(rows["spec_name"].iloc[0])
    named = _name_hash(file) or claimed
    if described is not None and described.spec_hash in (claimed, named):
        base = specs.by_hash.get(described.spec_hash, described)
    else:
        base = specs.by_hash.get(named) or specs.by_hash.get(claimed)
    if base is None:
        return None, f"its rows are not the eps x thresholds of its spec {claimed}, and no stored spec has that hash"
    spec = dataclasses.replace(base, name=_spec_name(base.spec_hash, shown, specs, own))
    where = f"spec {spec.name} ({spec.spec_hash})"
    grid = {(round(e, 9), round(t, 9)) for e in spec.eps for t in spec.thresholds}
    pairs = list(zip(rows["eps"].round(9), rows["threshold"].round(9), strict=True))
    if described is None or described.spec_hash != spec.spec_hash or set(pairs) != grid or len(pairs) != len(grid):
        return spec, f"its rows do not cover the eps x thresholds of its {where} exactly (rows dropped or added)"
    if claimed != spec.spec_hash:
        return spec, f"its spec_hash {claimed} is not the hash of its own eps and thresholds ({where})"
    if named != spec.spec_hash:
        return spec, f"its file name is for spec {named}, its rows for {where}"
    if shown != spec.name:
        return spec, f"its spec_name {shown!r} is not the name its features give {spec.spec_hash} ({spec.name!r})"
    return spec, None


class ModelNames:
    """Whether a part's model name answers to its fingerprint: the reference its features record, or a reference
    that resolves to the same fingerprint (each resolved once; controls always, being cheap)."""

    def __init__(self, groups: Groups, allow_py: bool) -> None:
        self.groups, self.allow_py, self.resolved = groups, allow_py, {}

    def check(self, name: str, key: tuple[str, str]) -> tuple[str | None, str | None]:
        """(problem, note): the note names what the audit cannot check."""
        attrs = self.groups[key][0].attrs
        recorded = str(attrs.get("model", ""))
        try:
            ref = parse_reference(name)
        except SynBenchError:
            if name == recorded:  # a notebook's module:...; the feature group's note says what that means
                return None, None
            return None, f"its model name {name!r} is a label, not a reference: not checked against {recorded!r}"
        if name == recorded and ref.scheme not in _CONTROLS:
            return None, None
        fingerprint, why = self._fingerprint(name, dict(attrs.get("preprocess") or {}))
        if fingerprint is None:
            return None, f"its model name {name!r} was not checked: {why}"
        if fingerprint != key[0]:
            return (
                f"its model {name!r} is another model (fingerprint {fingerprint}), not the one its features were "
                f"made from ({recorded!r}, fingerprint {key[0]})",
                None,
            )
        return None, None

    def _fingerprint(self, name: str, preprocess: dict) -> tuple[str | None, str]:
        if name not in self.resolved:
            try:
                self.resolved[name] = (resolve_as_stored(name, preprocess, self.allow_py).fingerprint, "")
            except SynBenchError as exc:
                self.resolved[name] = (None, str(exc).rstrip("."))
        return self.resolved[name]


def display_problem(rows: pd.DataFrame, key: tuple[str, str], groups: Groups) -> str | None:
    """Why a part's display name (``board rename``) cannot be shown: not a name, or another model's."""
    shown = rows["display_name"].dropna().unique() if "display_name" in rows else []
    if len(shown) == 0:
        return None
    name = str(shown[0])
    if len(shown) > 1 or not name.strip() or len(name) > MAX_NAME or not name.isprintable():
        return f"its display name {name[:40]!r} is not one name of 1 to {MAX_NAME} printable characters"
    others = {fingerprint for fingerprint, _ in groups if fingerprint != key[0]}
    if taken := names_a_fingerprint(name, others):
        return f"its display name {name!r} spells another model's fingerprint ({taken})"
    if name in _other_names(groups, key[0]):
        return f"its display name {name!r} is another model's name (its reference or the name the board shows)"
    return None


def _other_names(groups: Groups, fingerprint: str) -> set[str]:
    """Every name the other models answer to on the board (``board rename`` refuses the same)."""
    records = [
        {
            "model_fingerprint": fp,
            "model": str(group.attrs.get("model", "")),
            "weights_digest": group.attrs.get("weights_digest") or "",
        }
        for (fp, _), (group, _) in groups.items()
        if fp != fingerprint
    ]
    if not records:
        return set()
    return set().union(*entry_aliases(with_display_names(pd.DataFrame(records))).values())


def _same(stored, wanted) -> bool:
    if isinstance(wanted, (list, tuple, np.ndarray)):
        return stored is not None and [int(v) for v in stored] == [int(v) for v in wanted]
    if isinstance(wanted, float) and not isinstance(stored, str):
        return stored is not None and math.isclose(float(stored), wanted, rel_tol=0, abs_tol=1e-12)
    return stored == wanted


def column_problem(rows: pd.DataFrame, expected: pd.DataFrame, attrs: dict) -> str | None:
    """The first provenance column whose value on some row is not what the features and their record give."""
    columns = [*_PROVENANCE, *(key for key in _VERSIONS if key in attrs)]
    for column in columns:
        if column not in rows or column not in expected:
            continue
        wanted = expected[column].iloc[0]
        wanted = wanted.item() if isinstance(wanted, np.generic) else wanted
        wrong = [value for value in rows[column] if not _same(value, wanted)]
        if wrong:
            shown = [int(v) for v in wrong[0]] if isinstance(wrong[0], np.ndarray) else wrong[0]
            return f"its {column} {shown!r} is not what its features give ({wanted!r})"
    return None
