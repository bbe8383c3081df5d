"""Model references: one string names an encoder everywhere (CLI, spec files, batch lists).

    identity:CxHxW            the raw inputs, flattened (control; no normalisation)
    noise:CxHxW[@SEED]        features that ignore the input (control)
    timm:ARCH                 timm architecture with pretrained weights from the local cache
    timm:ARCH@PATH            timm architecture with weights from a .safetensors / state-dict file
    random:ARCH[@SEED]        timm architecture, seeded random init
    py:MODULE:CALLABLE[@PATH] the user's factory returning a torch module (optional weights file)

Any reference may end in ``#pre_logits`` (default) or ``#features`` to pick the layer.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib
import json
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .errors import DataError, EncoderError
from .generate import IMAGENET_MEAN, IMAGENET_STD, Preprocess

__all__ = ["EncoderRef", "Encoder", "parse_reference", "resolve_encoder", "read_model_list", "SCHEMES", "LAYERS"]

LAYERS = ("pre_logits", "features")


@dataclass(frozen=True)
class EncoderRef:
    """A parsed model reference."""

    text: str  # the reference as the user wrote it
    scheme: str  # identity, noise, timm, random or py
    target: str  # shape, architecture or MODULE:CALLABLE
    weights: str | None = None  # weights path (timm, py) or seed (random, noise)
    layer: str = "pre_logits"  # which representation to take


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

    @property
    def fingerprint(self) -> str:
        """Content hash of weights, preprocessing, architecture and layer."""
        payload = {
            "architecture": self.architecture,
            "weights": self.weights_digest,
            "preprocess": self.preprocess.to_dict(),
            "layer": self.ref.layer,
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @torch.no_grad()
    def represent(self, inputs: torch.Tensor) -> torch.Tensor:
        """Representations: tensor of shape (b, p) for inputs of shape (b, C, H, W)."""
        module = self.module
        if hasattr(module, "forward_features") and hasattr(module, "forward_head"):
            feats = module.forward_features(inputs)
            if self.ref.layer == "pre_logits":
                out = module.forward_head(feats, pre_logits=True)
            else:  # pool spatial or token axes of the last feature map
                out = feats.mean(dim=tuple(range(2, feats.ndim))) if feats.ndim == 4 else feats
                out = out.mean(dim=1) if out.ndim == 3 else out
        else:
            out = module(inputs)
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


def parse_reference(text: str) -> EncoderRef:
    """Split ``scheme:target[@weights][#layer]`` into an ``EncoderRef``."""
    scheme, sep, rest = text.partition(":")
    if not sep or scheme not in SCHEMES:
        raise EncoderError(
            f"unknown encoder scheme {scheme!r} in {text!r}; use one of: "
            f"{', '.join(f'{s}:' for s in SCHEMES)} (e.g. random:test_convnext)."
        )
    rest, _, layer = rest.partition("#")
    layer = layer or "pre_logits"
    if layer not in LAYERS:
        raise EncoderError(f"unknown layer {layer!r} in {text!r}; use one of: {', '.join(LAYERS)}.")
    target, _, weights = rest.partition("@")
    if not target:
        raise EncoderError(
            f"model reference {text!r} names no model after {scheme!r}; e.g. {scheme}:{_EXAMPLES[scheme]}."
        )
    return EncoderRef(text=text, scheme=scheme, target=target, weights=weights or None, layer=layer)


def _parse_shape(ref: EncoderRef) -> tuple[int, int, int]:
    parts = ref.target.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise EncoderError(
            f"bad input shape {ref.target!r} in {ref.text!r}; write it as CxHxW, e.g. {ref.scheme}:3x4x4."
        )
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def _parse_seed(ref: EncoderRef) -> int:
    if ref.weights is None:
        return 0
    if not ref.weights.isdigit():
        raise EncoderError(
            f"bad seed {ref.weights!r} in {ref.text!r}; use a non-negative integer, e.g. random:resnet18@1."
        )
    return int(ref.weights)


def _weights_digest(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{data.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _load_state_dict(path_text: str, ref: EncoderRef) -> dict[str, torch.Tensor]:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise EncoderError(f"checkpoint file {str(path)!r} for {ref.text!r} does not exist; check the path after '@'.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise EncoderError(
                f"cannot read safetensors file {str(path)!r}: {exc}; re-save it with safetensors.torch.save_file."
            ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # not a pickle of objects: not a checkpoint at all
            raise EncoderError(
                f"cannot read checkpoint {str(path)!r}: it is not a torch or safetensors file; check the path."
            ) from None
        raise EncoderError(
            f"checkpoint {str(path)!r} needs to unpickle code, which SynBench never runs; "
            "re-save only the tensors (torch.save(model.state_dict(), ...) or safetensors)."
        ) from None
    except Exception as exc:
        raise EncoderError(
            f"cannot read checkpoint {str(path)!r}: {str(exc).splitlines()[0]}; "
            "save it with torch.save(model.state_dict(), path)."
        ) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise EncoderError(f"checkpoint {str(path)!r} holds no state dict of tensors; save model.state_dict().")
    return state


def _apply_weights(module: nn.Module, path_text: str, ref: EncoderRef) -> None:
    state = _load_state_dict(path_text, ref)
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise EncoderError(f"checkpoint does not fit {ref.target!r}: {first}; check the architecture name.") from None
    if result.missing_keys:
        raise EncoderError(
            f"checkpoint is missing {len(result.missing_keys)} weights of {ref.target!r} "
            f"(e.g. {result.missing_keys[0]!r}); check the architecture name."
        )


def _timm_module(ref: EncoderRef, pretrained: bool) -> nn.Module:
    import timm

    if not timm.is_model(ref.target):
        close = difflib.get_close_matches(ref.target, timm.list_models(), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else " See timm.list_models()."
        raise EncoderError(f"unknown timm architecture {ref.target!r} in {ref.text!r}.{hint}")
    try:
        return timm.create_model(ref.target, pretrained=pretrained, num_classes=0)
    except Exception as exc:
        if not pretrained:
            raise
        raise EncoderError(
            f"pretrained weights for {ref.target!r} are not in the local cache ({type(exc).__name__}); "
            f"copy them into the Hugging Face cache, or pass a file: timm:{ref.target}@/path/model.safetensors."
        ) from None


def _resolve_identity(ref: EncoderRef) -> tuple[nn.Module, str, dict]:
    shape = _parse_shape(ref)
    return nn.Flatten(), "identity", {"input_size": shape, "mean": (0.0,) * shape[0], "std": (1.0,) * shape[0]}


def _resolve_noise(ref: EncoderRef) -> tuple[nn.Module, str, dict]:
    shape = _parse_shape(ref)
    module = HashNoise(math.prod(shape), seed=_parse_seed(ref))
    return module, "noise", {"input_size": shape, "mean": (0.0,) * shape[0], "std": (1.0,) * shape[0]}


def _resolve_timm(ref: EncoderRef) -> tuple[nn.Module, str, dict]:
    module = _timm_module(ref, pretrained=ref.weights is None)
    if ref.weights is not None:
        _apply_weights(module, ref.weights, ref)
    return module, ref.target, {}


def _resolve_random(ref: EncoderRef) -> tuple[nn.Module, str, dict]:
    seed = _parse_seed(ref)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = _timm_module(ref, pretrained=False)
    return module, ref.target, {}


def _resolve_py(ref: EncoderRef) -> tuple[nn.Module, str, dict]:
    module_name, _, attr = ref.target.partition(":")
    if not module_name or not attr:
        raise EncoderError(f"bad py reference {ref.text!r}; write py:MODULE:CALLABLE, e.g. py:my_models:build_encoder.")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise EncoderError(f"cannot import {ref.target!r}: {exc}; check that the module is on PYTHONPATH.") from None
    module = factory()
    if not isinstance(module, nn.Module):
        raise EncoderError(
            f"{ref.target!r} returned {type(module).__name__}, not a torch.nn.Module; return the encoder module."
        )
    if ref.weights is not None:
        _apply_weights(module, ref.weights, ref)
    return module, f"{module_name}:{attr}", {}


SCHEMES: dict[str, Callable[[EncoderRef], tuple[nn.Module, str, dict]]] = {
    "identity": _resolve_identity,
    "noise": _resolve_noise,
    "timm": _resolve_timm,
    "random": _resolve_random,
    "py": _resolve_py,
}
_EXAMPLES = {
    "identity": "3x4x4",
    "noise": "3x4x4",
    "timm": "resnet18",
    "random": "test_convnext",
    "py": "my_models:build",
}


def _resolve_preprocess(module: nn.Module, declared: dict, input_shape: tuple[int, int, int] | None) -> Preprocess:
    """Preprocessing in priority order: explicit override, model's declared config, timm default."""
    from timm.data import resolve_data_config

    args = dict(declared)
    if input_shape is not None:
        args["input_size"] = tuple(input_shape)
    config = resolve_data_config(args, model=module)
    channels = config["input_size"][0]
    mean, std = tuple(config["mean"]), tuple(config["std"])
    if len(mean) != channels:  # e.g. a 1-channel model without declared stats
        mean, std = (IMAGENET_MEAN * channels)[:channels], (IMAGENET_STD * channels)[:channels]
    return Preprocess(tuple(config["input_size"]), mean, std, config.get("interpolation", "bicubic"))


def resolve_encoder(text: str, input_shape: tuple[int, int, int] | None = None, allow_py: bool = True) -> Encoder:
    """Turn a model reference into a ready ``Encoder`` (eval mode, on CPU, trial forward done).

    The last two resolutions are kept, so the stages of one run load a model once; a changed
    weights file (size or mtime) is loaded afresh.

    Raises:
        EncoderError: unknown scheme or architecture, missing or unsafe weights, a forward
            that fails on the input shape, or a ``py:`` reference where it is not allowed.
    """
    ref = parse_reference(text)
    stamp = None
    if ref.weights is not None and Path(ref.weights).expanduser().is_file():
        stat = Path(ref.weights).expanduser().stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
    return _resolve_cached(text, input_shape, allow_py, stamp)


@functools.lru_cache(maxsize=2)
def _resolve_cached(
    text: str, input_shape: tuple[int, int, int] | None, allow_py: bool, weights_stamp: tuple | None
) -> Encoder:
    ref = parse_reference(text)
    if ref.scheme == "py" and not allow_py:
        raise EncoderError(
            f"{text!r} would import and run user code, which is only done for references named on the "
            "command line; pass --allow-py to run py: encoders from a file."
        )
    if ref.scheme in ("identity", "noise") and input_shape is not None:
        raise EncoderError(f"{text!r} fixes its own input shape; drop input_shape from the spec.")
    module, architecture, declared = SCHEMES[ref.scheme](ref)
    module.eval()
    preprocess = _resolve_preprocess(module, declared, input_shape)
    encoder = Encoder(ref, module, preprocess, architecture, _weights_digest(module))
    trial = torch.zeros((2, *preprocess.input_shape)) + 0.5
    try:
        features = encoder.represent(trial)
    except DataError:
        raise
    except Exception as exc:
        raise EncoderError(
            f"{text!r} fails on input shape {preprocess.input_shape}: {str(exc).splitlines()[0][:160]}; "
            "use the model's native input shape (drop input_shape from the spec) or set a compatible one."
        ) from None
    encoder.feature_dim = int(features.shape[1])
    return encoder


def read_model_list(path: Path) -> list[str]:
    """Model references from a batch file: one per line; blank lines and ``#`` comments skipped."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise EncoderError(f"cannot read model list {str(path)!r}: {exc.strerror}; check the path.") from None
    refs = [line.split(" #")[0].strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    for ref in refs:
        parse_reference(ref)  # fail on a bad line before any work starts
    if not refs:
        raise EncoderError(f"model list {str(path)!r} names no models; write one reference per line.")
    return refs
