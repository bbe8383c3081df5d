"""The board tells the truth: filters never drop a model, specs never merge, any threshold is answered."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synbench.api import evaluate
from synbench.board.read import read_board
from synbench.board.tables import format_board, summary_records
from synbench.core.errors import SynBenchError
from synbench.core.spec import load_spec


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    """identity:1x8x8 and noise:1x8x8 on the demo spec; identity:3x8x8 on the demo spec with eps 0, 0.2."""
    root = tmp_path_factory.mktemp("board") / "root"
    for ref in ("identity:1x8x8", "noise:1x8x8"):
        evaluate(ref, spec="demo", root=root, device="cpu")
    evaluate("identity:3x8x8", spec="demo", eps=(0.0, 0.2), root=str(root), device="cpu")
    return root


def test_eps_filter_keeps_every_model_and_specs_stay_apart(demo_root):
    board = read_board(str(demo_root), eps=[0.0, 0.2])
    records = summary_records(board)
    assert set(records["model"]) == {"identity:1x8x8", "noise:1x8x8", "identity:3x8x8"}
    assert records.groupby("model")["threshold"].nunique().eq(4).all()
    assert set(records["best_eps"]) <= {0.0, 0.2} and records["spec_hash"].nunique() == 2
    assert set(records["spec_name"]) == {"demo"}
    # best eps is chosen within the filter: each (spec, model, threshold) has exactly one
    assert board.groupby(["spec_hash", "model_fingerprint", "threshold"])["best_eps"].sum().eq(1).all()


def test_unpublished_threshold_is_answered_from_the_stored_curves(demo_root):
    board = read_board(demo_root, threshold=[0.75])
    assert set(board["threshold"]) == {0.75} and board["model"].nunique() == 3
    identity = board[(board["model"] == "identity:1x8x8") & (board["eps"] == 0)]["score"].item()
    between = read_board(demo_root, threshold=[0.7, 0.8])
    neighbours = between[(between["model"] == "identity:1x8x8") & (between["eps"] == 0)]["score"]
    assert 0.5 < identity < 1.1 and np.isfinite(identity)
    assert min(neighbours) - 0.1 < identity < max(neighbours) + 0.1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": [1.5]}, r"threshold 1.5 cannot be answered: .* stored thresholds: 0.6, 0.7, 0.8, 0.9"),
        ({"eps": [0.7]}, r"eps 0.7 is not on the board; stored eps: 0, 0.1, 0.2, 0.3, 0.4, 0.5"),
        ({"spec": "paper"}, r"no spec 'paper' on the board; stored specs: demo \("),
    ],
)
def test_impossible_requests_name_what_is_stored(demo_root, kwargs, message):
    with pytest.raises(SynBenchError, match=message):
        read_board(demo_root, **kwargs)


def test_summary_json_has_ranked_records(demo_root):
    import json

    records = json.loads(format_board(read_board(demo_root, spec="demo", eps=[0.0, 0.2]), "json", summary=True))
    assert {"model", "spec_name", "spec_hash", "threshold", "score", "best_eps", "rank"} <= set(records[0])
    first = [r for r in records if r["threshold"] == 0.6 and r["spec_hash"] == records[0]["spec_hash"]]
    assert sorted(r["rank"] for r in first) == list(range(1, len(first) + 1))


def test_a_module_in_memory_scores_like_its_reference(tmp_path):
    spec = load_spec("demo")
    reference = evaluate("identity:1x8x8", spec=spec, root=tmp_path / "a", device="cpu")
    module = evaluate(
        torch.nn.Flatten(), spec="demo", input_shape=(1, 8, 8), mean=(0.0,), std=(1.0,), root=tmp_path / "b"
    )
    assert len(module) == len(reference) == len(spec.eps) * 4
    assert np.allclose(module["score"].to_numpy(), reference["score"].to_numpy(), rtol=0, atol=1e-9)
    assert module["model"].iloc[0] == "module:torch.nn.modules.flatten.Flatten"
    assert not any(tmp_path.glob("a/**/*.tmp"))


def test_one_fingerprint_under_two_names_lists_both(tmp_path):
    from safetensors.torch import save_file

    from synbench.models.encoders import resolve_encoder

    module = resolve_encoder("random:test_convnext@2").module
    state = {k: v.contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    torch.save(state, tmp_path / "w.pt")
    spec = load_spec("demo", eps=(0.0,), scales=(0.5, 2.0, 4.0), n_train=64, n_test=64, block_size=64)
    for name in ("w.safetensors", "w.pt"):
        evaluate(
            f"timm:test_convnext@{tmp_path / name}", spec=spec, root=tmp_path / "root", device="cpu", ci_replicates=0
        )
    board = read_board(tmp_path / "root")
    assert board["model_fingerprint"].nunique() == 1 and len(board) == 4
    first, second = (f"timm:test_convnext@{tmp_path / name}" for name in ("w.safetensors", "w.pt"))
    assert board["model"].iloc[0] == f"{first}, {second}"
