"""The offline demo: a small CNN trained on scikit-learn's digits, and the demo's model list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = [
    "digits_cnn",
    "digits_cnn_narrow",
    "train_digits_cnn",
    "train_demo_checkpoints",
    "demo_checkpoints",
    "demo_models",
]

DIGITS_MEAN, DIGITS_STD = 0.30, 0.38  # of digits pixels scaled to [0, 1]


CHECKPOINT_EPOCHS = (0, 1, 2, 4, 8)  # the demo's checkpoint series


class DigitsCNN(nn.Module):
    """A two-layer CNN for 1x8x8 digits; its penultimate layer (32-d, or 8-d when narrow) is the representation."""

    pretrained_cfg = {"input_size": (1, 8, 8), "mean": (DIGITS_MEAN,), "std": (DIGITS_STD,), "interpolation": "nearest"}

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * width, 2 * width),
            nn.ReLU(),
        )
        self.head = nn.Linear(2 * width, 10)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.body(inputs)  # the encoder's output: pre-logits features


def digits_cnn() -> nn.Module:
    """Factory for ``py:synbench.demo:digits_cnn[@weights.safetensors]`` (seeded random init)."""
    from .models.encoders import seeded_init

    with seeded_init(0):
        return DigitsCNN()


def digits_cnn_narrow() -> nn.Module:
    """Factory for the narrow variant (4 and 8 channels, an 8-d representation)."""
    from .models.encoders import seeded_init

    with seeded_init(0):
        return DigitsCNN(width=4)


def train_digits_cnn(path: Path, epochs: int = 30, save_at: tuple[int, ...] = (), narrow: bool = False) -> float:
    """Train on scikit-learn's digits, save a safetensors file, return held-out accuracy.

    ``save_at`` also saves the weights after those epochs, as ``<path stem>-e<N>.safetensors``.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images.astype(np.float32) / 16.0 - DIGITS_MEAN) / DIGITS_STD
    inputs, targets = torch.from_numpy(images[:, None]), torch.from_numpy(digits.target)
    order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(0))
    train, held_out = order[:1500], order[1500:]
    model = digits_cnn_narrow() if narrow else digits_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for epoch in range(epochs + 1):
            if epoch in save_at:
                _save(model, path.with_name(f"{path.stem}-e{epoch}.safetensors"))
            if epoch == epochs:
                break
            for batch in train[torch.randperm(len(train))].split(64):
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model.head(model(inputs[batch])), targets[batch])
                loss.backward()
                optimizer.step()
    with torch.no_grad():
        accuracy = (model.head(model(inputs[held_out])).argmax(1) == targets[held_out]).float().mean().item()
    _save(model, path)
    return accuracy


def _save(model: nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))


def train_demo_checkpoints(folder: Path) -> dict[str, float]:
    """The digits CNN after 0, 1, 2, 4, 8 and 30 epochs, and a narrow one after 8; held-out accuracy of each final."""
    return {
        "digits_cnn": train_digits_cnn(folder / "digits_cnn.safetensors", 30, CHECKPOINT_EPOCHS),
        "digits_cnn_narrow": train_digits_cnn(folder / "digits_cnn_narrow.safetensors", 8, narrow=True),
    }


def demo_checkpoints(folder: Path) -> list[Path]:
    """Every weights file the demo's models read."""
    names = [f"digits_cnn-e{e}.safetensors" for e in CHECKPOINT_EPOCHS]
    return [folder / name for name in [*names, "digits_cnn.safetensors", "digits_cnn_narrow.safetensors"]]


def demo_models(folder: Path) -> list[str]:
    """A zoo that should spread out: controls, random-init timm models, a training run's checkpoints."""
    return [
        "identity:1x8x8",
        "noise:1x8x8",
        "random:test_vit",
        "random:test_efficientnet",
        f"py:synbench.demo:digits_cnn@{folder / 'digits_cnn-e*.safetensors'}",  # the checkpoint series
        f"py:synbench.demo:digits_cnn@{folder / 'digits_cnn.safetensors'}",
        f"py:synbench.demo:digits_cnn_narrow@{folder / 'digits_cnn_narrow.safetensors'}",
    ]
