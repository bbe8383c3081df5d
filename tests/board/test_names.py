"""Model identity (issue 22 item 9): the fingerprint; a short display name per entry; matching; remove, rename."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from synbench.board.compare import compare_models, pick_model
from synbench.board.names import display_name, short_names
from synbench.board.read import read_board
from synbench.board.tables import format_board, summary_table
from synbench.cli.main import main
from synbench.core.errors import SynBenchError
from synbench.core.spec import BenchmarkSpec
from synbench.stages.curves import build_rows, publish
from synbench.store.roots import open_root, safe_path

SPEC = BenchmarkSpec(name="tiny", scales=(1.0, 2.0), n_train=8, n_test=8, eps=(0.0, 0.2), thresholds=(0.6, 0.7))
DEEP = "/home/someone/experiments/" + "very-long-folder-name/" * 8


def _publish(root, model: str, fingerprint: str, digest: str, score: float) -> None:
    scores = [{"eps": e, "threshold": t, "score": score - e} for e in SPEC.eps for t in SPEC.thresholds]
    provenance = {"model": model, "model_fingerprint": fingerprint, "weights_digest": digest}
    rows = build_rows(scores, provenance, SPEC, ranks=[2, 2])
    publish(safe_path(root, "leaderboard", "parts", f"{fingerprint}-{SPEC.spec_hash}-{abs(hash(model))}.parquet"), rows)


@pytest.mark.parametrize(
    ("reference", "shown"),
    [
        ("timm:resnet18@/home/u/a/runs/ckpt-0.safetensors", "timm:resnet18@ckpt-0.safetensors [3fa2c1d0]"),
        ("timm:resnet18@runs/ckpt-0.safetensors#features", "timm:resnet18@ckpt-0.safetensors#features [3fa2c1d0]"),
        ("timm:resnet18@ckpt-0.safetensors", "timm:resnet18@ckpt-0.safetensors [3fa2c1d0]"),
        ("timm:resnet18@/w/runs/ckpt-0.safetensors#stage3", "timm:resnet18@ckpt-0.safetensors#stage3 [3fa2c1d0]"),
        ("timm:resnet18@/w/runs/ckpt-0.safetensors#stage*", "timm:resnet18@ckpt-0.safetensors#stage* [3fa2c1d0]"),
        ("timm:efficientnet_lite0@pkg:w#stage3", "timm:efficientnet_lite0@pkg:w#stage3"),
        ("timm:efficientnet_b0@order:/w/b0.pth", "timm:efficientnet_b0@order:b0.pth [3fa2c1d0]"),
        ("py:my_models:build@C:\\w\\net.pt", "py:my_models:build@net.pt [3fa2c1d0]"),
        ("timm:resnet18", "timm:resnet18"),
        ("identity:3x32x32", "identity:3x32x32"),
        ("random:test_convnext@2", "random:test_convnext@2"),
        ("timm:resnet18@pkg:some_wheel", "timm:resnet18@pkg:some_wheel"),
        ("module:torch.nn.modules.flatten.Flatten", "module:torch.nn.modules.flatten.Flatten"),
    ],
)
def test_display_names_keep_the_file_name_and_a_short_weights_digest(reference, shown):
    assert display_name(reference, "3fa2c1d0" + "e" * 56) == shown


@pytest.fixture
def two_folders(root):
    """One checkpoint file name from two folders (different weights), a relative legacy twin, and a control."""
    _publish(root, f"timm:resnet18@{DEEP}one/runs/ckpt-0.safetensors", "aaaa1111" * 2, "d1" * 32, 0.9)
    _publish(root, f"timm:resnet18@{DEEP}two/runs/ckpt-0.safetensors", "bbbb2222" * 2, "d2" * 32, 0.8)
    _publish(root, "timm:resnet18@runs/ckpt-0.safetensors", "cccc3333" * 2, "d3" * 32, 0.7)
    _publish(root, "timm:resnet18@runs/ckpt-0.safetensors", "dddd4444" * 2, "d4" * 32, 0.6)
    _publish(root, "identity:3x8x8", "eeee5555" * 2, "d5" * 32, 0.5)
    return root


def test_every_fingerprint_is_one_row_with_a_short_name_and_its_fingerprint(two_folders):
    board = read_board(two_folders)
    table = summary_table(board)
    assert len(table) == 5 and table["fingerprint"].str.len().eq(8).all()
    assert set(table["model"]) == {
        "timm:resnet18@ckpt-0.safetensors [d1d1d1d1]",
        "timm:resnet18@ckpt-0.safetensors [d2d2d2d2]",
        "timm:resnet18@ckpt-0.safetensors [d3d3d3d3]",
        "timm:resnet18@ckpt-0.safetensors [d4d4d4d4]",
        "identity:3x8x8",
    }
    text = format_board(board, "table")
    assert "/home/someone" not in text and "aaaa1111" in text
    assert max(len(line) for line in text.splitlines() if line[0] in "┌│└") < 180  # not the 200-character paths
    records = json.loads(format_board(board, "json", summary=True))
    assert {r["display_name"] for r in records} == set(table["model"])
    assert any(r["model"].startswith(f"timm:resnet18@{DEEP}") for r in records)  # the reference is kept


def test_models_are_picked_by_display_name_or_fingerprint_and_an_ambiguous_name_lists_its_candidates(two_folders):
    board = read_board(two_folders)
    assert set(pick_model(board, "timm:resnet18@ckpt-0.safetensors [d2d2d2d2]")["model_fingerprint"]) == {
        "bbbb2222" * 2
    }
    assert set(pick_model(board, "bbbb")["model_fingerprint"]) == {"bbbb2222" * 2}
    assert set(pick_model(board, f"timm:resnet18@{DEEP}one/runs/ckpt-0.safetensors")["model_fingerprint"]) == {
        "aaaa1111" * 2
    }
    with pytest.raises(SynBenchError) as error:
        pick_model(board, "timm:resnet18@ckpt-0.safetensors")
    message = str(error.value)
    assert "matches 4 models" in message and "\n" not in message
    assert all(fp * 2 in message for fp in ("aaaa1111", "bbbb2222", "cccc3333", "dddd4444"))
    with pytest.raises(SynBenchError, match="matches 2 models"):
        pick_model(board, "timm:resnet18@runs/ckpt-0.safetensors")
    table = compare_models(board, "timm:resnet18@ckpt-0.safetensors [d1d1d1d1]", "eeee")
    assert (table["verdict"] == "no interval (published with --ci none)").all()
    assert set(table["model_a"]) == {"timm:resnet18@ckpt-0.safetensors [d1d1d1d1]"}
    assert set(table["model_b"]) == {"identity:3x8x8"}


def test_board_remove_moves_an_entrys_parts_to_quarantine(two_folders, capsys):
    assert main(["board", "remove", "timm:resnet18@runs/ckpt-0.safetensors", "--root", str(two_folders)]) == 2
    assert "matches 2 models" in capsys.readouterr().err
    assert main(["board", "remove", "cccc", "--root", str(two_folders)]) == 0
    out = capsys.readouterr().out
    assert "removed timm:resnet18@ckpt-0.safetensors [d3d3d3d3]" in out and "quarantine/" in out
    board = read_board(two_folders)
    assert board["model_fingerprint"].nunique() == 4 and not board["model_fingerprint"].str.startswith("cccc").any()
    kept = list(two_folders.glob("quarantine/*/leaderboard/parts/cccc3333cccc3333-*.parquet"))
    assert len(kept) == 1 and len(pd.read_parquet(kept[0])) == 4  # nothing deleted
    assert main(["board", "remove", "cccc", "--root", str(two_folders)]) == 2  # gone from the board
    assert "no model 'cccc' on the board" in capsys.readouterr().err


def test_board_rename_publishes_a_renamed_part_and_keeps_the_old_one(two_folders, capsys):
    assert main(["board", "rename", "aaaa", "resnet18 run one", "--root", str(two_folders)]) == 0
    assert "renamed" in capsys.readouterr().out
    board = read_board(two_folders)
    renamed = board[board["model_fingerprint"] == "aaaa1111" * 2]
    assert set(renamed["display_name"]) == {"resnet18 run one"} and len(renamed) == 4
    assert set(renamed["model"]) == {f"timm:resnet18@{DEEP}one/runs/ckpt-0.safetensors"}  # the reference stays
    assert "resnet18 run one" in format_board(board, "table")
    assert set(pick_model(board, "resnet18 run one")["model_fingerprint"]) == {"aaaa1111" * 2}
    assert len(list(two_folders.glob("quarantine/*/leaderboard/parts/aaaa1111aaaa1111-*.parquet"))) == 1
    assert len(list((two_folders / "leaderboard" / "parts").glob("aaaa1111aaaa1111-*.parquet"))) == 1
    assert main(["board", "rename", "bbbb", "resnet18 run one", "--root", str(two_folders)]) == 2
    assert "already names" in capsys.readouterr().err


def test_a_removed_entry_stays_removed_through_audit_repair_and_agree_picks_by_fingerprint(root, tiny_spec):
    from test_audit import _benchmark

    from synbench.agree.agreement import board_models
    from synbench.audit.root import audit_root

    _benchmark(root, tiny_spec, "identity:3x4x4")
    _benchmark(root, tiny_spec, "noise:3x4x4")
    noise = read_board(root).set_index("model")["model_fingerprint"]["noise:3x4x4"].iloc[0]
    picked, _ = board_models(root, models=[noise[:6]])
    assert [rows["model_fingerprint"].iloc[0] for rows, _ in picked] == [noise]
    assert main(["board", "remove", noise[:6], "--root", str(root)]) == 0
    report = audit_root(root)
    assert report.ok, report.problems
    audit_root(root, repair=True)
    assert set(read_board(root)["model"]) == {"identity:3x4x4"}  # not republished from its features


def test_a_moved_root_still_finds_its_checkpoint_models_by_the_path_typed_from_the_new_place(tmp_path, monkeypatch):
    # issue 31: stored references hold absolute paths; in a copied or moved root compare found no model
    import shutil

    from test_series import save_checkpoints

    from synbench.agree.reruns import board_models
    from synbench.api import evaluate

    old = open_root(tmp_path / "old" / "data")
    save_checkpoints(old / "checkpoints", [1])
    spec = BenchmarkSpec(name="tiny", scales=(1.0, 3.0), n_train=64, n_test=64, eps=(0.0,), block_size=64)
    for ref in ("identity:1x4x4", f"py:encoders_for_tests:small_linear@{old}/checkpoints/ckpt-1.safetensors"):
        evaluate(ref, spec=spec, root=old, device="cpu", ci_replicates=4)
    typed = "py:encoders_for_tests:small_linear@data/checkpoints/ckpt-1.safetensors"
    monkeypatch.chdir(tmp_path / "old")
    assert main(["compare", "identity:1x4x4", typed, "--root", "data", "--format", "json"]) == 0  # in place
    shutil.move(old, tmp_path / "new" / "data")
    monkeypatch.chdir(tmp_path / "new")
    assert main(["compare", "identity:1x4x4", typed, "--root", "data", "--format", "json"]) == 0
    assert main(["compare", "identity:1x4x4", typed.replace("ckpt-1", "ckpt-2"), "--root", "data"]) == 2
    found, skipped = board_models(tmp_path / "new" / "data")  # agree reruns it from the file where it is now
    assert len(found) == 2 and not skipped
    assert {str(tmp_path / "new" / "data" / "checkpoints" / "ckpt-1.safetensors") in e.ref.text for _, e in found} == {
        True,
        False,
    }


def test_short_names_drop_the_digest_only_where_the_rest_tells_the_models_apart(two_folders):
    names = [
        "py:synbench.demo:digits_cnn@digits_cnn-e4.safetensors [28d93462]",
        "py:synbench.demo:digits_cnn@digits_cnn-e8.safetensors [4038a6cc]",
        "timm:resnet18@ckpt-0.safetensors [d1d1d1d1]",
        "timm:resnet18@ckpt-0.safetensors [d2d2d2d2]",
        "py:mymodel:build",
        "module:torch.nn.modules.flatten.Flatten",
    ]
    assert short_names(names) == [
        "digits_cnn-e4",
        "digits_cnn-e8",
        "timm:resnet18@ckpt-0 [d1d1d1d1]",
        "timm:resnet18@ckpt-0 [d2d2d2d2]",
        "mymodel:build",
        "module:Flatten",
    ]
    board = read_board(two_folders)  # a name as a compact table shows it picks its model
    assert set(pick_model(board, "timm:resnet18@ckpt-0 [d2d2d2d2]")["model_fingerprint"]) == {"bbbb2222" * 2}
    with pytest.raises(SynBenchError, match="matches 4 models"):
        pick_model(board, "timm:resnet18@ckpt-0")
