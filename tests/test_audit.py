import pandas as pd

from synbench.audit import audit_root
from synbench.encoders import resolve_encoder
from synbench.extract import extract_features
from synbench.leaderboard import read_board
from synbench.stages import curves_stored, probe_stored, publish_scores, write_recipe


def _benchmark(root, spec, model_ref="identity:3x4x4"):
    write_recipe(spec, root)
    encoder = resolve_encoder(model_ref)
    extract_features(encoder, spec, root, device="cpu")
    curves = curves_stored(root, probe_stored(root, encoder.fingerprint, spec), spec)
    return publish_scores(root, encoder.fingerprint, spec, curves, encoder.ref.text)[0]


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_clean_root_audits_clean_and_recomputes_every_score(root, tiny_spec):
    _benchmark(root, tiny_spec)
    report = audit_root(root)
    assert report.ok and report.groups == 1 and report.chunks == 32
    assert report.scores_checked == len(read_board(root)) == 2 * 4


def test_one_flipped_byte_is_found_and_repaired_without_losing_it(root, tiny_spec):
    _benchmark(root, tiny_spec)
    chunk = next(root.glob("features.zarr/*/*/features/s02_test/c/1/0"))
    original = chunk.read_bytes()
    _flip_byte(chunk)
    damaged = chunk.read_bytes()
    report = audit_root(root)
    assert not report.ok
    assert any(
        "crc32c" in p and "features/s02_test" in p and "chunk 1" in p and str(chunk) in p for p in report.problems
    )
    repaired = audit_root(root, repair=True)
    assert repaired.ok and len(repaired.repaired) == 1
    assert chunk.read_bytes() == original
    kept = list((root / "quarantine").rglob("s02_test/c/1/0"))
    assert len(kept) == 1 and kept[0].read_bytes() == damaged
    assert audit_root(root).ok


def test_tampered_score_is_reported(root, tiny_spec):
    part = _benchmark(root, tiny_spec)
    frame = pd.read_parquet(part)
    frame.loc[0, "score"] += 1e-6
    frame.to_parquet(part)
    report = audit_root(root)
    assert len(report.problems) == 1 and "but the stored features give" in report.problems[0]


def test_tampered_labels_are_reported_and_repaired(root, tiny_spec):
    import zarr

    _benchmark(root, tiny_spec)
    group_path = next(root.glob("features.zarr/*/*/zarr.json")).parent
    labels = zarr.open_group(str(group_path), mode="r+")["labels/s01_test"]
    original = labels[:32].copy()
    labels[:32] = 1 - original  # a valid chunk (good crc32c) holding the wrong labels
    report = audit_root(root)
    assert any(
        p.startswith("labels differ from the regenerated ones") and "labels/s01_test" in p and "chunk 0" in p
        for p in report.problems
    )
    assert audit_root(root, repair=True).ok
    assert (zarr.open_group(str(group_path), mode="r")["labels/s01_test"][:32] == original).all()


def test_missing_chunks_are_reported_and_repaired(root, tiny_spec):
    _benchmark(root, tiny_spec)
    next(root.glob("features.zarr/*/*/features/s00_train/c/0/0")).unlink()
    report = audit_root(root)
    assert any(p.startswith("missing chunk") and "s00_train" in p for p in report.problems)
    assert audit_root(root, repair=True).ok


def test_unreadable_parquet_is_reported(root, tiny_spec):
    part = _benchmark(root, tiny_spec)
    part.write_bytes(part.read_bytes()[:100])
    report = audit_root(root)
    assert any("unreadable Parquet file" in p and part.name in p for p in report.problems)
