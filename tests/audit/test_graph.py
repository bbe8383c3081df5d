"""The artifact graph (issue 22, items 1-3): every node records its parents, the audit walks the graph and
repair regenerates from the sources, never from data it cannot verify."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import zarr

from synbench.agree.agreement import agree
from synbench.api import evaluate
from synbench.audit.root import audit_root
from synbench.board.read import read_board
from synbench.core.errors import SynBenchError
from synbench.store.features import manifest_digest
from synbench.store.parquet import atomic_write_parquet, read_frame, read_table, stored_parents


def _run(root, spec, model="identity:3x4x4", replicates=0):
    return evaluate(model, spec=spec, root=root, device="cpu", ci_replicates=replicates)


def _group(root):
    return next(root.glob("features.zarr/*/*/zarr.json")).parent


def _swap(first, second):
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)


def _scores(root):
    return read_board(root).sort_values(["eps", "threshold"])["score"].to_numpy()


def test_every_table_names_its_parents(root, tiny_spec):
    _run(root, tiny_spec, replicates=4)
    group = zarr.open_group(str(_group(root)), mode="r")
    assert group.attrs["content_digest"] == manifest_digest(group.attrs["chunk_digests"])
    part = next(root.glob("leaderboard/parts/*.parquet"))
    parents = stored_parents(read_table(part))
    assert {name.split("/")[0] for name in parents} == {"features.zarr", "curves", "probes"}
    curves = next(name for name in parents if name.startswith("curves/"))
    assert any(name.startswith("oracles/") for name in stored_parents(read_table(root / curves)))
    assert audit_root(root).ok


def test_a_half_made_group_resumes_and_is_repaired(root, tiny_spec):
    """Item 1: killed after features/sK was created and before labels/sK."""
    _run(root, tiny_spec)
    before = _scores(root)
    group_path = _group(root)
    shutil.rmtree(group_path / "labels" / "s02_test")
    zarr.open_group(str(group_path), mode="r+").update_attributes({"complete": False})
    report = audit_root(root)
    assert any("labels/s02_test" in p and "missing" in p for p in report.problems)
    assert audit_root(root, repair=True).ok
    assert audit_root(root).ok and np.array_equal(_scores(root), before)
    shutil.rmtree(group_path / "labels" / "s01_train")  # and a plain rerun resumes it too
    zarr.open_group(str(group_path), mode="r+").update_attributes({"complete": False})
    _run(root, tiny_spec)
    assert audit_root(root).ok


def test_repair_never_rebuilds_a_manifest_from_swapped_chunks(root, tiny_spec):
    """Item 2: two feature chunks swapped and the manifest removed: repair goes back to the encoder."""
    _run(root, tiny_spec)
    before = _scores(root)
    group_path = _group(root)
    _swap(group_path / "features/s00_test/c/0/0", group_path / "features/s03_test/c/0/0")
    zarr.open_group(str(group_path), mode="r+").update_attributes({"chunk_digests": {}, "content_digest": ""})
    assert any("no chunk manifest" in p for p in audit_root(root).problems)
    repaired = audit_root(root, repair=True)
    assert repaired.ok and any("from the encoder" in line for line in repaired.repaired)
    assert np.array_equal(_scores(root), before) and audit_root(root).ok


def test_a_consistent_forgery_is_caught_by_the_deep_audit(root, tiny_spec):
    """Chunks swapped and the manifest re-digested to match: only the encoder can tell."""
    _run(root, tiny_spec)
    group_path = _group(root)
    group = zarr.open_group(str(group_path), mode="r+")
    manifest = dict(group.attrs["chunk_digests"])
    _swap(group_path / "features/s00_test/c/0/0", group_path / "features/s03_test/c/0/0")
    manifest["features/s00_test/0"], manifest["features/s03_test/0"] = (
        manifest["features/s03_test/0"],
        manifest["features/s00_test/0"],
    )
    group.update_attributes({"chunk_digests": manifest, "content_digest": manifest_digest(manifest)})
    deep = audit_root(root, deep=True)
    assert any("differ from what the generator and the encoder give" in p for p in deep.problems)
    assert audit_root(root, repair=True, deep=True).ok and audit_root(root, deep=True).ok


def test_re_digested_edits_and_borrowed_inputs_are_found(root, tiny_spec):
    """Item 3: an edited replicate score, a replicate table cut short, a part that borrows another model's curves."""
    _run(root, tiny_spec, replicates=4)
    part = next(root.glob("leaderboard/parts/*.parquet"))
    table = read_table(part)
    rows = table.to_pandas()
    rows.at[0, "score_replicates"] = np.asarray(rows.at[0, "score_replicates"]) + 0.05
    atomic_write_parquet(part, rows, stored_parents(table))  # re-digested, parents kept
    assert any("differ from those the stored features give" in p for p in audit_root(root).problems)
    assert audit_root(root, repair=True).ok

    half = next(root.glob("probes/*-half4.parquet"))
    cut = read_frame(half)
    atomic_write_parquet(half, cut[cut["replicate"] < 2], stored_parents(read_table(half)))
    problems = audit_root(root).problems
    assert any(half.name in p and "differs from its recomputation" in p for p in problems)
    assert any(half.name in p and "now has digest" in p for p in problems)  # the part made from it
    assert audit_root(root, repair=True).ok

    _run(root, tiny_spec, model="noise:3x4x4", replicates=4)
    noise = next(
        p for p in root.glob("leaderboard/parts/*.parquet") if read_frame(p)["model"].iloc[0].startswith("noise")
    )
    identity_curves = read_frame(part)["curves_file"].iloc[0]
    planted = read_frame(noise).assign(curves_file=identity_curves)
    planted.to_parquet(noise)  # no digest, no parents
    problems = audit_root(root).problems
    assert any("records no digest" in p for p in problems) and any("of another model" in p for p in problems)
    assert audit_root(root, repair=True).ok
    assert (
        read_frame(
            next(p for p in root.glob("leaderboard/parts/*.parquet") if "noise" in read_frame(p)["model"].iloc[0])
        )["curves_file"].iloc[0]
        != identity_curves
    )


def test_real_data_chunks_and_agreement_tables_are_checked(root, tiny_spec):
    for model in ("identity:1x8x8", "noise:1x8x8", "identity:1x4x4"):
        _run(root, tiny_spec, model=model)
    agree(root, "digits", device="cpu")
    assert audit_root(root).ok
    wide = [
        g.parent
        for g in root.glob("real.zarr/*/*/zarr.json")
        if zarr.open_group(str(g.parent))["features"].shape[1] == 64
    ]
    first, second = (group / "features/c/0/0" for group in wide)
    _swap(first, second)
    assert any("differ from the manifest" in p for p in audit_root(root).problems)
    _swap(first, second)
    stats = next(root.glob("agreement/*-stats.parquet"))
    table = read_table(stats)
    for edit in ({"kendall_tau": 0.99}, {"kendall_tau_low": -0.5}, {"spearman_rho_high": 0.2}):
        atomic_write_parquet(stats, table.to_pandas().assign(**edit), stored_parents(table))  # re-digested
        assert any("statistics differ" in p for p in audit_root(root).problems), edit
    atomic_write_parquet(stats, table.to_pandas(), stored_parents(table))
    models = next(root.glob("agreement/*-models.parquet"))
    rows = read_table(models)
    edited = rows.to_pandas()
    noise = edited["model"] == "noise:1x8x8"
    edited.loc[noise, "correct_counts"] = pd.Series([[5] * 1797] * int(noise.sum()), index=edited.index[noise])
    atomic_write_parquet(models, edited, stored_parents(rows))
    assert any("the accuracy of 'noise:1x8x8' differs" in p for p in audit_root(root).problems)
    report = audit_root(root, repair=True)  # only agree can remake agreement tables: they go to quarantine
    assert report.ok and any("rerun synbench agree" in line for line in report.repaired)
    assert not list(root.glob("agreement/*-stats.parquet")) and list(root.glob("quarantine/*/agreement/*"))


def test_a_corrupt_real_data_chunk_is_named_then_set_aside_and_agree_remakes_it(root, tiny_spec):
    for model in ("identity:1x8x8", "noise:1x8x8", "identity:1x4x4"):
        _run(root, tiny_spec, model=model)
    first, _ = agree(root, "digits", device="cpu")
    chunk = next(root.glob("real.zarr/*/*/features/c/0/0"))
    good = chunk.read_bytes()
    chunk.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one flipped bit of the crc32c
    assert any("corrupt chunk (crc32c mismatch) in features/c/0/0" in p for p in audit_root(root).problems)
    with pytest.raises(SynBenchError, match="are damaged .* run synbench audit --repair"):
        agree(root, "digits", device="cpu")
    report = audit_root(root, repair=True)
    assert report.ok, report.problems
    assert any(line.startswith("moved real.zarr/") and "rerun synbench agree" in line for line in report.repaired)
    assert not list(root.glob("agreement/*-models.parquet"))  # made from the damaged group: set aside too
    again, _ = agree(root, "digits", device="cpu")
    assert np.allclose(again["accuracy"], first["accuracy"]) and audit_root(root).ok
