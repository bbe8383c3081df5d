"""The store's Parquet side: tables written whole with a digest of their rows, read from any root."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .roots import Location, atomic_write_bytes, is_remote

__all__ = [
    "ROWS_DIGEST_KEY",
    "PARENTS_KEY",
    "rows_digest",
    "atomic_write_parquet",
    "read_table",
    "read_frame",
    "edited",
    "stored_digest",
    "stored_parents",
]

ROWS_DIGEST_KEY = b"synbench.rows_sha256"
PARENTS_KEY = b"synbench.parents"  # {artifact path in the root: its digest} of what a table was made from


def rows_digest(frame: pd.DataFrame) -> str:
    """sha256 of a table's rows as written (columns in name order): an edited file no longer matches."""
    ordered = frame[sorted(frame.columns)].reset_index(drop=True)
    return hashlib.sha256(ordered.to_json(orient="split", double_precision=15).encode()).hexdigest()


def atomic_write_parquet(path: Location, frame: pd.DataFrame, parents: dict[str, str] | None = None) -> None:
    """Write a DataFrame as one Parquet file that readers never see half-written, with its rows' digest and the
    digests of the artifacts it was made from (``parents``: path in the root -> digest)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = {ROWS_DIGEST_KEY: rows_digest(frame), PARENTS_KEY: json.dumps(parents or {}, sort_keys=True)}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def read_table(path: Location) -> pa.Table:
    """One Parquet file as an Arrow table (an object is fetched in one GET)."""
    if is_remote(path):
        return pq.read_table(pa.BufferReader(path.read_bytes()))
    return pq.read_table(path)


def read_frame(path: Location) -> pd.DataFrame:
    return read_table(path).to_pandas()


def edited(table: pa.Table) -> bool:
    """Whether a Parquet table's rows differ from the digest written with them (no digest: not ours to judge)."""
    stored = (table.schema.metadata or {}).get(ROWS_DIGEST_KEY)
    return stored is not None and stored.decode() != rows_digest(table.to_pandas())


def _metadata(table: pa.Table | pa.Schema) -> dict:
    return getattr(table, "schema", table).metadata or {}


def stored_digest(table: pa.Table | pa.Schema) -> str | None:
    """The rows digest written with a table (its content digest in the artifact graph), or None."""
    value = _metadata(table).get(ROWS_DIGEST_KEY)
    return value.decode() if value is not None else None


def stored_parents(table: pa.Table | pa.Schema) -> dict[str, str] | None:
    """The parents recorded with a table (path in the root -> digest), or None when it records none."""
    value = _metadata(table).get(PARENTS_KEY)
    try:
        parents = json.loads(value) if value is not None else None
    except ValueError:
        return None
    return parents if isinstance(parents, dict) else None
