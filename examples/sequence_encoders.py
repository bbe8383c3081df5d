"""Encoders of non-image inputs, as SynBench ``py:`` references: a signal, a table row, token embeddings.

Each declares its input in ``pretrained_cfg`` (any rank). With two or more axes, mean/std apply per
channel along the first axis; without mean/std the inputs are fed as generated (no normalisation).

    PYTHONPATH=examples synbench batch identity:256 identity:2x128 noise:2x128 py:sequence_encoders:conv1d_encoder \\
        py:sequence_encoders:mlp_encoder py:sequence_encoders:token_transformer --spec examples/signals.toml

(``examples/signals.toml``: the demo's tasks with n_train = 1024, so that the 256-feature identity ceiling is
powered.)

Weights are a seeded random init (a stand-in for a trained checkpoint: add ``@weights.safetensors``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["conv1d_encoder", "mlp_encoder", "token_transformer"]


class Conv1dEncoder(nn.Module):
    """Two-channel signals of 128 time steps (e.g. stereo audio, a two-lead sensor) -> 128 features."""

    pretrained_cfg = {"input_size": (2, 128), "mean": (0.5, 0.5), "std": (1.0, 1.0)}  # per channel

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(2, 16, kernel_size=7, padding=3),
            nn.ReLU(),
            nn.Conv1d(16, 32, kernel_size=5, stride=2, padding=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(4),
            nn.Flatten(),
        )

    def forward(self, signals: torch.Tensor) -> torch.Tensor:  # (batch, 2, 128) -> (batch, 128)
        return self.body(signals)


class MlpEncoder(nn.Module):
    """Table rows (or sensor readings) of 32 values -> 64 features."""

    pretrained_cfg = {"input_size": (32,), "mean": (0.5,), "std": (1.0,)}  # a 1-D input: one mean/std value

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(32, 128), nn.GELU(), nn.Linear(128, 64))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:  # (batch, 32) -> (batch, 64)
        return self.body(rows)


class TokenTransformer(nn.Module):
    """Sequences of 16 token embeddings of width 8 -> 32 features (mean over the tokens)."""

    pretrained_cfg = {"input_size": (16, 8)}  # embeddings are fed as they are: no mean/std

    def __init__(self) -> None:
        super().__init__()
        self.project = nn.Linear(8, 32)
        layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (batch, 16, 8) -> (batch, 32)
        return self.encoder(self.project(tokens)).mean(dim=1)


def _seeded(build: type[nn.Module]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):  # a fixed init that leaves the caller's RNG alone
        torch.manual_seed(0)
        return build()


def conv1d_encoder() -> nn.Module:
    return _seeded(Conv1dEncoder)


def mlp_encoder() -> nn.Module:
    return _seeded(MlpEncoder)


def token_transformer() -> nn.Module:
    return _seeded(TokenTransformer)
