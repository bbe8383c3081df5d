"""The doc-test harness itself (tests/doc_blocks.py): comments become decisions, quotes are compared exactly."""

from __future__ import annotations

import pytest
from doc_blocks import console_commands, examples, output_mismatch, parse_decision, read_blocks, rewrite_block

PAGE = """# A page

<!-- doc-test: file mymodel.py -->
```python
def build(): ...
```

<!-- doc-test: run; exit 2; spec quick=tests/data/tiny.toml; given signals.npz -->
```console
$ synbench run tim:x
synbench: error: unknown encoder scheme
$ synbench leaderboard
```

<!-- doc-test: prints -->
```
what it prints
```

<!-- doc-test: skip, needs a server;
     covered by tests/a.py::test_b and tests/c.py::test_d[x] -->
```bash
prefect server start
```

Some text.

```bash
synbench demo
```
"""


def test_each_block_carries_the_decision_written_right_above_it(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    blocks = read_blocks(page)
    assert [(b.line, b.language) for b in blocks] == [
        (4, "python"),
        (9, "console"),
        (16, ""),
        (22, "bash"),
        (28, "bash"),
    ]
    file, run, prints, skip, bare = blocks
    assert file.decision.file_name == "mymodel.py" and bare.comment == ""
    assert run.decision.exit_code == 2 and run.decision.given == ("signals.npz",)
    assert run.decision.specs == (("quick", "tests/data/tiny.toml"),)
    assert skip.decision.covered_by == ("tests/a.py::test_b", "tests/c.py::test_d[x]")
    (example,) = examples(blocks[:4])
    assert example.block == run and example.files == (file,) and example.prints == prints
    assert console_commands(run.body) == [
        ("synbench run tim:x", ["synbench: error: unknown encoder scheme"]),
        ("synbench leaderboard", []),  # quotes no output
    ]


@pytest.mark.parametrize(
    "comment, message",
    [
        ("runs", "no decision"),
        ("run; exit two", "unknown run option 'exit two'"),
        ("run; spec quick", "unknown run option"),
        ("skip, needs a GPU", "covered by tests/"),
        ("file runs/mymodel.py", "plain file name"),
        ("not a command", "no decision"),
        ("prints the board", "no decision"),
    ],
)
def test_a_comment_that_decides_nothing_names_the_problem(comment, message):
    with pytest.raises(ValueError, match=message):
        parse_decision(comment)


def test_a_file_or_prints_block_must_sit_next_to_its_run_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    file, run, prints, *_ = read_blocks(page)
    with pytest.raises(ValueError, match="a prints block must follow a run block"):
        examples([prints, run])
    with pytest.raises(ValueError, match="a file block with no run block after it"):
        examples([run, file])


def test_quotes_are_compared_exactly_but_for_trailing_spaces_and_a_wrong_one_is_shown_as_a_diff():
    assert output_mismatch("p.md:3", ["a  ", "b", ""], "a\nb\n\n") == ""
    assert output_mismatch("p.md:3", ["a", "b"], " a\nb") != ""  # leading space counts
    problem = output_mismatch("p.md:3", ["a", "b"], "a\nc\n")
    assert "--- p.md:3 (quoted)\n+++ printed" in problem and "\n-b\n+c" in problem and problem.endswith("\na\nc")


def test_update_mode_rewrites_the_block_in_its_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    run = read_blocks(page)[1]
    rewrite_block(run, "$ synbench run tim:x\nsynbench: error: something else")
    assert read_blocks(page)[1].body == "$ synbench run tim:x\nsynbench: error: something else"
    assert page.read_text().count("what it prints") == 1
