"""The docs site builds cleanly, every page is reachable, and the README stays a short front door."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

# The repository root: the folder holding mkdocs.yml (wherever in tests/ this file lives).
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "mkdocs.yml").is_file())
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_LINES = 250

# [text](target) and [text](target "title"); images too. Targets inside backticks are code, not links.
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _nav_pages(node) -> list[str]:
    """Every page path named anywhere in mkdocs.yml's nav (a list of str, or of {title: page|list})."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return []


def _readme_links() -> list[str]:
    text = re.sub(r"```.*?```", "", README.read_text(encoding="utf-8"), flags=re.S)  # code blocks hold no links
    text = re.sub(r"`[^`\n]*`", "", text)  # nor do code spans
    return _LINK.findall(text)


def test_site_builds_strict_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "index.html").is_file()
    cli = (tmp_path / "site" / "reference" / "cli.html").read_text(encoding="utf-8")
    assert "synbench-cli-help" not in cli, "the CLI reference's marker was not replaced"
    for command in ("run", "batch", "leaderboard", "compare", "audit", "agree", "demo", "board remove", "board rename"):
        assert f"usage: synbench {command}" in cli, command
    for link in _readme_links():  # the README's anchors into the site exist there
        path, _, anchor = link.partition("#")
        if anchor and path.startswith("docs/") and path.endswith(".md"):
            page = tmp_path / "site" / (path.removeprefix("docs/").removesuffix(".md") + ".html")
            assert f'id="{anchor}"' in page.read_text(encoding="utf-8"), f"README links to a missing anchor: {link}"


def test_every_docs_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["docs_dir"] == "docs"
    in_nav = set(_nav_pages(config["nav"]))
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    assert pages - in_nav == set(), "pages missing from mkdocs.yml's nav"
    assert in_nav - pages == set(), "nav entries without a page"


def test_readme_is_a_short_front_door():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    assert "make demo" in text and "make test" in text
    links = _readme_links()
    assert links, "the README should point into docs/"
    for link in links:
        assert not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", link) and not link.startswith("//"), (
            f"README links outside the repository: {link}"
        )
        path = link.split("#", 1)[0]
        if not path:  # an anchor on the README itself
            continue
        target = (ROOT / path).resolve()
        assert target.is_relative_to(ROOT), f"README link leaves the repository: {link}"
        assert target.exists(), f"README links to a missing file: {link}"
