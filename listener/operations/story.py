"""One row's story, for the console's row page: the row's sync columns, its queue entry and
last error, change records not taken in yet, its item on Monday and the values both sides last
agreed on beside those the row would send now, its conflicts, its attempts (newest first),
its relations both ways (`related`); and the row a Monday item belongs to (`find_item`).

Text that came from outside (Monday's errors, the application's `sync_error`) is redacted here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from listener import attempts, catalog, db, fault, links, mapping, rows, sql
from listener.capture import install
from listener.inbound import conflicts as inbound
from listener.operations import conflicts, failed, items, keys, related
from listener.redact import redact
from listener.settings import Settings

RESOLVED_SHOWN = 10  # resolved conflicts shown in a row's story
ATTEMPTS_SHOWN = 50  # the latest attempts shown in a row's story
SYNC_COLUMNS = (
    mapping.SYNC_ENABLED,
    mapping.SYNC_DIRECTION,
    mapping.SYNC_STATUS,
    mapping.MONDAY_ID,
    mapping.SYNC_ERROR,
    mapping.LAST_SYNCED_AT,
)


@dataclass(frozen=True, slots=True)
class Agreed:
    """One value of the item: as both sides last agreed, and as the row would send it now (in
    the JSON form npd-sync sends; None: empty), and the column's type (None: not mapped)."""

    column: str
    agreed: Any
    now: Any
    type: str | None = None

    @property
    def differs(self) -> bool:
        return bool(self.agreed != self.now)


@dataclass(frozen=True, slots=True)
class Story:
    """Everything npd-sync knows about one row."""

    table: str
    key: str
    row: Mapping[str, str | None] | None  # the sync columns as text; None: no such row
    entry: Mapping[str, Any] | None  # the queue entry
    changes: int  # change records not taken into the queue yet
    oldest_change: dt.datetime | None
    item_id: str | None
    item_url: str | None
    agreed_at: dt.datetime | None
    values: tuple[Agreed, ...]
    error: fault.Fault | None  # the queue entry's last error
    notes: tuple[str, ...] = field(default=())
    open_conflicts: conflicts.ConflictRow | None = None  # None: it has none
    resolved: tuple[inbound.Record, ...] = ()  # its latest resolved conflicts
    resolved_total: int = 0
    history: tuple[attempts.Attempt, ...] = ()  # its latest attempts, newest first
    links_to: tuple[related.LinksTo, ...] = ()  # what its connect-boards columns link to
    linked_from: tuple[related.LinkedFrom, ...] | None = None  # None: not read this time
    items: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # item -> (table, key)
    types: Mapping[str, str] = field(default_factory=dict)  # column id -> its type

    @property
    def failed(self) -> bool:
        return self.entry is not None and self.entry["state"] == "failed"


async def find_item(conn: db.Conn, settings: Settings, item: str) -> tuple[str, str] | None:
    """The (table, key) of the row a Monday item belongs to, if npd-sync knows it."""
    await install.require_current(conn)
    found = await conn.fetchrow(sql.query("console_find_item"), item)
    if found is not None:
        return found["table_name"], found["row_key"]
    for table in settings.tables:
        info = await catalog.describe(conn, table.table)
        if info is None or catalog.problems(info, table):
            continue
        statement = sql.query("console_row_by_item").format(
            table=info.relation, key=sql.quote_ident(table.key_column)
        )
        key = await conn.fetchval(statement, item)
        if key is not None:
            return table.table, key
    return None


async def item_of(conn: db.Conn, table: mapping.TableMapping, key: str) -> tuple[str, str | None]:
    """The key as the table's and the row's item, as the story finds it (None: none known);
    raises keys.UsageError (NotAKey) for a key that cannot be one."""
    await install.require_current(conn)
    key = await keys.normalize_one(conn, table, key)
    info = await catalog.describe(conn, table.table)
    row = None if info is None else await _sync_columns(conn, table, info, key)
    entry = await conn.fetchrow(sql.query("console_entry"), table.table, key)
    link = await conn.fetchrow(sql.query("console_link"), table.table, key)
    return key, _item(link, entry, row)


async def story(
    conn: db.Conn,
    settings: Settings,
    item_template: str,
    *,
    table: str,
    key: str,
    linked_page: int | None = 1,
) -> Story:
    """One row's story; raises ConfigError for a table not configured, keys.NotAKey. The rows
    that point at it are read (`linked_page` of them) unless `linked_page` is None."""
    await install.require_current(conn)
    config = settings.table(table)
    secrets = settings.secrets()
    key, row, loaded, notes, names = await _read_row(conn, settings, config, key, secrets)
    entry = await conn.fetchrow(sql.query("console_entry"), config.table, key)
    changes = await conn.fetchrow(sql.query("console_changes"), config.table, key)
    assert changes is not None  # an aggregate: always one row
    link = await conn.fetchrow(sql.query("console_link"), config.table, key)
    agreed = links.parse(link["agreed"]) if link else None
    values = () if loaded is None and agreed is None else _values(config, key, loaded, agreed or {})
    item = _item(link, entry, row)
    open_row, resolved = await _conflicts(conn, settings, item_template, config.table, key)
    table_id = await conn.fetchval(sql.query("table_id"), config.table)
    history = () if table_id is None else await attempts.of_row(conn, table_id, key, ATTEMPTS_SHOWN)
    found_links = (
        () if loaded is None else related.links_to(settings, item_template, config, loaded, names)
    )
    linked_from = None
    if linked_page is not None:
        linked_from = await related.linked_from(
            conn, settings, item_template, config.table, key, linked_page
        )
    return Story(
        table=config.table,
        key=key,
        row=row,
        entry=_entry(entry),
        changes=changes["n"],
        oldest_change=changes["oldest"],
        item_id=item,
        item_url=items.url(item_template, config.board_id, item),
        agreed_at=link["agreed_at"] if link else None,
        values=values,
        error=failed.shown(entry["last_error"], secrets) if entry is not None else None,
        notes=tuple(notes),
        open_conflicts=open_row,
        resolved=tuple(resolved.records),
        resolved_total=resolved.total,
        history=tuple(_redacted(a, secrets) for a in history),
        links_to=found_links,
        linked_from=linked_from,
        items=await _items(conn, config, values, history),
        types={links.NAME: "name", **{c.id: c.type for c in config.columns}},
    )


async def _read_row(
    conn: db.Conn,
    settings: Settings,
    table: mapping.TableMapping,
    key: str,
    secrets: Sequence[str],
) -> tuple[str, dict[str, str | None] | None, rows.Row | None, list[str], dict[int, str]]:
    """The key as the table's, the row's sync columns (its sync_error redacted), the row as
    the listener loads it, notes on what kept them from being read, and the names of the
    tables its relations reference, by id."""
    info = await catalog.describe(conn, table.table)
    if info is None:
        return key, None, None, ["the table does not exist"], {}
    if problems := catalog.problems(info, table):
        return key, None, None, [str(p) for p in problems], {}
    [key] = await keys.normalize(conn, table, info, [key])
    row = await _sync_columns(conn, table, info, key)
    if row is None:
        return key, None, None, [], {}
    if row.get(mapping.SYNC_ERROR):
        row[mapping.SYNC_ERROR] = redact(row[mapping.SYNC_ERROR] or "", secrets)
    table_id = await conn.fetchval(sql.query("table_id"), table.table)
    referenced = await rows.referenced_by(conn, settings, table)
    if table_id is None:
        return key, row, None, [], {}
    if referenced is None:
        note = "a table its relations reference is not installed (run `npd-sync install`)"
        return key, row, None, [note], {}
    compiled = rows.compile_table(int(table_id), table, info, referenced)
    loaded = (await rows.load(conn, compiled, [key])).get(key)
    return key, row, loaded, [], related.names(referenced)


def _redacted(attempt: attempts.Attempt, secrets: Sequence[str]) -> attempts.Attempt:
    """An attempt as shown: its error without secrets."""
    if attempt.error is None:
        return attempt
    return dataclasses.replace(attempt, error=fault.redacted(attempt.error, secrets))


async def _items(
    conn: db.Conn,
    table: mapping.TableMapping,
    values: Sequence[Agreed],
    history: Sequence[attempts.Attempt],
) -> dict[str, tuple[str, str]]:
    """The rows of the items the story's connect-boards values link, by item id."""
    relations = {c.id for c in table.relations}
    wanted: set[str] = set()
    for v in values:
        if v.column in relations:
            wanted.update(mapping.relation_items(_json(v.agreed)))
            wanted.update(mapping.relation_items(_json(v.now)))
    for a in history:
        for column in relations & set(a.sent or {}):
            wanted.update(mapping.relation_items(_json((a.sent or {})[column])))
    if not wanted:
        return {}
    found = await conn.fetch(sql.query("console_items_rows"), sorted(wanted))
    return {r["item_id"]: (r["table_name"], r["row_key"]) for r in found}


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _entry(entry: asyncpg.Record | None) -> dict[str, Any] | None:
    """The queue entry as shown: its last error is the story's own, redacted."""
    return None if entry is None else {k: v for k, v in entry.items() if k != "last_error"}


def _item(
    link: asyncpg.Record | None,
    entry: asyncpg.Record | None,
    row: Mapping[str, str | None] | None,
) -> str | None:
    """The row's item: its link's, else the one learnt and not written back, else the row's."""
    known = (
        link["item_id"] if link else None,
        entry["monday_id"] if entry else None,
        row.get(mapping.MONDAY_ID) if row else None,
    )
    return next((item for item in known if item), None)


async def _conflicts(
    conn: db.Conn, settings: Settings, item_template: str, table: str, key: str
) -> tuple[conflicts.ConflictRow | None, inbound.Page]:
    """The row's open conflicts (None: it has none) and its latest resolved ones."""
    tables = settings.tables
    opened = await inbound.page(conn, tables, state="open", table=table, key=key, limit=1)
    resolved = await inbound.page(
        conn, tables, state="resolved", table=table, key=key, limit=RESOLVED_SHOWN
    )
    return next(iter(conflicts.by_row(settings, item_template, opened.records)), None), resolved


async def _sync_columns(
    conn: db.Conn, table: mapping.TableMapping, info: catalog.TableInfo, key: str
) -> dict[str, str | None] | None:
    present = [c for c in SYNC_COLUMNS if info.has(c)]
    columns = "".join(f", t.{sql.quote_ident(c)}::text AS {sql.quote_ident(c)}" for c in present)
    statement = sql.query("console_row").format(
        table=info.relation,
        key=sql.quote_ident(table.key_column),
        key_type=info.columns[table.key_column].type,
        columns=columns,
    )
    found = await conn.fetchrow(statement, key)
    return None if found is None else {c: found[c] for c in present}


def _values(
    table: mapping.TableMapping, key: str, row: rows.Row | None, agreed: Mapping[str, Any]
) -> tuple[Agreed, ...]:
    """The item's values as agreed and as the row gives them now (column ids in the mapping's
    order, the name first), each with its column's type."""
    now: dict[str, Any] = {}
    if row is not None:
        try:
            now = {
                links.NAME: mapping.item_name(row.values, table, key),
                **mapping.column_values(row.values, table, key),
            }
        except mapping.MappingError as exc:
            now = {links.NAME: f"(cannot be sent: {exc})"}
        now.update(_relations_now(table, row))
    types: dict[str, str] = {c.id: c.type for c in table.columns}
    types[links.NAME] = "name"
    order = [links.NAME, *(c.id for c in table.columns)]
    if table.npd_id_column:
        order.append(table.npd_id_column)
        types.setdefault(table.npd_id_column, "text")
    order += sorted(set(agreed) - set(order))
    return tuple(
        Agreed(column, _empty(agreed.get(column)), _empty(now.get(column)), types.get(column))
        for column in order
        if column in agreed or column in now
    )


def _relations_now(table: mapping.TableMapping, row: rows.Row) -> dict[str, Any]:
    """The links the row's connect-boards columns would carry now: the items of the rows its
    foreign keys name that have one."""
    found = {}
    for column in table.relations:
        linked = [ref.item_id for ref in row.refs.get(column.id, ()) if ref.item_id]
        found[column.id] = mapping.relation_value(linked)
    return found


def _empty(value: Any) -> Any:
    return None if value in (None, "", {}, []) else value
