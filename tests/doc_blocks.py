"""The fenced code blocks of README.md and docs/, each with the decision its `doc-test` comment records.

Every fenced block is preceded, on the line right above its opening fence, by an HTML comment
(invisible on GitHub and on the site) saying what the tests do with it:

    <!-- doc-test: run -->                          run it: shell/console/python; a toml/yaml spec is loaded
    <!-- doc-test: run; exit 2 -->                  ... and expect that exit status (default 0)
    <!-- doc-test: run; spec quick=FILE -->         ... with `--spec quick` / `spec="quick"` replaced by FILE
                                                    (a smaller spec, for cost; only where no output is quoted)
    <!-- doc-test: run; given NAME -->              ... after the harness made that input (doc_givens.GIVEN)
    <!-- doc-test: file NAME -->                    written as NAME into the folder of the next `run` block
    <!-- doc-test: prints -->                       the exact output of the `run` block above
    <!-- doc-test: synopsis -->                     usage lines: every command, option and choice exists
    <!-- doc-test: skip, WHY; covered by tests/x.py::test_y -->   not run here; that test covers it
    <!-- doc-test: not a command (WHY) -->          output, a diagram, file contents

A console block quotes output: each `$ command` line is followed by what it prints (stdout and stderr
together, as a terminal shows them); a `$` line followed by no output quotes none.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "mkdocs.yml").is_file())
_FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)\s*$")
_COMMENT = re.compile(r"<!--\s*doc-test:\s*(.*?)\s*-->\s*", re.S)
_TEST_ID = re.compile(r"tests/[\w/.-]+\.py::[\w\[\]:.-]+")
KINDS = ("run", "file", "prints", "synopsis", "skip", "not a command")


@dataclass(frozen=True)
class Decision:
    """What the tests do with one block (parsed from its `doc-test:` comment)."""

    kind: str  # one of KINDS
    exit_code: int = 0  # run: the exit status the docs state
    specs: tuple[tuple[str, str], ...] = ()  # run: (preset, spec file) replacements
    given: tuple[str, ...] = ()  # run: inputs the harness makes first
    file_name: str = ""  # file: the name it is written under
    covered_by: tuple[str, ...] = ()  # skip: the pytest ids that cover it


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and text, and the comment above it ('' if none)."""

    page: str  # path relative to the repository root
    line: int  # 1-based line of the opening fence
    language: str
    body: str
    comment: str

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def decision(self) -> Decision:
        return parse_decision(self.comment)


@dataclass(frozen=True)
class Example:
    """A `run` block with the file blocks above it and the `prints` block after it."""

    block: Block
    files: tuple[Block, ...] = ()
    prints: Block | None = None
    name: str = field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.block.name)


def doc_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def read_blocks(page: Path) -> list[Block]:
    """Every fenced block of a page, with the `doc-test` comment that ends on the line above it."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        close = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == opening.group(1))
        above = "\n".join(lines[:index])
        comment = (
            _COMMENT.fullmatch(above[above.rfind("<!--") :])
            if index and lines[index - 1].rstrip().endswith("-->")
            else None
        )
        body = "\n".join(lines[index + 1 : close])
        name = page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else str(page)
        blocks.append(Block(name, index + 1, opening.group(2), body, comment.group(1) if comment else ""))
        index = close + 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for page in doc_pages() for block in read_blocks(page)]


def parse_decision(text: str) -> Decision:
    """The decision a `doc-test:` comment records; ValueError naming what is wrong."""
    text = " ".join(text.split())
    kind = next((k for k in KINDS if text == k or text.startswith((k + " ", k + ";", k + ",", k + " ("))), "")
    if kind == "run":
        return _parse_run(text[3:])
    if kind == "file":
        name = text[4:].strip()
        if not re.fullmatch(r"[\w.-]+", name):
            raise ValueError(f"'file' needs a plain file name, got {name!r}")
        return Decision("file", file_name=name)
    if kind in ("prints", "synopsis") and text == kind:
        return Decision(kind)
    if kind == "skip":
        covered = tuple(_TEST_ID.findall(text.partition("covered by")[2]))
        if not covered:
            raise ValueError("a skip needs its reason and 'covered by tests/<file>.py::<test>'")
        return Decision("skip", covered_by=covered)
    if kind == "not a command" and re.fullmatch(r"not a command \(.+\)", text):
        return Decision(kind)
    raise ValueError(f"no decision: {text!r}; the first word is one of {', '.join(KINDS)} (see tests/doc_blocks.py)")


def _parse_run(options: str) -> Decision:
    exit_code, specs, given = 0, [], []
    for option in filter(None, (part.strip() for part in options.split(";"))):
        if match := re.fullmatch(r"exit (\d+)", option):
            exit_code = int(match.group(1))
        elif match := re.fullmatch(r"spec (\w+)=(\S+)", option):
            specs.append((match.group(1), match.group(2)))
        elif match := re.fullmatch(r"given (\S+)", option):
            given.append(match.group(1))
        else:
            raise ValueError(f"unknown run option {option!r}: use 'exit N', 'spec PRESET=FILE' or 'given NAME'")
    return Decision("run", exit_code=exit_code, specs=tuple(specs), given=tuple(given))


def examples(blocks: list[Block]) -> list[Example]:
    """The `run` blocks, each with the `file` blocks just above it on its page and its `prints` block."""
    found, files = [], []
    for block in blocks:
        kind = block.decision.kind
        if kind == "file":
            files.append(block)
        elif kind == "run":
            if files and files[0].page != block.page:
                raise ValueError(f"{files[0].name}: a file block is used by a run block on another page")
            found.append(Example(block, tuple(files)))
            files = []
        elif kind == "prints":
            if not found or found[-1].block.page != block.page or found[-1].prints:
                raise ValueError(f"{block.name}: a prints block must follow a run block on its page")
            found[-1] = Example(found[-1].block, found[-1].files, block)
    if files:
        raise ValueError(f"{files[0].name}: a file block with no run block after it")
    return found


def console_commands(body: str) -> list[tuple[str, list[str]]]:
    """A console block as (command, quoted output lines); commands are the `$ ` lines."""
    commands: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
        else:
            raise ValueError(f"a console block starts with a `$ ` command, not {line!r}")
    return commands


def normalise(text: str) -> list[str]:
    """Output lines with trailing spaces and trailing blank lines removed: the only normalisation."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def output_mismatch(where: str, quoted: list[str], printed: str) -> str:
    """'' when the printed output equals the quote; else a diff and the text to paste into the docs."""
    actual = normalise(printed)
    if normalise("\n".join(quoted)) == actual:
        return ""
    diff = difflib.unified_diff(normalise("\n".join(quoted)), actual, f"{where} (quoted)", "printed", lineterm="")
    return (
        f"the output quoted at {where} is not what the command prints:\n" + "\n".join(diff) + "\n\n"
        "Update the docs to what it prints (or rerun with SYNBENCH_UPDATE_DOCS=1 to rewrite the quote):\n"
        + "\n".join(actual)
    )


def rewrite_block(block: Block, new_body: str) -> None:
    """Replace a block's text in its page (found by its old text, so earlier rewrites may move it)."""
    page = ROOT / block.page
    text = page.read_text(encoding="utf-8")
    old = f"\n{block.body}\n"
    if text.count(old) != 1:
        raise ValueError(f"{block.name}: its text is not found exactly once in the page; update it by hand")
    page.write_text(text.replace(old, f"\n{new_body}\n"), encoding="utf-8")
