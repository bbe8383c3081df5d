"""The README's "Your own model": a small encoder as a ``py:`` reference.

    synbench run py:mymodel:build --spec demo    # from this folder, or with PYTHONPATH=examples

Its factory seeds the initialisation, so every call builds the same weights: the same fingerprint, and a
rerun reuses everything. 64 features on the demo spec's 512 training samples keep the probe powered
(r / n_train = 0.125; at 0.5 the board flags a model UNDERPOWERED and does not rank it).
"""

from __future__ import annotations

import torch
from torch import nn


class SmallEncoder(nn.Module):
    # what SynBench feeds it: without this, timm's defaults (3x224x224, ImageNet mean/std) and a warning
    pretrained_cfg = {"input_size": (3, 32, 32), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (batch, 3, 32, 32) -> (batch, 64)
        return self.body(images)


def build() -> nn.Module:
    with torch.random.fork_rng(devices=[]):  # the same weights on every call, without touching the caller's RNG
        torch.manual_seed(0)
        return SmallEncoder()
