"""One model's five stages in this process: what ``synbench.evaluate`` and ``synbench run`` do.

The Prefect flows (``flows/``) chain the same stage functions as tasks, with retries and cache keys, for
batches, the scheduled refresh and deployments. Every stage reuses what the store holds, so a rerun
recomputes nothing and an interrupted run resumes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.spec import BenchmarkSpec
from ..method.intervals import DEFAULT_REPLICATES
from ..models.encoders import Encoder
from ..store.roots import Location
from .curves import curves_stored, publish_scores
from .extract import ProgressFn, extract_features, resolve_device
from .probes import probe_stored, replicates_stored, write_recipe
from .progress import stage

__all__ = ["ModelRun", "run_stages"]


@dataclass(frozen=True)
class ModelRun:
    """What one model's stages did."""

    fingerprint: str
    part: Location  # the published board part
    written_chunks: int  # feature blocks encoded by this run
    skipped_chunks: int  # feature blocks found stored


def run_stages(
    encoder: Encoder,
    spec: BenchmarkSpec,
    root: Location,
    label: str,
    device: str = "auto",
    dtype: str = "fp32",
    ci_replicates: int = DEFAULT_REPLICATES,
    progress: ProgressFn | None = None,
) -> ModelRun:
    """Generate, extract, probe (with ``ci_replicates`` half-sample refits), curves, publish under ``label``.

    ``progress`` hears extraction blocks as ``(label, done, total)``, and each stage's start and end when it has a
    ``stage`` method (``progress.PlainProgress``, ``progress.BarProgress``).
    """
    write_recipe(spec, root)
    with stage(progress, label, "extract"):
        extracted = extract_features(encoder, spec, root, device=device, dtype=dtype, progress=progress)
    linalg_device = str(resolve_device(device))  # the probe and its refits run where the features were made
    with stage(progress, label, "probe"):
        probe_path = probe_stored(root, encoder.fingerprint, spec, linalg_device)
    with stage(progress, label, "intervals"):
        replicates = replicates_stored(root, encoder.fingerprint, spec, ci_replicates, linalg_device)
    with stage(progress, label, "curves"):
        curves_path = curves_stored(root, probe_path, spec)
    with stage(progress, label, "publish"):
        part, _ = publish_scores(root, encoder.fingerprint, spec, curves_path, label, replicates)
    return ModelRun(encoder.fingerprint, part, extracted.written_chunks, extracted.skipped_chunks)
