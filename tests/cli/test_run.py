"""`synbench run` in process, one board per shape, and progress that names the stage (issue 31)."""

from __future__ import annotations

import io

import torch
from rich.console import Console
from test_cli import synbench

from synbench.api import evaluate
from synbench.board.read import read_board
from synbench.cli.main import main
from synbench.core.spec import load_spec
from synbench.stages.progress import BarProgress

TINY = "scales = [1.0, 3.0]\nn_train = 64\nn_test = 64\nblock_size = 32\neps = [0]\n"


def _files(root) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in sorted((root / "features.zarr").rglob("*")) if p.is_file()}


def test_a_shape_mean_or_std_equal_to_the_models_own_is_no_override(tmp_path, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    root = tmp_path / "root"
    args = ["--spec", str(spec), "--root", str(root), "--ci-replicates", "4"]
    assert main(["run", "identity:1x8x8", *args]) == 0
    stored = _files(root)
    capsys.readouterr()
    assert main(["run", "identity:1x8x8", "--input-shape", "1,8,8", *args]) == 0  # its own shape: the same model
    assert "0 chunks written" in capsys.readouterr().out and _files(root) == stored
    # the notebook form with the board's shape joins the CLI's board: one spec hash, one "rank 1"
    flatten = evaluate(torch.nn.Flatten(), spec=str(spec), input_shape=(1, 8, 8), mean=(0,), std=(1,), root=root)
    declared = evaluate("py:synbench.demo:digits_cnn", spec=str(spec), root=root, ci_replicates=4)
    again = evaluate(
        "py:synbench.demo:digits_cnn", spec=str(spec), input_shape=(1, 8, 8), mean=(0.3,), std=(0.38,), root=root
    )
    board = read_board(root)
    assert set(board["spec_hash"]) == {load_spec(str(spec)).spec_hash} == set(flatten["spec_hash"])
    assert list(again["model_fingerprint"].unique()) == list(declared["model_fingerprint"].unique())
    assert board["model_fingerprint"].nunique() == 3


def test_run_works_in_process_without_prefect_and_names_each_stage(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    root = tmp_path / "root"
    result = synbench("run", "noise:1x4x4", "--spec", str(spec), "--root", str(root), "--ci-replicates", "4")
    assert result.returncode == 0, result.stderr
    assert "noise:1x4x4: fingerprint" in result.stdout and "8 chunks written" in result.stdout
    for name in ("extract", "probe", "intervals", "curves", "publish"):
        assert f"noise:1x4x4: {name} started" in result.stderr and f"noise:1x4x4: {name} done in" in result.stderr
    assert not (root / ".prefect").exists() and "prefect" not in result.stderr.lower()


def test_the_terminal_bar_names_the_stage_after_extraction():
    reporter = BarProgress(console=Console(file=io.StringIO()))
    reporter.stage("m", "extract", "started")
    reporter("m", 52, 52)
    reporter.stage("m", "extract", "done")
    reporter.stage("m", "intervals", "started")
    (task,) = reporter.bar.tasks
    assert task.description == "m: intervals" and task.completed == 52
    reporter.stage("m", "intervals", "done")
    reporter.stage("m", "publish", "started")
    reporter.stage("m", "publish", "done")
    assert reporter.bar.tasks[0].description == "m: done"
