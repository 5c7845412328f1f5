"""No module of the package binds a name twice at its top level: the second binding wins
silently (as `ITEMS_QUERY` and `ITEMS_PAGE` once did in `listener/monday/api.py`, which made the
lookup of items' boards ask for every column)."""

from __future__ import annotations

import ast
import collections
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "listener"


def bound_twice(source: str) -> list[str]:
    """The names a module's top-level statements bind more than once (assignments, functions,
    classes; `@overload` stubs and `TYPE_CHECKING` imports aside)."""
    counts: collections.Counter[str] = collections.Counter()
    for node in ast.parse(source).body:
        match node:
            case ast.Assign(targets=targets):
                for target in targets:
                    counts.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            case ast.AnnAssign(target=ast.Name(id=name), value=value) if value is not None:
                counts[name] += 1
            case ast.FunctionDef() | ast.AsyncFunctionDef() | ast.ClassDef():
                decorators = {ast.unparse(d) for d in getattr(node, "decorator_list", [])}
                if not decorators & {"overload", "typing.overload"}:
                    counts[node.name] += 1
    return sorted(name for name, n in counts.items() if n > 1)


def test_the_check_sees_a_name_bound_twice() -> None:
    source = "A = 1\nB: int = 2\ndef f() -> None: ...\nA = 3\nclass f: ...\n"
    assert bound_twice(source) == ["A", "f"]
    assert bound_twice("x, y = 1, 2\nz = x\n") == []


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_module_binds_a_name_twice(path: Path) -> None:
    assert bound_twice(path.read_text(encoding="utf-8")) == []
