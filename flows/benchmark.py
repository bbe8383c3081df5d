"""Prefect flows: the five SynBench stages chained for one model, a batch, a refresh, an audit."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner
from synbench_flows.tasks import (
    curves_task,
    extract_task,
    fingerprint_task,
    generate_task,
    probe_task,
    publish_task,
    replicates_task,
)

from synbench.audit.root import audit_root
from synbench.board.read import read_board, write_snapshot
from synbench.board.tables import summary_table
from synbench.core.errors import SynBenchError
from synbench.core.spec import BenchmarkSpec, load_spec
from synbench.method.intervals import DEFAULT_REPLICATES, check_replicates
from synbench.models.references import absolute_reference, expand_series, read_model_list
from synbench.stages.extract import resolve_device
from synbench.stages.progress import stage
from synbench.store.roots import location, open_root

# (model reference, blocks done, blocks total): the CLI's progress bar or plain lines; one with a ``stage`` method
# (synbench.stages.progress.PlainProgress) also hears each stage start and end; None in deployments
Progress = Callable[[str, int, int], None] | None


def make_task_runner(workers: int = 1, dask: str | None = None, verbose: bool = False):
    """Threads by default; with ``dask``, prefect-dask on a local cluster (``"local"``, ``workers`` workers)
    or on the existing ``dask.distributed`` scheduler at that address (e.g. ``tcp://scheduler:8786``)."""
    if dask:
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise SynBenchError("--dask needs prefect-dask; install it with pip install 'synbench[dask]'.") from None
        if dask != "local":
            return DaskTaskRunner(address=dask)
        quiet = {} if verbose else {"silence_logs": logging.WARNING}  # dask's INFO lines
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "processes": False, **quiet})
    return ThreadPoolTaskRunner(max_workers=workers)


ALLOWED_PATHS_ENV = "SYNBENCH_ALLOWED_PATHS"  # the worker's own list of folders flows may read and write


def _local(path: str) -> str:
    """A ``file://`` URL as the local path it names: allowed folders and roots compare as paths."""
    return path.removeprefix("file://") if path.startswith("file://") else path


def _allowed(path: str, what: str):
    """A path or URL from a flow-run parameter, refused unless it lies in a folder (or under a URL prefix)
    the worker's configuration allows.

    Default: the worker's working directory. The CLI adds the root and files named on its command line.
    Entries are separated by the OS path separator; a URL entry (``s3://bucket/prefix``) allows what is below it.
    """
    # the OS path separator, except the ":" of "s3://"
    separator = ";" if os.pathsep == ";" else r":(?!//)"
    entries = [_local(p) for p in re.split(separator, os.environ.get(ALLOWED_PATHS_ENV, "")) if p]
    path = _local(path)
    if "://" in path:
        url = path.rstrip("/")
        if any(url == e.rstrip("/") or url.startswith(e.rstrip("/") + "/") for e in entries if "://" in e):
            return location(url)
    else:
        resolved = Path(path).expanduser().resolve()
        local = [Path(p).expanduser().resolve() for p in entries if "://" not in p]
        for folder in local or [Path.cwd().resolve()]:
            if resolved == folder or folder in resolved.parents:
                return resolved
    raise SynBenchError(
        f"{what} {path!r} is outside the folders this worker allows; set {ALLOWED_PATHS_ENV} in the worker's "
        "own environment to permit it."
    )


def _load(
    spec: str, eps: list[float] | None, root: str, input_shape: list[int] | None = None
) -> tuple[BenchmarkSpec, Path]:
    """Flow parameters are plain JSON (deployments): a spec name or file, an eps list, a root path."""
    shape = tuple(input_shape) if input_shape else None
    spec_obj = load_spec(spec, eps=tuple(eps) if eps else None, input_shape=shape)
    return spec_obj, open_root(_allowed(root, "root"))


def _overrides(mean: list[float] | None, std: list[float] | None) -> dict | None:
    """--mean and --std each on its own: the other one stays the model's."""
    if not mean and not std:
        return None
    return {"mean": tuple(mean) if mean else None, "std": tuple(std) if std else None}


def _run_stages(
    model_ref: str,
    spec: BenchmarkSpec,
    root: Path,
    device: str,
    dtype: str,
    preprocess: dict | None = None,
    progress: Progress = None,
    ci_replicates: int = DEFAULT_REPLICATES,
) -> dict:
    generate_task(spec, root)

    def staged(name: str, stage_task, *args):  # a plain progress line as each stage starts and ends
        with stage(progress, model_ref, name):
            return stage_task(*args)

    fingerprint = staged("load", fingerprint_task, model_ref, spec, preprocess)
    extracted = staged("extract", extract_task, model_ref, fingerprint, spec, root, device, dtype, preprocess, progress)
    linalg_device = str(resolve_device(device))  # the probes and intervals run where the features were made
    probe_path = staged("probe", probe_task, fingerprint, spec, root, linalg_device)
    replicates_path = staged("intervals", replicates_task, fingerprint, spec, root, ci_replicates, linalg_device)
    curves_path = staged("curves", curves_task, probe_path, spec, root)
    part = staged("publish", publish_task, fingerprint, spec, root, curves_path, model_ref, replicates_path)
    return {"model": model_ref, "fingerprint": fingerprint, "status": "ok", "part": part, **extracted}


# One model's stages as a unit that a task runner (threads, prefect-dask) can schedule.
benchmark_model_task = task(name="benchmark-model")(_run_stages)


def _outcome(model_ref: str, state) -> dict:
    try:
        return state.result()
    except Exception as exc:  # reported per model; the batch goes on
        kind = "user error" if isinstance(exc, SynBenchError) else type(exc).__name__
        return {"model": model_ref, "status": "failed", "error": f"{kind}: {exc}"}


def _publish_artifacts(root: Path, spec: BenchmarkSpec, outcomes: list[dict]) -> None:
    board = read_board(root, spec=spec.spec_hash)
    if not board.empty:
        table = summary_table(board)
        create_table_artifact(
            table.to_dict(orient="records"), key="synbench-leaderboard", description="SynBench-Score by model"
        )
    lines = [f"# SynBench run: spec `{spec.name}` ({spec.spec_hash})", ""]
    lines += [f"- `{o['model']}`: {o['status']}" + (f" ({o['error']})" if "error" in o else "") for o in outcomes]
    create_markdown_artifact("\n".join(lines), key="synbench-summary", description="What this run did")


@flow(name="synbench-benchmark")
def benchmark(
    model_ref: str,
    spec: str = "quick",
    eps: list[float] | None = None,
    root: str = "data",
    device: str = "auto",
    dtype: str = "fp32",
    input_shape: list[int] | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    ci_replicates: int = DEFAULT_REPLICATES,
    progress: Progress = None,
) -> dict:
    """All five stages for one model reference; ``input_shape``, ``mean``, ``std`` override its preprocessing.

    ``ci_replicates`` half-samples give each score its 95% interval (0: no intervals).

    ``py:`` references run only where the worker's own environment sets ``SYNBENCH_ALLOW_PY=1``.
    """
    spec_obj, root_path = _load(spec, eps, root, input_shape)
    preprocess = _overrides(mean, std)
    model_ref = absolute_reference(model_ref)  # a weights path is stored absolute: it resolves from any folder
    outcome = _run_stages(
        model_ref, spec_obj, root_path, device, dtype, preprocess, progress, check_replicates(ci_replicates)
    )
    _publish_artifacts(root_path, spec_obj, [outcome])
    return outcome


@flow(name="synbench-benchmark-batch", task_runner=ThreadPoolTaskRunner(max_workers=1))
def benchmark_batch(
    model_refs: list[str] | None = None,
    models_file: str | None = None,
    spec: str = "quick",
    eps: list[float] | None = None,
    root: str = "data",
    device: str = "auto",
    dtype: str = "fp32",
    input_shape: list[int] | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    ci_replicates: int = DEFAULT_REPLICATES,
    progress: Progress = None,
) -> list[dict]:
    """Many models; one failure is reported and does not stop the others; finished work is reused.

    A reference whose weights path is a glob (``timm:resnet18@runs/ckpt-*.safetensors``) stands for
    every matching checkpoint, in step order.

    Models run one at a time by default; for several at once call
    ``benchmark_batch.with_options(task_runner=ThreadPoolTaskRunner(4))`` or a
    ``prefect_dask.DaskTaskRunner`` (``synbench batch --workers N [--dask]``).
    """
    spec_obj, root_path = _load(spec, eps, root, input_shape)
    listed = read_model_list(_allowed(models_file, "models_file"), quote=False) if models_file else []
    refs = [expanded for ref in list(model_refs or []) + listed for expanded in expand_series(ref)]
    generate_task(spec_obj, root_path)
    unique_refs = list(dict.fromkeys(refs))
    preprocess, replicates = _overrides(mean, std), check_replicates(ci_replicates)
    futures = [
        benchmark_model_task.submit(ref, spec_obj, root_path, device, dtype, preprocess, progress, replicates)
        for ref in unique_refs
    ]
    outcomes = []
    for ref, future in zip(unique_refs, futures, strict=True):
        future.wait()
        outcomes.append(_outcome(ref, future.state))
    write_snapshot(root_path)
    _publish_artifacts(root_path, spec_obj, outcomes)
    return outcomes


@flow(name="synbench-refresh-leaderboard")
def refresh_leaderboard(
    models_file: str,
    spec: str = "quick",
    root: str = "data",
    device: str = "auto",
    ci_replicates: int = DEFAULT_REPLICATES,
) -> list[dict]:
    """Scheduled refresh: benchmark what is new or changed (the rest is cached), then snapshot."""
    return benchmark_batch(models_file=models_file, spec=spec, root=root, device=device, ci_replicates=ci_replicates)


@flow(name="synbench-audit")
def audit_artifacts(root: str = "data", repair: bool = False, deep: bool = False) -> dict:
    """Verify every stored artifact and recompute scores from the stored features."""
    report = audit_root(open_root(_allowed(root, "root"), create=False), repair=repair, deep=deep)
    lines = ["# SynBench audit", "", f"- problems: {len(report.problems)}", f"- repaired: {len(report.repaired)}"]
    lines += [f"- {p}" for p in report.problems[:50]]
    create_markdown_artifact("\n".join(lines), key="synbench-audit", description="Audit of stored artifacts")
    return report.to_dict()
