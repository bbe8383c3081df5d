"""Shared fixtures: tiny specs, a fresh artifact root, a seeded generator."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))  # tests/encoders_for_tests.py for py: references
sys.path.insert(0, str(Path(__file__).parent / "audit"))  # test_audit's helpers, used by the board tests too
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


@dataclass(frozen=True)
class DemoRun:
    folder: Path  # where `synbench demo --root data` ran
    printed: str  # what it printed (stdout and stderr)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> DemoRun:
    """`make demo`'s command, run once per session (minutes): the README's board and docs examples use it."""
    folder = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNBENCH_", "PREFECT_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(Path(__file__).parents[1]), env.get("PYTHONPATH"))))
    command = [sys.executable, "-m", "synbench.cli.main", "demo", "--root", "data"]
    result = subprocess.run(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert result.returncode == 0, result.stdout
    return DemoRun(folder, result.stdout)
