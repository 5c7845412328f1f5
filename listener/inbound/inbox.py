"""The inbox: what Monday said changed, one entry per item, until a listener looks at it.

The receiver stores each delivery (deduplicated by its triggerUuid) and marks its item here in
the same transaction (`store`). Entries of items linked to a row are taken out (`take_linked`)
and arrive in the row's queue entry, flagged to read the item first: from then on the row's
ordinary machinery (leases, retries, one holder at a time) applies. Entries of items no row is
linked to (created on the board) are claimed and worked from here (`claim`, `complete`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from listener import db, fault, sql
from listener.engine import queue


@dataclass(frozen=True, slots=True)
class Event:
    """One delivery, as stored: the wake-up, not the truth (the item is read for that)."""

    trigger_uuid: str
    board_id: str | None
    item_id: str | None
    type: str
    column_id: str | None = None
    user_id: str | None = None
    changed_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """A claimed inbox entry: an item no row is linked to."""

    board_id: str
    item_id: str
    version: int
    attempts: int


Outcome = Literal["done", "retry", "failed", "wait"]


@dataclass(frozen=True, slots=True)
class Completion:
    entry: Entry
    outcome: Outcome
    error: fault.Fault | None = None
    delay: float = 0.0


async def store(conn: db.Conn, events: Sequence[Event], boards: Sequence[str]) -> set[str]:
    """Store deliveries and mark their items (on the configured `boards`); returns the
    triggerUuids that were new (not repeats)."""
    if not events:
        return set()
    e = events
    new = await conn.fetchval(
        sql.query("store_events"),
        [x.trigger_uuid for x in e],
        [x.board_id for x in e],
        [x.item_id for x in e],
        [x.type for x in e],
        [x.column_id for x in e],
        [x.user_id for x in e],
        [x.changed_at for x in e],
        list(boards),
    )
    return set(new)


async def take_linked(conn: db.Conn, limit: int = 1000) -> list[queue.Arrival]:
    """Take out entries of items linked to rows: what arrives in those rows' queue entries
    (read the item first). Run it in the transaction that queues them."""
    found = await conn.fetch(sql.query("take_linked"), limit)
    return [
        queue.Arrival(
            r["table_id"],
            r["row_key"],
            r["changed_at"],
            pull=True,
            monday_changed_at=r["monday_changed_at"],
        )
        for r in found
    ]


async def claim(
    conn: db.Conn, boards: Sequence[str], *, limit: int, listener_id: str, lease_seconds: float
) -> list[Entry]:
    """Lease up to `limit` due entries of unlinked items on the given boards."""
    rows = await conn.fetch(
        sql.query("claim_inbox"), limit, list(boards), listener_id, float(lease_seconds)
    )
    return [Entry(r["board_id"], r["item_id"], r["version"], r["attempts"]) for r in rows]


async def complete(conn: db.Conn, listener_id: str, done: Sequence[Completion]) -> None:
    """Record what became of claimed entries."""
    if not done:
        return
    await conn.execute(
        sql.query("complete_inbox"),
        listener_id,
        [c.entry.board_id for c in done],
        [c.entry.item_id for c in done],
        [c.entry.version for c in done],
        [c.outcome for c in done],
        [None if c.error is None else c.error.to_json() for c in done],
        [c.delay for c in done],
    )


async def forget_events(conn: db.Conn, older_than: float) -> None:
    """Forget deliveries older than `older_than` seconds (their triggerUuid will not come
    again: Monday retries for 30 minutes)."""
    await conn.execute(sql.query("forget_events"), older_than)
