"""The torch path of the probe and its replicates (synbench.method.linalg) against the NumPy path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synbench.method.intervals import half_sample, replicate_tasks
from synbench.method.linalg import accelerated, device_fit, device_probe_tasks, device_replicates
from synbench.method.probe import evaluate_probe, fit_probe
from synbench.method.probe_solve import probe_tasks
from synbench.method.refits import cpu_replicates

EPS = (0.0, 0.1, 0.3, 0.5)


def _task(rng, n, p):
    mixing = rng.normal(size=(p, p)) * np.linspace(0.05, 2, p)

    def split():
        labels = (rng.random(n) < 0.5).astype(np.uint8)
        features = rng.normal(size=(n, p)) @ mixing + np.where(labels[:, None] == 1, 0.3, -0.3)
        return features.astype(np.float32), labels

    return split(), split()


def _agree(a, b):
    assert [r.rank for r in a] == [r.rank for r in b]
    assert np.allclose([r.accuracy for r in a], [r.accuracy for r in b], atol=1e-12)
    assert np.allclose([r.bound for r in a], [r.bound for r in b], rtol=1e-8)
    assert np.allclose([r.nu for r in a[1:]], [r.nu for r in b[1:]], rtol=1e-6)


@pytest.mark.parametrize("n, p", [(256, 24), (48, 60)])  # covariance route, Gram route
def test_torch_fit_agrees_with_numpy(n, p, device="cpu"):
    rng = np.random.default_rng(11)
    train, test = _task(rng, n, p)
    probe = device_fit(*train, "relative", device)
    assert isinstance(probe.basis, np.ndarray) and probe.rank == min(n - 2, p)
    _agree(evaluate_probe(probe, *test, 1.0, EPS), evaluate_probe(fit_probe(*train), *test, 1.0, EPS))


@pytest.mark.parametrize("n, p", [(256, 24), (96, 60)])  # halves of 128 > p, halves of 48 < p
def test_torch_replicates_agree_with_numpy(n, p, device="cpu"):
    rng = np.random.default_rng(12)
    train, test = _task(rng, n, p)
    halves = [(half_sample(2, 0, 0, r, n), half_sample(2, 0, 1, r, n)) for r in range(5)]
    on_torch = device_replicates(train, test, halves, 1.5, EPS, "relative", device)
    on_numpy = cpu_replicates(train, test, halves, 1.5, EPS, "relative")
    assert len(on_torch) == len(on_numpy) == 5
    for a, b in zip(on_torch, on_numpy, strict=True):
        _agree(a, b)


def test_cpu_and_absent_devices_take_the_numpy_path():
    assert not accelerated("cpu")
    if not torch.cuda.is_available():
        assert not accelerated("cuda")
        rng = np.random.default_rng(13)
        train, test = _task(rng, 64, 12)
        tasks = [(1.0, train, test)]
        assert device_probe_tasks(tasks, EPS, device="cuda") == probe_tasks(tasks, EPS)
        assert replicate_tasks(tasks, EPS, 0, 3, device="cuda") == replicate_tasks(tasks, EPS, 0, 3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("n, p", [(256, 24), (96, 60)])
def test_cuda_agrees_with_numpy(n, p):
    rng = np.random.default_rng(14)
    tasks = [(1.0, *_task(rng, n, p))]
    for a, b in zip(device_probe_tasks(tasks, EPS, device="cuda"), probe_tasks(tasks, EPS), strict=True):
        assert a.rank == b.rank and a.accuracy == pytest.approx(b.accuracy, abs=1e-12)
    test_torch_fit_agrees_with_numpy(n, p, device="cuda")
    test_torch_replicates_agree_with_numpy(n, p, device="cuda")
