"""Every command the README and the docs show is run, its output as printed.

Each fenced block of README.md and docs/ carries a `doc-test` comment (the syntax: tests/doc_blocks.py).
A fast test checks that every block has one and that every test a skip names exists; the `run` blocks
are run here (slow, `make test-slow`): shell and console blocks with bash in a fresh folder, `synbench`
being this checkout's CLI (a shim on PATH, so the venv's console script is not needed) in a 100-column
environment free of the tests' own SYNBENCH_* and PREFECT_* settings; python blocks with this Python;
toml/yaml specs with `synbench.load_spec` (fast). Quoted output must equal what is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from doc_blocks import (
    ROOT,
    Example,
    all_blocks,
    console_commands,
    examples,
    output_mismatch,
    rewrite_block,
)
from doc_givens import GIVEN

from synbench.core.spec import BenchmarkSpec, load_spec

SHELLS = ("bash", "sh", "console")
SPECS = ("toml", "yaml")
UPDATE = os.environ.get("SYNBENCH_UPDATE_DOCS") == "1"  # rewrite quoted output to what is printed
TIMEOUT = 900


def _environment(folder: Path) -> dict[str, str]:
    """The reader's shell: `synbench` on PATH (this checkout's code), none of the tests' own settings."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    shim = folder.parent / f"{folder.name}-bin" / "synbench"
    shim.parent.mkdir()
    shim.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path[1:1] = {[str(Path(p).resolve()) for p in paths]!r}\n"
        "from synbench.cli.main import main\nsys.exit(main())\n"
    )
    shim.chmod(0o755)
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("SYNBENCH_", "PREFECT_"))}
    return kept | {"PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": os.pathsep.join(paths)}


def _with_specs(example: Example, text: str) -> str:
    """The block's text with each `spec PRESET=FILE` of its decision put in place of the preset."""
    for preset, file in example.block.decision.specs:
        pattern = rf"--spec {preset}\b" if example.block.language in SHELLS else rf"spec=\"{preset}\""
        text, count = re.subn(pattern, f"--spec {ROOT / file}" if "--" in pattern else f'spec="{ROOT / file}"', text)
        assert count, f"{example.name}: its doc-test comment replaces spec {preset!r}, which the block does not use"
    return text


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=cwd, env=env | {"COLUMNS": "100"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=TIMEOUT,
    )  # fmt: skip


def _check_quotes(block, quotes: list[tuple[list[str], str]], new_body: str) -> None:
    """Each (quoted lines, printed output) must agree; else fail with the diffs, or rewrite the block (UPDATE)."""
    problems = [problem for quoted, printed in quotes if (problem := output_mismatch(block.name, quoted, printed))]
    if problems and UPDATE:
        rewrite_block(block, new_body)
    elif problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def _run_shell(example: Example, text: str, cwd: Path, env: dict[str, str]) -> str:
    """A bash block as one `set -e` script; a console block command by command (each must exit with the status
    the decision states), comparing each quoted output. Returns the (last) output."""
    block, expected = example.block, example.block.decision.exit_code
    if block.language != "console":
        result = _run(["bash", "-e", "-c", text], cwd, env)
        assert result.returncode == expected, f"{block.name} exited {result.returncode}:\n{result.stdout}"
        return result.stdout
    printed = []
    for command, quoted in console_commands(text):
        result = _run(["bash", "-c", command], cwd, env)
        assert result.returncode == expected, f"{block.name}: `{command}` exited {result.returncode}:\n{result.stdout}"
        printed.append((command, quoted, result.stdout))
    new_body = "\n".join(f"$ {c}\n{out.rstrip()}" if quoted else f"$ {c}" for c, quoted, out in printed)
    _check_quotes(block, [(quoted, out) for _, quoted, out in printed if quoted], new_body)
    return printed[-1][2]


def _check_spec(example: Example, text: str, folder: Path) -> None:
    """A spec file as shown: it loads, and holds the values it states over its base preset's."""
    path = folder / f"spec.{example.block.language}"
    path.write_text(text)
    stated = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    spec, base = load_spec(str(path)), load_spec(stated.get("base", "quick"))
    for field in dataclasses.fields(BenchmarkSpec):
        if field.name == "name":
            continue
        value = stated.get(field.name, getattr(base, field.name))
        value = tuple(value) if isinstance(value, list) else value
        assert getattr(spec, field.name) == value, f"{example.name}: {field.name} = {getattr(spec, field.name)!r}"


def _parameters() -> list:
    try:
        found = examples(all_blocks())
    except ValueError:  # test_every_block_is_accounted_for names the problem
        return []
    marks = {"python": [pytest.mark.slow], **{shell: [pytest.mark.slow, pytest.mark.flow] for shell in SHELLS}}
    return [pytest.param(e, id=e.name, marks=marks.get(e.block.language, [])) for e in found]


@pytest.mark.parametrize("example", _parameters())
def test_doc_example(example: Example, tmp_path: Path, request) -> None:
    folder = tmp_path / "here"
    folder.mkdir()
    (folder / "examples").symlink_to(ROOT / "examples")  # the docs run from the repository's root
    text = _with_specs(example, example.block.body)
    if example.block.language in SPECS:
        _check_spec(example, text, folder)
        return
    for file in example.files:
        (folder / file.decision.file_name).write_text(file.body + "\n")
    cwd = folder
    for name in example.block.decision.given:
        prepared = GIVEN[name](folder, request)
        cwd = prepared.cwd or cwd
        for placeholder, value in prepared.replace.items():
            assert placeholder in text, f"{example.name}: given {name} fills {placeholder}, which the block lacks"
            text = text.replace(placeholder, value)
    env = _environment(folder)
    if example.block.language in SHELLS:
        printed = _run_shell(example, text, cwd, env)
    elif example.block.language == "python":
        (folder / "doc_example.py").write_text(text + "\n")
        result = _run([sys.executable, str(folder / "doc_example.py")], cwd, env)
        assert result.returncode == example.block.decision.exit_code, f"{example.name}:\n{result.stdout}"
        printed = result.stdout
    else:
        pytest.fail(f"{example.name}: no way to run a {example.block.language or 'plain'} block")
    if example.prints:
        _check_quotes(example.prints, [(example.prints.body.splitlines(), printed)], printed.rstrip())


def _collected(test_ids: set[str]) -> set[str]:
    """The ids among these that pytest collects (a parametrized test's id covers its cases)."""
    files = sorted({test_id.split("::")[0] for test_id in test_ids})
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-o", "addopts=", "-p", "no:cacheprovider"]
    listing = subprocess.run([*command, *files], cwd=ROOT, capture_output=True, text=True, timeout=300).stdout
    nodes = {line.strip() for line in listing.splitlines() if "::" in line}
    nodes |= {node.split("[")[0] for node in nodes}
    return test_ids & nodes


def _decision_problems(block) -> list[str]:
    """What is wrong with one block's decision ([] when it can be carried out)."""
    if not block.comment:
        return [
            f"{block.name}: no `<!-- doc-test: ... -->` comment on the line above it (choices: tests/doc_blocks.py)"
        ]
    try:
        decision = block.decision
        quotes = block.language == "console" and any(quoted for _, quoted in console_commands(block.body))
    except ValueError as exc:
        return [f"{block.name}: {exc}"]
    if decision.kind != "run":
        return []
    problems = [f"{block.name}: no input named {name!r} in GIVEN" for name in decision.given if name not in GIVEN]
    problems += [f"{block.name}: no spec file {file}" for _, file in decision.specs if not (ROOT / file).is_file()]
    if block.language not in (*SHELLS, "python", *SPECS):
        problems.append(f"{block.name}: a {block.language or 'plain'} block cannot be run")
    if decision.specs and quotes:
        problems.append(f"{block.name}: a smaller spec may stand in only where the block quotes no output")
    return problems


def test_every_block_is_accounted_for() -> None:
    """Every fenced block says what the tests do with it; a skip names tests that exist. A new block fails here."""
    by_block = {block: _decision_problems(block) for block in all_blocks()}
    problems = [problem for found in by_block.values() for problem in found]
    decided = [block for block, found in by_block.items() if not found]
    try:
        runs = examples(decided)
    except ValueError as exc:
        problems.append(str(exc))
    else:
        problems += [
            f"{e.name}: a smaller spec may not stand in for a quoted output"
            for e in runs
            if e.prints and e.block.decision.specs
        ]
    named = {test_id for block in decided for test_id in block.decision.covered_by}
    problems += [
        f"a doc-test skip names {test_id}, which pytest does not collect"
        for test_id in sorted(named - _collected(named))
    ]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def _synopsis_problems(block) -> list[str]:
    """Each `synbench COMMAND` line (and its indented continuations): the command, its options, their choices."""
    from synbench.cli.main import build_parser

    problems, parsers = [], []
    for line in block.body.splitlines():
        words = line.split(" #")[0].split()
        if words[:1] == ["synbench"]:
            parsers, names = [build_parser()], words[1:]
            while names and parsers and _subcommands(parsers[0]):  # `board remove|rename`: a command's commands
                commands = _subcommands(parsers[0])
                missing = [name for name in names[0].split("|") if name not in commands]
                problems += [f"{block.name}: `{parsers[0].prog}` has no command {name!r}" for name in missing]
                parsers, names = [commands[name] for name in names[0].split("|") if name in commands], names[1:]
        for parser in parsers:
            options = {s: a for a in parser._actions for s in a.option_strings}
            for option, choices in re.findall(r"(--[\w-]+)(?:[ =]([\w.-]+(?:\|[\w.-]+)+))?", line):
                action = options.get(option)
                if action is None:
                    problems.append(f"{block.name}: `{parser.prog}` has no option {option}")
                elif choices and action.choices:
                    problems += [
                        f"{block.name}: {parser.prog} {option} takes no {choice!r}"
                        for choice in choices.split("|")
                        if choice not in action.choices
                    ]
    return problems


def test_synopses_name_only_commands_options_and_choices_that_exist() -> None:
    synopses = [block for block in all_blocks() if block.comment == "synopsis"]
    assert synopses, "the README and docs/guide/commands.md show usage synopses"
    problems = [problem for block in synopses for problem in _synopsis_problems(block)]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
