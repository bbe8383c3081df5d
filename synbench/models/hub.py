"""timm architectures with pretrained weights from the local Hugging Face cache, the hub kept offline.

SynBench never reaches the network for weights unless the user asks: while it resolves a ``timm:ARCH``
reference, huggingface_hub's offline switch is on, then set back, so nothing leaks to the rest of the
process (a notebook's own downloads keep working). A user who sets ``HF_HUB_OFFLINE`` in the
environment decides (``HF_HUB_OFFLINE=0`` allows downloads).
"""

from __future__ import annotations

import difflib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from torch import nn

from ..core.errors import EncoderError
from .references import EncoderRef

__all__ = ["OFFLINE_ENV", "hub_offline", "timm_module"]

OFFLINE_ENV = "HF_HUB_OFFLINE"
_SWITCH_LOCK = threading.Lock()  # one switch for the whole process: threads resolving models take turns


@contextmanager
def hub_offline() -> Iterator[None]:
    """The Hugging Face hub offline inside the block, unless the environment sets ``HF_HUB_OFFLINE`` itself.

    huggingface_hub reads the variable once, at its import, into ``huggingface_hub.constants``; its
    requests check that constant, so the switch is the constant, not the variable.
    """
    if os.environ.get(OFFLINE_ENV) is not None:
        yield
        return
    from huggingface_hub import constants

    with _SWITCH_LOCK:
        before, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True
        try:
            yield
        finally:
            constants.HF_HUB_OFFLINE = before


def timm_module(ref: EncoderRef, pretrained: bool) -> nn.Module:
    """``timm.create_model(ref.target, num_classes=0)``, with pretrained weights from the local cache only."""
    import timm

    if not timm.is_model(ref.target):
        close = difflib.get_close_matches(ref.target, timm.list_models(), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else " See timm.list_models()."
        raise EncoderError(f"unknown timm architecture {ref.target!r} in {ref.text!r}.{hint}")
    try:
        with hub_offline() if pretrained else nullcontext():
            return timm.create_model(ref.target, pretrained=pretrained, num_classes=0)
    except Exception as exc:
        if not pretrained:
            raise
        allowed = os.environ.get(OFFLINE_ENV, "").strip().lower() in ("0", "false", "no")
        where = "could not be fetched" if allowed else "are not in the local Hugging Face cache"
        allow = "" if allowed else f"set {OFFLINE_ENV}=0 to let SynBench download them, "
        raise EncoderError(
            f"pretrained weights for {ref.target!r} {where} ({type(exc).__name__}); {allow}copy them into the "
            f"Hugging Face cache, or pass a file: timm:{ref.target}@/path/model.safetensors."
        ) from None
