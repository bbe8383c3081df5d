"""Encoders that tests name through ``py:encoders_for_tests:...`` references."""

import os
import time

import torch
from torch import nn


class _Constant(nn.Module):
    pretrained_cfg = {"input_size": (3, 4, 4), "mean": (0.5,) * 3, "std": (0.5,) * 3}

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.ones(inputs.shape[0], 8)


class _NaN(nn.Module):
    pretrained_cfg = {"input_size": (3, 4, 4), "mean": (0.5,) * 3, "std": (0.5,) * 3}

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = inputs.flatten(1)[:, :4].clone()
        if inputs.shape[0] > 2:  # pass the trial forward, fail on real blocks
            out[0, 0] = float("nan")
        return out


class _WrongRank(nn.Module):
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs


class _Small(nn.Module):
    pretrained_cfg = {"input_size": (1, 4, 4), "mean": (0.5,), "std": (0.5,)}

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 6)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.linear(inputs.flatten(1))


def constant() -> nn.Module:
    return _Constant()


def nan_features() -> nn.Module:
    return _NaN()


def wrong_rank() -> nn.Module:
    return _WrongRank()


def small_linear() -> nn.Module:
    torch.manual_seed(0)
    return _Small()


def not_a_module() -> str:
    return "oops"


class _Tuple(nn.Module):
    pretrained_cfg = {"input_size": (1, 4, 4), "mean": (0.5,), "std": (0.5,)}

    def forward(self, inputs: torch.Tensor) -> tuple:
        return inputs.flatten(1), inputs


def returns_tuple() -> nn.Module:
    return _Tuple()


def raises() -> nn.Module:
    raise ValueError("weights folder not configured")


def undeclared() -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten())


class _ScaledIdentity(nn.Module):
    pretrained_cfg = {"input_size": (3, 8, 8), "mean": (0.0,) * 3, "std": (1.0,) * 3}

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.flatten(1) * 1e-3  # like L2-normalised embeddings: tiny per-dimension variance


def scaled_identity() -> nn.Module:
    return _ScaledIdentity()


class _Slow(nn.Module):
    """Raw inputs times two, SLOW_ENCODER_SECONDS per batch (not the trial forward): a run long enough to stop."""

    pretrained_cfg = {"input_size": (1, 4, 4), "mean": (0.5,), "std": (0.5,)}

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.shape[0] > 2:
            time.sleep(float(os.environ.get("SLOW_ENCODER_SECONDS", "0")))
        return inputs.flatten(1) * 2


def slow() -> nn.Module:
    return _Slow()


class _ZeroWidth(nn.Module):
    pretrained_cfg = {"input_size": (1, 4, 4), "mean": (0.5,), "std": (0.5,)}

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.flatten(1)[:, :0]


def zero_width() -> nn.Module:
    return _ZeroWidth()
