"""Weight adapters: a checkpoint whose tensor names follow another convention, mapped onto a module's own names.

Pure name and shape logic over state dicts. A rule maps checkpoint names to target names and is
detected from the names it knows; ``order`` pairs the tensors one by one and checks every shape.
Checkpoint tensors the target has no place for (a classifier when the target has none) are dropped
and listed, never loaded; every target tensor must be filled, shape for shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from ..core.errors import EncoderError

__all__ = ["Adapted", "RULES", "AS_SAVED", "BY_ORDER", "adapt_state_dict", "efficientnet_pytorch_names"]

AS_SAVED = "as saved"  # the checkpoint already uses the target's names
BY_ORDER = "order"


@dataclass(frozen=True)
class Adapted:
    """A state dict in the target's names, the rule that produced it and the checkpoint tensors left out."""

    state: dict[str, torch.Tensor]
    rule: str
    dropped: tuple[str, ...]


_EFFNET_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Inside a block: depthwise-separable blocks (no expansion) and inverted-residual blocks name their
# layers differently in timm, so the same EfficientNet-PyTorch layer lands on another timm name.
_EFFNET_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_EFFNET_INVERTED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_EFFNET_SE = {"_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand"}
_EFFNET_BLOCK = re.compile(r"_blocks\.(\d+)\.(\w+)\.(.+)")
_TIMM_BLOCK = re.compile(r"blocks\.(\d+)\.(\d+)\.")


def _is_efficientnet_pytorch(names: list[str]) -> bool:
    return "_conv_stem.weight" in names and any(name.startswith("_blocks.0.") for name in names)


def efficientnet_pytorch_names(names: list[str], target_names: list[str]) -> dict[str, str]:
    """EfficientNet-PyTorch (``_conv_stem``, ``_blocks.N._expand_conv``, ``_fc``) to timm's EfficientNet names.

    Its blocks are numbered flat; timm's are ``blocks.STAGE.INDEX``: the N-th flat block is the N-th
    distinct ``blocks.S.I`` prefix of the target, in the target's order.
    """
    stages = list(dict.fromkeys(match.group(0) for name in target_names if (match := _TIMM_BLOCK.match(name))))
    blocks = [match.groups() for name in names if (match := _EFFNET_BLOCK.match(name))]
    expanded = {index for index, layer, _ in blocks if layer == "_expand_conv"}
    mapping = {}
    for name in names:
        block = _EFFNET_BLOCK.match(name)
        if block is None:
            layer, _, rest = name.partition(".")
            if layer in _EFFNET_TOP:
                mapping[name] = f"{_EFFNET_TOP[layer]}.{rest}"
            continue
        index, layer, rest = int(block.group(1)), block.group(2), block.group(3)
        layers = {**(_EFFNET_INVERTED if block.group(1) in expanded else _EFFNET_SEPARABLE), **_EFFNET_SE}
        if index < len(stages) and layer in layers:
            mapping[name] = f"{stages[index]}{layers[layer]}.{rest}"
    return mapping


# name -> (detector over the checkpoint's names, mapping of checkpoint names onto target names)
RULES: dict[str, tuple[Callable[[list[str]], bool], Callable[[list[str], list[str]], dict[str, str]]]] = {
    "efficientnet_pytorch": (_is_efficientnet_pytorch, efficientnet_pytorch_names),
}


def _shape(tensor: torch.Tensor) -> str:
    return "x".join(map(str, tensor.shape)) or "scalar"


def _by_order(state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], what: str) -> dict[str, str]:
    names, target_names = list(state), list(target)
    for index, (name, target_name) in enumerate(zip(names, target_names, strict=False)):
        if state[name].shape != target[target_name].shape:
            raise EncoderError(
                f"checkpoint does not fit {what} by order: tensor {index} {name!r} is {_shape(state[name])} but "
                f"{target_name!r} is {_shape(target[target_name])}; check the architecture name."
            )
    if len(names) < len(target_names):
        raise EncoderError(
            f"checkpoint has {len(names)} tensors and {what} needs {len(target_names)}: none is left for "
            f"{target_names[len(names)]!r}; check the architecture name."
        )
    return dict(zip(names, target_names, strict=False))


def _fill(
    state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], mapping: dict[str, str], rule: str, what: str
) -> Adapted:
    """Check that ``mapping`` fills every target tensor with one of its own shape; list the tensors left out."""
    source_of = {target_name: name for name, target_name in mapping.items() if target_name in target}
    for target_name, tensor in target.items():
        name = source_of.get(target_name)
        if name is None and rule == AS_SAVED:
            raise EncoderError(_missing(state, target, source_of, target_name, what))
        if name is None:
            raise EncoderError(
                f"checkpoint mapped by rule {rule} has no tensor for {target_name!r} of {what}; "
                "check the architecture name."
            )
        if state[name].shape != tensor.shape:
            how = "names as saved" if rule == AS_SAVED else f"rule {rule}"
            raise EncoderError(
                f"checkpoint tensor {name!r} is {_shape(state[name])} but {target_name!r} of {what} is "
                f"{_shape(tensor)} ({how}); check the architecture name."
            )
    used = set(source_of.values())
    return Adapted({t: state[n] for t, n in source_of.items()}, rule, tuple(n for n in state if n not in used))


def _missing(
    state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], found: dict, first: str, what: str
) -> str:
    """Why a checkpoint saved under the target's own names leaves ``first`` empty: tensors missing from a
    checkpoint of that convention (another variant), or a checkpoint in another convention (map it by order)."""
    missing = [name for name in target if name not in found]
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    if found:  # the same names, some of them absent: mapping by order would not help
        return (
            f"checkpoint lacks {first!r}{more} of {what} ({len(found)} of its {len(target)} tensors are there); "
            "was it saved from another variant? Check the architecture name."
        )
    return (
        f"checkpoint has no tensor named {first!r} of {what} (its first is {next(iter(state))!r}); "
        "check the architecture name, or map the names by order with @order:PATH."
    )


def adapt_state_dict(
    state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], how: str | None = None, what: str = "it"
) -> Adapted:
    """The checkpoint ``state`` in the names of ``target`` (a module's state dict), by ``how``.

    ``how`` None: as saved when every target name is in the checkpoint, else the one rule of
    ``RULES`` that recognises the checkpoint's names. ``"order"``: pair tensors in order (extra
    trailing checkpoint tensors, such as a classifier, are dropped). A rule name: that rule.

    Raises:
        EncoderError: one line naming the first target tensor left empty or the first shape that differs.
    """
    if not state:
        raise EncoderError(f"checkpoint for {what} holds no tensors; save model.state_dict().")
    names = list(state)
    if how == BY_ORDER:
        return _fill(state, target, _by_order(state, target, what), BY_ORDER, what)
    if how is not None:
        if how not in RULES:
            raise EncoderError(f"unknown weights rule {how!r}; use one of: {', '.join([BY_ORDER, *RULES])}.")
        return _fill(state, target, RULES[how][1](names, list(target)), how, what)
    if all(name in state for name in target):
        return _fill(state, target, {name: name for name in names}, AS_SAVED, what)
    for rule, (detect, mapping) in RULES.items():
        if detect(names):
            return _fill(state, target, mapping(names, list(target)), rule, what)
    return _fill(state, target, {name: name for name in names}, AS_SAVED, what)  # names the first missing tensor
