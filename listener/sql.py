"""The project's SQL, loaded by name from the `.sql` files, and identifier quoting.

`sql/queries.sql` holds named queries (`-- name: claim` then a description line), and
`sql/commands.sql` those of the operator commands (status, retry, check), in the same format;
`sql/triggers/NNN_*.sql` are the numbered schema migrations; `sql/triggers/attach.sql` and
`sql/tables.sql` are templates whose `{placeholders}` are only ever filled with values from
`quote_ident`, `quote_literal` or integers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# In a wheel the files sit inside the package; in a checkout, next to it.
SQL_DIR = next(
    (p for p in (_HERE / "_sql", _HERE.parent / "sql") if (p / "queries.sql").is_file()),
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
def _queries(filename: str) -> dict[str, str]:
    return parse_queries((SQL_DIR / filename).read_text(encoding="utf-8"))


def query(name: str) -> str:
    """A named query from sql/queries.sql."""
    return _queries("queries.sql")[name]


def command(name: str) -> str:
    """A named query or template of the operator commands, from sql/commands.sql."""
    return _queries("commands.sql")[name]


def template(name: str) -> str:
    """A named per-table template from sql/tables.sql."""
    return _queries("tables.sql")[name]


def attach_template() -> str:
    """The per-table capture DDL template."""
    return (SQL_DIR / "triggers" / "attach.sql").read_text(encoding="utf-8")


def migrations() -> list[Migration]:
    """The numbered schema migrations, in order."""
    found = []
    for path in sorted((SQL_DIR / "triggers").iterdir()):
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
