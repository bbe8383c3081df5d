"""The offline demo: a small CNN trained on scikit-learn's digits, and the demo's model list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["digits_cnn", "train_digits_cnn", "demo_models"]

DIGITS_MEAN, DIGITS_STD = 0.30, 0.38  # of digits pixels scaled to [0, 1]


class DigitsCNN(nn.Module):
    """A two-layer CNN for 1x8x8 digits; its 32-d penultimate layer is the representation."""

    pretrained_cfg = {"input_size": (1, 8, 8), "mean": (DIGITS_MEAN,), "std": (DIGITS_STD,), "interpolation": "nearest"}

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(128, 32),
            nn.ReLU(),
        )
        self.head = nn.Linear(32, 10)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.body(inputs)  # the encoder's output: pre-logits features


def digits_cnn() -> nn.Module:
    """Factory for ``py:synbench.demo:digits_cnn[@weights.safetensors]`` (seeded random init)."""
    from .encoders import seeded_init

    with seeded_init(0):
        return DigitsCNN()


def train_digits_cnn(path: Path, epochs: int = 30) -> float:
    """Train on scikit-learn's digits, save a safetensors file, return held-out accuracy."""
    from safetensors.torch import save_file
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images.astype(np.float32) / 16.0 - DIGITS_MEAN) / DIGITS_STD
    inputs, targets = torch.from_numpy(images[:, None]), torch.from_numpy(digits.target)
    order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(0))
    train, held_out = order[:1500], order[1500:]
    model = digits_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for _ in range(epochs):
            for batch in train[torch.randperm(len(train))].split(64):
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model.head(model(inputs[batch])), targets[batch])
                loss.backward()
                optimizer.step()
    with torch.no_grad():
        accuracy = (model.head(model(inputs[held_out])).argmax(1) == targets[held_out]).float().mean().item()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return accuracy


def demo_models(checkpoint: Path) -> list[str]:
    """Five-plus encoders whose scores should order: identity > trained > random-init > noise."""
    return [
        "identity:1x8x8",
        "noise:1x8x8",
        "random:test_vit",
        "random:test_efficientnet",
        f"py:synbench.demo:digits_cnn@{checkpoint}",
        "py:synbench.demo:digits_cnn",
    ]
