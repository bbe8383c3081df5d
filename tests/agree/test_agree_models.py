"""Which models ``synbench agree`` can rerun, and a board that holds models evaluated from a notebook (issue 22,
items 7 and 8)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from encoders_for_tests import small_linear
from safetensors.torch import save_file

from synbench.agree.agreement import agreement
from synbench.api import evaluate
from synbench.board.page import render_page
from synbench.board.read import read_board
from synbench.board.series import series_records
from synbench.cli.board_commands import agreement_section
from synbench.core.errors import EncoderError, SynBenchError
from synbench.core.spec import BenchmarkSpec
from synbench.models.encoders import resolve_encoder

SPEC = BenchmarkSpec(name="tiny", scales=(0.5, 1.5, 2.5, 3.5), n_train=64, n_test=64, eps=(0.0,), block_size=32)


def _evaluate(model, root, **options) -> None:
    evaluate(model, spec=SPEC, root=root, device="cpu", ci_replicates=0, **options)


def _shifted_linear(shift: float) -> torch.nn.Module:
    module = small_linear()
    with torch.no_grad():
        module.linear.weight.add_(shift)
    return module


def _args(**options) -> argparse.Namespace:
    return argparse.Namespace(**{"data": "digits", "models": None, "device": "cpu", **options})


def test_notebook_models_are_skipped_with_a_note_and_the_page_still_renders(tmp_path):
    root = tmp_path / "root"
    for ref in ("identity:1x4x4", "noise:1x4x4"):
        _evaluate(ref, root)
    _evaluate(_shifted_linear(0.1), root, name="my-net")
    _evaluate(_shifted_linear(0.2), root)  # named module:<class path>
    board = read_board(root)
    names = set(board["model"])
    assert {"my-net", "module:encoders_for_tests._Small"} < names
    assert series_records(board).empty
    page = render_page(root, board)
    assert "my-net" in page and "module:encoders_for_tests._Small" in page
    table, as_json, _ = agreement_section(_args(), root, None)
    found = json.loads(as_json)
    assert {row["model"] for row in found["models"]} == {"identity:1x4x4", "noise:1x4x4"}
    assert {s["model"] for s in found["skipped"]} == {"my-net", "module:encoders_for_tests._Small"}
    assert all("notebook" in s["reason"] for s in found["skipped"])
    assert table.count("skipped") >= 2 and "my-net" in table.split("skipped", 1)[1]


def test_a_model_at_full_accuracy_is_plotted_and_nothing_is_written_before_everything_succeeded(tmp_path, monkeypatch):
    import synbench.board.plots

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    images = (0.2 + 0.6 * labels[:, None, None, None] + rng.normal(0, 0.02, (60, 1, 4, 4))).clip(0, 1)
    np.savez(tmp_path / "easy.npz", X=images.astype(np.float32), y=labels)
    root = tmp_path / "root"
    for ref in ("identity:1x4x4", "noise:1x4x4", "noise:1x4x4@1"):
        _evaluate(ref, root)

    def broken(*args, **kwargs):
        raise RuntimeError("the plot failed")

    monkeypatch.setattr(synbench.board.plots, "plot_agreement", broken)
    with pytest.raises(RuntimeError, match="the plot failed"):
        agreement_section(_args(data=str(tmp_path / "easy.npz")), root, None)
    assert not (root / "agreement").exists() and not (root / "reports").exists()
    monkeypatch.undo()
    options = {"data": str(tmp_path / "easy.npz"), "robust": True, "robust_eps": None}
    table, as_json, _ = agreement_section(_args(**options), root, None)
    found = json.loads(as_json)
    models = {row["model"]: row for row in found["models"]}
    assert models["identity:1x4x4"]["accuracy"] == 1.0 and models["identity:1x4x4"]["accuracy_high"] == 1.0
    assert {row["model"] for row in found["robust"]} == set(models) and "Robust linear heads" in table
    assert len(list((root / "agreement").glob("*.parquet"))) == 3 and len(list((root / "reports").glob("*.png"))) == 1


def test_models_named_on_the_command_line_are_checked_and_their_py_code_allowed(tmp_path, monkeypatch):
    root = tmp_path / "root"
    work = tmp_path / "work"
    (work / "runs").mkdir(parents=True)
    save_file(small_linear().state_dict(), str(work / "runs" / "ckpt-1.safetensors"))
    monkeypatch.chdir(work)
    _evaluate("identity:1x4x4", root)
    _evaluate("py:encoders_for_tests:small_linear@runs/ckpt-1.safetensors", root, mean=(0.25,), std=(2.0,))
    _evaluate("py:encoders_for_tests:constant", root)
    monkeypatch.chdir(tmp_path)  # the weights path was stored absolute: agree runs from any folder
    py_model = f"py:encoders_for_tests:small_linear@{work}/runs/ckpt-1.safetensors"
    assert py_model in set(read_board(root)["model"])
    with pytest.raises(SynBenchError, match=r"no model 'nosuch' on the board.*identity:1x4x4") as caught:
        agreement(root, "digits", models=["nosuch"], device="cpu")
    assert "\n" not in str(caught.value)
    monkeypatch.delenv("SYNBENCH_ALLOW_PY")
    with pytest.raises(EncoderError, match="--allow-py"):
        agreement(root, "digits", device="cpu")
    result = agreement(root, "digits", models=[py_model, "identity:1x4x4"], device="cpu")
    assert set(result.per_model["model"]) == {py_model, "identity:1x4x4"}  # resolved with mean 0.25, std 2
    assert result.per_model["accuracy"].between(0.1, 1.0).all()


def test_the_projects_own_factories_are_trusted_code(monkeypatch):
    monkeypatch.delenv("SYNBENCH_ALLOW_PY")
    assert resolve_encoder("py:synbench.demo:digits_cnn", allow_py=False).feature_dim == 32
    for other in ("py:encoders_for_tests:constant", "py:synbenchx:build", "py:synbench_flows.x:build"):
        with pytest.raises(EncoderError, match="would import and run user code"):
            resolve_encoder(other, allow_py=False)
