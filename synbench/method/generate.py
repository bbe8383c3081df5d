"""Stage 1: the synthetic two-class Gaussian tasks of METHOD.md section 1, block by block.

Every block is a pure function of (spec seed, scale index, split, block index). Labels come from
numpy's counter-based Philox generator; the Gaussian noise from a counter-based hash evaluated with
plain integer tensor ops, so a block's draws are the same on CPU and CUDA up to float rounding
(METHOD.md 1, "data hash"). The whole input set is never built: blocks are made on the device.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

from ..core.inputs import Preprocess
from ..core.provenance import GENERATOR_VERSION
from ..core.spec import SPLITS, BenchmarkSpec
from .natural import NaturalCovariance

__all__ = [
    "block_seed",
    "block_labels",
    "block_inputs",
    "counter_normals",
    "natural_noise",
    "label_digests",
    "make_recipe",
]

_MIX1, _MIX2 = 0x7FEB352D, 0x846CA68B - 2**32  # lowbias32 multipliers, as signed int32
_MAX_DRAWS = 2**31  # counters are int32


def block_seed(seed: int, scale_index: int, split: str, block_index: int, stream: str) -> int:
    """A 63-bit seed that depends only on the block's keys and the stream name."""
    key = f"synbench/gen{GENERATOR_VERSION}/{seed}/{scale_index}/{split}/{block_index}/{stream}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") >> 1


def _mix32(bits: torch.Tensor) -> torch.Tensor:
    """The lowbias32 integer hash, in place on int32 (wrapping multiplies; masks make shifts logical)."""
    bits ^= (bits >> 16) & 0xFFFF
    bits *= _MIX1
    bits ^= (bits >> 15) & 0x1FFFF
    bits *= _MIX2
    bits ^= (bits >> 16) & 0xFFFF
    return bits


def counter_normals(seed: int, count: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``count`` standard normal draws (float32) that depend only on ``seed`` and the draw's index.

    Uniforms are 24-bit hashes of the counter and the seed; Box-Muller turns pairs into normals
    (so |z| <= 5.77: the tail beyond, probability 8e-9, is cut). Integer steps are exact on every
    device; only the final log/sqrt/cos/sin may differ by float rounding between CPU and CUDA.
    """
    pairs = (count + 1) // 2
    if 2 * pairs > _MAX_DRAWS:
        raise ValueError(f"a block may hold at most {_MAX_DRAWS} draws; use a smaller block_size")
    bits = torch.arange(2 * pairs, dtype=torch.int32, device=device)
    bits ^= seed & 0x7FFFFFFF
    _mix32(bits)
    bits += (seed >> 31) & 0x7FFFFFFF
    _mix32(bits)
    uniform = ((bits >> 8) & 0xFFFFFF).to(torch.float32).mul_(2.0**-24)  # in [0, 1)
    radius = uniform[:pairs].neg_().log1p_().mul_(-2).sqrt_()
    angle = uniform[pairs:].mul_(2 * math.pi)
    out = torch.empty(2 * pairs, dtype=torch.float32, device=device)
    torch.mul(radius, torch.cos(angle), out=out[:pairs])
    torch.mul(radius, angle.sin_(), out=out[pairs:])
    return out[:count]


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

    Returns labels (ndarray of shape (b,)) and inputs (float32 tensor of shape (b, *input_shape)):
    ``x = 0.5 + sgn(y) * s / sqrt(d) + n`` with ``n ~ N(0, I)``, then ``(x - mean_c) / std_c`` per
    channel (the first axis). The draws depend on ``d`` only, not on the shape: ``(256,)`` and
    ``(1, 16, 16)`` get the same values in the same order. A natural spec filters the same draws into
    ``n ~ N(0, Sigma)`` and shifts by ``s c`` with ``c 1_d`` of Mahalanobis length 1 (METHOD.md 1).
    """
    device = torch.device(device)
    labels = block_labels(spec, scale_index, split, block_index)
    shape = (len(labels), *preprocess.input_shape)
    seed = block_seed(spec.seed, scale_index, split, block_index, "noise")
    inputs = counter_normals(seed, math.prod(shape), device).view(shape)
    signs = torch.from_numpy(labels.astype(np.float32) * 2 - 1).to(device)
    shift = spec.scales[scale_index] / math.sqrt(preprocess.dim)
    if spec.covariance == "natural":
        covariance = NaturalCovariance(preprocess.input_shape, spec.spectrum_exponent)
        inputs = natural_noise(inputs, covariance)
        shift = spec.scales[scale_index] * covariance.unit_shift
    per_sample, per_channel = (-1, *[1] * len(preprocess.input_shape)), (1, -1, *[1] * (len(shape) - 2))
    inputs += 0.5
    inputs += (signs * shift).view(per_sample)
    mean = torch.tensor(preprocess.mean, device=device, dtype=torch.float32).view(per_channel)
    std = torch.tensor(preprocess.std, device=device, dtype=torch.float32).view(per_channel)
    inputs -= mean
    inputs /= std
    return labels, inputs


def natural_noise(white: torch.Tensor, covariance: NaturalCovariance) -> torch.Tensor:
    """``Sigma^(1/2) n`` for white noise of shape (b, C, H, W): ``sqrt(P)`` applied in the 2-D Fourier basis
    (an FFT filter, O(d log d) per sample), then ``K^(1/2)`` across channels; float32, on ``white``'s device."""
    amplitude = torch.from_numpy(covariance.amplitude()).to(white.device)
    mixing = torch.from_numpy(covariance.channel_root()).to(white.device)
    coloured = torch.fft.irfft2(torch.fft.rfft2(white) * amplitude, s=white.shape[-2:])
    return torch.einsum("ij,bjhw->bihw", mixing, coloured).contiguous()


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
        "generator": "labels: numpy Philox; noise: lowbias32 counter hash + Box-Muller (device-independent)"
        + ("; natural: FFT filter sqrt(P(f)), then K^(1/2) across channels" if spec.covariance == "natural" else ""),
        "spec": spec.to_dict(),
        "label_digests": label_digests(spec),
    }
