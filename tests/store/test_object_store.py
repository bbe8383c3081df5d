"""Roots on object storage (issue 13): a real S3 API on loopback (moto's server mode) and memory://.

Nothing of ours is mocked: the server speaks S3 over HTTP, enforces conditional writes and has no
rename; subprocesses reach it through AWS_ENDPOINT_URL like any S3 client.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import zarr

from synbench.api import evaluate
from synbench.audit.root import audit_root
from synbench.board.read import read_board
from synbench.core.errors import StoreError
from synbench.core.spec import BenchmarkSpec
from synbench.store.locks import writer_lock
from synbench.store.roots import existing_files, location, open_root, write_new

moto_server = pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")

TESTS = Path(__file__).parents[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 for the whole session; its address goes to every S3 client by env."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    settings = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    yield settings["AWS_ENDPOINT_URL"]
    server.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def bucket(s3_endpoint) -> str:
    name = f"synbench-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(name)
    return name


def _fs():
    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)


def _digests(url_or_path: str, under: str = "features.zarr") -> dict[str, str]:
    """sha256 of every chunk and label file below ``under`` (metadata and lock files aside)."""
    folder = location(url_or_path) / under
    names = sorted(n for n in existing_files(folder) if "/c/" in n)
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names}


def _run(script: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(TESTS), **(env or {})}
    return subprocess.Popen([sys.executable, "-c", script, *args], env=environment)


@pytest.fixture
def small_spec() -> BenchmarkSpec:
    return BenchmarkSpec(name="small", scales=(0.5, 1.5, 2.5), n_train=128, n_test=128, eps=(0.0, 0.2), block_size=64)


@pytest.mark.slow
def test_s3_root_scores_audits_and_repairs_like_a_local_one(bucket, small_spec, tmp_path):
    url = f"s3://{bucket}/root"
    remote = evaluate("identity:3x4x4", spec=small_spec, root=url, device="cpu", ci_replicates=4)
    local = evaluate("identity:3x4x4", spec=small_spec, root=tmp_path / "local", device="cpu", ci_replicates=4)
    assert len(remote) == 2 * 4 and (remote["score"].to_numpy() == local["score"].to_numpy()).all()
    assert (remote["score_low"].to_numpy() == local["score_low"].to_numpy()).all()
    assert _digests(url) == _digests(str(tmp_path / "local")) and len(_digests(url)) == 3 * 2 * 2 * 2
    assert audit_root(url).ok
    fs = _fs()
    chunk = next(p for p in fs.find(f"{bucket}/root/features.zarr") if p.endswith("features/s01_train/c/1/0"))
    damaged = bytearray(fs.cat_file(chunk))
    damaged[len(damaged) // 2] ^= 0x01
    fs.pipe_file(chunk, bytes(damaged))
    report = audit_root(url)
    assert not report.ok and any(f"s3://{chunk}" in p and "crc32c" in p for p in report.problems)
    assert audit_root(url, repair=True).ok and audit_root(url).ok
    assert _digests(url) == _digests(str(tmp_path / "local"))  # the block regenerated bit for bit
    kept = [p for p in fs.find(f"{bucket}/root/quarantine") if p.endswith("s01_train/c/1/0")]
    assert len(kept) == 1 and fs.cat_file(kept[0]) == bytes(damaged)  # the damaged bytes are never deleted


@pytest.mark.slow
def test_eight_concurrent_publishers_on_s3_lose_and_duplicate_nothing(bucket):
    from test_leaderboard import publish_one

    url = f"s3://{bucket}/root"
    open_root(url)
    jobs = [(url, f"model{i % 6}", 0.5 + i / 100) for i in range(8)]  # two keys published twice
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        written = pool.map(publish_one, jobs)
    parts = [p for p in _fs().find(f"{bucket}/root/leaderboard/parts") if p.endswith(".parquet")]
    assert len(parts) == 6 and sum(written) >= 6
    board = read_board(url)
    assert len(board) == 6 * 4 and not board.duplicated(["model_fingerprint", "eps", "threshold"]).any()


EXTRACT = """
import sys
from synbench.models.encoders import resolve_encoder
from synbench.stages.extract import extract_features
from synbench.core.spec import BenchmarkSpec
from synbench.store.roots import open_root
n = int(sys.argv[3]) if len(sys.argv) > 3 else 512
spec = BenchmarkSpec(scales=(0.5, 1.5, 2.5), n_train=n, n_test=n, block_size=32)
extract_features(resolve_encoder(sys.argv[2]), spec, open_root(sys.argv[1]), device="cpu")
"""


@pytest.mark.slow
def test_two_processes_racing_on_one_model_extract_once(bucket):
    shared, alone = f"s3://{bucket}/shared", f"s3://{bucket}/alone"
    runs = [_run(EXTRACT, shared, "identity:3x16x16") for _ in range(2)]
    assert [run.wait(timeout=300) for run in runs] == [0, 0]
    assert _run(EXTRACT, alone, "identity:3x16x16").wait(timeout=300) == 0
    assert _digests(shared) == _digests(alone) and len(_digests(shared)) == 3 * 2 * 16 * 2
    groups = (location(shared) / "features.zarr").glob("*/*/zarr.json")
    group = zarr.open_group(str(next(iter(groups)).parent), mode="r")
    assert group.attrs["complete"] and group.attrs["written_chunks"] == 3 * 2 * 16  # one writer wrote them all
    assert not [p for p in _fs().find(f"{bucket}/shared") if p.endswith(".lease")]


@pytest.mark.slow
def test_kill_9_mid_extraction_then_rerun_gives_identical_bytes(bucket):
    clean, killed = f"s3://{bucket}/clean", f"s3://{bucket}/killed"
    assert _run(EXTRACT, clean, "random:test_vit", "256").wait(timeout=300) == 0
    fs, prefix = _fs(), f"{bucket}/killed/features.zarr"

    def written() -> int:
        return sum(1 for p in (fs.find(prefix) if fs.exists(prefix) else []) if "features/" in p and "/c/" in p)

    short_lease = {"SYNBENCH_LEASE_SECONDS": "3"}
    process = _run(EXTRACT, killed, "random:test_vit", "256", env=short_lease)
    deadline = time.monotonic() + 180
    while written() < 12 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    landed = written()
    assert 0 < landed < 48, landed  # of 3 scales x 2 splits x 8 feature chunks
    # the killed writer's lease is left behind: the rerun waits for it to expire, then takes it over
    rerun = _run(EXTRACT, killed, "random:test_vit", "256", env=short_lease)
    assert rerun.wait(timeout=300) == 0
    assert _digests(killed) == _digests(clean)


@pytest.fixture(params=["memory", "s3"])
def lease_root(request, tmp_path):
    if request.param == "memory":
        return location(f"memory://leases-{uuid.uuid4().hex[:8]}")
    return location(f"s3://{request.getfixturevalue('bucket')}/leases")


def test_a_lease_admits_one_writer_at_a_time(lease_root, monkeypatch):
    monkeypatch.setenv("SYNBENCH_LEASE_SECONDS", "3")
    lock, inside, overlaps = lease_root / ".group.lock", [], []

    def write(index: int) -> None:
        with writer_lock(lock, timeout_s=60):
            inside.append(index)
            overlaps.append(len(inside))
            time.sleep(0.3)
            inside.remove(index)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(overlaps) == [1, 1, 1] and not (lease_root / ".group.lock.lease").exists()


def test_an_expired_lease_is_taken_over_and_its_old_holder_stops(lease_root, monkeypatch):
    monkeypatch.setenv("SYNBENCH_LEASE_SECONDS", "2")
    lease = lease_root / ".group.lock.lease"
    dead = {"holder": "host gone pid 1", "expires": time.time() - 1, "nonce": "x"}
    assert write_new(lease, json.dumps(dead).encode())
    start = time.monotonic()
    with writer_lock(lease_root / ".group.lock", timeout_s=30) as held:
        assert time.monotonic() - start < 5  # expired: taken over at once
        assert "pid" in json.loads(lease.read_bytes())["holder"] and json.loads(lease.read_bytes())["nonce"] != "x"
        lease.write_bytes(json.dumps({**dead, "expires": time.time() + 60}).encode())  # another writer took it
        time.sleep(2.5)  # the renewal (every 2/3 s) finds the lease is no longer its own
        with pytest.raises(StoreError, match="lease expired and another writer took it over"):
            held.check()


@pytest.mark.parametrize("body", [b"", b"not json \xff", b'{"holder": "host h pid 2", "expires": "soon"}'])
def test_an_unreadable_lease_is_a_dead_holders_taken_over_once_a_lease_time_old(lease_root, monkeypatch, capsys, body):
    monkeypatch.setenv("SYNBENCH_LEASE_SECONDS", "3")
    lease = lease_root / ".group.lock.lease"
    assert write_new(lease, body)
    start = time.monotonic()
    with writer_lock(lease_root / ".group.lock", timeout_s=20):
        waited = time.monotonic() - start
        assert json.loads(lease.read_bytes())["holder"].startswith("host ")  # ours now
    assert 1.5 < waited < 15, waited  # until it was a lease time old (S3 dates it to the second), not the timeout
    assert not lease.exists()
    err = capsys.readouterr().err
    assert err.count("synbench: waiting for .group.lock.lease") == 1 and "unreadable lease" in err


def test_memory_roots_run_the_whole_library(small_spec):
    url = f"memory://synbench-{uuid.uuid4().hex[:8]}/root"
    rows = evaluate("noise:3x4x4", spec=small_spec, root=url, device="cpu", ci_replicates=4)
    assert len(rows) == 8 and (rows["score_high"] < 0.1).all()
    assert audit_root(url).ok and len(read_board(url)) == 8


def test_url_roots_fail_with_one_clear_line(s3_endpoint):
    with pytest.raises(StoreError, match="check that the bucket exists"):
        open_root(f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/root")
    with pytest.raises(StoreError, match="cannot use 'nosuch://x/root' as a root|needs the nosuch:// backend"):
        open_root("nosuch://x/root")
    assert open_root("file:///tmp/synbench-file-url-test") == Path("/tmp/synbench-file-url-test")


def _synbench(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(TESTS), **(env or {})}
    environment = {k: v for k, v in environment.items() if v and not k.startswith("PREFECT_")}
    command = [sys.executable, "-m", "synbench.cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=environment, timeout=600)


@pytest.mark.slow
@pytest.mark.flow
def test_the_cli_on_an_s3_root(bucket, tmp_path, s3_endpoint):
    """The issue's check: run, leaderboard, audit on s3://, and the group opens with plain zarr."""
    url = f"s3://{bucket}/root"
    run = _synbench("run", "identity:1x8x8", "--spec", "demo", "--root", url, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = json.loads(_synbench("leaderboard", "--root", url, "--format", "json", cwd=tmp_path).stdout)
    assert len(rows) == 6 * 4 and {r["model"] for r in rows} == {"identity:1x8x8"}
    audit = _synbench("audit", "--root", url, cwd=tmp_path)
    assert audit.returncode == 0 and "0 problem(s)" in audit.stdout
    fingerprint, data_hash = rows[0]["model_fingerprint"], rows[0]["data_hash"]
    group = zarr.open_group(
        f"{url}/features.zarr/{fingerprint}/{data_hash}", mode="r", storage_options={"endpoint_url": s3_endpoint}
    )
    assert group.attrs["complete"] and group["features/s00_test"].shape == (512, 64)
    assert not list(tmp_path.iterdir())  # nothing local: no folder named s3:


def test_the_demo_refuses_an_object_store_root(bucket, capsys):
    from synbench.cli.main import main

    assert main(["demo", "--root", f"s3://{bucket}/root"]) == 2
    assert "pass a local folder with --root" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.flow
def test_dask_workers_sharing_no_disk_fill_one_board(bucket, tmp_path):
    """Two dask worker processes, each in its own folder, benchmark three models into one s3:// root."""
    pytest.importorskip("prefect_dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = []
    try:
        for name in ("node-a", "node-b"):
            home = tmp_path / name
            home.mkdir()
            environment = {**os.environ, "PREFECT_HOME": str(home / ".prefect")}
            command = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1"]
            command += ["--nthreads", "1", "--local-directory", str(home), "--name", name]
            workers.append(subprocess.Popen(command, cwd=home, env=environment, stderr=subprocess.DEVNULL))
        url = f"s3://{bucket}/root"
        models = ["identity:1x4x4", "noise:1x4x4", "identity:2x4x4"]
        batch = _synbench("batch", *models, "--spec", "demo", "--ci", "none", "--root", url, "--dask", address)
        assert batch.returncode == 0, batch.stderr
        board = read_board(url)
        assert sorted(board["model"].unique()) == sorted(models)
        assert len(board) == 3 * 6 * 4 and not board.duplicated(["model_fingerprint", "eps", "threshold"]).any()
        assert not any((tmp_path / n / "root").exists() for n in ("node-a", "node-b"))
    finally:
        for process in [*workers, scheduler]:
            process.terminate()
            process.wait(timeout=30)
