"""Flow-level tests: few, sharing one Prefect test harness (it costs ~10 s to start)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.flow


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    results = tmp_path_factory.mktemp("prefect-results")
    with prefect_test_harness(), temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: results}):
        yield


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text("scales = [0.5, 1.5, 2.5]\nn_train = 64\nn_test = 64\nblock_size = 32\neps = [0, 0.2]\n")
    return str(path)


def _files(root):
    return {
        p: (p.stat().st_mtime_ns, p.stat().st_size)
        for p in root.rglob("*")
        if p.is_file() and ".prefect" not in p.parts
    }


def test_benchmark_twice_recomputes_nothing(harness, tmp_path, spec_file):
    from synbench_flows.benchmark import benchmark

    from synbench.board.read import read_board

    root = tmp_path / "root"
    first = benchmark("identity:3x4x4", spec=spec_file, root=str(root), device="cpu")
    assert first["written_chunks"] == 12 and first["status"] == "ok"
    before = _files(root)
    second = benchmark("identity:3x4x4", spec=spec_file, root=str(root), device="cpu")
    assert second["written_chunks"] == 0
    assert _files(root) == before  # no chunk, table or part rewritten
    board = read_board(root)
    assert len(board) == 2 * 4 and not board.duplicated(["model_fingerprint", "eps", "threshold"]).any()
    # a changed input (eps) reuses the features and publishes new rows
    third = benchmark("identity:3x4x4", spec=spec_file, eps=[0.0, 0.4], root=str(root), device="cpu")
    assert third["written_chunks"] == 0 and len(read_board(root)) == 16


def test_batch_reports_failures_and_retries_transient_faults(harness, tmp_path, spec_file, monkeypatch):
    from encoders_for_tests import small_linear
    from safetensors.torch import save_file
    from synbench_flows.benchmark import benchmark_batch

    import synbench.stages.probes as probe_module

    calls = {"n": 0}
    real_probe_group = probe_module.probe_group

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("transient I/O fault")
        return real_probe_group(*args)

    monkeypatch.setattr(probe_module, "probe_group", flaky)
    (tmp_path / "runs").mkdir()
    for step in (12, 3):  # a checkpoint series; the second file is not a checkpoint: one failure
        (tmp_path / "runs" / f"ckpt-{step}.safetensors").write_bytes(b"" if step == 12 else b"garbage")
    save_file(small_linear().state_dict(), str(tmp_path / "runs" / "ckpt-12.safetensors"))
    outcomes = benchmark_batch(
        model_refs=[
            "identity:3x4x4",
            "random:no_such_arch",
            "noise:3x4x4",
            f"py:encoders_for_tests:small_linear@{tmp_path}/runs/ckpt-*.safetensors",
        ],
        spec=spec_file,
        root=str(tmp_path / "r"),
        device="cpu",
        ci_replicates=4,
    )
    status = {o["model"].rsplit("/", 1)[-1]: o["status"] for o in outcomes}
    assert status == {
        "identity:3x4x4": "ok",
        "random:no_such_arch": "failed",
        "noise:3x4x4": "ok",
        "ckpt-3.safetensors": "failed",
        "ckpt-12.safetensors": "ok",
    }
    assert [o["model"].rsplit("/", 1)[-1] for o in outcomes][-2:] == ["ckpt-3.safetensors", "ckpt-12.safetensors"]
    assert "unknown timm architecture" in outcomes[1]["error"] and calls["n"] == 4  # one retry, then three models
    assert len(list((tmp_path / "r" / "leaderboard" / "snapshots").glob("*.parquet"))) == 1


def test_user_errors_are_not_retried(harness):
    from synbench_flows.tasks import fingerprint_task, probe_task

    assert probe_task.retries == 3 and fingerprint_task.retries == 0
    from prefect.states import Failed
    from synbench_flows.tasks import _retry_unless_user_error

    from synbench.core.errors import EncoderError

    user_state = Failed(data=EncoderError("bad model"))
    transient_state = Failed(data=OSError("disk hiccup"))
    assert _retry_unless_user_error(None, None, user_state) is False
    assert _retry_unless_user_error(None, None, transient_state) is True


def test_no_flow_parameter_can_turn_on_py_encoders(harness, tmp_path, spec_file, monkeypatch):
    import inspect
    from pathlib import Path

    from synbench_flows import benchmark as flows

    from synbench.core.errors import EncoderError

    monkeypatch.delenv("SYNBENCH_ALLOW_PY", raising=False)
    for entry in (flows.benchmark, flows.benchmark_batch, flows.refresh_leaderboard):
        assert "allow_py" not in inspect.signature(entry.fn).parameters
    assert "allow_py" not in (Path(__file__).parents[1] / "deployment.yaml").read_text()
    with pytest.raises(EncoderError, match="would import and run user code, which is off here"):
        flows.benchmark("py:os:getcwd", spec=spec_file, root=str(tmp_path / "r"), device="cpu")
    outcome = flows.benchmark_batch(model_refs=["py:os:getcwd"], spec=spec_file, root=str(tmp_path / "r"))
    assert outcome[0]["status"] == "failed" and "SYNBENCH_ALLOW_PY" in outcome[0]["error"]


def test_flow_parameters_reach_only_the_folders_the_worker_allows(harness, tmp_path, monkeypatch):
    from synbench_flows.benchmark import audit_artifacts, refresh_leaderboard

    from synbench.core.errors import SynBenchError

    secrets = tmp_path / "secrets.env"
    secrets.write_text("AWS_SECRET_ACCESS_KEY=hunter2\n")
    monkeypatch.setenv("SYNBENCH_ALLOWED_PATHS", str(tmp_path / "worker"))
    with pytest.raises(SynBenchError, match="models_file .* is outside the folders this worker allows"):
        refresh_leaderboard(models_file=str(secrets), spec="demo", root=str(tmp_path / "worker" / "root"))
    with pytest.raises(SynBenchError, match="root '/etc' is outside the folders"):
        audit_artifacts(root="/etc")
    monkeypatch.setenv("SYNBENCH_ALLOWED_PATHS", str(tmp_path))
    with pytest.raises(SynBenchError, match="line 1 of model list 'secrets.env' is not a model reference") as caught:
        refresh_leaderboard(models_file=str(secrets), spec="demo", root=str(tmp_path / "root"))
    assert "hunter2" not in str(caught.value)


def test_deployment_file_deploys_the_flows_with_parameters_they_take(monkeypatch):
    """What `prefect deploy --prefect-file deployment.yaml --all` deploys (docs/scale/how-it-runs.md): each entrypoint
    loads as Prefect loads it, names a flow taking every parameter given, on the pools the docs create; and
    `prefect deployment run 'synbench-benchmark/benchmark' -p model_ref=… -p spec=…` names one of them.
    benchmarks/deploy_and_run.sh runs those commands against a server and two workers."""
    import inspect
    from pathlib import Path

    import yaml
    from prefect.flows import Flow, load_flow_from_entrypoint

    checkout = Path(__file__).parents[1]
    monkeypatch.chdir(checkout)  # the pull step's working directory: the checkout at SYNBENCH_HOME
    deployments = yaml.safe_load((checkout / "deployment.yaml").read_text())["deployments"]
    deployed = {}
    for deployment in deployments:
        flow = load_flow_from_entrypoint(deployment["entrypoint"])
        assert isinstance(flow, Flow)
        taken = set(inspect.signature(flow.fn).parameters)
        assert set(deployment.get("parameters", {})) <= taken, deployment["name"]
        deployed[f"{flow.name}/{deployment['name']}"] = (deployment["work_pool"]["name"], taken)
    assert {name: pool for name, (pool, _) in deployed.items()} == {
        "synbench-refresh-leaderboard/refresh-leaderboard": "gpu",
        "synbench-benchmark/benchmark": "gpu",
        "synbench-benchmark-batch/benchmark-batch": "gpu",
        "synbench-audit/audit": "cpu",
    }
    assert {"model_ref", "spec", "root"} <= deployed["synbench-benchmark/benchmark"][1]
