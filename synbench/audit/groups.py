"""Audit of feature groups: chunks against their checksums, the regenerated labels and the extraction's
manifest; the group's record against its arrays and its place; and, where asked or where a table throws doubt
on it, the whole group against what the generator and the encoder give now (regenerated in a scratch root).

Repair moves damaged chunks to ``quarantine/`` (never deleting them) and regenerates exactly those blocks, or
the whole group when nothing stored in it can be trusted. A group made from a module in memory (a notebook)
cannot be regenerated: the audit names it, and sets it aside when a table throws doubt on it.
"""

from __future__ import annotations

import tempfile

import numpy as np
import torch
import zarr

from ..core.errors import SynBenchError
from ..core.provenance import utc_now
from ..core.spec import BenchmarkSpec
from ..method.generate import block_labels
from ..models.encoders import Encoder, resolve_as_stored
from ..models.references import parse_reference
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
from ..store.lineage import node_name
from ..store.roots import Location, existing_files, open_root, quarantine, safe_path

__all__ = ["check_group", "repair_group", "compare_with_sources", "NOTEBOOK"]

NOTEBOOK = "it was made from a module in memory (synbench.evaluate in a notebook); evaluate it there again"


def _chunk_problem(
    file: Location, array: zarr.Array, block: int, spec: BenchmarkSpec, labels: np.ndarray | None, manifest: dict
) -> str | None:
    """Why one chunk cannot be trusted, or None; ``labels`` are the regenerated ones for a labels chunk."""
    try:
        data = file.read_bytes()
    except FileNotFoundError:
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
    if manifest and manifest.get(chunk_key(array, block)) != values_digest(values):
        return "chunk differs from the extraction's manifest (moved or replaced)"
    return None


def _record_problems(group: zarr.Group, spec: BenchmarkSpec, key: tuple[str, str]) -> list[str]:
    """Where the group's record disagrees with its place or its arrays (what parts are published from)."""
    attrs, found = group.attrs, []
    if attrs.get("model_fingerprint") != key[0] or spec.data_hash != key[1]:
        named = f"model {attrs.get('model_fingerprint')} and data {spec.data_hash}"
        found.append(f"its record names {named}, not its place")
    width = group["features/s00_train"].shape[1] if "features/s00_train" in group else None
    if width is not None and attrs.get("feature_dim") != width:
        found.append(f"its recorded feature_dim {attrs.get('feature_dim')} is not its arrays' width {width}")
    control = str(attrs.get("model", "")).split(":")[0] in ("identity", "noise")
    encoder, why = _encoder(dict(attrs), False, key[0])
    if encoder is not None:
        why = _record_mismatch(encoder, dict(attrs))
    elif why.startswith("model "):  # "model X has another fingerprint (...); it cannot be regenerated"
        why = f"its record names {why.split('; ')[0].removeprefix('model ')}"
    elif not control:  # it cannot be resolved here: its chunks still are checked
        why = ""
    found += [why] if why else []
    return found


def _record_mismatch(encoder: Encoder, attrs: dict) -> str | None:
    """Where a group's record of its encoder is not the encoder's own (what its parts show is published from it)."""
    actual = {
        "architecture": encoder.architecture,
        "weights_digest": encoder.weights_digest,
        "preprocess": encoder.preprocess.to_dict(),
        "feature_dim": encoder.feature_dim,
    }
    wrong = [key for key, value in actual.items() if attrs.get(key) != value]
    return f"its record of the encoder ({', '.join(wrong)}) is not the encoder's" if wrong else None


def check_group(
    group: zarr.Group, spec: BenchmarkSpec, key: tuple[str, str], report, count_chunks: bool = True
) -> tuple[list[Location], bool]:
    """Problems of one feature group: the chunk files that are damaged or missing, and whether the group as a
    whole cannot be verified (arrays missing, no manifest, a manifest that is not the one it was completed with,
    a record that disagrees with it), so that only regenerating it from the generator and the encoder can repair
    it."""
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
    if complete and not missing:
        unverifiable += _record_problems(group, spec, key)
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


def _encoder(attrs: dict, allow_py: bool, fingerprint: str, candidates=()) -> tuple[Encoder | None, str]:
    """The encoder a group was made with, as it was benchmarked, or why it cannot be had here. When the model its
    record names has another fingerprint, the ``candidates`` (other references the root records) of the same
    architecture are tried: a record edited to another model's name is repaired from the model that fits."""
    model = str(attrs.get("model", ""))
    if model.startswith("module:"):
        return None, f"cannot regenerate {model!r}: {NOTEBOOK}"
    if str(attrs.get("device", "")).startswith("cuda") and not torch.cuda.is_available():
        return None, "made on CUDA; repair or check it on a CUDA machine so the chunks match"
    why = ""
    alike = [c for c in candidates if c != model and _architecture(c) == attrs.get("architecture")]
    others = [c for c in candidates if c != model and c not in alike]  # its recorded architecture may be forged too
    for text in [model, *alike, *others]:
        try:
            encoder = resolve_as_stored(text, attrs.get("preprocess"), allow_py)
        except SynBenchError as exc:
            why = why or f"cannot regenerate {model!r}: {exc}"
            continue
        if encoder.fingerprint == fingerprint:
            return encoder, ""
        why = why or f"model {model!r} has another fingerprint ({encoder.fingerprint}); it cannot be regenerated"
    return None, why


def _architecture(reference: str) -> str | None:
    """The architecture name a reference resolves to (``encoders.SCHEMES``), read from its text alone."""
    try:
        ref = parse_reference(reference)
    except SynBenchError:
        return None
    return ref.scheme if ref.scheme in ("identity", "noise") else ref.target


def repair_group(
    root: Location,
    group: zarr.Group,
    spec: BenchmarkSpec,
    bad_files: list,
    report,
    allow_py: bool,
    from_sources: bool,
    candidates: tuple[str, ...] = (),
) -> bool:
    """Quarantine the damaged chunks (all of them when ``from_sources``: nothing stored can be trusted) and
    regenerate them from the generator and the encoder; False (with the problem reported) when it cannot."""
    attrs = dict(group.attrs)
    encoder, why = _encoder(attrs, allow_py, node_location(group).parent.name, candidates)
    where = node_location(group)
    if encoder is None:
        report.problems.append(f"{where}: {why}")
        return False
    stamp = utc_now().replace(":", "")
    if from_sources:  # every chunk and the group's metadata: the extraction starts afresh
        bad_files = [where / name for name in sorted(existing_files(where))]
    for file in bad_files:
        if file.is_file():  # keep the damaged bytes: nothing of the user's is ever deleted
            quarantine(root, file, stamp)
    if not from_sources:
        group.update_attributes({"complete": False})
    device = "cuda" if str(attrs.get("device", "")).startswith("cuda") else "cpu"
    result = extract_features(encoder, spec, root, device=device, dtype=str(attrs.get("dtype", "fp32")))
    report.repaired.append(
        f"{where}: regenerated {result.written_chunks} chunk(s) from the encoder; damaged files kept in "
        f"{safe_path(root, 'quarantine', stamp)}"
    )
    return True


def compare_with_sources(group: zarr.Group, spec: BenchmarkSpec, allow_py: bool) -> tuple[str, str]:
    """("same" | "differs" | "cannot", what was found): the group regenerated from the generator and the encoder
    in a scratch root, its manifest compared chunk by chunk with the stored one."""
    attrs = dict(group.attrs)
    encoder, why = _encoder(attrs, allow_py, node_location(group).parent.name)
    if encoder is None:
        return "cannot", why
    if mismatch := _record_mismatch(encoder, attrs):
        return "differs", mismatch
    device = "cuda" if str(attrs.get("device", "")).startswith("cuda") else "cpu"
    with tempfile.TemporaryDirectory(prefix="synbench-deep-") as scratch:
        result = extract_features(encoder, spec, open_root(scratch), device=device, dtype=str(attrs.get("dtype")))
        fresh = zarr.open_group(str(result.path), mode="r").attrs["chunk_digests"]
    stored = attrs.get("chunk_digests") or {}
    wrong = sorted(key for key, digest in fresh.items() if stored.get(key) != digest)
    if wrong:
        return "differs", f"{len(wrong)} chunk(s) differ from what the generator and the encoder give (e.g. {wrong[0]})"
    return "same", ""


def set_aside_group(root: Location, group: zarr.Group, why: str) -> str:
    """Move every file of a group that cannot be vouched for to quarantine/, naming how to remake it."""
    where, stamp = node_location(group), utc_now().replace(":", "")
    for name in sorted(existing_files(where)):
        quarantine(root, where / name, stamp)
    return f"moved {node_name(root, where)} to quarantine/{stamp}: {why}"
