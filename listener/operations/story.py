"""One row's story, for the console's row page: the row's sync columns, its queue entry and
last error, change records not taken in yet, its item on Monday and the values both sides last
agreed on beside those the row would send now, its conflicts; and the row a Monday item
belongs to (`find_item`).

Text that came from outside (Monday's errors, the application's `sync_error`) is redacted here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from listener import catalog, db, fault, links, mapping, rows, sql
from listener.capture import install
from listener.inbound import conflicts as inbound
from listener.operations import conflicts, failed, items, keys
from listener.redact import redact
from listener.settings import Settings

RESOLVED_SHOWN = 10  # resolved conflicts shown in a row's story
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
    """One value of the item: as both sides last agreed, and as the row would send it now."""

    column: str
    agreed: str | None
    now: str | None

    @property
    def differs(self) -> bool:
        return self.agreed != self.now


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


async def story(
    conn: db.Conn, settings: Settings, item_template: str, *, table: str, key: str
) -> Story:
    """One row's story; raises ConfigError for a table not configured, keys.NotAKey."""
    await install.require_current(conn)
    config = settings.table(table)
    secrets = settings.secrets()
    key, row, loaded, notes = await _read_row(conn, config, key, secrets)
    entry = await conn.fetchrow(sql.query("console_entry"), config.table, key)
    changes = await conn.fetchrow(sql.query("console_changes"), config.table, key)
    assert changes is not None  # an aggregate: always one row
    link = await conn.fetchrow(sql.query("console_link"), config.table, key)
    agreed = links.parse(link["agreed"]) if link else None
    values = () if loaded is None and agreed is None else _values(config, key, loaded, agreed or {})
    item = _item(link, entry, row)
    open_row, resolved = await _conflicts(conn, settings, item_template, config.table, key)
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
    )


async def _read_row(
    conn: db.Conn, table: mapping.TableMapping, key: str, secrets: Sequence[str]
) -> tuple[str, dict[str, str | None] | None, rows.Row | None, list[str]]:
    """The key as the table's, the row's sync columns (its sync_error redacted), the row as
    the listener loads it, and notes on what kept them from being read."""
    info = await catalog.describe(conn, table.table)
    if info is None:
        return key, None, None, ["the table does not exist"]
    if problems := catalog.problems(info, table):
        return key, None, None, [str(p) for p in problems]
    [key] = await keys.normalize(conn, table, info, [key])
    row = await _sync_columns(conn, table, info, key)
    if row is None:
        return key, None, None, []
    if row.get(mapping.SYNC_ERROR):
        row[mapping.SYNC_ERROR] = redact(row[mapping.SYNC_ERROR] or "", secrets)
    table_id = await conn.fetchval(sql.query("table_id"), table.table)
    if table_id is None:
        return key, row, None, []
    compiled = rows.compile_table(int(table_id), table, info)
    return key, row, (await rows.load(conn, compiled, [key])).get(key), []


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
    order, the name first)."""
    now: dict[str, Any] = {}
    if row is not None:
        try:
            now = {
                links.NAME: mapping.item_name(row.values, table, key),
                **mapping.column_values(row.values, table, key),
            }
        except mapping.MappingError as exc:
            now = {links.NAME: f"(cannot be sent: {exc})"}
    order = [links.NAME, *(c.id for c in table.columns)]
    if table.npd_id_column:
        order.append(table.npd_id_column)
    order += sorted(set(agreed) - set(order))
    return tuple(
        Agreed(column, _shown(agreed.get(column)), _shown(now.get(column)))
        for column in order
        if column in agreed or column in now
    )


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
