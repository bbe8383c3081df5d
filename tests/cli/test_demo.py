"""The offline demo: its CNNs, its model list, and the board it prints, which the README shows."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from synbench.demo import demo_models, train_digits_cnn
from synbench.models.encoders import resolve_encoder
from synbench.models.references import parse_reference

ROOT = Path(__file__).parents[2]


def test_digits_cnn_trains_and_loads_as_a_py_encoder(tmp_path):
    checkpoint = tmp_path / "digits.safetensors"
    accuracy = train_digits_cnn(checkpoint, epochs=10)
    assert accuracy > 0.9 and checkpoint.stat().st_size > 10_000
    trained = resolve_encoder(f"py:synbench.demo:digits_cnn@{checkpoint}")
    untrained = resolve_encoder("py:synbench.demo:digits_cnn")
    assert trained.preprocess.input_shape == (1, 8, 8) and trained.feature_dim == 32
    assert trained.weights_digest != untrained.weights_digest


def test_demo_lists_at_least_five_valid_encoders(tmp_path):
    models = demo_models(tmp_path / "digits.safetensors")
    assert len(models) >= 5 and len({parse_reference(m).scheme for m in models}) >= 4


# The docs' words for the demo's models -> the board's display name (checkpoints: file name and weights digest)
DEMO_MODELS = {
    "`identity:1x8x8` (control: raw pixels)": "identity:1x8x8",
    "digits CNN after 4 epochs": "py:synbench.demo:digits_cnn@digits_cnn-e4.safetensors",
    "digits CNN after 8 epochs": "py:synbench.demo:digits_cnn@digits_cnn-e8.safetensors",
    "digits CNN after 2 epochs": "py:synbench.demo:digits_cnn@digits_cnn-e2.safetensors",
    "digits CNN after 1 epoch": "py:synbench.demo:digits_cnn@digits_cnn-e1.safetensors",
    "digits CNN after 30 epochs": "py:synbench.demo:digits_cnn@digits_cnn.safetensors",
    "narrow digits CNN (8 epochs)": "py:synbench.demo:digits_cnn_narrow@digits_cnn_narrow.safetensors",
    "digits CNN at init (epoch 0)": "py:synbench.demo:digits_cnn@digits_cnn-e0.safetensors",
    "`random:test_vit` (timm, random init, 3x160x160)": "random:test_vit",
    "`noise:1x8x8` (control: ignores its input)": "noise:1x8x8",
    "`random:test_efficientnet` (3x160x160)": "random:test_efficientnet",
}
BOARD_HEADER = "| rank | band | model | p | r/n | score_dm t=0.6 |"


def _docs_board(page: Path) -> list[list[str]]:
    """The demo board a page shows: its Markdown table's cells, row by row."""
    lines = page.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(BOARD_HEADER)) + 2
    rows = itertools.takewhile(lambda line: line.startswith("|"), lines[start:])
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def _board_cells(model: dict[float, dict], accuracy: float) -> list[str]:
    """A model's row as the docs show it, from its summary records (one per threshold) and its digits accuracy."""
    at = model[0.7]
    dm = [model[t]["score_dm"] for t in (0.6, 0.7, 0.8, 0.9)]
    rank = "—" if at["rank"] is None else str(at["rank"])
    return [
        rank, at["rank_band"], str(at["feature_dim"]), f"{at['r_over_n']:.2f}", f"{dm[0]:.3f}",
        f"{dm[1]:.3f} ± {at['score_dm_high'] - dm[1]:.3f}", f"{dm[2]:.3f}", f"{dm[3]:.3f}",
        f"{sum(dm) / 4:.3f}", f"{model[0.6]['score']:.3f}", f"{accuracy:.3f}",
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.flow
def test_demo_prints_the_board_the_docs_show(demo_run):
    """README.md's demo board (and its copy in Reading a board) is `make demo`'s, digit for digit: the board the
    demo printed, as `leaderboard --summary --format json` gives it, and the digits accuracies the demo stored."""
    import pandas as pd

    assert "Ranked by score_dm@0.7" in demo_run.printed and "Agreement with a linear probe" in demo_run.printed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    command = [sys.executable, "-m", "synbench.cli.main", "leaderboard", "--summary", "--format", "json"]
    board = subprocess.run(command, cwd=demo_run.folder, env=env, capture_output=True, text=True, check=True).stdout
    records: dict[str, dict[float, dict]] = {}
    for record in json.loads(board):
        records.setdefault(re.sub(r" \[\w+\]$", "", record["display_name"]), {})[record["threshold"]] = record
    (models_table,) = (demo_run.folder / "data" / "agreement").glob("*-models.parquet")
    accuracy = pd.read_parquet(models_table).groupby("model_fingerprint")["accuracy"].first()
    assert sorted(records) == sorted(DEMO_MODELS.values())
    wrong = []
    for page in (ROOT / "README.md", ROOT / "docs" / "guide" / "reading-a-board.md"):
        shown = _docs_board(page)
        assert [row[2] for row in shown] == list(DEMO_MODELS), f"{page.name}: the models, in rank order"
        for row, (label, name) in zip(shown, DEMO_MODELS.items(), strict=True):
            model = records[name]
            cells = _board_cells(model, accuracy[model[0.7]["model_fingerprint"]])
            made = "| " + " | ".join([*cells[:2], label, *cells[2:]]) + " |"
            wrong += (
                [f"{page.name}:\n  shown   | {' | '.join(row)} |\n  printed {made}"]
                if row != made[2:-2].split(" | ")
                else []
            )
    assert not wrong, "the docs' demo board differs from the demo's:\n" + "\n".join(wrong)
