"""The CLI as a user drives it: subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parents[1]
EXAMPLES = TESTS.parent / "examples"


def synbench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(TESTS), str(EXAMPLES), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "PREFECT_HOME": "", "PREFECT_RESULTS_LOCAL_STORAGE_PATH": ""}
    env = {k: v for k, v in env.items() if v}
    command = [sys.executable, "-m", "synbench.cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.mark.slow
@pytest.mark.flow
def test_run_leaderboard_audit_end_to_end(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text("scales: [0.5, 1.5, 2.5, 3.5]\nn_train: 256\nn_test: 256\nblock_size: 64\n")
    root = tmp_path / "root"
    run = synbench("run", "identity:3x4x4", "--spec", str(spec), "--eps", "0,0.2", "--root", str(root))
    assert run.returncode == 0, run.stderr
    assert "identity:3x4x4" in run.stdout and "score_dm@0.7" in run.stdout  # the compact board: the rank key
    board = synbench("leaderboard", "--root", str(root), "--format", "json")
    records = json.loads(board.stdout)
    assert len(records) == 2 * 4
    assert {"model", "eps", "threshold", "score", "spec_hash", "model_fingerprint", "created_at"} <= set(records[0])
    assert {r["eps"] for r in records} == {0.0, 0.2}
    assert all(0.5 < r["score"] < 1.1 for r in records if r["threshold"] == 0.6)
    audit = synbench("audit", "--root", str(root))
    assert audit.returncode == 0 and "8 scores recomputed; 0 problem(s)" in audit.stdout
    chunk = next(root.glob("features.zarr/*/*/features/s01_train/c/0/0"))
    data = bytearray(chunk.read_bytes())
    data[10] ^= 0xFF
    chunk.write_bytes(bytes(data))
    assert synbench("audit", "--root", str(root)).returncode == 1
    assert synbench("audit", "--root", str(root), "--repair").returncode == 0
    assert synbench("audit", "--root", str(root)).returncode == 0
    page = tmp_path / "board.html"
    html = synbench("leaderboard", "--root", str(root), "--format", "html", "--output", str(page))
    assert html.returncode == 0 and html.stdout.strip() == f"wrote {page}"
    assert "<table" in page.read_text() and "data:image/png;base64," in page.read_text()
    assert not (root / "reports").exists()  # the report page is never replaced by a filtered view


@pytest.mark.parametrize("command", ["run", "batch", "leaderboard", "compare", "audit", "agree", "demo"])
def test_every_command_has_help(command):
    result = synbench(command, "--help")
    assert result.returncode == 0 and "--root" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "tim:resnet18"], "unknown encoder scheme 'tim'"),
        (["run", "random:resnet_18"], "unknown timm architecture"),
        (["run", "timm:test_vit@/no/such/file.safetensors"], "does not exist"),
        (["run", "identity:3x4x4", "--eps", "0,1"], "eps must lie in [0, 1)"),
        (["run", "identity:3x4x4", "--eps", "-0.1"], "eps must lie in [0, 1)"),
        (["run", "identity:3x4x4", "--spec", "nope.toml"], "cannot read spec file"),
        (["run", "random:test_vit", "--spec", "SPEC_1CH"], "fails on input shape"),
        (["run", "py:encoders_for_tests:wrong_rank"], "must return (batch, features)"),
        (["leaderboard", "--root", "ROOT_MISSING"], "not a SynBench root"),
        (["run", "identity:3x4x4", "--root", "ROOT_FOREIGN"], "not SynBench's"),
        (["run", "identity:3x4x4", "--device", "tpu"], "unknown device 'tpu'"),
        (["run", "identity:3x4x4", "--eps", "abc"], "argument --eps: could not read eps list 'abc'"),
        (["run", "identity:3x4x4", "--eps", "0.2,"], "could not read eps list '0.2,'"),
        (["batch", "identity:3x4x4", "--workers", "0"], "argument --workers: expected a positive integer; got '0'"),
        (["batch", "modles.txt"], "model list 'modles.txt' does not exist"),
        (["run", "identity:3x4x4", "--spec", "SPEC_PRIOR"], "class_prior 0.3 is not supported"),
        (["run", "identity:3x4x4", "--spec", "SPEC_LOW"], "threshold 0.6 is out of reach"),
        (["run", "py:encoders_for_tests:raises"], "py:encoders_for_tests:raises raised ValueError"),
        (["run", "identity:3x4x4", "--root", "nosuch://bucket/root"], "Unsupported filesystem: 'nosuch'"),
        (["run", "identity:3x4x4", "--root", "gs://bucket/root"], "install it with pip install 'synbench[gs]'"),
        (["run", "identity:3x224x224"], "needs about 508.8 GiB of memory (the probe's covariance of p = 150528"),
        (
            ["run", "identity:3x4x4", "--input-shape", "3,8,8"],
            "takes 3x4x4 inputs but the input shape asked for is 3x8x8",
        ),
        (["run", "noise:256", "--mean", "0.5"], "'noise:256' is a control fed raw inputs and takes no mean/std"),
        (["run", "identity:256", "--input-shape", "2,0"], "input shape '2,0' must be positive integers"),
        (["run", "identity:2x128", "--spec", "SPEC_NATURAL"], "covariance = 'natural' needs an image input C x H x W"),
        (
            ["run", "random:test_efficientnet#stage9"],
            "asks for stage 9, but test_efficientnet has 5 stages in its feature_info; use #stage0 to #stage4.",
        ),
        (["run", "random:test_convnext#stage*"], "names 4 models; benchmark a series with synbench batch"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, args, message):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    spec_1ch = tmp_path / "one_channel.toml"
    spec_1ch.write_text("input_shape = [1, 160, 160]\n")
    (tmp_path / "prior.toml").write_text("class_prior = 0.3\n")
    (tmp_path / "low.yaml").write_text("scales: [0.1, 0.2]\n")
    (tmp_path / "natural.toml").write_text('covariance = "natural"\n')
    replace = {
        "ROOT_MISSING": str(tmp_path / "missing"),
        "ROOT_FOREIGN": str(foreign),
        "SPEC_1CH": str(spec_1ch),
        "SPEC_PRIOR": str(tmp_path / "prior.toml"),
        "SPEC_LOW": str(tmp_path / "low.yaml"),
        "SPEC_NATURAL": str(tmp_path / "natural.toml"),
    }
    args = [replace.get(a, a) for a in args]
    if "--root" not in args:
        args += ["--root", str(tmp_path / "fresh")]
    result = synbench(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "fresh").exists()  # nothing half-written
    assert sorted(os.listdir(foreign)) == ["notes.txt"]


@pytest.mark.slow
@pytest.mark.flow
def test_batch_reports_a_failure_and_finishes_the_rest(tmp_path):
    models = tmp_path / "models.txt"
    models.write_text(
        "# two controls and a typo\nidentity:1x4x4\nrandom:no_such_arch\nnoise:1x4x4\npy:encoders_for_tests:constant\n"
    )
    spec = tmp_path / "tiny.toml"
    spec.write_text("scales = [1.0, 3.0]\nn_train = 64\nn_test = 64\nblock_size = 32\neps = [0]\n")
    root = tmp_path / "root"
    refused = synbench("batch", str(models), "--spec", str(spec), "--root", str(root))
    assert refused.returncode == 2 and "--allow-py" in refused.stderr and not root.exists()
    result = synbench("batch", str(models), "--spec", str(spec), "--root", str(root), "--allow-py")
    assert result.returncode == 1
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("│ ")}
    assert "failed" in lines["random:no_such_arch"]  # the table's row; its reason below the table
    assert "random:no_such_arch failed: " in result.stdout and "unknown timm architecture" in result.stdout
    assert all(" ok " in lines[m] for m in ("identity:1x4x4", "noise:1x4x4", "encoders_for_tests:constant"))  # short
    board = json.loads(synbench("leaderboard", "--root", str(root), "--format", "json").stdout)
    assert {r["model"] for r in board} == {"identity:1x4x4", "noise:1x4x4", "py:encoders_for_tests:constant"}
    assert len(list((root / "leaderboard" / "snapshots").glob("*.parquet"))) == 1


@pytest.mark.slow
@pytest.mark.flow
def test_encoder_failing_mid_run_exits_2_with_one_line_and_no_features(tmp_path):
    root = tmp_path / "root"
    result = synbench("run", "py:encoders_for_tests:nan_features", "--spec", "demo", "--root", str(root))
    assert result.returncode == 2 and "returned NaN or Inf features" in result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("[")]  # [time] progress lines
    assert "Traceback" not in result.stderr + result.stdout and len(errors) == 1
    assert not any((root / "features.zarr").iterdir())


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[-1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError):
                continue
    return found


@pytest.mark.slow
@pytest.mark.flow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_kill_9_of_the_cli_takes_the_prefect_server_with_it(tmp_path):
    import signal
    import time

    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    env.pop("PREFECT_HOME", None)
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "synbench.cli.main",
            "batch",  # `run` works in process; a batch runs the Prefect flow
            "random:test_vit",
            "--spec",
            "demo",
            "--root",
            str(tmp_path / "r"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline, server = time.monotonic() + 120, None
    while server is None and time.monotonic() < deadline and cli.poll() is None:
        servers = [p for p in _children(cli.pid) if b"uvicorn" in Path(f"/proc/{p}/cmdline").read_bytes()]
        server = servers[0] if servers else None
        time.sleep(0.2)
    assert server is not None, "the CLI started no Prefect server"
    os.kill(cli.pid, signal.SIGKILL)
    cli.wait()
    deadline = time.monotonic() + 15
    while Path(f"/proc/{server}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{server}").exists()


@pytest.mark.slow
@pytest.mark.flow
def test_four_concurrent_runs_into_a_new_root_all_succeed(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    spec = tmp_path / "tiny.toml"
    spec.write_text("scales = [1.0, 3.0]\nn_train = 64\nn_test = 64\nblock_size = 32\neps = [0]\n")
    root = tmp_path / "new-root"
    models = ["identity:1x4x4", "noise:1x4x4", "identity:2x4x4", "identity:1x2x2"]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda m: synbench("run", m, "--spec", str(spec), "--root", str(root)), models))
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stderr[-300:] for r in results]
    board = json.loads(synbench("leaderboard", "--root", str(root), "--format", "json").stdout)
    assert {r["model"] for r in board} == set(models) and len(board) == 4 * 4


@pytest.mark.slow
@pytest.mark.flow
def test_dask_batch_keeps_its_info_logs_quiet(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text("scales = [1.0, 3.0]\nn_train = 64\nn_test = 64\nblock_size = 32\neps = [0]\n")
    result = synbench(
        "batch", "identity:1x4x4", "--dask", "--workers", "2", "--spec", str(spec), "--root", str(tmp_path / "r")
    )
    assert result.returncode == 0 and "identity:1x4x4" in result.stdout
    assert "INFO" not in result.stderr and "distributed" not in result.stderr


@pytest.mark.slow
@pytest.mark.flow
def test_scores_carry_intervals_and_models_compare_paired(tmp_path):
    """The issue-12 check: two controls on the demo spec, intervals on every row, compare and rank bands."""
    from synbench.board.compare import compare_models
    from synbench.board.read import read_board
    from synbench.board.tables import format_board
    from synbench.core.errors import SynBenchError

    root = str(tmp_path / "root")
    batch = synbench("batch", "identity:1x8x8", "noise:1x8x8", "--spec", "demo", "--root", root)  # = two runs
    assert batch.returncode == 0, batch.stderr
    assert "band" in batch.stdout and "±" in batch.stdout
    rows = json.loads(synbench("leaderboard", "--root", root, "--format", "json").stdout)
    assert len(rows) == 2 * 6 * 4 and all(r["score_low"] <= r["score"] <= r["score_high"] for r in rows)
    assert all(r["ci_method"] == "half-sampling" and r["ci_replicates"] == 40 for r in rows)
    identity = [r for r in rows if r["model"] == "identity:1x8x8" and r["threshold"] == 0.6]
    assert all(0.001 < r["score_high"] - r["score_low"] < 0.3 for r in identity)
    assert all(r["score_high"] < 0.1 for r in rows if r["model"] == "noise:1x8x8")
    apart = synbench("compare", "identity:1x8x8", "noise:1x8x8", "--root", root)
    # both scores at each of the 4 thresholds
    assert apart.returncode == 0 and apart.stdout.count("│ A higher") == 8 and "A = identity:1x8x8" in apart.stdout
    # the rest in this process: the same functions the commands call
    board = read_board(root)
    same = compare_models(board, "identity:1x8x8", "identity:1x8x8")
    assert len(same) == 8 and set(same["kind"]) == {"score", "score_dm"}
    assert (same[["difference", "difference_low", "difference_high"]].to_numpy() == 0).all()
    summary = json.loads(format_board(board, "json", summary=True))
    assert {(r["model"], r["rank_band"]) for r in summary} == {("identity:1x8x8", "1"), ("noise:1x8x8", "2")}
    with pytest.raises(SynBenchError, match="no model 'resnet' on the board"):
        compare_models(board, "identity:1x8x8", "resnet")


@pytest.mark.slow
@pytest.mark.flow
def test_controls_of_one_size_score_alike_whatever_their_shape_next_to_a_signal_encoder(tmp_path):
    """Issue 23's check: identity:256 and identity:1x16x16 see the same inputs; a (2, 128) encoder has rows."""
    spec = tmp_path / "tiny.toml"
    spec.write_text("scales = [0.5, 1.5, 2.5, 3.5]\nn_train = 320\nn_test = 320\nblock_size = 64\neps = [0, 0.2]\n")
    root = tmp_path / "root"
    signal = "py:sequence_encoders:conv1d_encoder"
    result = synbench(
        "batch", "identity:256", "identity:1x16x16", signal, "--spec", str(spec), "--ci", "none", "--root", str(root)
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(synbench("leaderboard", "--root", str(root), "--format", "json").stdout)
    scores = {(r["model"], r["eps"], r["threshold"]): r["score"] for r in records}
    assert len(scores) == 3 * 2 * 4 and sum(model == signal for model, _, _ in scores) == 8
    for (model, eps, threshold), score in scores.items():
        if model == "identity:256":
            assert abs(score - scores[("identity:1x16x16", eps, threshold)]) <= 1e-9


def test_a_finished_batch_reruns_without_starting_prefect(tmp_path):
    """Every model already published (here by the notebook API): the batch, or a run of one of them,
    prints its outcome and the board, writes nothing and never configures Prefect (no .prefect folder)."""
    from synbench.api import evaluate

    spec = tmp_path / "tiny.toml"
    spec.write_text("scales = [1.0, 3.0]\nn_train = 64\nn_test = 64\nblock_size = 32\neps = [0]\n")
    root = tmp_path / "root"
    for ref in ("identity:1x4x4", "noise:1x4x4"):
        evaluate(ref, spec=str(spec), root=str(root), ci_replicates=4)
    before = sorted((str(path), path.stat().st_size) for path in root.rglob("*"))
    args = ("--spec", str(spec), "--root", str(root), "--ci-replicates", "4")
    rerun = synbench("batch", "identity:1x4x4", "noise:1x4x4", *args)
    assert rerun.returncode == 0, rerun.stderr
    assert "all 2 models are already published for this spec and code version" in rerun.stdout
    assert rerun.stdout.count(" ok ") == 2 and "noise:1x4x4" in rerun.stdout.split("nothing to run")[1]
    single = synbench("run", "noise:1x4x4", *args)
    assert single.returncode == 0, single.stderr
    assert "0 chunks written, all reused" in single.stdout and "identity:1x4x4" in single.stdout  # the board
    assert sorted((str(path), path.stat().st_size) for path in root.rglob("*")) == before
    assert not (root / ".prefect").exists()


@pytest.mark.slow
def test_layers_all_is_every_stage_then_the_head_drawn_by_depth_and_ranked_by_agree(tmp_path):
    """Item 2 of issue 30: the stages published by the notebook API are exactly what --layers all names (the
    batch finds them all and starts nothing); the page draws them as a layer series; agree ranks them."""
    from synbench.api import evaluate

    spec = tmp_path / "tiny.toml"
    spec.write_text("scales = [1.0, 3.0]\nn_train = 128\nn_test = 128\nblock_size = 128\neps = [0]\n")
    root = tmp_path / "root"
    layers = [*(f"random:test_convnext#stage{k}" for k in range(4)), "random:test_convnext"]
    for ref in layers:
        evaluate(ref, spec=str(spec), root=str(root), ci_replicates=0)
    args = ("--spec", str(spec), "--root", str(root), "--ci", "none")
    rerun = synbench("batch", "random:test_convnext", "--layers", "all", *args)
    assert rerun.returncode == 0, rerun.stderr
    assert "all 5 models are already published" in rerun.stdout and not (root / ".prefect").exists()
    from synbench.board.read import read_board
    from synbench.board.series import series_records

    board = read_board(root)
    series = series_records(board)
    assert set(series["kind"]) == {"layers"} and sorted(series["step"].unique()) == [0, 1, 2, 3, 4]  # 4: the head
    head = series[(series["step"] == 4) & (series["threshold"] == 0.7)].iloc[0]
    best = board[(board["model"] == "random:test_convnext") & (board["threshold"] == 0.7)]["score_dm"].max()
    assert head["model"] == "random:test_convnext" and head["score_dm"] == best
    page = synbench("leaderboard", "--root", str(root), "--format", "html").stdout
    assert "Layer series" in page and "random:test_convnext#stage*" in page and "<td>head</td>" in page
    agreed = synbench("agree", "--root", str(root), "--data", "lfw", "--format", "json")
    assert agreed.returncode == 0, agreed.stderr
    result = json.loads(agreed.stdout)
    assert {row["model"] for row in result["models"]} == set(layers)
    assert all("correct_counts" not in row for row in result["models"])  # per-sample outcomes stay in the Parquet
    intervals = {"kendall_tau_low", "kendall_tau_high", "spearman_rho_low", "spearman_rho_high", "saturated"}
    assert all(intervals <= set(row) for row in result["agreement"])
    assert all(
        row["n_test"] == 200 and row["accuracy_low"] <= row["accuracy"] <= row["accuracy_high"]
        for row in result["models"]
    )
