"""The notebook API: score a model in a few lines, with the same stages the CLI and the flows run."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from os import PathLike

import pandas as pd
from torch import nn

from .board.read import read_board
from .core.spec import BenchmarkSpec, load_spec
from .method.intervals import DEFAULT_REPLICATES, check_replicates
from .models.encoders import Encoder, encoder_from_module, resolve_encoder
from .models.references import EncoderRef
from .models.weights_paths import absolute_reference
from .stages.pipeline import run_stages
from .store.roots import location, open_root

__all__ = ["evaluate"]


def _encoder(
    model: nn.Module | str,
    spec: BenchmarkSpec,
    input_shape: tuple[int, ...] | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> Encoder:
    overrides = {"mean": tuple(mean) if mean else None, "std": tuple(std) if std else None}
    shape = input_shape or spec.input_shape  # the model's own override first, then the spec's
    if isinstance(model, str):
        # a weights path is stored absolute, so that the board's name resolves from any folder
        return resolve_encoder(absolute_reference(model), shape, allow_py=True, **overrides)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module or a reference string; got {type(model).__name__}")
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    ref = EncoderRef(text=f"module:{kind}", scheme="module", target=kind)
    return encoder_from_module(model, ref, kind, {}, shape, **overrides)


def evaluate(
    model: nn.Module | str,
    *,
    spec: str | PathLike | BenchmarkSpec = "quick",
    input_shape: Sequence[int] | int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    eps: Sequence[float] | None = None,
    root: str | PathLike | None = None,
    device: str = "auto",
    dtype: str = "fp32",
    name: str | None = None,
    ci_replicates: int = DEFAULT_REPLICATES,
) -> pd.DataFrame:
    """Score ``model`` and return its board rows (one per eps and threshold), without a Prefect server.

    Args:
        model: an ``nn.Module`` already in memory, or a reference such as ``"random:resnet18"``.
        spec: a preset name, a spec file, or a ``BenchmarkSpec``.
        input_shape, mean, std: override the model's own preprocessing. The shape has any rank: (3, 32, 32),
            (2, 128), (16, 8) or 256; mean/std hold one value, or one per channel (the shape's first axis).
            They belong to the model (its fingerprint), not to the spec: the model joins the spec's board, and
            values equal to the model's own change nothing.
        eps: robustness levels (override the spec's).
        root: artifact root to keep the features in (reused on the next call); default a temporary folder.
        dtype: "fp32", or "bf16" (the forward under bf16 autocast, features stored in float32).
        name: the model's name on the board (default ``module:<class path>`` or the reference).
        ci_replicates: half-samples behind each score's 95% interval (``score_low``, ``score_high``); 0: none.
    """
    check_replicates(ci_replicates)
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape) if input_shape is not None else None
    if isinstance(spec, BenchmarkSpec):
        spec_obj = BenchmarkSpec.from_dict({**spec.to_dict(), **({"eps": eps} if eps else {})})
    else:
        spec_obj = load_spec(spec, eps=tuple(eps) if eps else None)
    encoder = _encoder(model, spec_obj, shape, mean, std)
    label = name or encoder.ref.text
    if encoder.preprocess.source == "default":
        warnings.warn(
            f"{label} declares no preprocessing; using timm's defaults ({encoder.preprocess.describe()}). "
            "Pass input_shape, mean and std.",
            stacklevel=2,
        )
    with tempfile.TemporaryDirectory(prefix="synbench-") if root is None else nullcontext() as scratch:
        root_path = open_root(location(scratch if root is None else root))
        run = run_stages(encoder, spec_obj, root_path, label, device, dtype, ci_replicates)
        board = read_board(root_path, spec=spec_obj.spec_hash, warn=False)
        return board[board["model_fingerprint"] == run.fingerprint].reset_index(drop=True)
