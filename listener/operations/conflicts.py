"""Conflicts, for `npd-sync conflicts` and the console's Conflicts page: listed one per field
(`listing`), or a page of rows with open conflicts, each with all its fields (`paged`); and
their resolution for one side (`settle`, `npd-sync conflicts resolve` and the console's Take).
The records and their statements are `listener.inbound.conflicts`'.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from listener import db, mapping, sql
from listener.capture import install
from listener.inbound import conflicts as inbound
from listener.operations import items, keys
from listener.settings import Settings

PER_PAGE = 50  # resolved conflicts on a page
ROWS_PER_PAGE = 20  # rows with open conflicts on a page
Show = Literal["open", "resolved"]


async def listing(
    conn: db.Conn, settings: Settings, *, everything: bool, table: str | None
) -> list[inbound.Record]:
    """The open conflicts (all of them with `everything`), of one table or all, one per
    field."""
    await install.require_current(conn)
    return await inbound.listing(conn, settings.tables, everything=everything, table=table)


async def settle(
    conn: db.Conn,
    table: mapping.TableMapping,
    key: str,
    columns: Sequence[str] | None,
    take: inbound.Side,
) -> list[str]:
    """The operation behind `conflicts resolve` (and the console's): the columns settled.
    Raises UsageError for a key that cannot be one (NotAKey), or a table not captured."""
    await install.require_current(conn)
    table_id = await conn.fetchval(sql.query("table_id"), table.table)
    if table_id is None:
        raise keys.UsageError(f"{table.table}: capture not installed (run `npd-sync install`)")
    row_key = await keys.normalize_one(conn, table, key)
    return await inbound.resolve(conn, table_id, row_key, columns, take)


def summary(
    settings: Settings,
    table: mapping.TableMapping,
    key: str,
    field: str | None,
    settled: Sequence[str],
    take: inbound.Side,
) -> list[str]:
    """What `settle` did, in lines for people (`field`: the one asked for, if any)."""
    if not settled:
        return [f"{table.table} {key}: no open conflict" + (f" on {field}" if field else "")]
    fields = ", ".join(inbound.field_of(table, c) for c in settled)
    other = "Monday" if take == "npd" else "the database"
    lines = [
        f"{table.table} {key}: {fields} resolved for {take}; the next sync writes it to {other}"
    ]
    if take == "monday" and not settings.inbound:
        lines.append(
            "inbound is off (NPD_SYNC_PUBLIC_URL is not set): a listener with it on writes it"
        )
    return lines


@dataclass(frozen=True, slots=True)
class ConflictRow:
    """A row's open conflicts: per field, the value both sides last agreed on and each side's."""

    table: str
    key: str
    item_url: str | None
    fields: tuple[inbound.Record, ...]

    @property
    def detected_at(self) -> dt.datetime:
        return min(f.detected_at for f in self.fields)


@dataclass(frozen=True, slots=True)
class Conflicts:
    """A page of the conflicts page: rows with open conflicts, or resolved conflicts."""

    show: Show
    rows: tuple[ConflictRow, ...]  # open
    resolved: tuple[inbound.Record, ...]  # resolved, latest first
    total: int  # rows with open conflicts, or resolved conflicts
    table: str | None
    page: int
    per_page: int
    conflicts: int = 0  # the open conflicts of those rows (one per field), or resolved ones

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


async def paged(
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
    per_page = ROWS_PER_PAGE if show == "open" else PER_PAGE
    found = await inbound.page(
        conn,
        settings.tables,
        state=show,
        table=table,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    rows = by_row(settings, item_template, found.records) if show == "open" else ()
    resolved = tuple(found.records) if show == "resolved" else ()
    return Conflicts(show, rows, resolved, found.total, table, page, per_page, found.conflicts)


def by_row(
    settings: Settings, item_template: str, records: list[inbound.Record]
) -> tuple[ConflictRow, ...]:
    """Records grouped by row, in their order, each row with the link to its item."""
    grouped: dict[tuple[str, str], list[inbound.Record]] = {}
    for r in records:
        grouped.setdefault((r.table, r.key), []).append(r)
    boards = {t.table: t.board_id for t in settings.tables}
    found = []
    for (table, key), fields in grouped.items():
        item = next((f.item_id for f in fields if f.item_id), None)
        link = items.url(item_template, boards.get(table), item)
        found.append(ConflictRow(table, key, link, tuple(fields)))
    return tuple(found)
