"""Who may import whom in `listener/`: the CLI's commands render and exit over the operations,
the console renders over the same operations, and neither reaches into the other."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "listener"


def imported(path: Path) -> set[str]:
    """The modules a file imports (`from a import b` counts as a and a.b: b may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (PACKAGE / folder).rglob("*.py"))


def test_only_the_cli_imports_the_commands() -> None:
    allowed = {PACKAGE / "cli.py", *modules("commands")}
    reaching = {
        str(path.relative_to(ROOT)): found
        for path in PACKAGE.rglob("*.py")
        if path not in allowed
        for found in [sorted(m for m in imported(path) if m.startswith("listener.commands"))]
        if found
    }
    assert reaching == {}


def test_the_operations_know_neither_front_end() -> None:
    for path in modules("operations"):
        front = {m for m in imported(path) if m.startswith(("listener.console", "listener.cli"))}
        assert not front, f"{path.relative_to(ROOT)} imports {sorted(front)}"
