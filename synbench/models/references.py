"""Model references: one string names an encoder everywhere (CLI, spec files, batch lists).

    identity:SHAPE            the raw inputs, flattened (control; no normalisation); SHAPE is
                              256, 2x128, 3x32x32, ... (sizes joined by x, any rank)
    noise:SHAPE[@SEED]        features that ignore the input (control)
    timm:ARCH                 timm architecture with pretrained weights from the local cache
    timm:ARCH@PATH            timm architecture with weights from a .safetensors / state-dict file
    timm:ARCH@pkg:DIST        ... with the one weights file that the installed package DIST ships
    timm:ARCH@RULE:PATH       ... with the checkpoint's names mapped by RULE: ``order`` (tensor by tensor,
                              every shape checked) or a named convention (``efficientnet_pytorch``);
                              without one, a checkpoint in another known convention is mapped by its rule
    random:ARCH[@SEED]        timm architecture, seeded random init
    py:MODULE:CALLABLE[@PATH] the user's factory returning a torch module (optional weights file)

Any reference may end in ``#pre_logits`` (default), ``#features`` (the last feature map, average-pooled) or
``#stage<K>`` (a timm model's inner stage K as its own ``feature_info`` lists it, average-pooled) to pick the
layer; ``#stage*`` names every stage (``layers.expand_layers``). Any other ``#`` after a weights path is part
of its file name. A weights path with a glob
(``timm:resnet18@runs/ckpt-*.safetensors``) names a checkpoint series: one reference per matching file
(at most ``weights_paths.MAX_SERIES_FILES``), in the order of the step number in the file names; two files of one step
(``ckpt-01``, ``ckpt-1``) are an error, and a path that exists as written is never read as a glob.
Weights paths (absolute, relocated, globbed into series) are ``weights_paths.py``'s business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import EncoderError
from ..core.spec import MAX_INPUT_RANK, MAX_INPUT_VALUES, valid_shape

__all__ = [
    "EncoderRef",
    "SCHEME_NAMES",
    "LAYERS",
    "EVERY_STAGE",
    "parse_reference",
    "is_own_code",
    "parse_shape",
    "parse_seed",
    "read_model_list",
    "stage_of",
    "WEIGHT_MAPS",
    "split_weights",
]

SCHEME_NAMES = ("identity", "noise", "timm", "random", "py")
LAYERS = ("pre_logits", "features")
EVERY_STAGE = "stage*"  # a layer series: every stage of the model's feature_info
_STAGE = re.compile(r"stage(0|[1-9][0-9]{0,2}|\*)")  # stage<K>, K written without leading zeros
WEIGHT_MAPS = ("order", "efficientnet_pytorch")  # prefixes of a weights path: how its tensor names are mapped
PACKAGE_PREFIX = "pkg:"
PATH_SCHEMES = ("timm", "py")  # schemes whose text after '@' is a weights path


@dataclass(frozen=True)
class EncoderRef:
    """A parsed model reference."""

    text: str  # the reference as the user wrote it
    scheme: str  # identity, noise, timm, random or py
    target: str  # shape, architecture or MODULE:CALLABLE
    weights: str | None = None  # weights path (timm, py) or seed (random, noise)
    layer: str = "pre_logits"  # which representation to take


def parse_reference(text: str) -> EncoderRef:
    """Split ``scheme:target[@weights][#layer]`` into an ``EncoderRef``."""
    scheme, sep, rest = text.partition(":")
    if not sep or scheme not in SCHEME_NAMES:
        raise EncoderError(
            f"unknown encoder scheme {scheme!r} in {text!r}; use one of: "
            f"{', '.join(f'{s}:' for s in SCHEME_NAMES)} (e.g. random:test_convnext)."
        )
    rest, layer = _split_layer(scheme, rest, text)
    target, _, weights = rest.partition("@")
    if not target:
        raise EncoderError(
            f"model reference {text!r} names no model after {scheme!r}; e.g. {scheme}:{_EXAMPLES[scheme]}."
        )
    if scheme == "py" and not _PY_TARGET.fullmatch(target):
        raise EncoderError(
            f"bad py reference {text!r}; write py:MODULE:CALLABLE with a dotted module name and a Python name, "
            "e.g. py:my_models:build_encoder."
        )
    return EncoderRef(text=text, scheme=scheme, target=target, weights=weights or None, layer=layer)


# py:MODULE:CALLABLE: a dotted module path (never a file path: no "/", no leading ".") and one Python name
_PY_TARGET = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def _split_layer(scheme: str, rest: str, text: str) -> tuple[str, str]:
    """``rest`` without its trailing ``#layer``, and the layer. Only a known layer name after the last ``#``
    is a layer: any other ``#`` (or space) after a weights path is part of the file's name."""
    body, sep, tail = rest.rpartition("#")
    if not sep:
        return rest, "pre_logits"
    if tail in LAYERS or _STAGE.fullmatch(tail):
        return body, tail
    if scheme not in PATH_SCHEMES or "@" not in body:
        raise EncoderError(
            f"unknown layer {tail!r} in {text!r}; use one of: {', '.join(LAYERS)}, stage<K> (K as the model's "
            f"feature_info numbers its stages, e.g. stage3) or {EVERY_STAGE} (every stage)."
        )
    return rest, "pre_logits"


def stage_of(layer: str) -> int | None:
    """K of a ``stage<K>`` layer; None for any other layer (``stage*`` included)."""
    match = _STAGE.fullmatch(layer)
    return int(match.group(1)) if match and match.group(1) != "*" else None


def is_own_code(ref: EncoderRef) -> bool:
    """A ``py:`` factory of SynBench itself (``py:synbench.demo:digits_cnn``): trusted code, run without --allow-py.

    ``synbench`` is imported already, so ``synbench.x`` can only be found inside the installed package.
    """
    module = ref.target.partition(":")[0]
    return ref.scheme == "py" and (module == "synbench" or module.startswith("synbench."))


def parse_shape(ref: EncoderRef) -> tuple[int, ...]:
    """The input shape a control names: ``256``, ``2x128``, ``3x4x4``, ``3x8x16x16`` (any rank)."""
    parts = ref.target.lower().split("x")
    shape = tuple(int(p) for p in parts if p.isascii() and p.isdigit() and len(p) < 12)
    if len(shape) != len(parts) or not valid_shape(shape):
        raise EncoderError(
            f"bad input shape {ref.target!r} in {ref.text!r}; write 1 to {MAX_INPUT_RANK} positive sizes joined "
            f"by x with at most {MAX_INPUT_VALUES} values, e.g. {ref.scheme}:256, {ref.scheme}:2x128 or "
            f"{ref.scheme}:3x4x4."
        )
    return shape


def parse_seed(ref: EncoderRef) -> int:
    if ref.weights is None:
        return 0
    if not ref.weights.isdigit():
        raise EncoderError(
            f"bad seed {ref.weights!r} in {ref.text!r}; use a non-negative integer, e.g. random:resnet18@1."
        )
    return int(ref.weights)


def split_weights(weights: str) -> tuple[str | None, str]:
    """``[RULE:]SOURCE`` of a weights text: the name-mapping rule (None: automatic) and the path or ``pkg:DIST``."""
    prefix, sep, rest = weights.partition(":")
    if sep and prefix in WEIGHT_MAPS:
        return prefix, rest
    return None, weights


_EXAMPLES = {
    "identity": "3x4x4",
    "noise": "3x4x4",
    "timm": "resnet18",
    "random": "test_convnext",
    "py": "my_models:build",
}


def read_model_list(path: Path, quote: bool = True) -> list[str]:
    """Model references from a batch file: one per line; blank lines and ``#`` comments skipped.

    A comment starts at a ``#`` that begins the line or follows a space and is followed by a space (or
    ends the line), so ``ckpt-3 #copy.safetensors`` stays a file name. ``quote=False`` (flows on a
    worker) never echoes a line of the file in an error: the file may not be a model list at all.
    """
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not a text file"
        raise EncoderError(f"cannot read model list {str(path)!r}: {reason}; check the path.") from None
    numbered = [(n, _COMMENT.split(line)[0].strip()) for n, line in enumerate(lines, 1)]
    refs = [(n, ref) for n, ref in numbered if ref and not ref.startswith("#")]
    for number, ref in refs:
        try:
            parse_reference(ref)  # fail on a bad line before any work starts
        except EncoderError as exc:
            if quote:
                raise EncoderError(f"line {number} of model list {str(path)!r}: {exc}") from None
            raise EncoderError(
                f"line {number} of model list {path.name!r} is not a model reference; fix it (its text is not shown)."
            ) from None
    refs = [ref for _, ref in refs]
    if not refs:
        raise EncoderError(f"model list {str(path)!r} names no models; write one reference per line.")
    return refs


_COMMENT = re.compile(r"(?:^|\s)#(?:\s|$)")
