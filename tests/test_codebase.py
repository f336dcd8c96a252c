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
CORE = ["keys", "models", "text", "topics", "render", "parse", "extract", "config", "errors", "secrets", "health"]
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
