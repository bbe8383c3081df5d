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

Any reference may end in ``#pre_logits`` (default) or ``#features`` to pick the layer; any other ``#``
after a weights path is part of its file name. A weights path with a glob
(``timm:resnet18@runs/ckpt-*.safetensors``) names a checkpoint series: one reference per matching file
(at most MAX_SERIES_FILES), in the order of the step number in the file names; two files of one step
(``ckpt-01``, ``ckpt-1``) are an error, and a path that exists as written is never read as a glob.
Stored references carry absolute weights paths (``absolute_reference``).
"""

from __future__ import annotations

import glob
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import EncoderError
from ..core.spec import MAX_INPUT_RANK, MAX_INPUT_VALUES, valid_shape

__all__ = [
    "EncoderRef",
    "SCHEME_NAMES",
    "LAYERS",
    "parse_reference",
    "is_own_code",
    "parse_shape",
    "parse_seed",
    "read_model_list",
    "expand_series",
    "series_step",
    "absolute_reference",
    "MAX_SERIES_FILES",
    "WEIGHT_MAPS",
    "split_weights",
]

SCHEME_NAMES = ("identity", "noise", "timm", "random", "py")
LAYERS = ("pre_logits", "features")
WEIGHT_MAPS = ("order", "efficientnet_pytorch")  # prefixes of a weights path: how its tensor names are mapped
PACKAGE_PREFIX = "pkg:"
_PATH_SCHEMES = ("timm", "py")  # schemes whose text after '@' is a weights path
MAX_SERIES_FILES = 1000  # files one checkpoint glob may match


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
    if tail in LAYERS:
        return body, tail
    if scheme not in _PATH_SCHEMES or "@" not in body:
        raise EncoderError(f"unknown layer {tail!r} in {text!r}; use one of: {', '.join(LAYERS)}.")
    return rest, "pre_logits"


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
        except EncoderError:
            if quote:
                raise
            raise EncoderError(
                f"line {number} of model list {path.name!r} is not a model reference; fix it (its text is not shown)."
            ) from None
    refs = [ref for _, ref in refs]
    if not refs:
        raise EncoderError(f"model list {str(path)!r} names no models; write one reference per line.")
    return refs


_COMMENT = re.compile(r"(?:^|\s)#(?:\s|$)")
_GLOB_CHARS = re.compile(r"[*?\[]")
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def _weights_path(ref: EncoderRef) -> tuple[str | None, str] | None:
    """(rule, path) of a reference whose weights are a file path; None for seeds, ``pkg:`` weights or none."""
    if ref.scheme not in _PATH_SCHEMES or not ref.weights:
        return None
    rule, source = split_weights(ref.weights)
    return None if source.startswith(PACKAGE_PREFIX) else (rule, source)


def _with_path(ref: EncoderRef, rule: str | None, path: str) -> str:
    """The reference with another weights path; its rule and an explicit layer are kept."""
    layer = f"#{ref.layer}" if ref.text.endswith(f"#{ref.layer}") else ""
    return f"{ref.scheme}:{ref.target}@{f'{rule}:' if rule else ''}{path}{layer}"


def absolute_reference(text: str) -> str:
    """The reference with its weights path made absolute (``~`` expanded) against the working folder: what the
    CLI and the flows store, so that it resolves from any folder. Other references come back unchanged."""
    ref = parse_reference(text)
    weights = _weights_path(ref)
    if weights is None:
        return text
    rule, source = weights
    path = os.path.abspath(os.path.expanduser(source))
    return text if path == source else _with_path(ref, rule, path)


def series_step(ref_text: str) -> tuple[str, int] | None:
    """(series name, step) of a reference whose weights file name holds a number, else None.

    The series name is the reference with that number replaced by ``*``: the checkpoints of one
    run (``ckpt-100.safetensors``, ``ckpt-200.safetensors``) share it. A board name that is not a
    reference (a model evaluated from a notebook) is in no series.
    """
    try:
        ref = parse_reference(ref_text)
    except EncoderError:
        return None
    weights = _weights_path(ref)
    if weights is None:
        return None
    path = Path(weights[1])
    match = _LAST_NUMBER.search(path.name)
    if not match:
        return None
    name = path.name[: match.start()] + "*" + path.name[match.end() :]
    return _with_path(ref, weights[0], str(path.with_name(name))), int(match.group(1))


def expand_series(ref_text: str) -> list[str]:
    """A reference whose weights path is a glob, as one reference per matching file, sorted by step; weights
    paths made absolute (``absolute_reference``).

    Any other reference, or a path that exists as written (``ckpt[1].pt``), comes back alone.

    Raises:
        EncoderError: the glob matches no file, more than MAX_SERIES_FILES files, or two files of one step
            (``ckpt-01`` and ``ckpt-1``), which the error names.
    """
    ref = parse_reference(ref_text)
    weights = _weights_path(ref)
    absolute = absolute_reference(ref_text)
    if weights is None or not _GLOB_CHARS.search(weights[1]) or os.path.lexists(os.path.expanduser(weights[1])):
        return [absolute]
    rule, pattern = split_weights(parse_reference(absolute).weights or "")
    files = sorted(itertools.islice(glob.iglob(pattern), MAX_SERIES_FILES + 1))
    if len(files) > MAX_SERIES_FILES:
        raise EncoderError(
            f"{pattern!r} matches more than {MAX_SERIES_FILES} files; narrow the pattern (e.g. ckpt-*000.safetensors)."
        )
    if not files:
        raise EncoderError(f"no checkpoint matches {pattern!r} in {ref_text!r}; check the path and the pattern.")
    pairs = [(_with_path(ref, rule, file), file) for file in files]
    pairs.sort(key=lambda pair: (series_step(pair[0]) or ("", -1))[1])
    _check_steps(pairs)
    return [text for text, _ in pairs]


def _check_steps(pairs: list[tuple[str, str]]) -> None:
    """Two files of one series at one step (``ckpt-01``, ``ckpt-1``) would be one point twice: refuse them."""
    seen: dict[tuple[str, int], str] = {}
    for text, file in pairs:
        key = series_step(text)
        if key is not None and key in seen:
            raise EncoderError(
                f"{seen[key]!r} and {file!r} are both step {key[1]} of {key[0]!r}; rename one of them "
                "or narrow the pattern."
            )
        if key is not None:
            seen[key] = file
