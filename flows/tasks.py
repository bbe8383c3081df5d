"""Prefect tasks: each wraps one synbench stage with retries and a content cache key.

A cache key is returned only when the stage's artifact is already in the store, so the
store stays the source of truth: a deleted artifact is rebuilt, never read from a stale cache.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.tasks import exponential_backoff

from synbench.core.errors import SynBenchError
from synbench.core.provenance import code_version
from synbench.core.spec import BenchmarkSpec
from synbench.models.encoders import resolve_encoder
from synbench.stages.curves import curves_path, curves_stored, part_path, publish_scores
from synbench.stages.extract import ProgressFn, extract_features
from synbench.stages.probes import (
    probe_stored,
    probe_table_path,
    recipe_path,
    replicates_path,
    replicates_stored,
    write_recipe,
)
from synbench.store.features import open_feature_group
from synbench.store.roots import location


def _retry_unless_user_error(task, task_run, state) -> bool:
    """Transient faults (I/O, CUDA OOM) are retried; a SynBenchError is the user's to fix."""
    try:
        state.result()
    except SynBenchError:
        return False
    except Exception:
        return True
    return False


RETRYING = dict(
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=0.5),
    retry_condition_fn=_retry_unless_user_error,
    persist_result=True,
)


def _key_if(path, stage: str) -> str | None:
    return f"{stage}-{path.name}-{code_version()}" if path.is_file() else None


def _recipe_key(context, params) -> str | None:
    return _key_if(recipe_path(params["root"], params["spec"]), "recipe")


def _features_key(context, params) -> str | None:
    root, fingerprint, spec = params["root"], params["fingerprint"], params["spec"]
    group = open_feature_group(root, fingerprint, spec.data_hash)
    complete = group is not None and group.attrs.get("complete")
    return f"features-{fingerprint}-{spec.data_hash}-{code_version()}" if complete else None


def _probe_key(context, params) -> str | None:
    return _key_if(probe_table_path(params["root"], params["fingerprint"], params["spec"]), "probe")


def _replicates_key(context, params) -> str | None:
    if not params["replicates"]:
        return "replicates-none"
    path = replicates_path(params["root"], params["fingerprint"], params["spec"], params["replicates"])
    return _key_if(path, "replicates")


def _curves_key(context, params) -> str | None:
    return _key_if(curves_path(params["root"], location(params["probe_path"])), "curves")


def _publish_key(context, params) -> str | None:
    replicates = params["replicates_path"]
    path = part_path(params["root"], params["fingerprint"], params["spec"], params["model_ref"], replicates)
    return _key_if(path, "part")


@task(name="generate", cache_key_fn=_recipe_key, **RETRYING)
def generate_task(spec: BenchmarkSpec, root: Path) -> str:
    return str(write_recipe(spec, root))


def _encoder(model_ref: str, spec: BenchmarkSpec, preprocess: dict | None):
    """The model with its own overrides (input_shape, mean, std), else the spec's input shape."""
    given = dict(preprocess or {})
    return resolve_encoder(model_ref, given.pop("input_shape", None) or spec.input_shape, **given)


@task(name="fingerprint", retries=0)
def fingerprint_task(model_ref: str, spec: BenchmarkSpec, preprocess: dict | None) -> str:
    return _encoder(model_ref, spec, preprocess).fingerprint


@task(name="extract", cache_key_fn=_features_key, **RETRYING)
def extract_task(
    model_ref: str,
    fingerprint: str,
    spec: BenchmarkSpec,
    root: Path,
    device: str,
    dtype: str,
    preprocess: dict | None,
    progress: ProgressFn | None = None,
) -> dict:
    encoder = _encoder(model_ref, spec, preprocess)
    result = extract_features(encoder, spec, root, device=device, dtype=dtype, progress=progress)
    return {"key": result.key, "written_chunks": result.written_chunks, "skipped_chunks": result.skipped_chunks}


@task(name="probe", cache_key_fn=_probe_key, **RETRYING)
def probe_task(fingerprint: str, spec: BenchmarkSpec, root: Path, device: str = "cpu") -> str:
    return str(probe_stored(root, fingerprint, spec, device))


@task(name="intervals", cache_key_fn=_replicates_key, **RETRYING)
def replicates_task(
    fingerprint: str, spec: BenchmarkSpec, root: Path, replicates: int, device: str = "cpu"
) -> str | None:
    path = replicates_stored(root, fingerprint, spec, replicates, device)
    return str(path) if path else None


@task(name="curves", cache_key_fn=_curves_key, **RETRYING)
def curves_task(probe_path: str, spec: BenchmarkSpec, root: Path) -> str:
    return str(curves_stored(root, location(probe_path), spec))


@task(name="publish", cache_key_fn=_publish_key, **RETRYING)
def publish_task(
    fingerprint: str, spec: BenchmarkSpec, root: Path, curves_path: str, model_ref: str, replicates_path: str | None
) -> str:
    path, _ = publish_scores(root, fingerprint, spec, location(curves_path), model_ref, replicates_path)
    return str(path)
