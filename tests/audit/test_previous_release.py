"""A root written by the release before the parts layout (tests/data/root-before-layout, made with commit 183d7ac)
still audits clean, reads as the same board, and reruns with nothing recomputed."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from synbench import audit_root
from synbench.cli.main import main

DATA = Path(__file__).parents[1] / "data"
MODELS = ["identity:1x8x8", "noise:1x8x8", "py:synbench.demo:digits_cnn", "py:synbench.demo:digits_cnn_narrow"]


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".prefect" not in path.relative_to(root).parts
    }


def test_a_root_of_the_previous_release_audits_clean_and_reruns_with_nothing_recomputed(tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(DATA / "root-before-layout", root)
    before = _digests(root)

    report = audit_root(root)
    assert report.problems == [] and report.scores_checked == 32 and report.chunks == 160

    spec = str(DATA / "root-before-layout.toml")
    assert main(["batch", *MODELS, "--spec", spec, "--root", str(root)]) == 0
    assert "all 4 models are already published for this spec and code version: nothing to run" in (
        capsys.readouterr().out
    )
    assert _digests(root) == before  # not one stored byte changed

    assert main(["leaderboard", "--root", str(root), "--format", "json", "--summary"]) == 0
    board = json.loads(capsys.readouterr().out)
    expected = json.loads((DATA / "root-before-layout-board.json").read_text())
    assert len(board) == len(expected) == 16
    for got, want in zip(board, expected, strict=True):
        assert {key: got[key] for key in want} == want
