"""MkDocs hook: the CLI reference page is the CLI's own ``--help`` output, made at build time.

On ``reference/cli.md`` the marker ``<!-- synbench-cli-help -->`` is replaced by the help of ``synbench``
and of every subcommand (recursively, so ``board remove`` and ``board rename`` too), each under its own
heading in a fenced block, formatted at a fixed width of 100 columns so that the page does not depend
on the terminal that builds it. The parser is the one the command uses (``synbench.cli.main.build_parser``),
so the reference and the code cannot drift apart.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from mkdocs.exceptions import PluginError

PAGE = "reference/cli.md"
MARKER = "<!-- synbench-cli-help -->"
COLUMNS = "100"


def _walk(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser, then each of its subcommands' parsers (depth first, in the order they were added)."""
    yield parser
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if id(sub) not in seen:  # aliases map several names onto one parser
                    seen.add(id(sub))
                    yield from _walk(sub)


def _build_parser() -> argparse.ArgumentParser:
    from synbench.cli.main import build_parser

    return build_parser()


def render_cli_reference() -> str:
    """Markdown: one section per command, its ``--help`` in a fenced block, at 100 columns."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = COLUMNS  # argparse sizes its help from shutil.get_terminal_size(), which reads COLUMNS
    try:
        sections = []
        for parser in _walk(_build_parser()):
            text = parser.format_help().rstrip()
            sections.append(f"## {parser.prog}\n\n```text\n{text}\n```\n")
        return "\n".join(sections)
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def on_config(config, **kwargs):
    root = str(Path(config.config_file_path).resolve().parent)  # import synbench from this checkout
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"{PAGE} lacks the marker {MARKER} that the CLI reference replaces")
    return markdown.replace(MARKER, render_cli_reference())
