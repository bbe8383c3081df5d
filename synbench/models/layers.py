"""Representation layers: which tensor of a module is the representation.

``pre_logits`` (default) is what the model's head sees; ``features`` its last feature map, average-pooled;
``stage<K>`` the output of inner stage K as the model's own ``feature_info`` lists it (timm's numbering, the
``out_indices`` of ``features_only=True``), taken with timm's ``forward_intermediates`` from the same module
and weights as the plain reference and pooled as the head pools: the mean over the spatial axes.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.errors import EncoderError
from .hub import timm_module
from .references import EVERY_STAGE, EncoderRef, parse_reference, stage_of

__all__ = ["feature_stages", "check_layer", "represent_layer", "pool", "stage_count", "expand_layers"]


def feature_stages(module: nn.Module, ref: EncoderRef) -> list[dict]:
    """The module's ``feature_info``: one dict per stage (``module``, ``num_chs``, ``reduction``)."""
    stages = getattr(module, "feature_info", None)
    if not stages:
        raise EncoderError(
            f"{ref.text!r} asks for #{ref.layer}, but its module lists no stages (timm's feature_info); "
            "use a timm model, or #pre_logits / #features."
        )
    return list(stages)


def check_layer(module: nn.Module, ref: EncoderRef) -> None:
    """Refuse a layer the module does not have: ``stage<K>`` beyond its stages, or an unexpanded ``stage*``."""
    if ref.layer == EVERY_STAGE:
        raise EncoderError(
            f"{ref.text!r} names every stage of a model; benchmark them with synbench batch (one reference each)."
        )
    stage = stage_of(ref.layer)
    if stage is None:
        return
    count = len(feature_stages(module, ref))
    if stage >= count:
        raise EncoderError(
            f"{ref.text!r} asks for stage {stage}, but {ref.target} has {count} stages in its feature_info; "
            f"use #stage0 to #stage{count - 1}."
        )


def pool(feats: torch.Tensor, fmt: str) -> torch.Tensor:
    """Average the spatial axes of a feature map in the model's own layout (NCHW or NHWC), or the tokens."""
    if feats.ndim == 4:
        from timm.layers import SelectAdaptivePool2d

        return SelectAdaptivePool2d(pool_type="avg", flatten=True, input_fmt=fmt.split(".")[-1])(feats)
    return feats.mean(dim=1) if feats.ndim == 3 else feats


def represent_layer(module: nn.Module, inputs: torch.Tensor, layer: str) -> torch.Tensor:
    """The representation a layer names, for inputs of shape (b, *input_shape): (b, p) for the layers above.

    A module without timm's ``forward_features``/``forward_head`` is its own representation.
    """
    stage = stage_of(layer)
    if stage is not None:
        return _stage_output(module, inputs, stage)
    if hasattr(module, "forward_features") and hasattr(module, "forward_head"):
        feats = module.forward_features(inputs)
        if layer == "pre_logits":
            return module.forward_head(feats, pre_logits=True)
        return pool(feats, str(getattr(module, "output_fmt", "NCHW")))
    return module(inputs)


def _stage_output(module: nn.Module, inputs: torch.Tensor, stage: int) -> torch.Tensor:
    if hasattr(module, "forward_intermediates"):  # timm's own: NCHW maps (a ViT's patch tokens as a grid)
        (feats,) = module.forward_intermediates(inputs, indices=[stage], intermediates_only=True, stop_early=True)
        return pool(feats, "NCHW")
    # the output of the module feature_info names, as features_only's hooks take it
    captured: list[torch.Tensor] = []
    target = module.get_submodule(module.feature_info[stage]["module"])
    handle = target.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
    try:
        module.forward_features(inputs)
    finally:
        handle.remove()
    return pool(captured[0], str(getattr(module, "output_fmt", "NCHW")))


def stage_count(ref: EncoderRef) -> int:
    """How many stages a timm architecture's feature_info lists (the architecture alone: no weights are read)."""
    if ref.scheme not in ("timm", "random"):
        raise EncoderError(
            f"{ref.text!r}: only timm architectures (timm:, random:) list their stages; name the layers of other "
            "models one by one (#stage0, #stage1, ...)."
        )
    with torch.random.fork_rng(devices=[]):  # its random init must not move the process's torch RNG
        return len(feature_stages(timm_module(ref, pretrained=False), ref))


def expand_layers(text: str, every: bool = False) -> list[str]:
    """A ``#stage*`` reference as one reference per stage (``#stage0`` ...); ``every``: a reference without a
    layer as each of its stages and then the reference itself (the head). Other references come back alone."""
    ref = parse_reference(text)
    if every and ref.layer != "pre_logits":
        raise EncoderError(f"--layers all takes references without a layer; drop #{ref.layer} from {text!r}.")
    if not every and ref.layer != EVERY_STAGE:
        return [text]
    base = text.removesuffix(f"#{ref.layer}")
    stages = [f"{base}#stage{k}" for k in range(stage_count(ref))]
    return [*stages, text] if every else stages
