"""The failed rows, newest error first, a page at a time (the console's Failed page): each with
its last error, its attempts and its item on Monday."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from listener import db, fault, sql
from listener.capture import install
from listener.operations import items
from listener.settings import Settings

PER_PAGE = 50


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


async def paged(
    conn: db.Conn, settings: Settings, item_template: str, *, table: str | None, page: int
) -> Failed:
    """A page of failed rows, newest error first."""
    await install.require_current(conn)
    offset = (page - 1) * PER_PAGE
    records = await conn.fetch(sql.query("console_failed"), table, PER_PAGE, offset)
    secrets = settings.secrets()
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
    return Failed(found, records[0]["total"] if records else 0, table, page)


def shown(stored: str | None, secrets: Sequence[str]) -> fault.Fault | None:
    """A stored last error, redacted; None when there is none."""
    found = fault.from_json(stored)
    return None if found is None else fault.redacted(found, secrets)
