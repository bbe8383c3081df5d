"""Tables that fit the terminal, with footers; the page's tables and its agreement section (issue 31)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from synbench.cli.main import main

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    """The previous release's tiny root: 4 models, their real-data features and agreement tables stored."""
    root = tmp_path_factory.mktemp("tables") / "root"
    shutil.copytree(DATA / "root-before-layout", root)
    return root


def _printed(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_leaderboard_compare_and_agree_fit_100_columns_and_say_how_to_read_them(small_root, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    root = ("--root", str(small_root))
    board = _printed(capsys, "leaderboard", *root)
    compare = _printed(capsys, "compare", "identity:1x8x8", "noise:1x8x8", *root)
    agree = _printed(capsys, "agree", *root, "--device", "cpu")
    for code, text in (board, compare, agree):
        assert code == 0, text
        assert max(len(line) for line in text.splitlines()) <= 100, text
    assert re.search(r"│ +1 │ 1-3 +│ identity:1x8x8 +│ +64 │ 1\.0595† ±0\.146 │ +0\.25 │", board[1])
    assert "Ranked by score_dm@0.7: each model" in board[1] and "fingerprint" not in board[1]
    assert "A - B [95%]" in compare[1] and "A higher" in compare[1] and "A - B: A's score minus B's" in compare[1]
    assert "Kendall tau" in agree[1] and "how well each rank key orders the powered models" in agree[1]


def test_wide_and_columns_choose_what_is_shown(small_root, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    root = ("--root", str(small_root))
    code, wide = _printed(capsys, "leaderboard", *root, "--wide")
    assert code == 0 and "score_dm t=0.9" in wide and "798576ef" in wide and max(map(len, wide.splitlines())) > 100
    code, chosen = _printed(capsys, "leaderboard", *root, "--columns", "model,t=0.9")
    header = chosen.splitlines()[1]
    assert code == 0 and "model" in header and "score_dm t=0.9" in header and "rank" not in header
    code, error = _printed(capsys, "leaderboard", *root, "--columns", "rank,bogus")
    assert code == 2 and error.count("\n") == 1 and "unknown column 'bogus'" in error and "r/n" in error
    code, compare = _printed(capsys, "compare", "identity:1x8x8", "noise:1x8x8", *root, "--columns", "t,verdict")
    assert code == 0 and re.search(r"│ +t │ verdict", compare) and "A - B [95%]" not in compare
    code, data = _printed(capsys, "leaderboard", *root, "--format", "json")  # JSON keeps every column
    assert code == 0 and {"score_dm_low", "model_fingerprint", "best_eps_dm"} <= set(json.loads(data)[0])


def test_agree_with_fewer_than_three_powered_models_says_so_in_one_line(small_root, capsys):
    code, text = _printed(capsys, "agree", "--root", str(small_root), "--models", "identity:1x8x8", "noise:1x8x8")
    assert code == 2 and text.count("\n") == 1
    assert "agree needs at least 3 powered models" in text and "2 of the 2 models" in text


def test_the_page_scrolls_its_tables_and_carries_the_stored_agreement(small_root, tmp_path, capsys):
    page = tmp_path / "board.html"
    assert main(["leaderboard", "--root", str(small_root), "--format", "html", "--output", str(page)]) == 0
    html = page.read_text()
    assert "<h2>Agreement with linear probing on digits</h2>" in html and html.count("data:image/png") >= 5
    tables = [m.start() for m in re.finditer("<table", html)]
    assert len(tables) >= 4 and all(html[:at].endswith('<div class="wide">') for at in tables)
    assert 'class="dataframe sortable summary"' in html and "1.0337†\u00a0±0.155 (eps\u00a00)" in html
