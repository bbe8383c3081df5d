"""The inputs a doc block needs that the reader has at hand at that point of the docs (`run; given NAME`)."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

from synbench.core.spec import BenchmarkSpec


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What a given input leaves: text to put in place of placeholders, another folder to run in."""

    replace: dict[str, str] = dataclasses.field(default_factory=dict)
    cwd: Path | None = None


def _mymodel_checkpoint(folder: Path, request) -> Prepared:
    """runs/ckpt-1000.safetensors: a state dict of the `mymodel.py` the page shows (written just before)."""
    from safetensors.torch import save_file

    spec = importlib.util.spec_from_file_location("doc_mymodel", folder / "mymodel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (folder / "runs").mkdir()
    save_file(module.build().state_dict(), str(folder / "runs" / "ckpt-1000.safetensors"))
    return Prepared()


def _resnet18_checkpoints(folder: Path, request) -> Prepared:
    """runs/ckpt-1000 and ckpt-2000.safetensors: two seeded resnet18 inits, a training run's checkpoints."""
    import timm
    import torch
    from safetensors.torch import save_file

    (folder / "runs").mkdir()
    for step in (1000, 2000):
        torch.manual_seed(step)
        state = timm.create_model("resnet18", pretrained=False).state_dict()
        save_file(state, str(folder / "runs" / f"ckpt-{step}.safetensors"))
    return Prepared()


def _signals(folder: Path, request) -> Prepared:
    """signals.npz: 2-channel signals of 128 steps in [0, 1], two classes (a slow and a fast wave)."""
    import numpy as np

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 60)
    steps = np.linspace(0, 2 * np.pi, 128)
    waves = np.sin(np.outer(3 + 4 * labels, steps))[:, None, :].repeat(2, axis=1)
    signals = np.clip(0.5 + 0.3 * waves + 0.1 * rng.standard_normal(waves.shape), 0, 1).astype(np.float32)
    np.savez(folder / "signals.npz", X=signals, y=labels)
    return Prepared()


def _stored_root(folder: Path, request) -> Prepared:
    """data/: one model benchmarked on a small spec; <fingerprint> and <data_hash> name its feature group."""
    from synbench.api import evaluate

    spec = BenchmarkSpec(name="tiny", scales=(0.5, 1.5, 2.5, 3.5), n_train=64, n_test=64, block_size=32)
    rows = evaluate("identity:1x8x8", spec=spec, root=folder / "data", device="cpu", ci_replicates=0)
    return Prepared({"<fingerprint>": rows["model_fingerprint"].iloc[0], "<data_hash>": rows["data_hash"].iloc[0]})


def _demo_root(folder: Path, request) -> Prepared:
    """The folder `make demo` ran in (data/ holds its root): tests/conftest.py's demo_run."""
    return Prepared(cwd=request.getfixturevalue("demo_run").folder)


# The inputs a `run; given NAME` block needs: what the reader has at hand at that point of the docs.
GIVEN: dict[str, Callable[[Path, pytest.FixtureRequest], Prepared]] = {
    "mymodel-checkpoint": _mymodel_checkpoint,
    "resnet18-checkpoints": _resnet18_checkpoints,
    "signals.npz": _signals,
    "stored-root": _stored_root,
    "demo-root": _demo_root,
}
