import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from synbench.core.errors import DataError, IncompleteError, SynBenchError
from synbench.method.generate import block_inputs
from synbench.models.encoders import resolve_encoder
from synbench.stages.extract import extract_features, resolve_device
from synbench.store.features import open_feature_group, read_split


def _digest_tree(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != "zarr.json" and not p.name.endswith(".lock")  # the OS lock's empty file stays
    }


def test_plain_zarr_reads_what_we_computed(tiny_spec, root):
    encoder = resolve_encoder("py:encoders_for_tests:small_linear")
    result = extract_features(encoder, tiny_spec, root, device="cpu")
    assert result.written_chunks == 4 * 2 * 2 and result.skipped_chunks == 0
    group = zarr.open_group(str(result.path), mode="r")  # plain zarr, no synbench
    assert group.attrs["complete"] is True
    for key in (
        "spec",
        "spec_hash",
        "model",
        "model_fingerprint",
        "weights_digest",
        "torch_version",
        "timm_version",
        "device",
        "dtype",
    ):
        assert key in group.attrs
    assert group.attrs["model_fingerprint"] == encoder.fingerprint and group.attrs["spec"]["n_train"] == 64
    array = group["features/s02_test"]
    assert array.dtype == np.float32 and array.shape == (64, 6) and array.chunks == (32, 6)
    assert [type(c).__name__ for c in array.metadata.codecs][-1] == "Crc32cCodec"
    expected = np.concatenate(
        [encoder.represent(block_inputs(tiny_spec, encoder.preprocess, 2, "test", b)[1]).numpy() for b in range(2)]
    )
    assert np.array_equal(array[:], expected)
    labels = np.concatenate([block_inputs(tiny_spec, encoder.preprocess, 2, "test", b)[0] for b in range(2)])
    assert np.array_equal(group["labels/s02_test"][:], labels)


def test_rerun_writes_nothing_and_resume_is_byte_identical(tiny_spec, root, tmp_path):
    encoder = resolve_encoder("identity:3x4x4")
    path = extract_features(encoder, tiny_spec, root, device="cpu").path
    reference = _digest_tree(path)
    mtimes = {p: p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()}
    again = extract_features(encoder, tiny_spec, root, device="cpu")
    assert again.written_chunks == 0 and again.skipped_chunks == 16
    assert {p: p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()} == mtimes
    # an interrupted run: some chunks missing, no completion marker, a stray partial file
    removed = [path / "features/s01_train/c/1/0", path / "labels/s03_test/c/0"]
    for file in removed:
        file.unlink()
    (path / "features/s00_test/c/0/0.deadbeef.partial").write_bytes(b"half")
    zarr.open_group(str(path), mode="r+").attrs["complete"] = False
    with pytest.raises(IncompleteError, match="no completion marker"):
        read_split(open_feature_group(root, encoder.fingerprint, tiny_spec.data_hash), 1, "train")
    resumed = extract_features(encoder, tiny_spec, root, device="cpu")
    assert resumed.written_chunks == 2
    assert _digest_tree(path) == reference


def test_unwritten_chunks_are_detected(tiny_spec, root):
    encoder = resolve_encoder("identity:3x4x4")
    path = extract_features(encoder, tiny_spec, root, device="cpu").path
    (path / "features/s00_train/c/1/0").unlink()
    with pytest.raises(IncompleteError, match="1 unwritten chunks"):
        read_split(open_feature_group(root, encoder.fingerprint, tiny_spec.data_hash), 0, "train")


def test_nan_features_leave_nothing_behind(tiny_spec, root):
    encoder = resolve_encoder("py:encoders_for_tests:nan_features")
    with pytest.raises(DataError, match="NaN or Inf"):
        extract_features(encoder, tiny_spec, root, device="cpu")
    assert open_feature_group(root, encoder.fingerprint, tiny_spec.data_hash) is None


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(SynBenchError, match="use auto, cpu or cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(SynBenchError, match="sees no CUDA GPU"):
            resolve_device("cuda")


KILL_SCRIPT = """
import sys
from pathlib import Path
from synbench.models.encoders import resolve_encoder
from synbench.stages.extract import extract_features
from synbench.core.spec import BenchmarkSpec
from synbench.store.roots import open_root
spec = BenchmarkSpec(scales=(0.5, 1.5, 2.5), n_train=512, n_test=512, block_size=32)
extract_features(resolve_encoder("random:test_vit"), spec, open_root(sys.argv[1]), device="cpu")
"""


def _chunk_count(root: Path) -> int:
    return sum(1 for p in root.rglob("features/*/c/*/0") if p.is_file())


@pytest.mark.slow
def test_kill_9_midway_then_rerun_gives_identical_bytes(tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(clean)], check=True)
    kills = []
    for target in (10, 50):  # of 96 feature chunks
        process = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(killed)])
        deadline = time.monotonic() + 120
        while _chunk_count(killed) < target and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills.append(_chunk_count(killed))
    assert all(0 < k < 96 for k in kills), kills  # both kills landed midway
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(killed)], check=True)
    clean_tree, killed_tree = _digest_tree(clean / "features.zarr"), _digest_tree(killed / "features.zarr")
    assert clean_tree == killed_tree and len(clean_tree) == 3 * 2 * 2 * 16
    assert not list(killed.rglob("*.partial")) and not list(killed.rglob("*.holder"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_extraction_scores_like_fp32(tiny_spec, tmp_path):
    from synbench.method.score import score_table
    from synbench.stages.probes import probe_group
    from synbench.store.roots import open_root

    scores = {}
    for dtype in ("fp32", "bf16"):
        root = open_root(tmp_path / dtype)
        encoder = resolve_encoder("random:test_vit")
        extract_features(encoder, tiny_spec, root, device="cuda", dtype=dtype)
        group = open_feature_group(root, encoder.fingerprint, tiny_spec.data_hash)
        assert group.attrs["device"].startswith("cuda")
        scores[dtype] = score_table(probe_group(group, tiny_spec), tiny_spec.scales, (0.6,))[0]["score"]
    assert abs(scores["fp32"] - scores["bf16"]) < 0.01  # issue 4: bf16 within 0.01 of fp32


def test_simulated_cuda_oom_halves_the_micro_batch(tiny_spec, root, monkeypatch):
    from synbench.stages.extract import _BlockEncoder

    encoder = resolve_encoder("identity:3x4x4")
    real = encoder.represent
    sizes = []

    def represent(inputs):
        sizes.append(len(inputs))
        if len(inputs) > 8:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real(inputs)

    monkeypatch.setattr(encoder, "represent", represent)
    block = block_inputs(tiny_spec, encoder.preprocess, 0, "train", 0)[1]
    encode = _BlockEncoder(encoder, torch.device("cpu"), "fp32", batch_size=32)
    features = encode(block)
    assert encode.batch_size == 8 and sizes[:3] == [32, 16, 8]
    assert np.array_equal(features, real(block).numpy())


OVERLAP_SCRIPT = KILL_SCRIPT.replace('resolve_encoder("random:test_vit")', 'resolve_encoder("identity:3x16x16")')


@pytest.mark.slow
def test_overlapping_runs_of_one_model_write_once(tmp_path):
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    runs = [subprocess.Popen([sys.executable, "-c", OVERLAP_SCRIPT, str(shared)]) for _ in range(2)]
    assert [run.wait(timeout=300) for run in runs] == [0, 0]
    subprocess.run([sys.executable, "-c", OVERLAP_SCRIPT, str(alone)], check=True)
    assert _digest_tree(shared / "features.zarr") == _digest_tree(alone / "features.zarr")
    group = zarr.open_group(str(next((shared / "features.zarr").glob("*/*"))), mode="r")
    assert group.attrs["complete"] and group.attrs["written_chunks"] == 3 * 2 * 16 * 1
