"""The project's SQL, loaded by name from the `.sql` files, and identifier quoting.

The files live in the repository's `sql/` folder and ship inside the wheel as
`listener/_sql/` (package data):

- `queries/*.sql`: named statements (`-- name: claim` then a description line), one namespace
  across the files; the per-table ones (`tables.sql`, `requeue.sql`) are templates whose
  `{placeholders}` are only ever filled with values from `quote_ident`, `quote_literal`,
  catalog type names or integers, never with data;
- `migrations/NNN_name.sql`: the numbered schema migrations `install` applies in order;
- `triggers/capture.sql`: the per-table capture template (trigger functions and triggers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# In a wheel the files sit inside the package; in a checkout (or an editable install), at the
# repository's top, next to the package.
SQL_DIR = next(
    (p for p in (_HERE / "_sql", _HERE.parent / "sql") if (p / "queries").is_dir()),
    _HERE.parent / "sql",
)
_NAME = re.compile(r"^-- name: (\w+)\s*$", re.M)
_MIGRATION = re.compile(r"^(\d{3})_(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def parse_queries(text: str) -> dict[str, str]:
    """Split a file of `-- name: x` sections into {name: sql}; names must be unique."""
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip()
    return queries


@cache
def queries() -> dict[str, str]:
    """Every named statement of `queries/*.sql`; a name used in two files is an error."""
    found: dict[str, str] = {}
    for path in sorted((SQL_DIR / "queries").glob("*.sql")):
        for name, text in parse_queries(path.read_text(encoding="utf-8")).items():
            if name in found:
                raise ValueError(f"query {name!r} is defined twice ({path.name})")
            found[name] = text
    return found


def query(name: str) -> str:
    """A named statement (or per-table template) from `sql/queries/`."""
    return queries()[name]


def capture_template() -> str:
    """The per-table capture DDL template."""
    return (SQL_DIR / "triggers" / "capture.sql").read_text(encoding="utf-8")


def migrations() -> list[Migration]:
    """The numbered schema migrations, in order."""
    found = []
    for path in sorted((SQL_DIR / "migrations").iterdir()):
        match = _MIGRATION.match(path.name)
        if match:
            found.append(
                Migration(int(match[1]), match[2], path.read_text(encoding="utf-8").strip())
            )
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 001, 002, ... without gaps: {versions}")
    return found


def quote_ident(name: str) -> str:
    """Quote one identifier for SQL text: always double-quoted, inner quotes doubled."""
    if not name or "\x00" in name:
        raise ValueError(f"invalid identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def quote_qualified(name: str) -> str:
    """Quote a possibly schema-qualified name written `schema.table`."""
    return ".".join(quote_ident(part) for part in name.split(".", 1))


def quote_literal(value: str) -> str:
    """Quote a string literal (standard_conforming_strings, as PostgreSQL 9.1+ defaults)."""
    if "\x00" in value:
        raise ValueError("NUL in literal")
    return "'" + value.replace("'", "''") + "'"


def dollar_tag(*texts: str) -> str:
    """A dollar-quote tag ($fn$, $fn1$, ...) that none of `texts` contains, so that a body
    quoted with it and holding them cannot end early."""
    tag, n = "$fn$", 0
    while any(tag in text for text in texts):
        n += 1
        tag = f"$fn{n}$"
    return tag
