"""``py:MODULE:CALLABLE`` encoders: the user's factory imported and called, and the digest of its source.

A fingerprint covers weights, preprocessing, architecture name and layer; for a user's ``py:`` encoder it
also covers the source files of the module the reference names and of the module that defines the factory
(where that is another), so a changed ``forward`` with the same weights is a new model. SynBench's own
factories (``py:synbench.demo:...``) are versioned with the package and keep the fingerprint they always had.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from types import ModuleType

from torch import nn

from ..core.errors import EncoderError
from .checkpoints import apply_weights
from .references import EncoderRef, is_own_code

__all__ = ["WEIGHTS_INFO", "SOURCE_INFO", "resolve_py", "source_digest"]

WEIGHTS_INFO = "weights"  # key of a resolver's declared dict: how a weights file was mapped (not preprocessing)
SOURCE_INFO = "source_digest"  # key of a resolver's declared dict: the digest of a user module's source


def source_digest(modules: list[ModuleType]) -> str:
    """sha256 of the named modules' source files (a module without a file counts by its name)."""
    digest = hashlib.sha256()
    for module in sorted(set(modules), key=lambda m: m.__name__):
        digest.update(module.__name__.encode() + b"\0")
        path = getattr(module, "__file__", None)
        if path and os.path.isfile(path):
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def resolve_py(ref: EncoderRef) -> tuple[nn.Module, str, dict]:
    """The module a ``py:`` reference's factory returns, its architecture name and what it declares."""
    module_name, _, attr = ref.target.partition(":")  # parse_reference checked both names
    if "" not in sys.path and os.getcwd() not in sys.path:  # as `python -m` does: the working folder first
        sys.path.insert(0, os.getcwd())
    try:
        named = importlib.import_module(module_name)
        factory = getattr(named, attr)
    except (ImportError, AttributeError) as exc:
        raise EncoderError(
            f"cannot import {ref.target!r}: {exc}; run from the folder that holds it or add it to PYTHONPATH."
        ) from None
    try:
        module = factory()
    except Exception as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise EncoderError(f"py:{ref.target} raised {type(exc).__name__}: {first}; fix the factory.") from None
    if not isinstance(module, nn.Module):
        raise EncoderError(
            f"{ref.target!r} returned {type(module).__name__}, not a torch.nn.Module; return the encoder module."
        )
    declared = {}
    if not is_own_code(ref):
        defining = sys.modules.get(getattr(factory, "__module__", "") or "", named)
        declared[SOURCE_INFO] = source_digest([named, defining])
    if ref.weights is not None:
        declared[WEIGHTS_INFO] = apply_weights(module, ref.weights, ref.text, ref.target)
    return module, f"{module_name}:{attr}", declared
