"""The artifact graph: every stored artifact names the digests of the artifacts it was made from.

A node is a file or group under the root, named by its path there. Its content digest is the rows
digest written with a Parquet table, or the digest of a Zarr group's manifest of chunk digests
(``content_digest`` in its attributes). A table records its parents as {path: digest} when it is
written; the audit checks that every parent still exists with that digest and recomputes the node
from them. The sources at the bottom of the graph are the generator (a spec's data hash) and the
encoder (a model's fingerprint): the paths of feature groups name them.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import zarr

from .parquet import read_table, stored_digest
from .roots import Location, is_remote, location

__all__ = ["node_name", "node_digest", "parents_of", "node_path"]


def node_name(root: Location, path: Location) -> str:
    """A node's name: its path relative to the root, with ``/``."""
    return str(location(path))[len(str(location(root))) :].strip("/")


def node_path(root: Location, name: str) -> Location:
    return location(root) / name


def node_digest(path: Location) -> str | None:
    """The content digest of a stored node (a Parquet table or a Zarr group), or None when absent or unrecorded."""
    path = location(path)
    try:
        if (path / "zarr.json").is_file():
            return zarr.open_group(str(path), mode="r").attrs.get("content_digest")
        if path.suffix == ".parquet" and path.is_file():
            # the schema's metadata is enough locally; an object is read in one GET anyway
            return stored_digest(read_table(path) if is_remote(path) else pq.read_schema(path))
    except Exception:  # an unreadable node has no digest: the audit reports it as damaged
        return None
    return None


def parents_of(root: Location, *paths: Location | None) -> dict[str, str]:
    """{name: digest} of the given nodes (None entries skipped): what a new table records as its parents."""
    return {node_name(root, path): node_digest(path) or "" for path in paths if path is not None}
