"""The store's Zarr side: one group of feature and label arrays per (model fingerprint, data hash).

Every chunk is one generated block, encoded ``bytes -> zstd -> crc32c``. Unwritten chunks read as
fill values, so completeness is checked explicitly; a manifest of chunk digests binds each chunk
to its place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from .errors import IncompleteError
from .spec import SPLITS
from .store import FEATURES_DIR, safe_path

__all__ = [
    "feature_group_path",
    "array_name",
    "create_feature_group",
    "open_feature_group",
    "feature_arrays",
    "chunk_path",
    "chunk_key",
    "values_digest",
    "missing_chunks",
    "read_split",
]


def feature_group_path(root: Path, fingerprint: str, data_hash: str) -> Path:
    return safe_path(root, FEATURES_DIR, fingerprint, data_hash)


def array_name(scale_index: int, split: str) -> str:
    return f"s{scale_index:02d}_{split}"


def create_feature_group(
    root: Path,
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
        group.attrs.update(attrs)
    compressors = [ZstdCodec(level=3), Crc32cCodec()]
    for scale_index in range(n_scales):
        for split, n in sizes.items():
            name = array_name(scale_index, split)
            if f"features/{name}" in group:
                continue
            group.create_array(
                f"features/{name}",
                shape=(n, feature_dim),
                chunks=(block_size, feature_dim),
                dtype="float32",
                compressors=compressors,
                fill_value=np.nan,
            )
            group.create_array(
                f"labels/{name}",
                shape=(n,),
                chunks=(block_size,),
                dtype="uint8",
                compressors=compressors,
                fill_value=255,
            )
    return group


def open_feature_group(root: Path, fingerprint: str, data_hash: str) -> zarr.Group | None:
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


def chunk_path(array: zarr.Array, index: int) -> Path:
    """File of the chunk holding samples ``index * chunk_len ...`` of a local array."""
    coords = (index, 0) if array.ndim == 2 else (index,)
    return Path(str(array.store_path.store.root)) / array.store_path.path / array.metadata.encode_chunk_key(coords)


def chunk_key(array: zarr.Array, index: int) -> str:
    """Where a chunk belongs, e.g. ``features/s03_test/2``: the manifest's key for it."""
    return f"{array.path.rsplit('/', 2)[-2]}/{array.path.rsplit('/', 1)[-1]}/{index}"


def values_digest(values: np.ndarray) -> str:
    """sha256 of a chunk's decoded values (dtype and shape included): binds the chunk to its place."""
    values = np.ascontiguousarray(values)
    return hashlib.sha256(f"{values.dtype}{values.shape}".encode() + values.tobytes()).hexdigest()


def missing_chunks(array: zarr.Array) -> list[int]:
    """Indices of chunks along the sample axis with no stored file (they would read as fill)."""
    return [i for i in range(array.cdata_shape[0]) if not chunk_path(array, i).is_file()]


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
