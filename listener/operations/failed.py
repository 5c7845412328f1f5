"""The failed rows, for the console's Failed page: grouped by their error (who said it, its
code, its message) with how many rows each, and a page of rows at a time, newest error first,
of one table or all and of one error group or all: each with its last error, its attempts and
its item on Monday."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from listener import db, fault, sql
from listener.capture import install
from listener.operations import items
from listener.settings import Settings

PER_PAGE = 50
GROUPS_SHOWN = 50
GROUP_ID = re.compile(r"[0-9a-f]{12}")  # as console_failed_groups makes them


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
class ErrorGroup:
    """The failed rows that share an error: who said it, its code and its message."""

    id: str
    error: fault.Fault | None  # None: entries that recorded no error
    rows: int
    tables: tuple[str, ...]
    latest: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Failed:
    rows: tuple[FailedRow, ...]
    total: int  # the rows of this table and group, on every page
    table: str | None
    page: int
    groups: tuple[ErrorGroup, ...] = ()  # the errors of this table, the most rows first
    group_count: int = 0  # how many groups there are in all (more than shown, at times)
    group: ErrorGroup | None = None  # the group the rows are of (None: all)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PER_PAGE))

    @property
    def tables(self) -> list[str]:
        """The tables with failed rows on this page."""
        return list(dict.fromkeys(r.table for r in self.rows))


def group_id(value: str | None) -> str | None:
    """An error group's id as a request gives it, or None when it is not one."""
    return value if value is not None and GROUP_ID.fullmatch(value) else None


async def paged(
    conn: db.Conn,
    settings: Settings,
    item_template: str,
    *,
    table: str | None,
    page: int,
    group: str | None = None,
) -> Failed:
    """The error groups and a page of failed rows (of `group`, when given), newest error
    first."""
    await install.require_current(conn)
    secrets = settings.secrets()
    groups = await conn.fetch(sql.query("console_failed_groups"), table, GROUPS_SHOWN)
    found_groups = tuple(
        ErrorGroup(g["id"], _group_fault(g, secrets), g["n"], tuple(g["tables"]), g["latest"])
        for g in groups
    )
    offset = (page - 1) * PER_PAGE
    records = await conn.fetch(sql.query("console_failed"), table, PER_PAGE, offset, group)
    boards = {t.table: t.board_id for t in settings.tables}
    found = tuple(
        FailedRow(
            table=r["table_name"],
            key=r["row_key"],
            attempts=r["attempts"],
            error=shown(r["last_error"], secrets),
            at=r["last_error_at"],
            changed_at=r["changed_at"],
            item_url=items.url(item_template, boards.get(r["table_name"]), r["item_id"]),
        )
        for r in records
    )
    return Failed(
        found,
        records[0]["total"] if records else 0,
        table,
        page,
        found_groups,
        groups[0]["groups"] if groups else 0,
        next((g for g in found_groups if g.id == group), None),
    )


def _group_fault(record: asyncpg.Record, secrets: Sequence[str]) -> fault.Fault | None:
    if not record["source"] and not record["message"]:
        return None
    source = record["source"] if record["source"] in fault.SOURCES else fault.NPD_SYNC
    return fault.redacted(fault.Fault(source, record["message"], record["code"]), secrets)


def shown(stored: str | None, secrets: Sequence[str]) -> fault.Fault | None:
    """A stored last error, redacted; None when there is none."""
    found = fault.from_json(stored)
    return None if found is None else fault.redacted(found, secrets)
