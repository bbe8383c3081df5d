"""What an encoder is fed: its input shape and normalisation (``Preprocess``), for any rank of input.

A shape has any rank: ``(d,)``, ``(channels, time)``, ``(tokens, dim)``, ``(C, H, W)``, ``(C, T, H, W)``.
With two or more axes the first one is the channel axis: mean/std hold one value per channel (or one
for all). A rank-1 shape has no channel axis: one mean/std value, or none. Where the values come from
is ``models/preprocess.py``'s business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .spec import MAX_INPUT_RANK, MAX_INPUT_VALUES, shape_text, valid_shape

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Preprocess", "channel_count"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def channel_count(shape: tuple[int, ...]) -> int:
    """Values mean/std hold for ``shape``: its first axis when it has two or more, else one."""
    return shape[0] if len(shape) > 1 else 1


@dataclass(frozen=True)
class Preprocess:
    """Input shape and per-channel normalisation of one encoder (one value given is used for every channel)."""

    input_shape: tuple[int, ...]  # one sample, e.g. (C, H, W) or (channels, time) or (d,)
    mean: tuple[float, ...]  # per-channel (first axis) mean subtracted from the inputs
    std: tuple[float, ...]  # per-channel std the inputs are divided by
    interpolation: str = "bicubic"  # the model's declared resize mode (real images); "none" for other inputs
    source: str = "model"  # where the values came from: "model", "override" or "default"

    def __post_init__(self) -> None:
        shape = tuple(int(v) for v in self.input_shape)
        if not valid_shape(shape):
            raise ValueError(
                f"input shape {shape_text(shape) or '()'} must have 1 to {MAX_INPUT_RANK} positive axes and "
                f"at most {MAX_INPUT_VALUES} values"
            )
        channels = channel_count(shape)
        mean, std = (tuple(v) * channels if len(v) == 1 else tuple(v) for v in (self.mean, self.std))
        if len(mean) != channels or len(std) != channels:
            need = f"1 value or {channels} (one per channel, the first axis)" if len(shape) > 1 else "1 value"
            raise ValueError(
                f"mean/std for input shape {shape_text(shape)} need {need}; "
                f"got {len(self.mean)} mean and {len(self.std)} std values"
            )
        if not all(map(math.isfinite, mean)) or not all(math.isfinite(v) and v > 0 for v in std):
            # a zero std divides the inputs into Inf: the encoder would be blamed for NaN features later
            raise ValueError(f"mean must be finite and std positive; got mean {list(mean)}, std {list(std)}")
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def dim(self) -> int:
        return math.prod(self.input_shape)

    def to_dict(self) -> dict:
        """The fields that change the inputs (``source`` is a label and stays out of fingerprints)."""
        return {
            "input_shape": list(self.input_shape),
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
        }

    def describe(self) -> str:
        return (
            f"input {shape_text(self.input_shape)}, mean ({_values(self.mean)}), std ({_values(self.std)}) "
            f"[{self.source}]"
        )


def _values(values: tuple[float, ...]) -> str:
    if len(values) > 3 and len(set(values)) == 1:  # e.g. 16 token rows with one mean
        return f"{values[0]:g} x{len(values)}"
    return ", ".join(f"{v:g}" for v in values)
