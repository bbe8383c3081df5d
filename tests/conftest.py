"""Shared fixtures: tiny specs, a fresh artifact root, a seeded generator."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))  # tests/encoders_for_tests.py for py: references
sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))  # examples/sequence_encoders.py

from synbench.core.spec import BenchmarkSpec, load_spec  # noqa: E402
from synbench.store.roots import open_root  # noqa: E402


@pytest.fixture(autouse=True)
def _py_encoders_allowed(monkeypatch):
    """Tests name their own py: encoders; a worker allows them only by its own environment, as here.

    Tests of that safety rule remove the variable again."""
    monkeypatch.setenv("SYNBENCH_ALLOW_PY", "1")
    monkeypatch.setenv("SYNBENCH_ALLOWED_PATHS", "/")  # flows may use any tmp_path here


@pytest.fixture
def tiny_spec() -> BenchmarkSpec:
    """Four tasks, 64 + 64 samples in blocks of 32: seconds to run end to end."""
    return BenchmarkSpec(name="tiny", scales=(0.5, 1.5, 2.5, 3.5), n_train=64, n_test=64, eps=(0.0, 0.2), block_size=32)


@pytest.fixture
def quick_spec() -> BenchmarkSpec:
    return load_spec("quick")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return open_root(tmp_path / "root")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20260125)
