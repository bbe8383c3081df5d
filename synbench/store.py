"""The artifact root: layout, safe paths, atomic writes, writer locks and Zarr feature groups.

Layout under ROOT (documented in README):

    synbench-root.json                     marks the folder as a SynBench root
    recipes/<data_hash>.json               stage 1: spec + label digests (no pixels)
    features.zarr/<fingerprint>/<data_hash>/   (feature_store.py)
        features/s<k>_<split>              float32 (n, p), one chunk per generated block
        labels/s<k>_<split>                uint8 (n,)
    probes/<probe_key>.parquet             stage 3: accuracy and bound per (scale, eps)
    curves/<curve_key>.parquet             stage 4: reference and empirical curves
    leaderboard/parts/<row_key>.parquet    stage 5: published rows
    leaderboard/snapshots/<time>.parquet   ranked board per refresh
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from .errors import StoreError
from .provenance import utc_now

__all__ = [
    "ROOT_MARKER",
    "open_root",
    "safe_path",
    "symlinks_under",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_parquet",
    "rows_digest",
    "edited",
    "content_key",
    "writer_lock",
    "FEATURES_DIR",
    "REAL_DIR",
]

ROOT_MARKER = "synbench-root.json"
FEATURES_DIR = "features.zarr"
REAL_DIR = "real.zarr"  # features of labelled data sets (synbench agree)
_OWN_ENTRIES = {
    ROOT_MARKER,
    "recipes",
    FEATURES_DIR,
    "probes",
    "curves",
    "leaderboard",
    "reports",
    ".prefect",
    ".gitignore",
}


def open_root(root: str | Path, create: bool = True) -> Path:
    """Check (and create) an artifact root; refuse folders that hold another project's files."""
    if "://" in str(root):  # never read s3://bucket/x as the local folder s3:/bucket/x
        raise StoreError(
            f"root {str(root)!r} is a URL; object-storage roots are not supported yet: pass a local folder "
            "(or a shared file system mounted on every node) with --root."
        )
    path = Path(root).expanduser().absolute()
    marker = path / ROOT_MARKER
    if marker.is_file():
        return path
    if path.exists() and not path.is_dir():
        raise StoreError(f"root {str(path)!r} is a file; pass a folder with --root.")
    if path.is_dir():
        foreign = sorted(name for name in set(os.listdir(path)) - _OWN_ENTRIES if not _is_own_temp(name))
        if foreign:
            raise StoreError(
                f"root {str(path)!r} holds files that are not SynBench's (e.g. {foreign[0]!r}); "
                "pass an empty or new folder with --root."
            )
    if not create:
        raise StoreError(f"{str(path)!r} is not a SynBench root (no {ROOT_MARKER}); pass the --root you ran with.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(marker, {"synbench_root": 1})
    except OSError as exc:
        raise StoreError(
            f"cannot write to root {str(path)!r}: {exc.strerror}; pass a writable folder with --root."
        ) from None
    return path


def _is_own_temp(name: str) -> bool:
    """Temp files of ``atomic_write_bytes`` (a concurrent creator may be writing one right now)."""
    return name.startswith(".") and name.endswith(".tmp")


def safe_path(root: Path, *parts: str) -> Path:
    """``root/parts`` after checking that no part escapes the root (path traversal) or is a symbolic link."""
    path = Path(root)
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\x00" in part:
            raise StoreError(f"refusing path component {part!r}: names must stay inside the root.")
        path = path / part
        if path.is_symlink():
            raise StoreError(
                f"{str(path)!r} is a symbolic link; SynBench never reads or writes through links inside its root "
                "(they could point outside it): remove the link."
            )
    return path


def symlinks_under(root: Path) -> list[Path]:
    """Every symbolic link below the root (the audit reports them), without following any."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        found += [Path(folder) / name for name in dirs + files if (Path(folder) / name).is_symlink()]
    return sorted(found)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file in the same folder, fsync, then ``os.replace`` it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; files follow the umask like any other
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())


ROWS_DIGEST_KEY = b"synbench.rows_sha256"


def rows_digest(frame: pd.DataFrame) -> str:
    """sha256 of a table's rows as written (columns in name order): an edited file no longer matches."""
    ordered = frame[sorted(frame.columns)].reset_index(drop=True)
    return hashlib.sha256(ordered.to_json(orient="split", double_precision=15).encode()).hexdigest()


def atomic_write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame as one Parquet file that readers never see half-written, with its rows' digest."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), ROWS_DIGEST_KEY: rows_digest(frame)})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def edited(table: pa.Table) -> bool:
    """Whether a Parquet table's rows differ from the digest written with them (no digest: not ours to judge)."""
    stored = (table.schema.metadata or {}).get(ROWS_DIGEST_KEY)
    return stored is not None and stored.decode() != rows_digest(table.to_pandas())


def content_key(*parts: object) -> str:
    """Short sha256 of the JSON of ``parts``: names artifacts derived from those inputs."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextmanager
def writer_lock(path: Path, timeout_s: float = 3600.0) -> Iterator[None]:
    """Hold an exclusive OS lock on ``path`` (released by the kernel when the holder dies, even on kill -9).

    While waiting, says once on stderr who holds it (host, pid, since when, from ``<path>.holder``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    holder = path.with_name(path.name + ".holder")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            who = holder.read_text().strip() or "an unknown process"
        except OSError:
            who = "an unknown process"
        print(f"synbench: waiting for {path.parent.name}/{path.name}, held by {who}", file=sys.stderr)
        try:
            lock.acquire(timeout=timeout_s)
        except Timeout:
            raise StoreError(f"{str(path)!r} is still held by {who} after {timeout_s:.0f} s; wait for it.") from None
    try:
        holder.write_text(f"host {socket.gethostname()} pid {os.getpid()} since {utc_now()}")
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()
