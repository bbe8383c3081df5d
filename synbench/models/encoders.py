"""Encoders: a model reference resolved into a module, its preprocessing and its fingerprint."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from ..core.errors import DataError, EncoderError
from ..core.inputs import Preprocess, channel_count
from ..core.spec import shape_text
from .checkpoints import apply_weights, weights_digest, weights_stamp
from .hub import timm_module
from .layers import check_layer, represent_layer
from .preprocess import resolve_preprocess
from .pyfactory import SOURCE_INFO, WEIGHTS_INFO, resolve_py
from .references import LAYERS, EncoderRef, is_own_code, parse_reference, parse_seed, parse_shape, read_model_list

__all__ = [
    "EncoderRef",
    "Encoder",
    "parse_reference",
    "resolve_encoder",
    "resolve_as_stored",
    "encoder_from_module",
    "read_model_list",
    "seeded_init",
    "py_allowed",
    "SCHEMES",
    "LAYERS",
    "ALLOW_PY_ENV",
]

ALLOW_PY_ENV = "SYNBENCH_ALLOW_PY"  # set to 1 in a worker's own environment to run py: encoders
_INIT_LOCK = threading.Lock()


def py_allowed() -> bool:
    """Whether this process may import and run ``py:`` encoders (the worker's configuration, never a parameter)."""
    return os.environ.get(ALLOW_PY_ENV, "").strip().lower() in ("1", "true", "yes")


@contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Seed the global torch RNG for a model's construction without racing other threads."""
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@dataclass
class Encoder:
    """A resolved encoder: a module, its preprocessing and its fingerprint."""

    ref: EncoderRef
    module: nn.Module
    preprocess: Preprocess
    architecture: str  # timm name or the module's class path
    weights_digest: str  # sha256 of every parameter and buffer
    feature_dim: int = 0  # p, found by a trial forward
    info: dict = field(default_factory=dict)
    source_digest: str = ""  # a user py: module's source (pyfactory.py); empty for every other encoder

    @property
    def fingerprint(self) -> str:
        """Content hash of weights, preprocessing, architecture, layer and a user module's source."""
        payload = {
            "architecture": self.architecture,
            "weights": self.weights_digest,
            "preprocess": self.preprocess.to_dict(),
            "layer": self.ref.layer,
        }
        if self.source_digest:  # only then: every other fingerprint stays as earlier releases made it
            payload["source"] = self.source_digest
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @torch.no_grad()
    def represent(self, inputs: torch.Tensor) -> torch.Tensor:
        """Representations: tensor of shape (b, p) for inputs of shape (b, *input_shape), at ``ref.layer``."""
        out = represent_layer(self.module, inputs, self.ref.layer)
        if not isinstance(out, torch.Tensor):
            raise DataError(
                f"encoder {self.ref.text!r} must return a (batch, features) tensor; got {type(out).__name__}. "
                "Return one tensor from forward (e.g. the pooled features)."
            )
        if out.ndim != 2 or out.shape[0] != inputs.shape[0]:
            raise DataError(
                f"encoder {self.ref.text!r} returned shape {tuple(out.shape)} for a batch of "
                f"{inputs.shape[0]}; it must return (batch, features). Pick another layer or wrap it."
            )
        return out


class HashNoise(nn.Module):
    """Features that look like uniform noise and carry no information about the label."""

    def __init__(self, dim_in: int, dim_out: int = 64, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        projection = torch.randn(dim_in, dim_out, generator=generator)
        self.register_buffer("projection", projection / projection.norm(dim=0, keepdim=True))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        # sin of a large argument scrambles the phase: the label shift is far below its period.
        return torch.frac(torch.sin(inputs.flatten(1) @ self.projection * 1000.0) * 43758.5453)


def _raw_inputs(shape: tuple[int, ...]) -> dict:
    """A control's declared config: its shape, no normalisation (one 0/1 per channel, as images always had)."""
    channels = channel_count(shape)
    return {"input_size": shape, "mean": (0.0,) * channels, "std": (1.0,) * channels}


def _resolve_identity(ref: EncoderRef) -> tuple[nn.Module, str, dict]:
    return nn.Flatten(), "identity", _raw_inputs(parse_shape(ref))


def _resolve_noise(ref: EncoderRef) -> tuple[nn.Module, str, dict]:
    shape = parse_shape(ref)
    return HashNoise(math.prod(shape), seed=parse_seed(ref)), "noise", _raw_inputs(shape)


def _resolve_timm(ref: EncoderRef) -> tuple[nn.Module, str, dict]:
    module = timm_module(ref, pretrained=ref.weights is None)
    if ref.weights is None:
        return module, ref.target, {}
    return module, ref.target, {WEIGHTS_INFO: apply_weights(module, ref.weights, ref.text, ref.target)}


def _resolve_random(ref: EncoderRef) -> tuple[nn.Module, str, dict]:
    with seeded_init(parse_seed(ref)):
        module = timm_module(ref, pretrained=False)
    return module, ref.target, {}


SCHEMES: dict[str, Callable[[EncoderRef], tuple[nn.Module, str, dict]]] = {
    "identity": _resolve_identity,
    "noise": _resolve_noise,
    "timm": _resolve_timm,
    "random": _resolve_random,
    "py": resolve_py,
}


def resolve_encoder(
    text: str,
    input_shape: tuple[int, ...] | None = None,
    allow_py: bool | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> Encoder:
    """Turn a model reference into a ready ``Encoder`` (eval mode, on CPU, trial forward done).

    ``allow_py`` defaults to the process's own configuration (``SYNBENCH_ALLOW_PY``); SynBench's own factories
    (``py:synbench.demo:...``) are trusted code and always run. The last two
    resolutions are kept, so the stages of one run load a model once; a changed weights file
    (size or mtime) is loaded afresh.

    Raises:
        EncoderError: unknown scheme or architecture, missing or unsafe weights, a forward
            that fails on the input shape, or a ``py:`` reference where it is not allowed.
    """
    ref = parse_reference(text)
    if ref.scheme == "py" and not is_own_code(ref) and not (py_allowed() if allow_py is None else allow_py):
        raise EncoderError(
            f"{text!r} would import and run user code, which is off here; name it on the synbench command line, "
            f"pass --allow-py, or set {ALLOW_PY_ENV}=1 in this worker's own environment."
        )
    stamp = weights_stamp(ref.weights) if ref.scheme in ("timm", "py") else None
    overrides = (tuple(mean) if mean else None, tuple(std) if std else None)
    shape = tuple(input_shape) if input_shape else None
    if ref.scheme in ("identity", "noise"):
        _check_control(ref, shape, overrides)
        shape = None  # its own shape: the same encoder, and fingerprint, as without the override
    return _resolve_cached(text, shape, overrides, stamp)


def resolve_as_stored(reference: str, preprocess: dict | None, allow_py: bool | None = None) -> Encoder:
    """The encoder with the preprocessing its stored features record (``--input-shape``, ``--mean``, ``--std``
    included): what a rerun from the store (agree, audit) must resolve to reach the same fingerprint."""
    if not preprocess or parse_reference(reference).scheme in ("identity", "noise"):  # controls take no overrides
        return resolve_encoder(reference, allow_py=allow_py)
    shape, mean, std = (tuple(preprocess[key]) for key in ("input_shape", "mean", "std"))
    return resolve_encoder(reference, shape, allow_py, mean=mean, std=std)


def _check_control(ref: EncoderRef, input_shape: tuple[int, ...] | None, overrides: tuple) -> None:
    """A control joins a spec or ``--input-shape`` that equals its own shape; any other override is refused."""
    mean, std = overrides  # its own values (0 and 1: raw inputs) are no override
    if any(v != 0 for v in mean or ()) or any(v != 1 for v in std or ()):
        raise EncoderError(f"{ref.text!r} is a control fed raw inputs and takes no mean/std; drop --mean/--std.")
    own = parse_shape(ref)
    if input_shape is not None and tuple(input_shape) != own:
        raise EncoderError(
            f"{ref.text!r} takes {shape_text(own)} inputs but the input shape asked for is "
            f"{shape_text(input_shape)}; name {ref.scheme}:{shape_text(input_shape)}, or drop the spec's input_shape "
            "(or --input-shape)."
        )


@functools.lru_cache(maxsize=2)
def _resolve_cached(
    text: str, input_shape: tuple[int, ...] | None, overrides: tuple, weights_stamp: tuple | None
) -> Encoder:
    ref = parse_reference(text)
    module, architecture, declared = SCHEMES[ref.scheme](ref)
    return encoder_from_module(module, ref, architecture, declared, input_shape, *overrides)


def encoder_from_module(
    module: nn.Module,
    ref: EncoderRef,
    architecture: str,
    declared: dict | None = None,
    input_shape: tuple[int, ...] | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> Encoder:
    """Wrap a module: eval mode, preprocessing, weights digest and a trial forward for the feature size."""
    module.eval()
    declared = dict(declared or {})
    info, source = declared.pop(WEIGHTS_INFO, {}), declared.pop(SOURCE_INFO, "")
    try:
        preprocess = resolve_preprocess(module, declared, input_shape, mean, std)
    except ValueError as exc:
        raise EncoderError(
            f"bad preprocessing for {ref.text!r}: {exc}; give one mean/std value, or one per channel (finite, "
            "std above 0)."
        ) from None
    check_layer(module, ref)
    encoder = Encoder(ref, module, preprocess, architecture, weights_digest(module), info=info, source_digest=source)
    trial = torch.zeros((2, *preprocess.input_shape)) + 0.5
    try:
        features = encoder.represent(trial)
    except DataError:
        raise
    except Exception as exc:
        raise EncoderError(
            f"{ref.text!r} fails on input shape {shape_text(preprocess.input_shape)}: "
            f"{str(exc).splitlines()[0][:160]}; "
            "use the model's native input shape (drop input_shape from the spec) or set a compatible one."
        ) from None
    if features.shape[1] == 0:
        raise EncoderError(f"{ref.text!r} returns 0 features per sample; return at least one (e.g. pooled features).")
    encoder.feature_dim = int(features.shape[1])
    return encoder
