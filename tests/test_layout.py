"""The code's shape: installed names, one-way imports, pure math modules, property tests."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from synbench.core.errors import EncoderError, SpecError
from synbench.core.spec import BenchmarkSpec
from synbench.models.references import parse_reference

PACKAGE = Path(__file__).parents[1] / "synbench"
# Each part and the parts it may import (besides itself); a top-level module counts as its own part.
ALLOWED = {
    "core": set(),
    "method": {"core"},
    "models": {"core"},
    "store": {"core"},
    "stages": {"core", "method", "models", "store"},
    "board": {"core", "method", "models", "store", "stages"},
    "agree": {"core", "method", "models", "store", "stages", "board"},
    "audit": {"core", "method", "models", "store", "stages", "board", "agree"},
    "demo": {"core", "models"},
    "api": {"core", "method", "models", "store", "stages", "board"},
    "cli": {"core", "method", "models", "store", "stages", "board", "agree", "audit", "demo", "api"},
}
FORBIDDEN_IN_MATH = {"zarr", "pandas", "pyarrow", "pathlib", "fsspec", "upath", "prefect"}


def _imports(module: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included), as absolute names."""
    package = ".".join(module.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from .x import y, from ..x import y, from . import x
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                if node.module:
                    names.add(f"{base}.{node.module}")
                else:
                    names |= {f"{base}.{alias.name}" for alias in node.names}
            else:
                names.add(node.module or "")
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def _modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts): path
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py"
    }


def _part(module: str) -> str:
    return module.split(".")[1]


def _internal_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        graph[name] = {imported for imported in _imports(path) if imported in modules and imported != name}
    return graph


def test_top_level_has_at_most_twelve_entries_and_every_part_says_what_it_holds():
    entries = [p for p in PACKAGE.iterdir() if p.name != "__pycache__"]
    assert len(entries) <= 12, sorted(p.name for p in entries)
    parts = [p for p in entries if p.is_dir()]
    assert {p.name for p in parts} | {"demo", "api"} == set(ALLOWED)
    for part in parts:
        init = part / "__init__.py"
        tree = ast.parse(init.read_text())
        docstring = ast.get_docstring(tree)
        assert docstring and "Imports:" in docstring, part.name
        assert not any(isinstance(node, ast.Import | ast.ImportFrom) for node in tree.body), part.name


def test_parts_import_only_the_parts_below_them():
    for name, imported in _internal_graph().items():
        for target in imported:
            if _part(target) != _part(name):
                assert _part(target) in ALLOWED[_part(name)], f"{name} imports {target}"


def test_no_import_cycle_among_synbench_modules():
    graph = _internal_graph()

    def visit(node: str, trail: tuple[str, ...]) -> None:
        for nxt in graph[node]:
            assert nxt not in trail, f"import cycle: {' -> '.join((*trail, nxt))}"
            visit(nxt, (*trail, nxt))

    for start in graph:
        visit(start, (start,))


def test_math_is_pure_and_no_module_imports_prefect():
    for name, path in _modules().items():
        imported = {imported.split(".")[0] for imported in _imports(path)}
        if _part(name) == "method":
            assert not imported & FORBIDDEN_IN_MATH, (name, imported)
            assert {_part(m) for m in _imports(path) if m.startswith("synbench.")} <= {"core", "method"}, name
        assert "prefect" not in imported, name


def test_every_module_stays_short():
    for path in PACKAGE.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 300, path


def test_flows_install_under_our_own_name(tmp_path):
    code = (
        "import importlib.util, synbench_flows.benchmark\n"
        "print(importlib.util.find_spec('flows'))\n"
        "from synbench.cli.main import main\n"
        "raise SystemExit(main(['leaderboard', '--root', 'nowhere']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.stdout.strip() == "None"  # no top-level `flows` package leaks into site-packages
    assert result.returncode == 2 and "is not a SynBench root" in result.stderr


_floats = st.floats(min_value=0.05, max_value=4.9, allow_nan=False).map(lambda v: round(v, 4))


@settings(max_examples=60, deadline=None)
@given(
    scales=st.lists(_floats, min_size=1, max_size=6).map(lambda s: [*s, 3.0]),
    n_train=st.integers(8, 4096),
    eps=st.lists(st.sampled_from([0.0, 0.1, 0.2, 0.5, 0.9]), min_size=1, max_size=4),
    seed=st.integers(0, 2**40),
    floor=st.sampled_from(["relative", "absolute"]),
)
def test_spec_round_trips_and_hashes_are_stable(scales, n_train, eps, seed, floor):
    spec = BenchmarkSpec(scales=tuple(scales), n_train=n_train, eps=tuple(eps), seed=seed, eigen_floor=floor)
    again = BenchmarkSpec.from_dict(spec.to_dict())
    assert again == spec and again.spec_hash == spec.spec_hash and again.data_hash == spec.data_hash
    shuffled = BenchmarkSpec.from_dict({**spec.to_dict(), "eps": list(reversed(eps)), "name": "other"})
    assert shuffled.spec_hash == spec.spec_hash
    changed = BenchmarkSpec.from_dict({**spec.to_dict(), "seed": seed + 1})
    assert changed.data_hash != spec.data_hash and changed.spec_hash != spec.spec_hash


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_parse_reference_accepts_or_refuses_in_one_line(text):
    try:
        ref = parse_reference(text)
    except EncoderError as exc:
        assert "\n" not in str(exc) and str(exc).endswith(".")
        return
    assert ref.text == text and ref.scheme in ("identity", "noise", "timm", "random", "py") and ref.target


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["n_train", "eps", "scales", "seed", "block_size", "name"]), st.integers()))
def test_bad_spec_values_are_spec_errors(values):
    try:
        BenchmarkSpec.from_dict(values)
    except SpecError as exc:
        assert "\n" not in str(exc)


def test_dir_lists_the_public_names_that_load_on_first_use():
    import synbench

    assert {"evaluate", "read_board", "load_spec", "audit_root", "__version__"} <= set(dir(synbench))


def test_the_code_layout_page_names_every_module():
    listed = {
        line.split()[0]
        for line in (PACKAGE.parent / "docs" / "development" / "layout.md").read_text().splitlines()
        if line.startswith("  ") and line.strip()
    }
    for path in PACKAGE.rglob("*.py"):
        assert path.name in listed, f"docs/development/layout.md does not describe {path}"
