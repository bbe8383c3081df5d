"""Weights from files: safetensors or tensor-only torch checkpoints, never unpickled code."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch
from torch import nn

from .errors import EncoderError

__all__ = ["weights_digest", "load_state_dict", "apply_weights"]


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


def apply_weights(module: nn.Module, path_text: str, ref_text: str, target: str) -> None:
    state = load_state_dict(path_text, ref_text)
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise EncoderError(f"checkpoint does not fit {target!r}: {first}; check the architecture name.") from None
    if result.missing_keys:
        raise EncoderError(
            f"checkpoint is missing {len(result.missing_keys)} weights of {target!r} "
            f"(e.g. {result.missing_keys[0]!r}); check the architecture name."
        )
