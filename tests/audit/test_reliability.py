"""Long commands and the odd request (issue 22, item 11): SIGTERM, progress in a log, thresholds below the curves'
grid, a ``file://`` root, a repair that meets a group it cannot regenerate."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from encoders_for_tests import small_linear
from safetensors.torch import save_file
from test_audit import _benchmark, _flip_byte

from synbench.board.ranking import parse_rank_key
from synbench.board.read import read_board
from synbench.cli.main import main
from synbench.core.errors import SpecError, SynBenchError
from synbench.core.spec import BenchmarkSpec, load_spec
from synbench.stages.progress import PlainProgress, stage

TESTS = Path(__file__).parents[1]


def test_thresholds_below_the_curves_grid_are_refused_everywhere(root, tiny_spec, tmp_path, capsys):
    with pytest.raises(SpecError, match=r"thresholds must list 1 to 64 values in \[0.6, 1\)"):
        BenchmarkSpec(thresholds=(0.5, 0.6))
    spec_file = tmp_path / "low.toml"
    spec_file.write_text("thresholds = [0.55, 0.9]\n")
    with pytest.raises(SpecError, match=r"\[0.6, 1\)"):
        load_spec(str(spec_file))
    with pytest.raises(SynBenchError, match=r"must lie in \[0.6, 1\)"):
        parse_rank_key("score@0.5")
    _benchmark(root, tiny_spec)
    with pytest.raises(SynBenchError, match=r"threshold 0.5 .*\[0.6, 1"):
        read_board(root, threshold=[0.5])
    assert set(read_board(root, threshold=[0.6, 0.65])["threshold"].round(9)) == {0.6, 0.65}
    for argv in (["leaderboard", "--threshold", "0.5"], ["compare", "a", "b", "--threshold", "0.7,0.59"]):
        with pytest.raises(SystemExit) as caught:
            main([*argv, "--root", str(root)])
        error = capsys.readouterr().err
        assert caught.value.code == 2 and "[0.6, 1)" in error and len(error.strip().splitlines()) == 1


def test_a_file_url_root_is_its_folder_and_is_checked_before_anything_is_written(tmp_path, monkeypatch):
    from synbench_flows.benchmark import _allowed, _load

    from synbench.cli.commands import allow_command_line_root

    root = tmp_path / "elsewhere" / "root"
    allow_command_line_root(f"file://{root}")
    assert os.environ["SYNBENCH_ALLOWED_PATHS"] == str(root)
    assert _allowed(str(root), "root") == root and _allowed(f"file://{root}", "root") == root
    monkeypatch.setenv("SYNBENCH_ALLOWED_PATHS", f"file://{tmp_path / 'worker'}")
    assert _allowed(str(tmp_path / "worker" / "root"), "root") == tmp_path / "worker" / "root"
    with pytest.raises(SynBenchError, match="outside the folders this worker allows"):
        _load("demo", None, f"file://{root}")
    assert not root.exists()


def test_repair_reports_what_it_cannot_regenerate_and_repairs_the_rest(root, tiny_spec, monkeypatch):
    from synbench.api import evaluate
    from synbench.audit.root import audit_root

    _benchmark(root, tiny_spec, "identity:3x4x4")
    _benchmark(root, tiny_spec, "py:encoders_for_tests:constant")
    evaluate(small_linear(), spec=tiny_spec, root=root, device="cpu", ci_replicates=0)
    for group in root.glob("features.zarr/*/*/"):
        _flip_byte(next(group.glob("features/s01_train/c/0/0")))
    monkeypatch.delenv("SYNBENCH_ALLOW_PY")
    report = audit_root(root, repair=True)
    assert len(report.repaired) == 1 and report.groups == 3
    assert any("module:encoders_for_tests._Small" in p and "cannot regenerate" in p for p in report.problems)
    assert any("py:encoders_for_tests:constant" in p and "--allow-py" in p for p in report.problems)
    assert all("\n" not in p for p in report.problems)


def test_plain_progress_prints_each_stage_and_extraction_every_tenth_or_30_seconds(capsys):
    now = [0.0]
    progress = PlainProgress(clock=lambda: now[0])
    with stage(progress, "identity:3x4x4", "extract"):
        for done in range(101):
            now[0] += 0.01
            progress("identity:3x4x4", done, 100)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("identity:3x4x4: extract started") and lines[-1].endswith("extract done in 1.0 s")
    shown = [line.split("(")[-1] for line in lines[1:-1]]
    assert shown == [f"{p}%)" for p in range(0, 101, 10)]
    for done in (1, 2, 3):
        now[0] += 31.0
        progress("random:test_vit", done, 1000)
    assert len(capsys.readouterr().err.splitlines()) == 3  # every 30 s however slow
    with pytest.raises(RuntimeError), stage(progress, "noise:3x4x4", "probe"):
        raise RuntimeError("probe failed")
    assert capsys.readouterr().err.strip().endswith("noise:3x4x4: probe failed after 0.0 s")


def _lines(stream, found: queue.Queue) -> None:
    for line in stream:
        found.put(line.rstrip("\n"))


@pytest.mark.slow
@pytest.mark.flow
def test_sigterm_stops_a_batch_at_once_and_the_next_run_resumes(tmp_path, monkeypatch):
    from synbench.models.encoders import resolve_encoder
    from synbench.stages.extract import extract_features

    work = tmp_path / "work"
    (work / "runs").mkdir(parents=True)
    for step in (1, 2):
        save_file(
            {k: v + step for k, v in small_linear().state_dict().items()}, str(work / "runs" / f"c-{step}.safetensors")
        )
    spec = work / "tiny.toml"
    spec.write_text("scales = [0.5, 1.5, 2.5, 3.5]\nn_train = 256\nn_test = 256\nblock_size = 32\neps = [0]\n")
    root = tmp_path / "root"
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)  # this checkout's synbench
    env = {**os.environ, "PYTHONPATH": path, "SLOW_ENCODER_SECONDS": "0.3"}
    env.pop("PREFECT_HOME", None)
    models = ["py:encoders_for_tests:small_linear@runs/c-*.safetensors", "py:encoders_for_tests:slow"]
    command = [sys.executable, "-m", "synbench.cli.main", "batch", *models, "--spec", "tiny.toml", "--root", str(root)]
    cli = subprocess.Popen(command, cwd=work, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    found: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(cli.stderr, found), daemon=True).start()
    seen, deadline = [], time.monotonic() + 300
    while not any(re.search(r"encoders_for_tests:slow: extract [1-9]\d*/64 blocks", line) for line in seen):
        assert time.monotonic() < deadline and (cli.poll() is None or not found.empty()), seen
        try:
            seen.append(found.get(timeout=1))
        except queue.Empty:
            continue
    os.kill(cli.pid, signal.SIGTERM)
    start = time.monotonic()
    assert cli.wait(timeout=60) == 143 and time.monotonic() - start < 10
    time.sleep(0.5)
    while not found.empty():
        seen.append(found.get())
    assert [line for line in seen if not line.startswith("[")] == [
        "synbench: terminated (SIGTERM); finished work is kept: rerun the same command to resume."
    ]
    assert any(line.endswith("c-2.safetensors: publish done in " + line.rsplit(" in ", 1)[-1]) for line in seen), (
        "\n".join(seen)
    )
    board = read_board(root)
    assert set(board["model"]) == {f"py:encoders_for_tests:small_linear@{work}/runs/c-{s}.safetensors" for s in (1, 2)}
    monkeypatch.setenv("SLOW_ENCODER_SECONDS", "0")
    resumed = extract_features(resolve_encoder("py:encoders_for_tests:slow"), load_spec(str(spec)), root, "cpu")
    assert resumed.skipped_chunks > 0 and resumed.written_chunks > 0
    assert resumed.skipped_chunks + resumed.written_chunks == 4 * 16
