"""Tests of the codebase itself: the pure core does no I/O, typing and lint hold."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# The pure core: data in, data out.  It may not import the I/O edges.
CORE = ["keys", "models", "text", "topics", "render", "parse", "extract", "errors", "secrets", "health"]
CORE += [f"config/{p.stem}" for p in sorted((ROOT / "bot" / "config").glob("*.py"))]
CORE += ["configtext"]  # where a config problem is: text in, line numbers out
CORE += [f"kinds/{p.stem}" for p in sorted((ROOT / "bot" / "kinds").glob("*.py"))]
IO_MODULES = {"httpx", "sqlite3", "socket", "asyncio", "apscheduler", "subprocess", "http", "urllib.request"}
IO_EDGES = {"bot.state", "bot.fetch", "bot.deliver", "bot.service", "bot.cli", "bot.poll", "bot.digest", "bot.demo"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", CORE)
def test_core_modules_import_no_io(module: str) -> None:
    imported = _imports(ROOT / "bot" / f"{module}.py")
    bad = {n for n in imported if n.split(".")[0] in IO_MODULES or n in IO_MODULES or n in IO_EDGES}
    assert not bad, f"bot/{module}.py imports I/O modules {sorted(bad)}"


def test_every_module_says_what_it_owns() -> None:
    for path in sorted((ROOT / "bot").rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc, f"{path.relative_to(ROOT)} has no module docstring"


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed next to this Python")
    return found


def test_mypy_strict_is_clean() -> None:
    r = subprocess.run([_tool("mypy"), "--strict", "bot"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_is_clean() -> None:
    r = subprocess.run([_tool("ruff"), "check", "bot", "tests"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _import_graph() -> dict[str, set[str]]:
    """Every module under bot/ and the bot modules it imports anywhere in its
    file (module level, in functions, under ``if TYPE_CHECKING:``).

    ``from bot.x import y`` imports ``bot.x.y`` when that is a module, else
    ``bot.x``; a package's ``__init__`` is the package's name."""
    paths = {_module_name(p): p for p in sorted((ROOT / "bot").rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in paths)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                for alias in node.names:
                    if f"{module}.{alias.name}" in paths:
                        edges.add(f"{module}.{alias.name}")
                    elif module in paths:
                        edges.add(module)
        edges.discard(name)
        graph[name] = edges
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (its modules in order, the first repeated at the end), or None."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path: list[str] = [start]
        on_path = {start}
        stack = [iter(sorted(graph[start]))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt in done:
                continue
            path.append(nxt)
            on_path.add(nxt)
            stack.append(iter(sorted(graph[nxt])))
    return None


def test_the_import_graph_has_no_cycle() -> None:
    """No two modules of bot/ import each other, directly or in a loop (even
    lazily or for typing only): each record lives where its owner is, and a
    module's dependencies go one way."""
    graph = _import_graph()
    assert "bot.config" in graph and "bot.kinds.base" in graph
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
