"""One writer per feature group: an OS file lock locally, a lease object on an object store.

Object stores have no ``flock``. There the lock is a small lease object next to the group, created
with a conditional write (S3 ``If-None-Match: *``); it names its holder and an expiry that the live
holder pushes forward every third of ``LEASE_SECONDS``. A waiter may take over a lease whose expiry
has passed (its holder died), with a compare-and-swap on the lease's ETag, so of several waiters only
one wins. A holder that finds its lease taken (it stalled past the expiry) stops before writing the
completion marker. A lease object that cannot be read as a lease (empty, not JSON, wrong types) is
a dead holder's too: it is taken over the same way once the store's last-modified time is a lease
time old. The expiry is compared across machines, so their clocks must agree to well within
``LEASE_SECONDS``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from filelock import FileLock, Timeout

from ..core.errors import StoreError
from ..core.provenance import utc_now
from .roots import Location, is_remote, write_new

__all__ = ["Held", "writer_lock", "LEASE_SECONDS_ENV"]

LEASE_SECONDS_ENV = "SYNBENCH_LEASE_SECONDS"  # lease lifetime on object stores (default 60)


class Held:
    """A held lock; ``check()`` raises when an object-store lease was lost to another writer."""

    def __init__(self) -> None:
        self.lost = threading.Event()

    def check(self) -> None:
        if self.lost.is_set():
            raise StoreError("this writer's lease expired and another writer took it over; rerun to finish.")


def _holder() -> str:
    return f"host {socket.gethostname()} pid {os.getpid()} since {utc_now()}"


@contextmanager
def writer_lock(path: Location, timeout_s: float = 3600.0) -> Iterator[Held]:
    """Hold the one-writer lock ``path`` (a lease object ``<path>.lease`` on an object store)."""
    if is_remote(path):
        with _lease(path.with_name(path.name + ".lease"), timeout_s) as held:
            yield held
        return
    with _file_lock(path, timeout_s):
        yield Held()


@contextmanager
def _file_lock(path: Path, timeout_s: float) -> Iterator[None]:
    """An exclusive OS lock (released by the kernel when the holder dies, even on kill -9).

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
        holder.write_text(_holder())
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


@dataclass(frozen=True)
class _Version:
    """One version of a lease object as read."""

    lease: dict | None  # None: the body is no lease (empty, not JSON, wrong types)
    token: str  # identifies this version for a compare-and-swap
    modified: float | None  # when the store wrote it (epoch seconds), where it says


def _parse(body: bytes) -> dict | None:
    try:
        lease = json.loads(body)
    except ValueError:  # not JSON, or not text at all
        return None
    if not isinstance(lease, dict) or not isinstance(lease.get("holder"), str):
        return None
    expires = lease.get("expires")
    if isinstance(expires, bool) or not isinstance(expires, int | float) or not math.isfinite(expires):
        return None
    return lease


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class _LeaseObject:
    """Create, read, compare-and-swap and delete one small object. ``token`` identifies a version.

    S3 (and S3-compatible servers) use ETags with ``If-Match``; other fsspec backends have no portable
    compare-and-swap, so there a takeover re-reads the lease after writing it (best effort).
    """

    def __init__(self, path: Location) -> None:
        self.path = path
        self.s3 = None
        if path.protocol in ("s3", "s3a"):
            import botocore.session  # s3fs's own dependency; reads AWS_ENDPOINT_URL and AWS_* like s3fs

            self.s3 = botocore.session.get_session().create_client("s3")
            self.bucket, _, self.key = path.path.partition("/")

    def create(self, body: bytes) -> str | None:
        if not write_new(self.path, body):
            return None
        return self._etag() if self.s3 else _digest(body)

    def read(self) -> _Version | None:
        """The lease's current version, or None when there is none."""
        try:
            if self.s3:
                reply = self.s3.get_object(Bucket=self.bucket, Key=self.key)
                body = reply["Body"].read()
                return _Version(_parse(body), reply["ETag"], reply["LastModified"].timestamp())
            body = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        lease = _parse(body)
        return _Version(lease, _digest(body), None if lease is not None else self._modified())

    def _modified(self) -> float | None:
        try:
            stamp = self.path.fs.modified(self.path.path)
        except Exception:  # a backend without dates (or the object just went): the waiter's own clock decides
            return None
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()

    def swap(self, body: bytes, token: str) -> str | None:
        """Replace the lease if it is still at version ``token``; the new token, or None when it was not."""
        if self.s3:
            try:
                return self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, IfMatch=token)["ETag"]
            except self.s3.exceptions.ClientError as exc:
                if exc.response["Error"]["Code"] in ("PreconditionFailed", "NoSuchKey", "ConditionalRequestConflict"):
                    return None
                raise
        current = self.read()
        if current is None or current.token != token:
            return None
        self.path.write_bytes(body)
        return _digest(body) if self.path.read_bytes() == body else None

    def delete(self, token: str) -> None:
        if self.s3:
            try:
                self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=token)
            except self.s3.exceptions.ClientError:
                pass  # taken over meanwhile: the lease is not ours to delete
            return
        current = self.read()
        if current is not None and current.token == token:
            self.path.unlink(missing_ok=True)

    def _etag(self) -> str:
        return self.s3.head_object(Bucket=self.bucket, Key=self.key)["ETag"]


def _lease_body(holder: str, seconds: float) -> bytes:
    # the nonce makes every version's bytes (and so its ETag) unique
    return json.dumps({"holder": holder, "expires": time.time() + seconds, "nonce": uuid.uuid4().hex}).encode()


def _dead(current: _Version, seconds: float, seen_for: float) -> bool:
    """Whether a lease's holder is gone: its expiry passed, or a body that is no lease is a lease time old."""
    if current.lease is not None:
        return current.lease["expires"] < time.time()
    age = seen_for if current.modified is None else time.time() - current.modified
    return age >= seconds


def _who(current: _Version, seconds: float) -> str:
    if current.lease is not None:
        return current.lease["holder"]
    return f"an unreadable lease (empty, not JSON or not a lease); taking it over once it is {seconds:g} s old"


@contextmanager
def _lease(path: Location, timeout_s: float) -> Iterator[Held]:
    seconds = float(os.environ.get(LEASE_SECONDS_ENV, "60"))
    lease, holder, said, first_seen = _LeaseObject(path), _holder(), False, {}
    deadline = time.monotonic() + timeout_s
    while True:
        token = lease.create(_lease_body(holder, seconds))
        if token:
            break
        current = lease.read()  # None: released meanwhile, created again on the next turn
        if current is not None:
            seen_for = time.monotonic() - first_seen.setdefault(current.token, time.monotonic())
            if _dead(current, seconds, seen_for):
                token = lease.swap(_lease_body(holder, seconds), current.token)  # its holder died: take it over
                if token:
                    break
            if not said:
                print(f"synbench: waiting for {path.name}, held by {_who(current, seconds)}", file=sys.stderr)
                said = True
        if time.monotonic() > deadline:
            raise StoreError(f"{str(path)!r} is still held after {timeout_s:.0f} s; wait for its writer.")
        time.sleep(min(1.0, seconds / 10))
    held, stop = Held(), threading.Event()

    def renew() -> None:
        nonlocal token
        renewed = time.monotonic()
        while not stop.wait(seconds / 3):
            try:
                new_token = lease.swap(_lease_body(holder, seconds), token)
            except Exception:  # the store did not answer: try again, unless the lease may have expired meanwhile
                if time.monotonic() - renewed < seconds:
                    continue
                new_token = None
            if new_token is None:
                held.lost.set()
                return
            token, renewed = new_token, time.monotonic()

    renewer = threading.Thread(target=renew, name="synbench-lease", daemon=True)
    renewer.start()
    try:
        yield held
    finally:
        stop.set()
        renewer.join()
        if token is not None:
            lease.delete(token)
