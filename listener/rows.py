"""The application's rows: loading many in one query, writing back many in one statement.

Statements are compiled once per table from the templates in `sql/queries/tables.sql`, with the
table's identifiers quoted and its column types read from the catalog, so that integer or uuid
keys, enum or text statuses and text or bigint `monday_id` all work.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from listener import catalog, db, links, mapping, settings, sql
from listener.capture.install import NotInstalled


@dataclass(frozen=True, slots=True)
class Ref:
    """A row a foreign key references, for a connect-boards column: its item, or why it will
    never have one (None: it will, once it is pushed)."""

    table_id: int
    key: str
    item_id: str | None
    never: str | None = None  # "missing" or "not pushed"


@dataclass(frozen=True, slots=True)
class Referenced:
    """A table a connect-boards column references, as the load statement needs it."""

    id: int
    relation: str  # quoted, as the catalog prints it
    key: str  # its key column, quoted
    key_type: str


@dataclass(frozen=True, slots=True)
class Row:
    """An application row as loaded: flags, current item id and status, mapped values as text,
    and its link: the item npd-sync linked it to and the values both sides agreed on then."""

    key: str
    enabled: bool | None
    direction: str | None
    monday_id: str | None
    values: Mapping[str, str | None]
    status: str | None = None
    linked_item: str | None = None
    agreed: Mapping[str, Any] | None = None
    unlinked: bool = False  # the linked item went on Monday (on_monday_delete = unlink)
    conflicted: frozenset[str] = frozenset()  # columns with an open conflict
    refs: Mapping[str, tuple[Ref, ...]] = field(default_factory=dict)  # per relation column


@dataclass(frozen=True, slots=True)
class Table:
    """A synced table, ready to use: its id, mapping and compiled statements."""

    id: int
    mapping: mapping.TableMapping
    load_sql: str
    write_sql: str
    backlog_keys_sql: str
    backlog_sql: str
    # Inbound: the columns the board's edits are written into, and the statements.
    writable: tuple[str, ...] = ()
    pull_write_sql: str = ""
    pull_delete_sql: str = ""
    pull_insert_sql: str = ""
    conflict_status: str = "CONFLICT"  # FAILED when sync_status is an enum without CONFLICT
    references: Mapping[str, int] = field(default_factory=dict)  # relation column -> table id
    many: frozenset[str] = frozenset()  # relation columns whose foreign key is an array

    @property
    def name(self) -> str:
        return self.mapping.table


@dataclass(frozen=True, slots=True)
class WriteBack:
    key: str
    monday_id: str | None
    status: str
    error: str | None


def compile_table(
    table_id: int,
    table: mapping.TableMapping,
    info: catalog.TableInfo,
    referenced: Mapping[str, Referenced] | None = None,
) -> Table:
    """Build the load and write-back statements of one table; `referenced`: the tables its
    connect-boards columns reference, by name."""
    names = {
        "table": info.relation,
        "key": sql.quote_ident(table.key_column),
        "key_type": info.columns[table.key_column].type,
    }
    columns = "".join(
        f", t.{sql.quote_ident(name)}::text AS c{i}" for i, name in enumerate(table.source_columns)
    )
    refs = {c.references or "": (referenced or {})[c.references or ""] for c in table.relations}
    relations = "".join(
        f", {_relation_refs(column, info, refs[column.references or ''])} AS r{i}"
        for i, column in enumerate(table.relations)
    )
    status = sql.quote_ident(mapping.SYNC_STATUS)
    writable = writable_columns(table, info)
    status_labels = info.columns[mapping.SYNC_STATUS].labels
    return Table(
        id=table_id,
        mapping=table,
        load_sql=sql.query("load_rows").format(
            columns=columns, relations=relations, status=status, **names
        ),
        write_sql=_write_back_sql(info, names),
        backlog_keys_sql=sql.query("backlog_keys").format(**names),
        backlog_sql=sql.query("backlog").format(table=info.relation),
        writable=writable,
        pull_write_sql=_pull_write_sql(info, writable, names),
        pull_delete_sql=sql.query("pull_delete").format(**names),
        pull_insert_sql=_pull_insert_sql(info, writable, names),
        conflict_status="FAILED"
        if status_labels is not None and "CONFLICT" not in status_labels
        else "CONFLICT",
        references={c.id: refs[c.references or ""].id for c in table.relations},
        many=frozenset(
            c.id for c in table.relations if info.columns[c.sources[0]].base.endswith("[]")
        ),
    )


def _write_back_sql(info: catalog.TableInfo, names: Mapping[str, str]) -> str:
    """The write-back: monday_id and sync_status, and sync_error, last_synced_at when there."""
    extra = ""
    if info.has(mapping.SYNC_ERROR):
        extra += ", sync_error = v.error"
    if info.has(mapping.LAST_SYNCED_AT):
        extra += (
            ", last_synced_at = CASE WHEN v.status = 'SYNCED' THEN now() ELSE t.last_synced_at END"
        )
    return sql.query("write_back").format(
        monday_type=info.columns[mapping.MONDAY_ID].type,
        status_type=info.columns[mapping.SYNC_STATUS].type,
        extra=extra,
        **names,
    )


def _pull_write_sql(
    info: catalog.TableInfo, writable: Sequence[str], names: Mapping[str, str]
) -> str:
    """The board's values into a row: each writable column set when its flag says so."""
    if not writable:
        return ""
    assignments = ", ".join(
        f"{sql.quote_ident(c)} = CASE WHEN ${2 * i + 2}::bool "
        f"THEN ${2 * i + 3}::text::{info.columns[c].type} ELSE t.{sql.quote_ident(c)} END"
        for i, c in enumerate(writable)
    )
    return sql.query("pull_write").format(assignments=assignments, **names)


def _pull_insert_sql(
    info: catalog.TableInfo, writable: Sequence[str], names: Mapping[str, str]
) -> str:
    """A row for an item created on the board, from the writable columns."""
    if not writable:
        return ""
    return sql.query("pull_insert").format(
        columns=", ".join(sql.quote_ident(c) for c in writable),
        values=", ".join(f"${i + 2}::text::{info.columns[c].type}" for i, c in enumerate(writable)),
        status=sql.quote_ident(mapping.SYNC_STATUS),
        direction_type=info.columns[mapping.SYNC_DIRECTION].type,
        monday_type=info.columns[mapping.MONDAY_ID].type,
        status_type=info.columns[mapping.SYNC_STATUS].type,
        table=names["table"],
        key=names["key"],
    )


def _relation_refs(column: mapping.Column, info: catalog.TableInfo, ref: Referenced) -> str:
    """The load statement's expression for one connect-boards column (see relation_refs)."""
    source = info.columns[column.sources[0]]
    fk = f"t.{sql.quote_ident(source.name)}"
    keys = f"{fk}::text[]" if source.base.endswith("[]") else f"ARRAY[{fk}::text]"
    return sql.query("relation_refs").format(
        keys=keys, ref_table=ref.relation, ref_id=int(ref.id), ref_key=ref.key,
        ref_key_type=ref.key_type,
    )  # fmt: skip


def writable_columns(table: mapping.TableMapping, info: catalog.TableInfo) -> tuple[str, ...]:
    """The row columns the board's edits flow into: each column fed from one row column, and
    the name's fields where the name flows back; never generated columns."""
    names = [c.sources[0] for c in table.inbound_columns]
    names += list(table.name_split or ())
    return tuple(n for n in dict.fromkeys(names) if info.has(n) and not info.columns[n].generated)


def referable(
    tables: Sequence[mapping.TableMapping],
    attached: Mapping[str, int],
    infos: Mapping[str, catalog.TableInfo | None],
) -> dict[str, Referenced]:
    """The tables a connect-boards column may reference, by name: those with capture
    installed (`attached`: their ids, by name) and a key column."""
    return {
        t.table: Referenced(
            attached[t.table], info.relation, sql.quote_ident(t.key_column),
            info.columns[t.key_column].type,
        )
        for t in tables
        if t.table in attached and (info := infos[t.table]) is not None and info.has(t.key_column)
    }  # fmt: skip


async def referenced_by(
    conn: db.Conn, config: settings.Settings, table: mapping.TableMapping
) -> dict[str, Referenced] | None:
    """The tables this table's connect-boards columns reference, as `compile_table` takes
    them; None when one of them cannot be referenced (not installed, no key)."""
    wanted = {c.references for c in table.relations if c.references}
    if not wanted:
        return {}
    attached = {r["name"]: r["id"] for r in await conn.fetch(sql.query("attached_tables"))}
    chosen = [t for t in config.tables if t.table in wanted]
    infos = {t.table: await catalog.describe(conn, t.table) for t in chosen}
    found = referable(chosen, attached, infos)
    return found if set(found) == wanted else None


async def load_tables(conn: db.Conn, config: settings.Settings) -> list[Table]:
    """The configured tables that have capture installed, compiled; raises NotInstalled."""
    if not await conn.fetchval("SELECT to_regclass('npd_sync.tables') IS NOT NULL"):
        raise NotInstalled("npd-sync is not installed in this database: run `npd-sync install`")
    attached = {r["name"]: r for r in await conn.fetch(sql.query("attached_tables"))}
    infos = {t.table: await catalog.describe(conn, t.table) for t in config.tables}
    referenced = referable(config.tables, {n: r["id"] for n, r in attached.items()}, infos)
    keys = catalog.key_columns(config.tables, infos)
    tables = []
    problems = []
    for table in config.tables:
        row = attached.get(table.table)
        info = infos[table.table]
        if row is None or info is None:
            if table.board_id:
                problems.append(f"{table.table}: capture not installed (run `npd-sync install`)")
            continue
        found = [*catalog.problems(info, table), *catalog.relation_problems(info, table, keys)]
        issues = [str(problem) for problem in found]
        if row["key_column"] != table.key_column:
            issues.append(f"installed with key {row['key_column']!r}: run `npd-sync install`")
        missing = [c.references for c in table.relations if c.references not in referenced]
        issues += [f"references {name}: capture not installed there" for name in missing]
        if issues:
            problems.extend(f"{table.table}: {issue}" for issue in issues)
            continue
        tables.append(compile_table(row["id"], table, info, referenced))
    if problems:
        raise NotInstalled("\n".join(problems))
    return tables


async def load(conn: db.Conn, table: Table, keys: Sequence[str]) -> dict[str, Row]:
    """The rows that still exist among `keys`."""
    sources = table.mapping.source_columns
    records = await conn.fetch(table.load_sql, list(keys), table.id)
    return {
        r["key"]: Row(
            key=r["key"],
            enabled=r["enabled"],
            direction=r["direction"],
            monday_id=r["monday_id"],
            values={name: r[f"c{i}"] for i, name in enumerate(sources)},
            status=r["status"],
            linked_item=r["linked_item"],
            agreed=links.parse(r["agreed"]),
            unlinked=r["unlinked"],
            conflicted=frozenset(r["conflicted"]),
            refs={
                c.id: _refs(table.references[c.id], r[f"r{i}"])
                for i, c in enumerate(table.mapping.relations)
            },
        )
        for r in records
    }


def _refs(table_id: int, raw: str) -> tuple[Ref, ...]:
    return tuple(Ref(table_id, str(key), item, never) for key, item, never in json.loads(raw))


async def write_back(conn: db.Conn, table: Table, writes: Sequence[WriteBack]) -> set[str]:
    """Write sync results to rows; returns the keys written (not those locked or gone)."""
    if not writes:
        return set()
    rows = await conn.fetch(
        table.write_sql,
        [w.key for w in writes],
        [w.monday_id for w in writes],
        [w.status for w in writes],
        # PostgreSQL text cannot hold NUL, and Monday's messages are not ours to trust.
        [None if w.error is None else w.error.replace("\x00", "") for w in writes],
    )
    return {r[0] for r in rows}


async def pull_write(
    conn: db.Conn, table: Table, key: str, values: Mapping[str, str | None]
) -> None:
    """Write the board's values into one row (in the caller's transaction, row locked)."""
    if not table.pull_write_sql or not values:
        return
    args: list[Any] = [key]
    for column in table.writable:
        args += [column in values, values.get(column)]
    await conn.execute(table.pull_write_sql, *args)


async def pull_delete(conn: db.Conn, table: Table, key: str) -> bool:
    """Delete one row whose item was deleted on the board; False when the application holds
    it locked (it is not waited for)."""
    return bool(await conn.fetchval(table.pull_delete_sql, key))


async def pull_insert(
    conn: db.Conn, table: Table, item_id: str, values: Mapping[str, str | None]
) -> str:
    """Insert a row for an item created on the board; returns its key."""
    args = [item_id, *(values.get(c) for c in table.writable)]
    return str(await conn.fetchval(table.pull_insert_sql, *args))
