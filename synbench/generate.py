"""Stage 1: the synthetic two-class Gaussian tasks of METHOD.md section 1, block by block.

Every block is a pure function of (spec seed, scale index, split, block index): labels come
from numpy's counter-based Philox generator (identical on every device), the Gaussian noise
from a ``torch.Generator`` on the extraction device (identical on the same device type).
The whole input set is never built; stage 1 stores only the recipe and label digests.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .spec import GENERATOR_VERSION, BenchmarkSpec
from .store import SPLITS, atomic_write_json, safe_path

__all__ = [
    "Preprocess",
    "SPLITS",
    "block_seed",
    "block_labels",
    "block_inputs",
    "label_digests",
    "make_recipe",
    "recipe_path",
    "write_recipe",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """How synthetic pixels become encoder inputs: shape and per-channel normalisation."""

    input_shape: tuple[int, int, int]  # (C, H, W)
    mean: tuple[float, ...]  # per-channel mean subtracted from the pixels
    std: tuple[float, ...]  # per-channel std the pixels are divided by
    interpolation: str = "bicubic"  # the model's declared resize mode (recorded, never used)

    def __post_init__(self) -> None:
        channels = self.input_shape[0]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"mean/std need {channels} values for input shape {self.input_shape}")

    @property
    def dim(self) -> int:
        return math.prod(self.input_shape)

    def to_dict(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
        }


def block_seed(seed: int, scale_index: int, split: str, block_index: int, stream: str) -> int:
    """A 63-bit seed that depends only on the block's keys and the stream name."""
    key = f"synbench/gen{GENERATOR_VERSION}/{seed}/{scale_index}/{split}/{block_index}/{stream}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") >> 1


def _block_length(spec: BenchmarkSpec, split: str, block_index: int) -> int:
    n = spec.n_train if split == "train" else spec.n_test
    start = block_index * spec.block_size
    if not 0 <= start < n:
        raise IndexError(f"block {block_index} is outside split {split!r} of {n} samples")
    return min(spec.block_size, n - start)


def block_labels(spec: BenchmarkSpec, scale_index: int, split: str, block_index: int) -> np.ndarray:
    """Labels of one block: ndarray of shape (block_length,), uint8 in {0, 1}."""
    length = _block_length(spec, split, block_index)
    rng = np.random.Generator(np.random.Philox(block_seed(spec.seed, scale_index, split, block_index, "labels")))
    return (rng.random(length) < spec.class_prior).astype(np.uint8)


def block_inputs(
    spec: BenchmarkSpec,
    preprocess: Preprocess,
    scale_index: int,
    split: str,
    block_index: int,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, torch.Tensor]:
    """One block of encoder inputs, generated on ``device``.

    Returns labels (ndarray of shape (b,)) and inputs (float32 tensor of shape (b, C, H, W)):
    ``x = 0.5 + sgn(y) * s / sqrt(d) + n`` with ``n ~ N(0, I)``, then ``(x - mean_c) / std_c``.
    """
    device = torch.device(device)
    labels = block_labels(spec, scale_index, split, block_index)
    shape = (len(labels), *preprocess.input_shape)
    generator = torch.Generator(device=device)
    generator.manual_seed(block_seed(spec.seed, scale_index, split, block_index, "noise"))
    inputs = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
    signs = torch.from_numpy(labels.astype(np.float32) * 2 - 1).to(device)
    shift = spec.scales[scale_index] / math.sqrt(preprocess.dim)
    inputs += 0.5
    inputs += (signs * shift).view(-1, 1, 1, 1)
    mean = torch.tensor(preprocess.mean, device=device, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(preprocess.std, device=device, dtype=torch.float32).view(1, -1, 1, 1)
    inputs -= mean
    inputs /= std
    return labels, inputs


def label_digests(spec: BenchmarkSpec) -> dict[str, str]:
    """sha256 of every label block, keyed ``"s{scale}/{split}/{block}"``."""
    digests = {}
    for scale_index in range(len(spec.scales)):
        for split in SPLITS:
            for block_index in range(spec.n_blocks(split)):
                labels = block_labels(spec, scale_index, split, block_index)
                digests[f"s{scale_index}/{split}/{block_index}"] = hashlib.sha256(labels.tobytes()).hexdigest()
    return digests


def make_recipe(spec: BenchmarkSpec) -> dict:
    """Stage 1 artifact: everything needed to regenerate and check the inputs, no pixels."""
    return {
        "data_hash": spec.data_hash,
        "generator_version": GENERATOR_VERSION,
        "spec": spec.to_dict(),
        "label_digests": label_digests(spec),
    }


def recipe_path(root: Path, spec: BenchmarkSpec) -> Path:
    return safe_path(root, "recipes", f"{spec.data_hash}.json")


def write_recipe(spec: BenchmarkSpec, root: Path) -> Path:
    """Stage 1: store the recipe once per data hash; an existing recipe is left untouched."""
    path = recipe_path(root, spec)
    if not path.is_file():
        atomic_write_json(path, make_recipe(spec))
    return path
