import hashlib
import math

import numpy as np
import pytest
import torch

from synbench.generate import block_inputs, block_labels, label_digests, make_recipe
from synbench.preprocess import Preprocess
from synbench.stages import write_recipe

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


def test_blocks_differ_by_every_key(tiny_spec):
    base = block_inputs(tiny_spec, RAW, 0, "train", 0)[1]
    for other in [(1, "train", 0), (0, "test", 0), (0, "train", 1)]:
        assert not torch.equal(base[:8], block_inputs(tiny_spec, RAW, *other)[1][:8])


def test_inputs_follow_the_method(rng):
    from synbench.spec import BenchmarkSpec

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
    from synbench.spec import BenchmarkSpec

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
