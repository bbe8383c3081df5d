import hashlib
import math

import numpy as np
import pytest
import torch

from synbench.core.inputs import Preprocess
from synbench.method.generate import block_inputs, block_labels, block_seed, counter_normals, label_digests, make_recipe
from synbench.stages.probes import write_recipe

RAW = Preprocess((3, 4, 4), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
IMAGENET = Preprocess((3, 4, 4), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_block_regenerated_alone_and_out_of_order_is_bit_identical(tiny_spec):
    in_order = [
        block_inputs(tiny_spec, RAW, s, split, b) for s in range(4) for split in ("train", "test") for b in range(2)
    ]
    keys = [(s, split, b) for s in range(4) for split in ("train", "test") for b in range(2)]
    for index in reversed(range(len(keys))):
        labels, inputs = block_inputs(tiny_spec, RAW, *keys[index])
        assert np.array_equal(labels, in_order[index][0])
        assert torch.equal(inputs, in_order[index][1])


@pytest.mark.parametrize("shape", [(2, 128), (16, 16), (1, 16, 16), (4, 4, 4, 4)])
def test_the_draws_depend_on_d_only_not_on_the_shape(tiny_spec, shape):
    flat_labels, flat = block_inputs(tiny_spec, Preprocess((256,), (0.0,), (1.0,)), 2, "train", 1)
    labels, inputs = block_inputs(tiny_spec, Preprocess(shape, (0.0,), (1.0,)), 2, "train", 1)
    assert inputs.shape == (32, *shape) and np.array_equal(labels, flat_labels)
    assert torch.equal(inputs.flatten(1), flat)  # bit for bit: identity:256 and identity:1x16x16 see one input


def test_normalisation_runs_along_the_first_axis_or_is_one_value(tiny_spec):
    raw = block_inputs(tiny_spec, Preprocess((2, 128), (0.0,), (1.0,)), 0, "test", 0)[1]
    signal = block_inputs(tiny_spec, Preprocess((2, 128), (0.5, 0.25), (1.0, 2.0)), 0, "test", 0)[1]
    assert torch.equal(signal[:, 0], raw[:, 0] - 0.5) and torch.equal(signal[:, 1], (raw[:, 1] - 0.25) / 2)
    rows = block_inputs(tiny_spec, Preprocess((256,), (0.5,), (2.0,)), 0, "test", 0)[1]
    assert torch.equal(rows, (raw.flatten(1) - 0.5) / 2)
    assert Preprocess((16, 8), (0.5,), (2.0,)).mean == (0.5,) * 16  # one value stands for every channel
    with pytest.raises(ValueError, match=r"input shape 256 need 1 value; got 2 mean and 2 std values"):
        Preprocess((256,), (0.5, 0.5), (1.0, 1.0))
    with pytest.raises(ValueError, match=r"input shape 2x128 need 1 value or 2 \(one per channel, the first axis\)"):
        Preprocess((2, 128), (0.5, 0.5, 0.5), (1.0,))


def test_blocks_differ_by_every_key(tiny_spec):
    base = block_inputs(tiny_spec, RAW, 0, "train", 0)[1]
    for other in [(1, "train", 0), (0, "test", 0), (0, "train", 1)]:
        assert not torch.equal(base[:8], block_inputs(tiny_spec, RAW, *other)[1][:8])


def test_inputs_follow_the_method(rng):
    from synbench.core.spec import BenchmarkSpec

    spec = BenchmarkSpec(scales=(2.0,), n_train=4096, n_test=8, block_size=4096)
    labels, inputs = block_inputs(spec, IMAGENET, 0, "train", 0)
    pixels = inputs * torch.tensor(IMAGENET.std).view(1, 3, 1, 1) + torch.tensor(IMAGENET.mean).view(1, 3, 1, 1)
    flat = pixels.flatten(1).double().numpy() - 0.5
    signs = labels * 2.0 - 1
    shift = (flat * signs[:, None]).mean(axis=0)  # sgn(y) mu + sgn(y) n, averaged
    assert np.allclose(shift, 2.0 / math.sqrt(48), atol=0.05)
    assert abs(np.linalg.norm(shift) - 2.0) < 0.2
    assert abs(labels.mean() - 0.5) < 0.03
    residual = flat - signs[:, None] * 2.0 / math.sqrt(48)
    assert abs(residual.std() - 1.0) < 0.02


def test_labels_are_device_independent_numpy(tiny_spec):
    labels = block_labels(tiny_spec, 2, "test", 1)
    assert labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1} and len(labels) == 32
    assert np.array_equal(labels, block_inputs(tiny_spec, RAW, 2, "test", 1)[0])


def test_last_block_is_shorter():
    from synbench.core.spec import BenchmarkSpec

    spec = BenchmarkSpec(scales=(1.0,), n_train=70, n_test=8, block_size=32, thresholds=(0.6,))
    assert spec.n_blocks("train") == 3
    assert len(block_labels(spec, 0, "train", 2)) == 6
    with pytest.raises(IndexError):
        block_labels(spec, 0, "train", 3)


def test_recipe_holds_label_digests_not_pixels(tiny_spec, root):
    recipe = make_recipe(tiny_spec)
    assert len(recipe["label_digests"]) == 4 * 2 * 2
    expected = hashlib.sha256(block_labels(tiny_spec, 1, "train", 0).tobytes()).hexdigest()
    assert recipe["label_digests"]["s1/train/0"] == expected == label_digests(tiny_spec)["s1/train/0"]
    path = write_recipe(tiny_spec, root)
    first = path.stat().st_mtime_ns
    assert write_recipe(tiny_spec, root) == path and path.stat().st_mtime_ns == first
    assert path.stat().st_size < 10_000


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_blocks_are_reproducible_and_match_labels(tiny_spec):
    first = block_inputs(tiny_spec, RAW, 1, "train", 0, device="cuda")
    second = block_inputs(tiny_spec, RAW, 1, "train", 0, device="cuda")
    assert first[1].is_cuda and torch.equal(first[1], second[1])
    assert np.array_equal(first[0], block_labels(tiny_spec, 1, "train", 0))


def _lowbias32(value: int) -> int:
    """The reference hash in plain Python integers (what the tensor code must compute on any device)."""
    value &= 0xFFFFFFFF
    value ^= value >> 16
    value = (value * 0x7FEB352D) & 0xFFFFFFFF
    value ^= value >> 15
    value = (value * 0x846CA68B) & 0xFFFFFFFF
    return value ^ (value >> 16)


def test_counter_normals_follow_the_documented_hash():
    seed, count = block_seed(7, 3, "train", 1, "noise"), 1000
    draws = counter_normals(seed, count).double().numpy()
    pairs = count // 2
    for index in (0, 1, 499):
        hashed = [
            _lowbias32(_lowbias32(k ^ (seed & 0x7FFFFFFF)) + ((seed >> 31) & 0x7FFFFFFF))
            for k in (index, pairs + index)
        ]
        u1, u2 = ((h >> 8) * 2.0**-24 for h in hashed)
        radius = math.sqrt(-2 * math.log1p(-u1))
        assert draws[index] == pytest.approx(radius * math.cos(2 * math.pi * u2), abs=1e-5)
        assert draws[pairs + index] == pytest.approx(radius * math.sin(2 * math.pi * u2), abs=1e-5)


def test_counter_normals_are_standard_normal_and_depend_only_on_seed_and_index():
    from scipy import stats

    draws = counter_normals(12345, 200_001)
    assert draws.dtype == torch.float32 and len(draws) == 200_001
    assert stats.kstest(draws.double().numpy(), "norm").pvalue > 1e-3
    assert abs(float(draws.mean())) < 0.01 and abs(float(draws.std()) - 1) < 0.01
    assert torch.equal(counter_normals(12345, 1000), counter_normals(12345, 1000))
    assert not torch.equal(counter_normals(12345, 1000), counter_normals(12346, 1000))
    first, second = counter_normals(5, 200_000).numpy()[:100_000], counter_normals(6, 200_000).numpy()[:100_000]
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.02  # neighbouring seeds are independent streams


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cpu_and_cuda_draw_the_same_inputs(tiny_spec):
    cpu = block_inputs(tiny_spec, IMAGENET, 2, "test", 1, device="cpu")[1]
    cuda = block_inputs(tiny_spec, IMAGENET, 2, "test", 1, device="cuda")[1].cpu()
    assert torch.allclose(cpu, cuda, rtol=0, atol=1e-5)
