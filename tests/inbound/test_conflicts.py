"""Conflicts as stored and read back a page at a time (`conflicts.page`, for the console):
open ones by row, each row whole; resolved ones latest first; of one table or one row."""

from __future__ import annotations

import asyncpg

from listener import settings
from listener.inbound import conflicts
from listener.inbound.merge import Conflict


async def conflicted(conn: asyncpg.Connection, key: str, *columns: str) -> None:
    """Open conflicts on these columns of contact `key` (values in the form sent to Monday)."""
    found = [Conflict(c, f"agreed {c}", f"npd {c}", f"monday {c}", None) for c in columns]
    await conflicts.record(
        conn, 1, key, "42", found, policy="manual", npd_changed_at=None, monday_changed_at=None
    )


async def test_open_conflicts_come_by_row_each_row_whole(conn: asyncpg.Connection) -> None:
    tables = settings.load(environ={}).tables
    await conflicted(conn, "1", "text", "email")
    await conflicted(conn, "2", "phone")
    await conflicted(conn, "3", "text", "long_text", "name")

    first = await conflicts.page(conn, tables, state="open", limit=2)
    assert first.total == 3  # rows
    assert [(r.key, r.field) for r in first.records] == [
        ("1", "role_title"), ("1", "email"), ("2", "phone"),
    ]  # fmt: skip
    assert (first.records[0].npd_value, first.records[0].monday_value) == (
        "npd text",
        "monday text",
    )
    second = await conflicts.page(conn, tables, state="open", limit=2, offset=2)
    assert [(r.key, r.column_id) for r in second.records] == [
        ("3", "text"), ("3", "long_text"), ("3", "name"),
    ]  # fmt: skip
    assert second.total == 3
    assert await conflicts.page(conn, tables, state="open", limit=2, offset=4) == conflicts.Page(
        [], 0
    )

    one = await conflicts.page(conn, tables, state="open", key="3", limit=1)
    assert (one.total, len(one.records)) == (1, 3)
    other = await conflicts.page(conn, tables, state="open", table="organizations", limit=5)
    assert other == conflicts.Page([], 0)
    assert (await conflicts.page(conn, tables, state="resolved", limit=5)).total == 0


async def test_resolved_conflicts_come_latest_first(conn: asyncpg.Connection) -> None:
    tables = settings.load(environ={}).tables
    await conflicted(conn, "1", "text", "email")
    await conflicted(conn, "2", "phone")
    assert await conflicts.resolve(conn, 1, "2", None, "monday") == ["phone"]
    assert await conflicts.resolve(conn, 1, "1", ["email"], "npd") == ["email"]

    resolved = await conflicts.page(conn, tables, state="resolved", limit=1)
    assert resolved.total == 2
    [latest] = resolved.records
    assert (latest.key, latest.field, latest.winner, latest.resolved_by) == (
        "1", "email", "npd", "operator",
    )  # fmt: skip
    [older] = (await conflicts.page(conn, tables, state="resolved", limit=1, offset=1)).records
    assert (older.key, older.winner, older.monday_value) == ("2", "monday", "monday phone")
    mine = await conflicts.page(conn, tables, state="resolved", table="contacts", key="2", limit=9)
    assert [r.key for r in mine.records] == ["2"]
    still = await conflicts.page(conn, tables, state="open", limit=9)
    assert [(r.key, r.field) for r in still.records] == [("1", "role_title")]
