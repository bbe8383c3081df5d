"""How a model declares its inputs: ``Preprocess`` resolved from an override, the model's config or a default.

Images (three axes, or no shape declared at all) resolve through timm's data config; any other shape
comes from the model's ``pretrained_cfg`` or the overrides, with no normalisation unless one is declared.
"""

from __future__ import annotations

from torch import nn

from ..core.inputs import IMAGENET_MEAN, IMAGENET_STD, Preprocess

__all__ = ["resolve_preprocess"]

_IMAGE_RANK = 3  # (C, H, W): the shapes timm's data config describes


def _image_config(module: nn.Module, declared: dict, input_shape: tuple[int, ...] | None) -> tuple:
    """Shape, mean, std and interpolation from timm's data config (model config, then timm's defaults)."""
    from timm.data import resolve_data_config

    args = dict(declared)
    if input_shape is not None:
        args["input_size"] = tuple(input_shape)
    config = resolve_data_config(args, model=module)
    channels = config["input_size"][0]
    mean, std = tuple(config["mean"]), tuple(config["std"])
    if len(mean) != channels:  # e.g. a 1-channel model without declared stats
        mean, std = (IMAGENET_MEAN * channels)[:channels], (IMAGENET_STD * channels)[:channels]
    return tuple(config["input_size"]), mean, std, config.get("interpolation", "bicubic")


def resolve_preprocess(
    module: nn.Module,
    declared: dict,
    input_shape: tuple[int, ...] | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> Preprocess:
    """Preprocessing in priority order: explicit override, the model's declared config, a default.

    Raises ValueError when mean/std do not fit the shape (the caller names the model).
    """
    model_config = getattr(module, "pretrained_cfg", None) or getattr(module, "default_cfg", None) or {}
    own = bool(declared) or bool(model_config)
    shape = input_shape or declared.get("input_size") or model_config.get("input_size")
    if shape is None or len(shape) == _IMAGE_RANK:
        shape, model_mean, model_std, interpolation = _image_config(module, declared, input_shape)
    else:  # a signal, a sequence, a table row: no image defaults
        config = {**model_config, **declared}
        model_mean, model_std = tuple(config.get("mean") or (0.0,)), tuple(config.get("std") or (1.0,))
        interpolation = "none"
    overridden = input_shape is not None or mean is not None or std is not None
    mean = tuple(float(v) for v in mean) if mean is not None else model_mean
    std = tuple(float(v) for v in std) if std is not None else model_std
    source = "override" if overridden else ("model" if own else "default")
    return Preprocess(tuple(shape), mean, std, interpolation, source)
