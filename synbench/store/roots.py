"""The artifact root: layout, locations, safe paths, atomic writes.

A root is a local folder (a ``Path``: the embedded default) or an fsspec URL (``s3://``, ``gs://``,
``az://``, ``memory://``: a ``UPath``). The same operations work on both; where an object store has no
rename, one PUT of the final bytes makes a file appear whole. The store's other modules:
``features.py`` (Zarr), ``parquet.py`` (tables), ``locks.py`` (one writer per group).

Layout under ROOT (documented in docs/storage/layout.md):

    synbench-root.json                     marks the folder as a SynBench root
    recipes/<data_hash>.json               stage 1: spec + label digests (no pixels)
    features.zarr/<fingerprint>/<data_hash>/   (features.py)
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
import shutil
import tempfile
from os import PathLike
from pathlib import Path
from typing import Any

from ..core.errors import StoreError

__all__ = [
    "ROOT_MARKER",
    "open_root",
    "safe_path",
    "symlinks_under",
    "atomic_write_bytes",
    "atomic_write_json",
    "content_key",
    "location",
    "is_remote",
    "write_new",
    "existing_files",
    "remove_tree",
    "quarantine",
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


Location = Any  # a pathlib.Path (local) or a upath.UPath (object store): both have the pathlib API


def is_remote(path: Location) -> bool:
    return not isinstance(path, Path)


def location(value: str | PathLike | Location) -> Location:
    """A local ``Path`` for a plain path or ``file://`` URL, a ``UPath`` for any other fsspec URL."""
    if isinstance(value, Path) or type(value).__module__.startswith("upath"):
        return value
    text = os.fspath(value)
    if "://" not in text:
        return Path(text)
    protocol = text.split("://", 1)[0]
    if protocol == "file":
        return Path(text[len("file://") :])
    try:
        import fsspec
        from upath import UPath

        # several processes and nodes write one root: never answer a listing from a stale cache
        if protocol in ("s3", "s3a", "gs", "gcs", "az", "abfs"):
            defaults = fsspec.config.conf.setdefault(protocol, {})
            defaults.setdefault("use_listings_cache", False)
            if protocol in ("s3", "s3a"):  # our objects are small: no HEAD for a size before each GET
                defaults.setdefault("max_concurrency", 1)
        path = UPath(text)
        path.fs  # noqa: B018  (imports the backend now, so a missing one is reported here)
    except ImportError as exc:
        raise StoreError(
            f"root {text!r} needs the {protocol}:// backend ({exc.name or exc}); install it with "
            f"pip install 'synbench[{protocol if protocol in ('s3', 'gs', 'az') else 's3'}]'."
        ) from None
    except ValueError as exc:
        raise StoreError(f"cannot use {text!r} as a root: {exc}; pass a local folder or an fsspec URL.") from None
    return path


def open_root(root: str | PathLike | Location, create: bool = True) -> Location:
    """Check (and create) an artifact root; refuse folders that hold another project's files."""
    path = location(root)
    if is_remote(path):
        return _open_remote_root(path, create)
    path = path.expanduser().absolute()
    marker = path / ROOT_MARKER
    if marker.is_file():
        return path
    if path.exists() and not path.is_dir():
        raise StoreError(f"root {str(path)!r} is a file; pass a folder with --root.")
    if path.is_dir():
        _refuse_foreign(path, os.listdir(path))
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


def _refuse_foreign(path: Location, names: list[str]) -> None:
    foreign = sorted(name for name in set(names) - _OWN_ENTRIES if not _is_own_temp(name))
    if foreign:
        raise StoreError(
            f"root {str(path)!r} holds files that are not SynBench's (e.g. {foreign[0]!r}); "
            "pass an empty or new folder with --root."
        )


def _open_remote_root(path: Location, create: bool) -> Location:
    marker = path / ROOT_MARKER
    try:
        if marker.is_file():
            return path
        _refuse_foreign(path, [child.name for child in path.iterdir()] if path.is_dir() else [])
        if not create:
            raise StoreError(f"{str(path)!r} is not a SynBench root (no {ROOT_MARKER}); pass the --root you ran with.")
        write_new(marker, json.dumps({"synbench_root": 1}).encode())
    except StoreError:
        raise
    except Exception as exc:  # unreachable endpoint, missing bucket, no credentials: each backend its own type
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreError(
            f"cannot use root {str(path)!r}: {reason}; check that the bucket exists and the backend's settings "
            "(for S3-compatible servers AWS_ENDPOINT_URL and the AWS_* keys)."
        ) from None
    return path


def _is_own_temp(name: str) -> bool:
    """Temp files of ``atomic_write_bytes`` (a concurrent creator may be writing one right now)."""
    return name.startswith(".") and name.endswith(".tmp")


def safe_path(root: Location, *parts: str) -> Location:
    """``root/parts`` after checking that no part escapes the root (path traversal) or is a symbolic link."""
    path = location(root)
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\x00" in part:
            raise StoreError(f"refusing path component {part!r}: names must stay inside the root.")
        path = path / part
        if not is_remote(path) and path.is_symlink():
            raise StoreError(
                f"{str(path)!r} is a symbolic link; SynBench never reads or writes through links inside its root "
                "(they could point outside it): remove the link."
            )
    return path


def symlinks_under(root: Location) -> list[Path]:
    """Every symbolic link below the root (the audit reports them), without following any."""
    if is_remote(root):
        return []  # object stores have no links
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        found += [Path(folder) / name for name in dirs + files if (Path(folder) / name).is_symlink()]
    return sorted(found)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path: Location, data: bytes) -> None:
    """Write ``data`` so that readers see the old file or the new one, never a part.

    Locally: a temp file in the same folder, fsync, ``os.replace``. On an object store: one PUT of
    the final bytes (an object appears whole when its upload completes).
    """
    if is_remote(path):
        path.fs.pipe_file(path.path, data)
        return
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


def write_new(path: Location, data: bytes) -> bool:
    """Create ``path`` with ``data`` unless it exists (then False), atomically: exactly one of many racing
    creators wins. Locally a hard link of a finished temp file; on an object store a conditional PUT
    (``If-None-Match: *`` on S3, each fsspec backend's equivalent)."""
    if is_remote(path):
        try:
            path.fs.pipe_file(path.path, data, mode="create")
        except FileExistsError:
            return False
        return True
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    return True


def atomic_write_json(path: Location, data: dict) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())


def existing_files(folder: Location) -> set[str]:
    """Paths (relative to ``folder``, with ``/``) of every file below it: one listing, not one request per file."""
    if is_remote(folder):
        prefix = folder.path.rstrip("/") + "/"
        return {name[len(prefix) :] for name in folder.fs.find(folder.path) if name.startswith(prefix)}
    found = set()
    for directory, _, files in os.walk(folder):
        relative = os.path.relpath(directory, folder)
        found |= {name if relative == "." else f"{relative}/{name}".replace(os.sep, "/") for name in files}
    return found


def remove_tree(path: Location) -> None:
    """Delete a folder (or prefix) and everything below it; nothing there is not an error."""
    if is_remote(path):
        try:
            path.fs.rm(path.path, recursive=True)
        except FileNotFoundError:
            pass
        return
    shutil.rmtree(path, ignore_errors=True)


def quarantine(root: Location, file: Location, stamp: str) -> Location:
    """Move a damaged file to ``quarantine/<stamp>/<its path in the root>``; its bytes are never deleted."""
    relative = str(file)[len(str(root)) :].strip("/").split("/")
    target = safe_path(root, "quarantine", stamp, *relative)
    if is_remote(file):
        atomic_write_bytes(target, file.read_bytes())  # object stores have no move: copy, then delete
        file.unlink()
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(file, target)
    return target


def content_key(*parts: object) -> str:
    """Short sha256 of the JSON of ``parts``: names artifacts derived from those inputs."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
