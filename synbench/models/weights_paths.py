"""Weights paths inside references: made absolute for storage, found again in a moved or copied root, and a
glob of checkpoints (or every stage of a model) read as a series, one reference per point."""

from __future__ import annotations

import glob
import itertools
import os
import re
from pathlib import Path

from ..core.errors import EncoderError
from .references import EVERY_STAGE, PACKAGE_PREFIX, PATH_SCHEMES, EncoderRef, parse_reference, split_weights, stage_of

__all__ = [
    "absolute_reference",
    "weights_path",
    "relocated_reference",
    "series_step",
    "layer_step",
    "expand_series",
    "MAX_SERIES_FILES",
]

MAX_SERIES_FILES = 1000  # files one checkpoint glob may match
_GLOB_CHARS = re.compile(r"[*?\[]")
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def _weights_path(ref: EncoderRef) -> tuple[str | None, str] | None:
    """(rule, path) of a reference whose weights are a file path; None for seeds, ``pkg:`` weights or none."""
    if ref.scheme not in PATH_SCHEMES or not ref.weights:
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


def weights_path(text: str) -> str | None:
    """The weights file path of a reference (``timm:``/``py:`` with ``@PATH``), as written; None otherwise."""
    try:
        found = _weights_path(parse_reference(text))
    except EncoderError:
        return None
    return found[1] if found else None


def relocated_reference(text: str, root: str | os.PathLike) -> str:
    """A stored reference whose weights file is gone, pointed at the file with the longest tail of the same
    path under ``root`` (the root was moved or copied: ``/old/data/checkpoints/w.pt`` -> ``ROOT/checkpoints/w.pt``);
    unchanged when its file exists or none is found. The caller checks the fingerprint."""
    ref = parse_reference(text)
    weights = _weights_path(ref)
    if weights is None or os.path.lexists(os.path.expanduser(weights[1])):
        return text
    parts = Path(weights[1]).parts[1:] if Path(weights[1]).is_absolute() else Path(weights[1]).parts
    for start in range(len(parts)):
        candidate = Path(root, *parts[start:])
        if candidate.is_file():
            return _with_path(ref, weights[0], str(candidate))
    return text


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


def layer_step(ref_text: str) -> tuple[str, int] | None:
    """(series name, K) of a ``#stage<K>`` reference, else None: the stages of one model share the name
    ``...#stage*``, the reference with K replaced by ``*``."""
    try:
        ref = parse_reference(ref_text)
    except EncoderError:
        return None
    stage = stage_of(ref.layer)
    return None if stage is None else (ref_text.removesuffix(ref.layer) + EVERY_STAGE, stage)


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
