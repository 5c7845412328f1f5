"""What the console's pages show, read from the database: the overview (the same report as
`npd-sync status`, plus the last hour's history), the failed rows, the conflicts (through
`inbound.conflicts`, as `npd-sync conflicts` lists them), and one row's story.

Text that came from outside (Monday's errors, the application's `sync_error`) passes through
`redact` here; the templates redact every value once more on output.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg

from listener import catalog, db, fault, links, mapping, sql
from listener.capture import install
from listener.commands import status
from listener.console import charts
from listener.inbound import conflicts
from listener.outbound import rows
from listener.redact import redact
from listener.settings import Settings

PER_PAGE = 50
CONFLICT_ROWS = 20  # rows with open conflicts on a page
STORY_RESOLVED = 10  # resolved conflicts shown in a row's story
SYNC_COLUMNS = (
    mapping.SYNC_ENABLED,
    mapping.SYNC_DIRECTION,
    mapping.SYNC_STATUS,
    mapping.MONDAY_ID,
    mapping.SYNC_ERROR,
    mapping.LAST_SYNCED_AT,
)
Show = Literal["open", "resolved"]


class NotAKey(ValueError):
    """The text given is not a key of the table (the message says so)."""


@dataclass(frozen=True, slots=True)
class Overview:
    report: status.Report
    history: charts.History


@dataclass(frozen=True, slots=True)
class FailedRow:
    table: str
    key: str
    attempts: int
    error: fault.Fault | None
    at: dt.datetime | None
    changed_at: dt.datetime
    item_url: str | None


@dataclass(frozen=True, slots=True)
class Failed:
    rows: tuple[FailedRow, ...]
    total: int
    table: str | None
    page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PER_PAGE))

    @property
    def tables(self) -> list[str]:
        """The tables with failed rows on this page."""
        return list(dict.fromkeys(r.table for r in self.rows))


@dataclass(frozen=True, slots=True)
class ConflictRow:
    """A row's open conflicts: per field, the value both sides last agreed on and each side's."""

    table: str
    key: str
    item_url: str | None
    fields: tuple[conflicts.Record, ...]

    @property
    def detected_at(self) -> dt.datetime:
        return min(f.detected_at for f in self.fields)


@dataclass(frozen=True, slots=True)
class Conflicts:
    """A page of the conflicts page: rows with open conflicts, or resolved conflicts."""

    show: Show
    rows: tuple[ConflictRow, ...]  # open
    resolved: tuple[conflicts.Record, ...]  # resolved, latest first
    total: int  # rows with open conflicts, or resolved conflicts
    table: str | None
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


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
    open_conflicts: ConflictRow | None = None  # None: it has none
    resolved: tuple[conflicts.Record, ...] = ()  # its latest resolved conflicts
    resolved_total: int = 0

    @property
    def failed(self) -> bool:
        return self.entry is not None and self.entry["state"] == "failed"


def _fault(stored: str | None, secrets: list[str]) -> fault.Fault | None:
    found = fault.from_json(stored)
    return None if found is None else fault.redacted(found, secrets)


def item_url(template: str, board: str | None, item: str | None) -> str | None:
    """The link to an item on Monday, when both ids are known and look like Monday's."""
    if not board or not item or not board.isdigit() or not item.isdigit():
        return None
    return template.format(board=board, item=item)


async def overview(conn: db.Conn, settings: Settings) -> Overview:
    """The status report and the last hour's history; raises install.NotInstalled."""
    version = await install.require_current(conn)
    report = await status.collect(conn, settings, version)
    recent = await conn.fetch(sql.query("recent_minutes"), charts.MINUTES)
    this_minute = await conn.fetchval("SELECT date_trunc('minute', now())")
    return Overview(report, charts.history(map(dict, recent), this_minute))


async def conflict_page(
    conn: db.Conn,
    settings: Settings,
    item_template: str,
    *,
    show: Show,
    table: str | None,
    page: int,
) -> Conflicts:
    """A page of rows with open conflicts (oldest first), or of resolved conflicts (latest
    first)."""
    await install.require_current(conn)
    per_page = CONFLICT_ROWS if show == "open" else PER_PAGE
    found = await conflicts.page(
        conn,
        settings.tables,
        state=show,
        table=table,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    rows = _by_row(settings, item_template, found.records) if show == "open" else ()
    resolved = tuple(found.records) if show == "resolved" else ()
    return Conflicts(show, rows, resolved, found.total, table, page, per_page)


def _by_row(
    settings: Settings, item_template: str, records: list[conflicts.Record]
) -> tuple[ConflictRow, ...]:
    grouped: dict[tuple[str, str], list[conflicts.Record]] = {}
    for r in records:
        grouped.setdefault((r.table, r.key), []).append(r)
    boards = {t.table: t.board_id for t in settings.tables}
    found = []
    for (table, key), fields in grouped.items():
        item = next((f.item_id for f in fields if f.item_id), None)
        link = item_url(item_template, boards.get(table), item)
        found.append(ConflictRow(table, key, link, tuple(fields)))
    return tuple(found)


async def failed(
    conn: db.Conn, settings: Settings, item_template: str, *, table: str | None, page: int
) -> Failed:
    """A page of failed rows, newest error first."""
    await install.require_current(conn)
    records = await conn.fetch(sql.query("console_failed"), table, PER_PAGE, (page - 1) * PER_PAGE)
    secrets = settings.secrets()
    boards = {t.table: t.board_id for t in settings.tables}
    found = tuple(
        FailedRow(
            table=r["table_name"],
            key=r["row_key"],
            attempts=r["attempts"],
            error=_fault(r["last_error"], secrets),
            at=r["last_error_at"],
            changed_at=r["changed_at"],
            item_url=item_url(item_template, boards.get(r["table_name"]), r["item_id"]),
        )
        for r in records
    )
    return Failed(found, records[0]["total"] if records else 0, table, page)


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
    """One row's story; raises ConfigError for a table not configured, NotAKey."""
    await install.require_current(conn)
    config = settings.table(table)
    secrets = settings.secrets()
    info = await catalog.describe(conn, config.table)
    notes: list[str] = []
    row: dict[str, str | None] | None = None
    values: tuple[Agreed, ...] = ()
    loaded: rows.Row | None = None
    if info is None:
        notes.append("the table does not exist")
    elif problems := catalog.problems(info, config):
        notes.extend(str(p) for p in problems)
    else:
        key = await _normalize(conn, config, info, key)
        row = await _sync_columns(conn, config, info, key)
        table_id = await conn.fetchval(sql.query("table_id"), config.table)
        if table_id is not None and row is not None:
            compiled = rows.compile_table(int(table_id), config, info)
            loaded = (await rows.load(conn, compiled, [key])).get(key)
    if row is not None and row.get(mapping.SYNC_ERROR):
        row[mapping.SYNC_ERROR] = redact(row[mapping.SYNC_ERROR] or "", secrets)
    entry = await conn.fetchrow(sql.query("console_entry"), config.table, key)
    changes = await conn.fetchrow(sql.query("console_changes"), config.table, key)
    link = await conn.fetchrow(sql.query("console_link"), config.table, key)
    agreed = links.parse(link["agreed"]) if link else None
    if loaded is not None or agreed is not None:
        values = _values(config, key, loaded, agreed or {})
    item = link["item_id"] if link else None
    item = item or (entry["monday_id"] if entry else None)
    item = item or (row.get(mapping.MONDAY_ID) if row else None)
    error = _fault(entry["last_error"], secrets) if entry is not None else None
    tables, name = settings.tables, config.table
    opened = await conflicts.page(conn, tables, state="open", table=name, key=key, limit=1)
    resolved = await conflicts.page(
        conn, tables, state="resolved", table=name, key=key, limit=STORY_RESOLVED
    )
    open_row = next(iter(_by_row(settings, item_template, opened.records)), None)
    return Story(
        table=config.table,
        key=key,
        row=row,
        entry=dict(entry) if entry is not None else None,
        changes=changes["n"] if changes else 0,
        oldest_change=changes["oldest"] if changes else None,
        item_id=item,
        item_url=item_url(item_template, config.board_id, item),
        agreed_at=link["agreed_at"] if link else None,
        values=values,
        error=error,
        notes=tuple(notes),
        open_conflicts=open_row,
        resolved=tuple(resolved.records),
        resolved_total=resolved.total,
    )


async def _normalize(
    conn: db.Conn, table: mapping.TableMapping, info: catalog.TableInfo, key: str
) -> str:
    key_type = info.columns[table.key_column].type
    statement = sql.query("normalize_keys").format(key_type=key_type)
    try:
        normalized = await conn.fetchval(statement, [key])
    except asyncpg.DataError:
        raise NotAKey(
            f"{key!r} is not a key of {table.table} ({table.key_column} is {key_type})"
        ) from None
    return str(normalized)


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
