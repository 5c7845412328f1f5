"""What an application table looks like, read from PostgreSQL's catalog, and what is wrong with it.

`describe` does the I/O; `problems` is a pure judgement of a `TableInfo` against the mapping,
shared by `install`, `check` and `listen`; each `Problem` says what kind it is, so that callers
decide on the kind and print the text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from listener import db, mapping, sql

KEY_TYPES = frozenset({"smallint", "integer", "bigint", "uuid", "text", "character varying"})
TEXT_TYPES = frozenset({"text", "character varying"})
MONDAY_ID_TYPES = TEXT_TYPES | {"bigint", "numeric"}
DIRECTIONS = ("BIDIRECTIONAL", "NPD_TO_MONDAY", "MONDAY_TO_NPD", "NONE")
STATUSES = ("PENDING", "SYNCED", "FAILED")
# The sync columns as `add_sync_columns` adds them (the types of CONTRACT.md, "Tables the
# application owns"; the defaults of devtools/sample_schema.sql): rows the application writes
# without naming them, and the rows already there, are synced both ways.
SYNC_COLUMNS = {
    mapping.SYNC_ENABLED: "boolean NOT NULL DEFAULT true",
    mapping.SYNC_DIRECTION: "text NOT NULL DEFAULT 'BIDIRECTIONAL'",
    mapping.MONDAY_ID: "text",
    mapping.SYNC_STATUS: "text NOT NULL DEFAULT 'PENDING'",
    mapping.SYNC_ERROR: "text",
    mapping.LAST_SYNCED_AT: "timestamptz",
}


@dataclass(frozen=True, slots=True)
class ForeignCode:
    """Code that a column's type would run in npd-sync's sessions, of a role without their
    rights (which would then act with them, and read the origin secret)."""

    role: str
    what: str  # "the domain app.key", "the function app.f(integer)", ...


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    name: str
    type: str  # format_type() of the column: SQL text, already quoted where needed
    base: str  # the base type's name (through domains), e.g. "integer", "uuid"
    labels: tuple[str, ...] | None  # enum labels, when an enum
    generated: bool = False  # GENERATED ALWAYS AS (...) STORED
    not_null: bool = False
    unique: bool = False  # a primary key or unique index on this column alone
    foreign: ForeignCode | None = None


ProblemKind = Literal[
    "missing_required",
    "missing_mapped",
    "wrong_type",
    "enum_lacks",
    "key_not_unique",
    "foreign_code",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing that keeps a table from syncing: `columns` are the ones concerned."""

    kind: ProblemKind
    columns: tuple[str, ...]
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str  # as configured
    relation: str  # the regclass text, quoted as PostgreSQL prints it
    columns: dict[str, ColumnInfo]

    def has(self, column: str) -> bool:
        """Whether the table has this column."""
        return column in self.columns


async def describe(conn: db.Conn, name: str) -> TableInfo | None:
    """The table's columns, or None when no such table is visible."""
    rows = await conn.fetch(sql.query("describe_table"), sql.quote_qualified(name))
    if not rows:
        return None
    foreign = {
        r["name"]: ForeignCode(role=r["role"], what=r["what"])
        for r in await conn.fetch(sql.query("foreign_code"), sql.quote_qualified(name))
    }
    columns = {
        r["name"]: ColumnInfo(
            name=r["name"],
            type=r["type"],
            base=r["base"],
            labels=tuple(r["labels"]) if r["labels"] is not None else None,
            generated=r["generated"],
            not_null=r["not_null"],
            unique=r["unique"],
            foreign=foreign.get(r["name"]),
        )
        for r in rows
        if r["name"] is not None
    }
    return TableInfo(name=name, relation=rows[0]["relation"], columns=columns)


def problems(info: TableInfo, table: mapping.TableMapping) -> list[Problem]:
    """Everything that keeps this table from syncing."""
    found: list[Problem] = []
    required = (table.key_column, *mapping.REQUIRED_COLUMNS)
    missing = tuple(c for c in required if not info.has(c))
    if missing:
        found.append(
            Problem("missing_required", missing, f"missing required columns: {', '.join(missing)}")
        )
    absent = tuple(c for c in table.source_columns if not info.has(c))
    if absent:
        found.append(
            Problem("missing_mapped", absent, f"missing mapped columns: {', '.join(absent)}")
        )
    found += _key_problems(info, table.key_column)
    found += _state_problems(info)
    found += _foreign_code(info, table)
    found += _wrong_types(info, _BOOKKEEPING)
    return found


# The sync columns npd-sync writes, what their base type must be, and what to say when not.
_BOOKKEEPING: tuple[tuple[str, Callable[[str], bool], str], ...] = (
    (mapping.SYNC_ENABLED, lambda base: base == "boolean", "boolean"),
    (mapping.MONDAY_ID, lambda base: base in MONDAY_ID_TYPES, "text or bigint"),
    (mapping.SYNC_ERROR, lambda base: base in TEXT_TYPES, "text"),
    (mapping.LAST_SYNCED_AT, lambda base: base.startswith("timestamp"), "timestamptz"),
)


def _wrong_types(
    info: TableInfo, wanted: Iterable[tuple[str, Callable[[str], bool], str]]
) -> list[Problem]:
    """The columns present whose type is not one the check accepts."""
    return [
        Problem("wrong_type", (name,), f"{name} is {info.columns[name].type}; expected {text}")
        for name, ok, text in wanted
        if info.has(name) and not ok(info.columns[name].base)
    ]


def _key_problems(info: TableInfo, column: str) -> list[Problem]:
    """The key must be an integer, uuid or text column, and a primary key or unique and NOT
    NULL: else a NULL key fails the application's INSERT, and rows sharing a key share an
    item."""
    key = info.columns.get(column)
    if key is None:
        return []
    found = _wrong_types(
        info, [(column, lambda base: base in KEY_TYPES, "an integer, uuid or text")]
    )
    if not (key.unique and key.not_null):
        text = f"key column {key.name} must be the primary key, or unique and NOT NULL"
        found.append(Problem("key_not_unique", (key.name,), text))
    return found


def _state_problems(info: TableInfo) -> list[Problem]:
    """sync_direction and sync_status are text, or enums that hold npd-sync's values."""
    found: list[Problem] = []
    for column, values in ((mapping.SYNC_DIRECTION, DIRECTIONS), (mapping.SYNC_STATUS, STATUSES)):
        info_col = info.columns.get(column)
        if info_col is None:
            continue
        if info_col.labels is None:
            found += _wrong_types(
                info, [(column, lambda base: base in TEXT_TYPES, "text or an enum")]
            )
            continue
        lacking = [v for v in values if v not in info_col.labels]
        if column == mapping.SYNC_STATUS and lacking:
            text = f"{column} enum lacks {', '.join(lacking)}"
            found.append(Problem("enum_lacks", (column,), text))
    return found


# Key types whose text forms compare equal when their values do: a foreign key of one of a
# family can reference a key of the same family.
KEY_FAMILIES = ({"smallint", "integer", "bigint"}, {"uuid"}, TEXT_TYPES)


def relation_problems(
    info: TableInfo, table: mapping.TableMapping, keys: Mapping[str, ColumnInfo | None]
) -> list[Problem]:
    """What keeps the table's connect-boards columns from linking: each foreign key must be of
    its referenced table's key type (or an array of it). `keys`: the referenced tables' key
    columns, by table name (None: the table is not there)."""
    found: list[Problem] = []
    for column in table.relations:
        source = info.columns.get(column.sources[0])
        key = keys.get(column.references or "")
        if source is None:
            continue  # missing_mapped says so
        if key is None:
            text = f"{source.name}: the table it references, {column.references}, is not there"
            found.append(Problem("wrong_type", (source.name,), text))
        elif not _same_family(source.base.removesuffix("[]"), key.base):
            text = (
                f"{source.name} is {source.type}; expected {key.type} or {key.type}[] "
                f"(the key of {column.references}, which it references)"
            )
            found.append(Problem("wrong_type", (source.name,), text))
    return found


def key_columns(
    tables: Iterable[mapping.TableMapping], infos: Mapping[str, TableInfo | None]
) -> dict[str, ColumnInfo | None]:
    """Each table's key column as the catalog describes it (None: no such table or column),
    by table name: what `relation_problems` checks foreign keys against."""
    found: dict[str, ColumnInfo | None] = {}
    for table in tables:
        info = infos.get(table.table)
        found[table.table] = None if info is None else info.columns.get(table.key_column)
    return found


def _same_family(one: str, other: str) -> bool:
    return any(one in family and other in family for family in KEY_FAMILIES)


def _foreign_code(info: TableInfo, table: mapping.TableMapping) -> list[Problem]:
    """The columns npd-sync casts values to or writes whose type runs another role's code."""
    found = []
    used = (table.key_column, *mapping.REQUIRED_COLUMNS, *mapping.BOOKKEEPING_COLUMNS)
    for name in dict.fromkeys((*used, *table.source_columns)):
        column = info.columns.get(name)
        if column is None or column.foreign is None:
            continue
        label = "key column" if name == table.key_column else "column"
        text = (
            f"{label} {name} is {column.type}, which would run code of role "
            f"{column.foreign.role} in npd-sync's sessions ({column.foreign.what})"
        )
        found.append(Problem("foreign_code", (name,), text))
    return found


def missing_sync_columns(info: TableInfo) -> list[str]:
    """The sync columns (required and optional) the table lacks."""
    return [name for name in SYNC_COLUMNS if not info.has(name)]


def add_sync_columns(info: TableInfo) -> str | None:
    """The ALTER TABLE that adds the sync columns the table lacks; None when it has them all."""
    missing = missing_sync_columns(info)
    if not missing:
        return None
    adds = ",\n    ".join(f"ADD COLUMN {sql.quote_ident(c)} {SYNC_COLUMNS[c]}" for c in missing)
    return f"ALTER TABLE {info.relation}\n    {adds};"
