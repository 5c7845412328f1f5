"""The durable queue: change records in, leased entries out, outcomes back.

Triggers append to `npd_sync.changes`; `ingest` folds those records into one
`npd_sync.queue` entry per row; `claim` leases due entries to one listener (SKIP LOCKED, so
two listeners never hold one row); `complete` records each entry's outcome, fenced by the
claim so that a listener whose lease was taken over cannot overwrite its successor's work.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from listener import db, fault, sql

# A longer key can never be synced: the queue's primary key index holds about 2,700 bytes.
KEY_MAX_BYTES = 1024


class Outcome(enum.Enum):
    DONE = "done"  # nothing left to do for the state that was claimed
    RETRY = "retry"  # an attempt failed; try again after a delay
    FAILED = "failed"  # permanently: wait for a new change or `npd-sync retry`
    WAIT = "wait"  # not an attempt (rate limit, row locked): try again after a delay


@dataclass(frozen=True, slots=True)
class Entry:
    """A claimed queue entry: one application row with work outstanding."""

    table_id: int
    key: str
    version: int
    claims: int
    attempts: int
    uncertain: bool
    monday_id: str | None
    archive_ids: tuple[str, ...]
    changed_at: datetime
    pull: bool = False  # Monday said the row's item changed: read it first
    last_changed_at: datetime | None = None  # the database side's latest change
    monday_changed_at: datetime | None = None  # Monday's side's, as Monday said

    @property
    def change(self) -> str:
        """Which state of the row this entry stands for: the same across retries, new after a
        change (the Idempotency-Key is derived from it)."""
        return f"{self.table_id}:{self.key}:{self.version}:{self.changed_at.isoformat()}"

    @property
    def interrupted(self) -> bool:
        """An earlier claim ended without an outcome (its listener died mid-flight).

        Every claim counts in `claims` and every failed attempt in `attempts`; both start again
        from 0 when the entry does (new data after a failure, `npd-sync retry`).
        """
        return self.claims > self.attempts + 1


@dataclass(frozen=True, slots=True)
class Completion:
    """What to record for one entry."""

    entry: Entry
    outcome: Outcome
    error: fault.Fault | None = None
    delay: float = 0.0
    monday_id: str | None = None
    uncertain: bool = False


async def queue_rows(conn: db.Conn, table_id: int, keys: Sequence[str]) -> None:
    """Queue rows by key, due now (rows queued already stay as they are)."""
    await conn.execute(sql.query("queue_rows"), table_id, list(keys))


@dataclass(frozen=True, slots=True)
class Rejected:
    """A change record that can never be synced, set aside in `npd_sync.rejected`."""

    table_id: int
    key: str  # cut short
    reason: str


@dataclass(frozen=True, slots=True)
class Ingested:
    records: int  # change records taken from the log, rejected ones included
    rejected: tuple[Rejected, ...] = ()


async def ingest(conn: db.Conn, limit: int = 1000) -> Ingested:
    """Fold up to `limit` change records into the queue, setting aside those that can never
    be synced."""
    row = await conn.fetchrow(sql.query("ingest"), limit, KEY_MAX_BYTES)
    assert row is not None
    rejected = tuple(
        Rejected(r["table_id"], r["key"], r["reason"]) for r in json.loads(row["rejected"] or "[]")
    )
    return Ingested(int(row["records"]), rejected)


async def enqueue(conn: db.Conn, table_id: int, keys: Sequence[str]) -> None:
    """Queue rows by key, as a backfill does (uncertain: look for an item before creating)."""
    await conn.execute(sql.query("enqueue"), table_id, list(keys))


async def claim(
    conn: db.Conn,
    table_ids: Sequence[int],
    *,
    limit: int,
    listener_id: str,
    lease_seconds: float,
) -> list[Entry]:
    """Lease up to `limit` due entries of the given tables."""
    rows = await conn.fetch(
        sql.query("claim"), limit, list(table_ids), listener_id, float(lease_seconds)
    )
    return [
        Entry(
            table_id=r["table_id"],
            key=r["row_key"],
            version=r["version"],
            claims=r["claims"],
            attempts=r["attempts"],
            uncertain=r["uncertain"],
            monday_id=r["monday_id"],
            archive_ids=tuple(r["archive_ids"]),
            changed_at=r["changed_at"],
            pull=r["pull"],
            last_changed_at=r["last_changed_at"],
            monday_changed_at=r["monday_changed_at"],
        )
        for r in rows
    ]


async def complete(conn: db.Conn, listener_id: str, completions: Sequence[Completion]) -> int:
    """Record outcomes; returns how many entries were still ours to complete."""
    if not completions:
        return 0
    c = completions
    count = await conn.fetchval(
        sql.query("complete"),
        listener_id,
        [x.entry.table_id for x in c],
        [x.entry.key for x in c],
        [x.entry.claims for x in c],
        [x.entry.version for x in c],
        [x.outcome.value for x in c],
        [None if x.error is None else x.error.to_json() for x in c],
        [x.delay for x in c],
        [x.monday_id for x in c],
        [x.uncertain for x in c],
    )
    return int(count)


async def renew_leases(
    conn: db.Conn, listener_id: str, entries: Sequence[Entry], lease_seconds: float
) -> None:
    """Extend the leases of the given entries, where this listener still holds them."""
    keys = [f"{e.table_id}:{e.key}" for e in entries]
    await conn.execute(sql.query("renew_leases"), listener_id, float(lease_seconds), keys)


async def release_leases(
    conn: db.Conn, listener_id: str, entries: Sequence[Entry] | None = None
) -> None:
    """Give back what this listener holds: everything, or the given entries."""
    keys = None if entries is None else [f"{e.table_id}:{e.key}" for e in entries]
    await conn.execute(sql.query("release_leases"), listener_id, keys)


async def pending_work(
    conn: db.Conn, table_ids: Sequence[int], *, inbound: bool = False
) -> tuple[bool, float | None]:
    """(change records, or with `inbound` inbox entries, waiting to be taken in?, seconds
    until the next entry is due or None)."""
    row = await conn.fetchrow(sql.query("pending_work"), list(table_ids), inbound)
    assert row is not None
    return bool(row["changes"]), row["due_in"]
