import errno
import os

import pytest

from synbench.errors import StoreError
from synbench.store import ROOT_MARKER, atomic_write_bytes, open_root, safe_path, writer_lock


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


def test_lock_of_a_dead_process_is_taken_over(tmp_path):
    lock = tmp_path / ".x.lock"
    lock.write_text("999999999")  # no such pid
    with writer_lock(lock, timeout_s=2):
        assert lock.read_text() == str(os.getpid())
    assert not lock.exists()


def test_lock_held_by_a_live_process_times_out(tmp_path):
    lock = tmp_path / ".x.lock"
    lock.write_text(str(os.getppid()))
    with pytest.raises(StoreError, match="is held by process"):
        with writer_lock(lock, timeout_s=0.3):
            pass
    assert lock.exists()
