import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synbench.audit.root import audit_root
from synbench.board.read import read_board
from synbench.models.encoders import resolve_encoder
from synbench.stages.curves import curves_stored, publish_scores
from synbench.stages.extract import extract_features
from synbench.stages.probes import probe_stored, replicates_stored, write_recipe


def _benchmark(root, spec, model_ref="identity:3x4x4", replicates=0):
    write_recipe(spec, root)
    encoder = resolve_encoder(model_ref)
    extract_features(encoder, spec, root, device="cpu")
    curves = curves_stored(root, probe_stored(root, encoder.fingerprint, spec), spec)
    intervals = replicates_stored(root, encoder.fingerprint, spec, replicates)
    return publish_scores(root, encoder.fingerprint, spec, curves, encoder.ref.text, intervals)[0]


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
    assert any("differ from those the stored features give" in p for p in report.problems)
    assert all(part.name in p for p in report.problems)  # rewritten by hand: it records no digest either
    repaired = audit_root(root, repair=True)
    assert repaired.ok and "published" in repaired.repaired[0]
    assert np.allclose(pd.read_parquet(part)["score"], frame["score"] - np.where(frame.index == 0, 1e-6, 0))


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


def _noise_and_identity(root, spec):
    return _benchmark(root, spec, "noise:1x8x8"), _benchmark(root, spec, "identity:1x8x8")


def test_a_chunk_swapped_in_from_another_model_is_caught_and_restored(root, tiny_spec):
    from synbench.models.encoders import resolve_encoder

    noise_part, _ = _noise_and_identity(root, tiny_spec)
    original = pd.read_parquet(noise_part)["score"].to_numpy()
    noise_fp = resolve_encoder("noise:1x8x8").fingerprint
    identity_fp = resolve_encoder("identity:1x8x8").fingerprint
    relative = "features/s02_train/c/0/0"
    target = next(root.glob(f"features.zarr/{noise_fp}/*/{relative}"))
    target.write_bytes(next(root.glob(f"features.zarr/{identity_fp}/*/{relative}")).read_bytes())  # valid crc32c
    report = audit_root(root)
    assert any("differs from the extraction's manifest" in p and "s02_train" in p for p in report.problems)
    repaired = audit_root(root, repair=True)
    assert repaired.ok, repaired.problems
    assert np.array_equal(pd.read_parquet(noise_part)["score"].to_numpy(), original)
    assert audit_root(root).ok


def test_edited_tables_are_recomputed_and_rebuilt(root, tiny_spec):
    part, _ = _noise_and_identity(root, tiny_spec)
    probe = next(root.glob("probes/*.parquet"))
    table = pd.read_parquet(probe)
    good = table.copy()
    table["accuracy"] = 0.97  # e.g. a noise control made to look perfect
    table.to_parquet(probe)
    curves = next(root.glob("curves/*.parquet"))
    report = audit_root(root)
    assert any(str(probe) in p and "differs from its recomputation" in p for p in report.problems)
    repaired = audit_root(root, repair=True)
    assert repaired.ok and any("rebuilt" in line for line in repaired.repaired)
    assert np.allclose(pd.read_parquet(probe)["accuracy"], good["accuracy"]) and curves.is_file()
    assert list((root / "quarantine").rglob(probe.name))


def test_an_edited_part_is_flagged_by_readers_and_the_audit(root, tiny_spec, capsys):
    from synbench.board.read import read_board

    part = _benchmark(root, tiny_spec)
    table = pq.read_table(part)
    frame = table.to_pandas()
    frame["model"] = "someone-else"  # edited in place, the writer's digest kept
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(table.schema.metadata), part
    )
    assert read_board(root).empty and "edited after publishing" in capsys.readouterr().err
    report = audit_root(root)
    assert any("edited after publishing" in p for p in report.problems)
    assert audit_root(root, repair=True).ok and set(read_board(root)["model"]) == {"identity:3x4x4"}


def test_a_part_rewritten_without_its_digest_is_skipped_until_repair(root, tiny_spec, capsys):
    from synbench.board.read import read_board

    part = _benchmark(root, tiny_spec)
    pd.read_parquet(part).assign(score=0.999, score_dm=0.999).to_parquet(part)  # pandas drops our metadata
    assert read_board(root).empty and "records no digest of its rows" in capsys.readouterr().err
    assert not audit_root(root).ok
    repaired = audit_root(root, repair=True)
    assert repaired.ok and len(repaired.repaired) == len(set(repaired.repaired))
    assert (read_board(root)["score"] < 0.999).any()


def test_nan_part_does_not_break_the_board_and_fails_the_audit(root, tiny_spec, capsys):
    from synbench.board.read import read_board
    from synbench.store.parquet import atomic_write_parquet

    part = _benchmark(root, tiny_spec)
    good = pd.read_parquet(part)
    bad = good.assign(score=np.nan, model_fingerprint="other", model="broken")
    atomic_write_parquet(root / "leaderboard" / "parts" / "broken.parquet", bad)
    board = read_board(root)
    assert set(board["model"]) == {"identity:3x4x4"} and "non-finite score" in capsys.readouterr().err
    assert any("non-finite score" in p for p in audit_root(root).problems)


def test_missing_part_and_leftover_temp_files_are_reported_and_fixed(root, tiny_spec):
    from synbench.board.read import read_board

    part = _benchmark(root, tiny_spec)
    part.rename(part.with_name(f".{part.name}.k1ll3d.tmp"))  # kill -9 during publish
    report = audit_root(root)
    assert any("have no published part" in p for p in report.problems)
    assert any(p.startswith("leftover temp file") for p in report.problems)
    repaired = audit_root(root, repair=True)
    assert repaired.ok and len(read_board(root)) == 8 and not list(root.rglob("*.tmp"))


def test_a_tampered_replicate_table_is_found_and_rebuilt(root, tiny_spec):
    _benchmark(root, tiny_spec, replicates=6)
    before = read_board(root)[["eps", "threshold", "score_low", "score_high"]]
    assert before["score_low"].notna().all() and audit_root(root).ok
    table_file = next(root.glob("probes/*-half6.parquet"))
    table = pd.read_parquet(table_file)
    table.loc[table["replicate"] == 2, "accuracy"] = 1.0  # rows still well formed, values wrong
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), table_file)
    report = audit_root(root)
    assert not report.ok and any(table_file.name in problem for problem in report.problems)
    assert audit_root(root, repair=True).ok and audit_root(root).ok
    assert len(list(root.glob("quarantine/*/probes/*-half6.parquet"))) == 1  # the tampered file is kept
    rebuilt = pd.read_parquet(table_file)
    assert (rebuilt.loc[rebuilt["replicate"] == 2, "accuracy"] < 1.0).any()
    after = read_board(root)[["eps", "threshold", "score_low", "score_high"]]
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))


def test_parts_off_the_schema_are_audit_problems_and_repair_sets_them_aside(root, tiny_spec):
    from synbench.store.parquet import atomic_write_parquet

    part = _benchmark(root, tiny_spec)
    good = pd.read_parquet(part)
    parts = root / "leaderboard" / "parts"
    atomic_write_parquet(parts / "int-time.parquet", good.assign(created_at=1))  # same fingerprint as the good part
    atomic_write_parquet(parts / "no-key.parquet", good.drop(columns="model_fingerprint"))
    atomic_write_parquet(parts / "text-score.parquet", good.assign(score="0.9", model_fingerprint="other"))
    report = audit_root(root)  # never crashes
    assert not report.ok
    for name, why in (
        ("int-time", "column created_at is int64, expected a string"),
        ("no-key", "it has no model_fingerprint column"),
        ("text-score", "column score is string, expected a float"),
    ):
        assert any(f"{name}.parquet" in p and why in p for p in report.problems), (name, report.problems)
    repaired = audit_root(root, repair=True)
    assert repaired.ok, repaired.problems
    assert sorted(p.name for p in root.glob("quarantine/*/leaderboard/parts/*.parquet")) == [
        "int-time.parquet",
        "no-key.parquet",
        "text-score.parquet",
    ]
    assert [p.name for p in parts.glob("*.parquet")] == [part.name] and len(read_board(root)) == 8
