"""How synthetic pixels become encoder inputs: the model's input shape and normalisation."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Preprocess", "resolve_preprocess"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """Input shape and per-channel normalisation of one encoder."""

    input_shape: tuple[int, int, int]  # (C, H, W)
    mean: tuple[float, ...]  # per-channel mean subtracted from the pixels
    std: tuple[float, ...]  # per-channel std the pixels are divided by
    interpolation: str = "bicubic"  # the model's declared resize mode (for real images)
    source: str = "model"  # where the values came from: "model", "override" or "default"

    def __post_init__(self) -> None:
        channels = self.input_shape[0]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"mean/std need {channels} values for input shape {self.input_shape}")

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
        shape = "x".join(map(str, self.input_shape))
        mean = ", ".join(f"{v:g}" for v in self.mean)
        std = ", ".join(f"{v:g}" for v in self.std)
        return f"input {shape}, mean ({mean}), std ({std}) [{self.source}]"


def resolve_preprocess(
    module: nn.Module,
    declared: dict,
    input_shape: tuple[int, int, int] | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> Preprocess:
    """Preprocessing in priority order: explicit override, the model's declared config, timm's default."""
    from timm.data import resolve_data_config

    args = dict(declared)
    if input_shape is not None:
        args["input_size"] = tuple(input_shape)
    own = bool(declared) or bool(getattr(module, "pretrained_cfg", None) or getattr(module, "default_cfg", None))
    config = resolve_data_config(args, model=module)
    channels = config["input_size"][0]
    model_mean, model_std = tuple(config["mean"]), tuple(config["std"])
    if len(model_mean) != channels:  # e.g. a 1-channel model without declared stats
        model_mean, model_std = (IMAGENET_MEAN * channels)[:channels], (IMAGENET_STD * channels)[:channels]
    overridden = input_shape is not None or mean is not None or std is not None
    mean = tuple(float(v) for v in mean) if mean is not None else model_mean
    std = tuple(float(v) for v in std) if std is not None else model_std
    if len(mean) == 1 < channels:
        mean = mean * channels
    if len(std) == 1 < channels:
        std = std * channels
    source = "override" if overridden else ("model" if own else "default")
    return Preprocess(tuple(config["input_size"]), mean, std, config.get("interpolation", "bicubic"), source)
