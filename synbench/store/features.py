"""The store's Zarr side: one group of feature and label arrays per (model fingerprint, data hash).

Every chunk is one generated block, encoded ``bytes -> zstd -> crc32c``. Unwritten chunks read as
fill values, so completeness is checked explicitly; a manifest of chunk digests binds each chunk
to its place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import google_crc32c
import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from ..core.errors import IncompleteError, StoreError
from ..core.spec import SPLITS
from .roots import FEATURES_DIR, REAL_DIR, Location, existing_files, location, safe_path

__all__ = [
    "checksum_ok",
    "feature_group_path",
    "array_name",
    "create_feature_group",
    "open_feature_group",
    "feature_arrays",
    "missing_arrays",
    "manifest_digest",
    "real_manifest",
    "arrays_manifest",
    "node_location",
    "chunk_path",
    "chunk_key",
    "values_digest",
    "missing_chunks",
    "read_split",
    "real_group_path",
    "read_real_features",
    "write_real_features",
]


KINDS = ("features", "labels")
_REAL_ROWS = 256  # rows per chunk of a real-data group


def feature_group_path(root: Location, fingerprint: str, data_hash: str) -> Location:
    return safe_path(root, FEATURES_DIR, fingerprint, data_hash)


def array_name(scale_index: int, split: str) -> str:
    return f"s{scale_index:02d}_{split}"


def _create_array(group: zarr.Group, name: str, shape: tuple, chunks: tuple, dtype: str, fill) -> zarr.Array:
    """An array with our codecs: ``bytes -> zstd -> crc32c``; ``fill`` marks unwritten chunks."""
    compressors = [ZstdCodec(level=3), Crc32cCodec()]
    return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, compressors=compressors, fill_value=fill)


def create_feature_group(
    root: Location,
    fingerprint: str,
    data_hash: str,
    n_scales: int,
    sizes: dict[str, int],
    feature_dim: int,
    block_size: int,
    attrs: dict,
) -> zarr.Group:
    """Create (or reopen) the group of one (model, spec data) pair with all its arrays."""
    path = feature_group_path(root, fingerprint, data_hash)
    group = zarr.open_group(str(path), mode="a", zarr_format=3)
    if not group.attrs.get("complete"):
        group.update_attributes(attrs)
    for scale_index in range(n_scales):
        for split, n in sizes.items():
            name = array_name(scale_index, split)
            # each array on its own: a writer killed between the two left one of them
            if f"features/{name}" not in group:
                _create_array(group, f"features/{name}", (n, feature_dim), (block_size, feature_dim), "float32", np.nan)
            if f"labels/{name}" not in group:
                _create_array(group, f"labels/{name}", (n,), (block_size,), "uint8", 255)
    return group


def missing_arrays(group: zarr.Group, n_scales: int) -> list[str]:
    """Arrays a complete group must hold but this one lacks (a writer killed while creating them)."""
    names = [f"{kind}/{array_name(k, split)}" for k in range(n_scales) for split in SPLITS for kind in KINDS]
    return [name for name in names if name not in group]


def manifest_digest(manifest: dict) -> str:
    """The content digest of a group: sha256 of its manifest of chunk digests."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def open_feature_group(root: Location, fingerprint: str, data_hash: str) -> zarr.Group | None:
    path = feature_group_path(root, fingerprint, data_hash)
    if not (path / "zarr.json").is_file():
        return None
    return zarr.open_group(str(path), mode="r+", zarr_format=3)


def feature_arrays(group: zarr.Group, n_scales: int) -> Iterator[tuple[int, str, zarr.Array, zarr.Array]]:
    """(scale index, split, features array, labels array) of every task split in a group."""
    for scale_index in range(n_scales):
        for split in SPLITS:
            name = array_name(scale_index, split)
            yield scale_index, split, group[f"features/{name}"], group[f"labels/{name}"]


def node_location(node: zarr.Array | zarr.Group) -> Location:
    """Where a Zarr array or group lives: a local folder or an object-store URL."""
    store = node.store_path.store
    if hasattr(store, "root"):  # LocalStore
        return Path(str(store.root)) / node.store_path.path
    return location(store.fs.unstrip_protocol(f"{store.path}/{node.store_path.path}"))  # FsspecStore


def _chunk_name(array: zarr.Array, index: int) -> str:
    return array.metadata.encode_chunk_key((index, 0) if array.ndim == 2 else (index,))


def chunk_path(array: zarr.Array, index: int) -> Location:
    """File (or object) of the chunk holding samples ``index * chunk_len ...`` of an array."""
    return node_location(array) / _chunk_name(array, index)


def chunk_key(array: zarr.Array, index: int) -> str:
    """Where a chunk belongs, e.g. ``features/s03_test/2``: the manifest's key for it."""
    return "/".join([*array.path.split("/")[-2:], str(index)])


def checksum_ok(data: bytes) -> bool:
    """Whether a stored chunk's bytes end with the little-endian crc32c of what precedes them (our last codec)."""
    return len(data) >= 4 and google_crc32c.value(data[:-4]) == int.from_bytes(data[-4:], "little")


def values_digest(values: np.ndarray) -> str:
    """sha256 of a chunk's decoded values (dtype and shape included): binds the chunk to its place."""
    values = np.ascontiguousarray(values)
    return hashlib.sha256(f"{values.dtype}{values.shape}".encode() + values.tobytes()).hexdigest()


def missing_chunks(array: zarr.Array) -> list[int]:
    """Indices of chunks along the sample axis with no stored file (they would read as fill); one listing."""
    stored = existing_files(node_location(array))
    return [i for i in range(array.cdata_shape[0]) if _chunk_name(array, i) not in stored]


def read_split(group: zarr.Group, scale_index: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, p) and labels (n,) of one task split, refusing incomplete arrays."""
    name = array_name(scale_index, split)
    if not group.attrs.get("complete"):
        raise IncompleteError(
            f"feature group {group.path!r} has no completion marker; rerun the extraction to finish it."
        )
    features, labels = group[f"features/{name}"], group[f"labels/{name}"]
    for array in (features, labels):
        if array.nchunks_initialized != array.nchunks:
            raise IncompleteError(
                f"array {array.path!r} has {array.nchunks - array.nchunks_initialized} unwritten chunks; "
                "run `synbench audit --repair` to regenerate them."
            )
    return features[:], labels[:]


def real_group_path(root: Location, fingerprint: str, data_digest: str) -> Location:
    return safe_path(root, REAL_DIR, fingerprint, data_digest)


def read_real_features(root: Location, fingerprint: str, data_digest: str) -> np.ndarray | None:
    """Stored features of a labelled data set (``synbench agree``), or None when not complete."""
    path = real_group_path(root, fingerprint, data_digest)
    if not (path / "zarr.json").is_file():
        return None
    group = zarr.open_group(str(path), mode="r")
    if not group.attrs.get("complete"):
        return None
    try:
        return group["features"][:]
    except Exception as exc:  # a chunk that fails its checksum cannot be decoded
        raise StoreError(
            f"the stored features of {path} are damaged ({str(exc).splitlines()[0][:80]}); run synbench audit "
            "--repair (it moves them to quarantine/), then rerun."
        ) from None


def write_real_features(
    root: Location, fingerprint: str, data_digest: str, features: np.ndarray, labels: np.ndarray, attrs: dict
) -> None:
    """One group of features (n, p) and labels (n,), chunks of 256 rows; the completion marker goes last."""
    group = zarr.open_group(str(real_group_path(root, fingerprint, data_digest)), mode="w", zarr_format=3)
    rows = _REAL_ROWS
    arrays = (
        _create_array(group, "features", features.shape, (rows, features.shape[1]), "float32", np.nan),
        _create_array(group, "labels", labels.shape, (rows,), "int64", -1),
    )
    arrays[0][:], arrays[1][:] = features, labels
    manifest = real_manifest(group)
    group.update_attributes(attrs)
    group.update_attributes({"chunk_digests": manifest, "content_digest": manifest_digest(manifest), "complete": True})


def real_manifest(group: zarr.Group) -> dict[str, str]:
    """Digest of every chunk of a real-data group's arrays, keyed by its place (e.g. ``features/2``)."""
    return arrays_manifest({name: group[name][:] for name in KINDS}, group["features"].chunks[0])


def arrays_manifest(arrays: dict[str, np.ndarray], rows: int = _REAL_ROWS) -> dict[str, str]:
    """The manifest a real-data group of these arrays has (``rows`` per chunk): what the deep audit compares."""
    return {
        f"{name}/{index}": values_digest(values[index * rows : (index + 1) * rows])
        for name, values in arrays.items()
        for index in range(-(-len(values) // rows))
    }
