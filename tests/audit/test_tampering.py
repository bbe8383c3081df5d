"""Issue 32 (items 1-5, 7): tampering that fixes every digest it finds, on a copy of one small root.

Each case edits a stored artifact the way the red team did (rows rewritten with the project's own writer, so
digests and recorded parents match), then checks that the audit names it and that one ``audit --repair``
brings back the original board and ends in a clean audit.
"""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np
import pandas as pd
import pytest
import zarr

from synbench.agree.agreement import agree
from synbench.agree.robust_probing import robust_agreement, store_robust
from synbench.api import evaluate
from synbench.audit.root import audit_root
from synbench.board.read import read_board
from synbench.core.errors import StoreError
from synbench.core.spec import BenchmarkSpec
from synbench.store.features import manifest_digest, real_manifest
from synbench.store.parquet import atomic_write_parquet, read_frame, read_table, stored_parents

MODELS = ("identity:1x8x8", "noise:1x8x8", "identity:1x4x4")
SHOWN = ["model", "model_fingerprint", "spec_name", "spec_hash", "eps", "threshold", "score", "score_dm", "best_eps"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Three models on a tiny spec with intervals, their agreement and robust tables on digits."""
    root = tmp_path_factory.mktemp("made") / "root"
    spec = BenchmarkSpec(name="tiny", scales=(0.5, 1.5, 2.5, 3.5), n_train=64, n_test=64, eps=(0, 0.2), block_size=32)
    for model in MODELS:
        evaluate(model, spec=spec, root=root, device="cpu", ci_replicates=4)
    agree(root, "digits", device="cpu")
    store_robust(root, robust_agreement(root, "digits", device="cpu", eps=0.2))  # a gain row for every model
    return root


@pytest.fixture
def root(made, tmp_path):
    copy = tmp_path / "root"
    shutil.copytree(made, copy)
    return copy


def _board(root) -> pd.DataFrame:
    return read_board(root, warn=False)[SHOWN].sort_values(SHOWN[:6]).reset_index(drop=True)


def _part(root, model: str):
    return next(p for p in root.glob("leaderboard/parts/*.parquet") if read_frame(p)["model"].iloc[0] == model)


def _rewrite(path, frame: pd.DataFrame) -> None:
    """Rows rewritten as synbench writes them: a fresh digest, the recorded parents kept."""
    atomic_write_parquet(path, frame.reset_index(drop=True), stored_parents(read_table(path)))


def _repaired_to(root, before: pd.DataFrame) -> None:
    report = audit_root(root, repair=True)
    assert report.ok, report.problems
    pd.testing.assert_frame_equal(_board(root), before)
    assert audit_root(root).ok


def test_swapped_models_and_dropped_rows_are_named_and_one_repair_restores_the_board(root):
    """Item 1: columns a reader sees (model, r/n) and a part's coverage of its spec's eps x thresholds."""
    before = _board(root)
    identity, noise = _part(root, "identity:1x8x8"), _part(root, "noise:1x8x8")
    _rewrite(identity, read_frame(identity).assign(model="noise:1x8x8"))
    _rewrite(noise, read_frame(noise).assign(model="identity:1x8x8"))
    problems = audit_root(root).problems
    assert any(identity.name in p and "is another model" in p for p in problems), problems
    assert any(noise.name in p and "is another model" in p for p in problems)
    _repaired_to(root, before)

    for keep in (lambda f: ~np.isclose(f["threshold"], 0.7), lambda f: np.isclose(f["eps"], 0.0)):
        part = _part(root, "identity:1x8x8")
        rows = read_frame(part)
        _rewrite(part, rows[keep(rows)])
        assert any(part.name in p and "do not cover the eps x thresholds" in p for p in audit_root(root).problems)
        _repaired_to(root, before)

    part = _part(root, "identity:1x4x4")
    _rewrite(part, read_frame(part).assign(r_over_n=1.0, feature_dim=2))
    assert any(part.name in p and "is not what its features give" in p for p in audit_root(root).problems)
    _repaired_to(root, before)

    part = _part(root, "identity:1x4x4")  # a label, not a reference: the part's file name is a key of its model
    _rewrite(part, read_frame(part).assign(model="best-model"))
    assert any(part.name in p and "its model was edited" in p for p in audit_root(root).problems)
    _repaired_to(root, before)


def test_records_of_two_feature_groups_swapped_with_their_parts_are_repaired_from_the_models_that_fit(root):
    """Item 1: the group's record is what a part is published from; a control's record is checked in full."""
    before = _board(root)
    identity, noise = _part(root, "identity:1x8x8"), _part(root, "noise:1x8x8")
    for part, other in ((identity, "noise:1x8x8"), (noise, "identity:1x8x8")):
        rows = read_frame(part)
        group = zarr.open_group(str(next(root.glob(f"features.zarr/{rows['model_fingerprint'].iloc[0]}/*"))), mode="r+")
        group.update_attributes({"model": other})
        _rewrite(part, rows.assign(model=other))
    problems = audit_root(root).problems
    assert any("features.zarr/" in p and "'noise:1x8x8' has another fingerprint" in p for p in problems), problems
    _repaired_to(root, before)


def test_an_edited_agreement_score_and_robust_gain_are_named_and_remade(root):
    """Item 2: agreement scores against the board; robust gains and intervals against a recomputation."""
    models = next(root.glob("agreement/*-models.parquet"))
    stats = next(root.glob("agreement/*-stats.parquet"))
    robust = next(root.glob("agreement/*-robust.parquet"))
    first = read_frame(models)
    from synbench.agree.agreement import agreement_stats

    edited = first.copy()
    edited.loc[edited["model"] == "noise:1x8x8", "score_dm"] = 0.99
    _rewrite(models, edited)
    _rewrite(stats, agreement_stats(edited).assign(**read_frame(stats)[["data", "data_digest", "spec_hash"]].iloc[0]))
    gains = read_frame(robust)
    gains.loc[gains["eps"] > 0, ["gain", "gain_low", "gain_high"]] = [0.05, 0.03, 0.07]
    _rewrite(robust, gains)
    problems = audit_root(root).problems
    assert any(models.name in p and "board columns" in p for p in problems), problems
    assert any(robust.name in p and "robust rows" in p for p in problems)
    report = audit_root(root, repair=True)
    assert report.ok and not list(root.glob("agreement/*.parquet"))
    again, _ = agree(root, "digits", device="cpu")
    order = ["model", "threshold"]
    assert np.allclose(again.sort_values(order)["score_dm"], first.sort_values(order)["score_dm"])
    assert audit_root(root).ok


def _forge_real_group(root, model_fingerprint: str, scale: float = 0.0) -> None:
    """Replace a real-data group's features (noise for a model's features) and fix its manifest."""
    folder = next(root.glob(f"real.zarr/{model_fingerprint}/*/zarr.json")).parent
    group = zarr.open_group(str(folder), mode="r+")
    group["features"][:] = np.random.default_rng(0).random(group["features"].shape).astype(np.float32) * scale
    manifest = real_manifest(group)
    group.update_attributes({"chunk_digests": manifest, "content_digest": manifest_digest(manifest)})


def test_a_forged_real_data_group_is_never_trusted_again(root):
    """Item 3: repair sets the group aside with the tables, agree re-extracts it, and --deep sees it alone."""
    board = read_board(root, warn=False)
    identity = board.loc[board["model"] == "identity:1x8x8", "model_fingerprint"].iloc[0]
    first = read_frame(next(root.glob("agreement/*-models.parquet")))
    _forge_real_group(root, identity, scale=1.0)
    assert any("accuracy of 'identity:1x8x8' differs" in p for p in audit_root(root).problems)
    report = audit_root(root, repair=True)
    assert report.ok and any(line.startswith(f"moved real.zarr/{identity}/") for line in report.repaired)
    again, _ = agree(root, "digits", device="cpu")
    assert np.allclose(again.sort_values("model")["accuracy"], first.sort_values("model")["accuracy"])

    _forge_real_group(root, identity, scale=1.0)  # and the tables remade from it: only the model can tell
    agree(root, "digits", device="cpu")
    plain, deep = audit_root(root), audit_root(root, deep=True)
    assert plain.ok and any("--deep" in note for note in plain.notes)
    assert any(f"real.zarr/{identity}/" in p and "differ from the model's features" in p for p in deep.problems)


def test_repair_never_republishes_from_features_with_a_forged_manifest(root):
    """Item 3: features replaced and their manifest re-digested: repair checks them against the encoder first."""
    before = _board(root)
    board = read_board(root, warn=False)
    noise = board.loc[board["model"] == "noise:1x8x8", "model_fingerprint"].iloc[0]
    identity = board.loc[board["model"] == "identity:1x8x8", "model_fingerprint"].iloc[0]
    target = zarr.open_group(str(next(root.glob(f"features.zarr/{noise}/*/zarr.json")).parent), mode="r+")
    source = zarr.open_group(str(next(root.glob(f"features.zarr/{identity}/*/zarr.json")).parent), mode="r")
    manifest = dict(source.attrs["chunk_digests"])
    for name in source["features"].array_keys():
        target[f"features/{name}"][:] = source[f"features/{name}"][:]
    target.update_attributes({"chunk_digests": manifest, "content_digest": manifest_digest(manifest)})
    assert not audit_root(root).ok
    report = audit_root(root, repair=True)
    assert report.ok and any("regenerated" in line for line in report.repaired), report.repaired
    pd.testing.assert_frame_equal(_board(root), before)


def test_a_moved_part_and_a_part_no_features_back_are_repaired_in_one_pass(root):
    """Item 4: a part whose spec was edited is published over; a forged part for no feature group is removed."""
    before = _board(root)
    part = _part(root, "identity:1x8x8")
    _rewrite(part, read_frame(part).assign(spec_name="other", spec_hash="0123456789abcdef"))
    forged = read_frame(_part(root, "noise:1x8x8")).assign(model_fingerprint="f" * 16, model="noise:1x8x9", score=2.0)
    atomic_write_parquet(root / "leaderboard" / "parts" / f"{'f' * 16}-x.parquet", forged, {})
    problems = audit_root(root).problems
    assert any(part.name in p and "spec_hash 0123456789abcdef" in p for p in problems), problems
    assert any("ffffffffffffffff-x.parquet" in p and "no feature group backs it" in p for p in problems)
    _repaired_to(root, before)
    assert list(root.glob("quarantine/*/leaderboard/parts/ffffffffffffffff-x.parquet"))


def test_readers_never_read_a_part_or_the_parts_folder_through_a_link(root, tmp_path, capsys):
    """Item 5: a linked part is skipped with a warning, a linked parts folder is an error; repair sets links aside."""
    before = _board(root)
    part = _part(root, "noise:1x8x8")
    forged = tmp_path / "forged.parquet"
    atomic_write_parquet(forged, read_frame(part).assign(score=0.99))
    part.unlink()
    part.symlink_to(forged)
    board = read_board(root)
    assert "noise:1x8x8" not in set(board["model"]) and "symbolic link" in capsys.readouterr().err
    _repaired_to(root, before)
    parts = root / "leaderboard" / "parts"
    outside = tmp_path / "outside"
    shutil.move(parts, outside)
    parts.symlink_to(outside)
    with pytest.raises(StoreError, match="is a symbolic link; SynBench never reads the board through links"):
        read_board(root)
    _repaired_to(root, before)


def test_renames_survive_republishing_and_may_not_spell_another_models_fingerprint(root):
    """Item 7: a rename is kept when repair republishes the part; a fingerprint as a name is refused."""
    from synbench.board.edit import remove_entry, rename_entry
    from synbench.core.errors import SynBenchError

    board = read_board(root, warn=False)
    noise = board.loc[board["model"] == "noise:1x8x8", "model_fingerprint"].iloc[0]
    with pytest.raises(SynBenchError, match="already names the model with fingerprint"):
        rename_entry(root, "identity:1x8x8", noise)
    with pytest.raises(SynBenchError, match="already names the model with fingerprint"):
        rename_entry(root, "identity:1x8x8", noise[:6])
    rename_entry(root, "identity:1x8x8", "pixels")
    part = next(p for p in root.glob("leaderboard/parts/*.parquet") if "display_name" in read_frame(p))
    _rewrite(part, read_frame(part).assign(score=read_frame(part)["score"] + 0.1))
    assert audit_root(root, repair=True).ok
    assert set(read_board(root)["display_name"]) >= {"pixels"} and audit_root(root).ok
    part = next(p for p in root.glob("leaderboard/parts/*.parquet") if "display_name" in read_frame(p))
    _rewrite(part, read_frame(part).assign(display_name=noise))  # the rename check, made by hand
    assert any("spells another model's fingerprint" in p for p in audit_root(root).problems)
    assert audit_root(root, repair=True).ok
    remove_entry(root, noise)
    assert "noise:1x8x8" not in set(read_board(root)["model"]) and "identity:1x8x8" in set(read_board(root)["model"])


def test_snapshots_removal_records_and_recipes_are_checked(root):
    """Item 7: edits that fix every digest are found; repair sets them aside or remakes them."""
    import json

    from synbench.board.edit import record_digest, remove_entry
    from synbench.board.read import write_snapshot

    write_snapshot(root)
    snapshot = next(root.glob("leaderboard/snapshots/*.parquet"))
    rows = read_frame(snapshot)
    rows.loc[rows["model"] == "noise:1x8x8", "score"] = 0.99
    _rewrite(snapshot, rows)
    recipe = next(root.glob("recipes/*.json"))
    good_recipe = recipe.read_text()
    recipe.write_text(good_recipe.replace('"n_train": 64', '"n_train": 65'))
    record = {"model_fingerprint": "", "spec_hash": "", "removed_at": "2026-01-01T000000.000+0000", "parts": []}
    board = read_board(root, warn=False)
    fingerprint, spec_hash = board["model_fingerprint"].iloc[0], board["spec_hash"].iloc[0]
    record.update(model_fingerprint=fingerprint, spec_hash=spec_hash)
    forged = root / "leaderboard" / "removed" / f"{fingerprint}-{spec_hash}.json"
    forged.parent.mkdir(parents=True)
    forged.write_text(json.dumps({**record, "digest": record_digest(record)}))
    next(p for p in root.glob("leaderboard/parts/*.parquet") if p.name.startswith(fingerprint)).unlink()
    problems = audit_root(root).problems
    assert any(snapshot.name in p and "its own scores give" in p for p in problems), problems
    assert any(recipe.name in p and "not the recipe of its data hash" in p for p in problems)
    assert any(forged.name in p and "none of the parts it removed" in p for p in problems)
    report = audit_root(root, repair=True)
    assert report.ok, report.problems
    assert recipe.read_text() == good_recipe and fingerprint in set(read_board(root)["model_fingerprint"])
    remove_entry(root, fingerprint)  # a real removal audits clean, and a later edit of its record does not
    assert audit_root(root).ok
    record_file = next(root.glob("leaderboard/removed/*.json"))
    record_file.write_text(json.dumps({**json.loads(record_file.read_text()), "parts": []}))
    assert any("edited after writing" in p for p in audit_root(root).problems)


def test_two_repairs_at_once_take_turns(root):
    """Item 7: a repair waits for the one that holds the root's repair lock, then finds nothing left to fix."""
    from synbench.store.locks import writer_lock

    chunk = next(root.glob("features.zarr/*/*/features/s01_train/c/0/0"))
    chunk.write_bytes(chunk.read_bytes()[:-1] + bytes([chunk.read_bytes()[-1] ^ 1]))
    results = []
    with writer_lock(root / ".audit-repair.lock"):
        waiting = threading.Thread(target=lambda: results.append(audit_root(root, repair=True)))
        waiting.start()
        time.sleep(2)
        assert waiting.is_alive() and not results  # held by "the other repair"
    waiting.join(120)
    assert results and results[0].ok and audit_root(root).ok


def test_a_table_that_records_no_parents_is_not_trusted(root):
    """Red team, cases 3 and 4: curves or a snapshot rewritten with their recorded parents emptied."""
    from synbench.board.read import write_snapshot

    write_snapshot(root)
    curves = next(root.glob("curves/*.parquet"))
    atomic_write_parquet(curves, read_frame(curves).assign(empirical=lambda d: d["empirical"] * 0.5), {})
    snapshot = next(root.glob("leaderboard/snapshots/*.parquet"))
    atomic_write_parquet(snapshot, read_frame(snapshot), {})
    problems = audit_root(root).problems
    assert any(curves.name in p and "records no parents" in p for p in problems), problems
    assert any(snapshot.name in p and "records no parts it was made from" in p for p in problems), problems


def test_a_removal_record_with_nothing_removed_does_not_take_a_model_off(root):
    """Red team, case 5: a record written by hand, its digest fixed, for a model whose parts are all in place."""
    import json

    from synbench.board.edit import record_digest

    before = _board(root)
    part = _part(root, "identity:1x8x8")
    rows = read_frame(part)
    fingerprint, spec_hash = rows["model_fingerprint"].iloc[0], rows["spec_hash"].iloc[0]
    record = {
        "model_fingerprint": fingerprint,
        "spec_hash": spec_hash,
        "removed_at": "2099-01-01T000000.000+0000",
    }  # after the parts
    record["parts"] = [part.name]
    forged = root / "leaderboard" / "removed" / f"{fingerprint}-{spec_hash}.json"
    forged.parent.mkdir(parents=True)
    forged.write_text(json.dumps({**record, "digest": record_digest(record)}))
    problems = audit_root(root).problems
    assert any(forged.name in p and "none of the parts it removed" in p for p in problems), problems
    _repaired_to(root, before)  # the record is set aside; the model stays on the board


@pytest.fixture(scope="module")
def timm_made(tmp_path_factory):
    """Two timm models from weights files (not controls: the audit resolves their references to check them;
    shown by their file and weights digest)."""
    import timm
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("timm")
    spec = BenchmarkSpec(name="tiny", scales=(0.5, 1.5, 2.5, 3.5), n_train=64, n_test=64, eps=(0,), block_size=32)
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        weights = folder / f"net{seed}.safetensors"
        save_file(timm.create_model("test_efficientnet", num_classes=0).state_dict(), str(weights))
        models.append(f"timm:test_efficientnet@{weights}")
        evaluate(models[-1], spec=spec, input_shape=(3, 16, 16), root=folder / "root", device="cpu", ci_replicates=0)
    return folder / "root", tuple(models)


@pytest.fixture
def timm_root(timm_made, tmp_path):
    shutil.copytree(timm_made[0], tmp_path / "root")
    return tmp_path / "root"


def test_a_display_name_another_model_is_shown_by_is_named(timm_root, timm_made):
    """Red team, case 1: a part shown under the name the board shows another model by."""
    from synbench.board.names import with_display_names

    board = with_display_names(read_board(timm_root, warn=False))
    models = timm_made[1]
    shown = board.loc[board["model"] == models[1], "display_name"].iloc[0]
    assert shown.endswith("]") and shown != models[1]  # its weights file and digest
    part = _part(timm_root, models[0])
    _rewrite(part, read_frame(part).assign(display_name=shown))
    problems = audit_root(timm_root).problems
    assert any(part.name in p and "is another model's name" in p for p in problems), problems


def test_records_of_two_timm_models_swapped_in_full_are_found_and_repaired(timm_root, timm_made):
    """Red team, cases 2 and 7: two timm models' records and parts swapped (controls were checked before)."""
    models = timm_made[1]
    before = _board(timm_root)
    parts = {model: _part(timm_root, model) for model in models}
    for model, other in (models, models[::-1]):
        rows = read_frame(parts[model])
        group = zarr.open_group(
            str(next(timm_root.glob(f"features.zarr/{rows['model_fingerprint'].iloc[0]}/*"))), mode="r+"
        )
        group.update_attributes({"model": other})
        _rewrite(parts[model], rows.assign(model=other))
    problems = audit_root(timm_root).problems
    assert any("features.zarr/" in p and "has another fingerprint" in p for p in problems), problems
    _repaired_to(timm_root, before)
