"""Inputs of any rank: a signal, table rows and token embeddings through every stage, board, compare, audit, agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synbench.agree.agreement import agree
from synbench.api import evaluate
from synbench.audit.root import audit_root
from synbench.board.compare import compare_models
from synbench.board.read import read_board
from synbench.core.errors import DataError
from synbench.core.spec import BenchmarkSpec
from synbench.models.encoders import resolve_encoder
from synbench.store.features import feature_group_path
from synbench.store.roots import location

SPEC = BenchmarkSpec(name="seq", scales=(0.5, 1.5, 2.5, 3.5), n_train=512, n_test=512, eps=(0.0, 0.2), block_size=128)
EXAMPLES = {  # examples/sequence_encoders.py, on the tests' import path
    "py:sequence_encoders:conv1d_encoder": ((2, 128), (0.5, 0.5)),
    "py:sequence_encoders:mlp_encoder": ((32,), (0.5,)),
    "py:sequence_encoders:token_transformer": ((16, 8), (0.0,) * 16),
}
CONTROLS = ("identity:256", "identity:1x16x16")
EXAMPLES_DIR = Path(__file__).parents[1] / "examples"


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> tuple:
    root = tmp_path_factory.mktemp("sequences") / "root"
    rows = {  # intervals only where compare needs them: the p = 256 controls' probes are the slow part
        ref: evaluate(ref, spec=SPEC, root=root, device="cpu", ci_replicates=0 if ref in CONTROLS else 8)
        for ref in (*CONTROLS, *EXAMPLES)
    }
    return root, rows


def test_example_encoders_declare_any_rank_and_their_normalisation():
    for ref, (shape, mean) in EXAMPLES.items():
        encoder = resolve_encoder(ref)
        assert encoder.preprocess.input_shape == shape and encoder.preprocess.mean == mean
        assert encoder.preprocess.source == "model" and encoder.preprocess.interpolation == "none"
    assert resolve_encoder("py:sequence_encoders:conv1d_encoder").feature_dim == 128


def test_the_identity_score_does_not_depend_on_the_shape(scored):
    _, rows = scored
    flat, image = (rows[ref].sort_values(["eps", "threshold"]) for ref in CONTROLS)
    assert len(flat) == len(SPEC.eps) * len(SPEC.thresholds)
    assert flat["model_fingerprint"].iloc[0] != image["model_fingerprint"].iloc[0]  # two models, one input
    assert np.allclose(flat["score"].to_numpy(), image["score"].to_numpy(), rtol=0, atol=1e-9)
    assert (flat[flat["threshold"] == 0.6]["score"] > 0.6).all()  # n = 2d samples: short of the ideal 1


def test_every_example_is_scored_compared_and_audited(scored):
    root, rows = scored
    for ref in EXAMPLES:
        assert len(rows[ref]) == len(SPEC.eps) * len(SPEC.thresholds) and rows[ref]["score"].notna().all()
    board = read_board(root)
    assert set(board["model"]) == {*CONTROLS, *EXAMPLES} and len(board) == 5 * 8
    compared = compare_models(board, "py:sequence_encoders:conv1d_encoder", "py:sequence_encoders:mlp_encoder")
    assert len(compared) == 8 and compared["difference_low"].notna().all()  # both scores, 4 thresholds
    assert (compared["difference_low"] <= compared["difference"]).all()
    report = audit_root(root)
    assert report.ok and report.groups == 5
    fingerprint = rows["py:sequence_encoders:conv1d_encoder"]["model_fingerprint"].iloc[0]
    group = feature_group_path(location(root), fingerprint, SPEC.data_hash)
    chunk = next(group.glob("features/s01_train/c/0/0"))
    original = chunk.read_bytes()
    chunk.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    repaired = audit_root(root, repair=True, allow_py=True)
    assert len(repaired.repaired) == 1 and repaired.ok
    assert chunk.read_bytes() == original  # regenerated bit for bit from the (2, 128) inputs


def _two_class(shape: tuple[int, ...], n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Samples of ``shape`` whose class moves the first half of every row up (learnable, not trivial)."""
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1], n // 2)
    samples = rng.normal(0.5, 1.0, size=(n, *shape)).astype(np.float32)
    samples.reshape(n, -1)[:, : samples[0].size // 2] += 1.5 * labels[:, None]
    return samples, labels


def test_agree_takes_npz_samples_of_the_models_own_shape(scored, tmp_path):
    root, _ = scored
    for ref, (shape, _) in EXAMPLES.items():
        samples, labels = _two_class(shape)
        np.savez(tmp_path / f"{ref[-6:]}.npz", X=samples, y=labels)
        per_model, _ = agree(root, str(tmp_path / f"{ref[-6:]}.npz"), models=[ref], device="cpu")
        assert set(per_model["model"]) == {ref} and (per_model["accuracy"] > 0.8).all()
    np.savez(tmp_path / "short.npz", X=_two_class((2, 64))[0], y=_two_class((2, 64))[1])
    with pytest.raises(DataError, match=r"conv1d_encoder on short.npz: samples of shape 2x64 do not fit .* 2x128"):
        agree(root, str(tmp_path / "short.npz"), models=["py:sequence_encoders:conv1d_encoder"], device="cpu")


def test_the_readme_examples_are_seeded_and_powered_on_the_spec_they_show():
    # issue 31: the own-model example (examples/mymodel.py) was unseeded and underpowered on demo; the signals
    # example's identity ceiling (256 features) was underpowered on demo
    from mymodel import build

    from synbench.core.spec import load_spec
    from synbench.method.score import power_flags
    from synbench.models.checkpoints import weights_digest

    assert weights_digest(build()) == weights_digest(build())  # seeded: one fingerprint on every rerun
    first = resolve_encoder("py:mymodel:build")
    demo, signals = load_spec("demo"), load_spec(str(EXAMPLES_DIR / "signals.toml"))
    assert not power_flags([first.feature_dim], demo.n_train, first.feature_dim)["underpowered"]
    for ref in ("identity:2x128", "identity:256", *EXAMPLES):
        width = resolve_encoder(ref).feature_dim
        assert not power_flags([width], signals.n_train, width)["underpowered"], ref
    assert signals.data_hash != demo.data_hash and signals.scales == demo.scales
