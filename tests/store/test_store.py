import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synbench.core.errors import StoreError
from synbench.store.locks import writer_lock
from synbench.store.roots import ROOT_MARKER, atomic_write_bytes, open_root, safe_path


def test_new_root_is_marked(tmp_path):
    root = open_root(tmp_path / "new")
    assert (root / ROOT_MARKER).is_file() and open_root(root) == root


def test_root_with_another_projects_files_is_refused(tmp_path):
    (tmp_path / "thesis.tex").write_text("mine")
    with pytest.raises(StoreError, match=r"holds files that are not SynBench's \(e.g. 'thesis.tex'\).*--root"):
        open_root(tmp_path)
    assert not (tmp_path / ROOT_MARKER).exists()


def test_unwritable_root_is_refused(tmp_path):
    if os.geteuid() == 0:  # root ignores permission bits: use a path under a file instead
        (tmp_path / "file").write_text("x")
        target = tmp_path / "file" / "root"
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        target = tmp_path / "ro" / "root"
    with pytest.raises(StoreError, match="cannot write to root .*writable folder"):
        open_root(target)


def test_missing_root_for_readers(tmp_path):
    with pytest.raises(StoreError, match="not a SynBench root"):
        open_root(tmp_path / "nothing", create=False)


@pytest.mark.parametrize("part", ["..", "../x", "a/b", "", ".", "x\x00"])
def test_path_traversal_is_rejected(tmp_path, part):
    with pytest.raises(StoreError, match="must stay inside the root"):
        safe_path(tmp_path, "probes", part)


def test_atomic_write_leaves_old_file_when_disk_is_full(tmp_path, monkeypatch):
    target = tmp_path / "part.parquet"
    target.write_bytes(b"old")

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["part.parquet"]


HOLD_SCRIPT = """
import sys, time
from pathlib import Path
from synbench.store.locks import writer_lock
with writer_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def _hold(lock: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(lock)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_an_empty_or_garbage_lock_file_does_not_block(tmp_path):
    lock = tmp_path / ".x.lock"
    for content in ("", "999999999", "not a pid"):  # e.g. a full disk left the lock file empty
        lock.write_text(content)
        start = time.monotonic()
        with writer_lock(lock, timeout_s=2):
            assert "pid" in lock.with_name(".x.lock.holder").read_text()
        assert time.monotonic() - start < 1 and not lock.with_name(".x.lock.holder").exists()


def test_a_held_lock_names_its_holder_and_times_out(tmp_path, capsys):
    lock = tmp_path / ".x.lock"
    process = _hold(lock)
    try:
        with pytest.raises(StoreError, match=f"still held by host .* pid {process.pid} since"):
            with writer_lock(lock, timeout_s=0.3):
                pass
        assert f"waiting for {tmp_path.name}/.x.lock, held by host" in capsys.readouterr().err
    finally:
        process.kill()
        process.wait()


def test_the_kernel_releases_the_lock_of_a_killed_holder(tmp_path):
    lock = tmp_path / ".x.lock"
    process = _hold(lock)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    start = time.monotonic()
    with writer_lock(lock, timeout_s=5):
        pass
    assert time.monotonic() - start < 1


CREATE_SCRIPT = """
import sys
from synbench.store.roots import open_root
open_root(sys.argv[1])
"""


def test_concurrent_creators_of_a_new_root_all_succeed(tmp_path):
    for round_ in range(5):
        target = tmp_path / f"root{round_}"
        procs = [
            subprocess.Popen([sys.executable, "-c", CREATE_SCRIPT, str(target)], stderr=subprocess.PIPE)
            for _ in range(4)
        ]
        errors = [p.communicate()[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
        assert sorted(os.listdir(target)) == [ROOT_MARKER]
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / f".{ROOT_MARKER}.abc123.tmp").write_bytes(b"{")  # a creator killed mid-write
    assert (open_root(stale) / ROOT_MARKER).is_file()


def test_files_follow_the_umask(tmp_path):
    atomic_write_bytes(tmp_path / "part.parquet", b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "part.parquet").stat().st_mode & 0o777 == 0o666 & ~mask


def test_no_write_goes_through_a_symlink(tmp_path):
    from synbench.audit.root import audit_root

    root = open_root(tmp_path / "root")
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "leaderboard").mkdir()
    (root / "leaderboard" / "parts").symlink_to(outside)
    with pytest.raises(StoreError, match="is a symbolic link; SynBench never reads or writes through links"):
        safe_path(root, "leaderboard", "parts", "x.parquet")
    report = audit_root(root)
    assert any(p.startswith("symbolic link") and "leaderboard/parts" in p for p in report.problems)
    assert not list(outside.iterdir())
