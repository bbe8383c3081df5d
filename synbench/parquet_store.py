"""The store's Parquet side: tables written whole with a digest of their rows, read from any root."""

from __future__ import annotations

import hashlib

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .store import Location, atomic_write_bytes, is_remote

__all__ = ["ROWS_DIGEST_KEY", "rows_digest", "atomic_write_parquet", "read_table", "read_frame", "edited"]

ROWS_DIGEST_KEY = b"synbench.rows_sha256"


def rows_digest(frame: pd.DataFrame) -> str:
    """sha256 of a table's rows as written (columns in name order): an edited file no longer matches."""
    ordered = frame[sorted(frame.columns)].reset_index(drop=True)
    return hashlib.sha256(ordered.to_json(orient="split", double_precision=15).encode()).hexdigest()


def atomic_write_parquet(path: Location, frame: pd.DataFrame) -> None:
    """Write a DataFrame as one Parquet file that readers never see half-written, with its rows' digest."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), ROWS_DIGEST_KEY: rows_digest(frame)})
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
