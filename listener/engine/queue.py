"""The durable queue: one entry per application row with work outstanding.

The one module that writes `npd_sync.queue`, one function per transition of an entry's life
(the table at the top of `sql/queries/queue.sql`): new data `arrive`s for rows (a captured
change, a backfill, an edit on the board, a resolved conflict); `claim` leases due entries to
one listener (SKIP LOCKED, so two listeners never hold one row), `renew` and `release` keep or
give back the lease; `complete` records each entry's outcome, fenced by the claim so that a
listener whose lease was taken over cannot overwrite its successor's work; `retry` puts failed
entries back, `discard` takes them out (an operator stops retrying them).
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
ANALYZE = "ANALYZE npd_sync.queue"
VACUUM = "VACUUM npd_sync.changes, npd_sync.queue"


class Outcome(enum.Enum):
    DONE = "done"  # nothing left to do for the state that was claimed
    RETRY = "retry"  # an attempt failed; try again after a delay
    FAILED = "failed"  # permanently: wait for new data or `npd-sync retry`
    WAIT = "wait"  # not an attempt (rate limit, row locked): try again after a delay


@dataclass(frozen=True, slots=True)
class Arrival:
    """New data for one row: what the queue entry gains (its flags are OR-ed in)."""

    table_id: int
    key: str
    changed_at: datetime | None = None  # when the data changed (None: now)
    last_changed_at: datetime | None = None  # the database side's latest change
    archive_ids: tuple[str, ...] = ()  # items of deleted or re-keyed rows to archive
    pull: bool = False  # Monday said the row's item changed: read it first
    monday_changed_at: datetime | None = None  # when, as Monday said
    uncertain: bool = False  # look for an item carrying the row's npd_id before creating

    def as_json(self) -> dict[str, object]:
        return {
            "table_id": self.table_id,
            "row_key": self.key,
            "changed_at": _iso(self.changed_at),
            "last_changed_at": _iso(self.last_changed_at),
            "archive_ids": list(self.archive_ids),
            "pull": self.pull,
            "monday_changed_at": _iso(self.monday_changed_at),
            "uncertain": self.uncertain,
        }


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


async def arrive(conn: db.Conn, arrivals: Sequence[Arrival], *, urgent: bool = False) -> int:
    """New data for rows: queue them, or start their failed entries afresh. `urgent`: due now
    even where a retry's backoff runs (an operator's action). Returns how many arrived."""
    if not arrivals:
        return 0
    payload = json.dumps([a.as_json() for a in arrivals], ensure_ascii=False)
    return int(await conn.fetchval(sql.query("arrive"), payload, urgent))


async def due_count(conn: db.Conn, table_ids: Sequence[int], most: int) -> int:
    """How many entries of the given tables are due now, counting up to `most`."""
    return int(await conn.fetchval(sql.query("due_count"), list(table_ids), most))


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


async def renew(
    conn: db.Conn, listener_id: str, entries: Sequence[Entry], lease_seconds: float
) -> None:
    """Extend the leases of the given entries, where this listener still holds them."""
    await conn.execute(
        sql.query("renew"), listener_id, float(lease_seconds),
        [e.table_id for e in entries], [e.key for e in entries],
    )  # fmt: skip


async def release(conn: db.Conn, listener_id: str, entries: Sequence[Entry] | None = None) -> None:
    """Give back what this listener holds: everything, or the given entries."""
    tables = None if entries is None else [e.table_id for e in entries]
    keys = None if entries is None else [e.key for e in entries]
    await conn.execute(sql.query("release"), listener_id, tables, keys)


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


async def retry(conn: db.Conn, table_id: int, keys: Sequence[str] | None) -> list[str]:
    """Put the failed entries of a table (of these keys, or all) back in the queue, due now;
    returns their keys."""
    found = await conn.fetch(sql.query("retry"), table_id, None if keys is None else list(keys))
    return [r[0] for r in found]


async def discard(conn: db.Conn, table_id: int, keys: Sequence[str] | None) -> list[str]:
    """Take the failed entries of a table (of these keys, or all) out of the queue; returns
    their keys. The rows wait for new data."""
    found = await conn.fetch(sql.query("discard"), table_id, None if keys is None else list(keys))
    return [r[0] for r in found]


async def pending_work(
    conn: db.Conn, table_ids: Sequence[int], *, inbound: bool = False
) -> tuple[bool, float | None]:
    """(change records, or with `inbound` inbox entries, waiting to be taken in?, seconds
    until the next entry is due or None)."""
    row = await conn.fetchrow(sql.query("pending_work"), list(table_ids), inbound)
    assert row is not None
    return bool(row["changes"]), row["due_in"]


async def backlog(conn: db.Conn, table_ids: Sequence[int]) -> tuple[int, float | None]:
    """(entries of the tables still pending, seconds until the next one is due or None)."""
    row = await conn.fetchrow(sql.query("backlog_left"), list(table_ids))
    assert row is not None
    return int(row["pending"]), row["due_in"]


@dataclass(frozen=True, slots=True)
class Health:
    """What health needs to know of the queue (see `listener.daemon`)."""

    oldest_pending: float | None  # seconds: the oldest change still to be synced (None: none)
    finished_ago: float | None  # seconds since a live listener last finished an entry
    paused: str | None  # why Monday asked every listener to pause, while it does
    depth: dict[tuple[int, str], int]  # rows waiting per (table id, state)


async def health(conn: db.Conn, table_ids: Sequence[int], alive: float) -> Health:
    """The queue's depth and age, for the metrics and health (`alive`: seconds a heartbeat
    counts as a live listener)."""
    depth = {(r["table_id"], r["state"]): r["n"] for r in await conn.fetch(sql.query("depth"))}
    oldest = await conn.fetchrow(sql.query("oldest_pending"), list(table_ids), alive)
    assert oldest is not None
    return Health(oldest["seconds"], oldest["finished_ago"], oldest["paused"], depth)


async def latest_error(conn: db.Conn, table_ids: Sequence[int]) -> fault.Fault | None:
    """The latest error of a pending entry of the tables (why the oldest changes wait, likely)."""
    return fault.from_json(await conn.fetchval(sql.query("latest_pending_error"), list(table_ids)))


async def analyze(conn: db.Conn) -> None:
    """Take fresh statistics of the queue (a backlog grew: the claim's plan depends on them)."""
    await conn.execute(ANALYZE)


async def vacuum(conn: db.Conn) -> None:
    """Reclaim the space of the change log and the queue (every entry is written, then
    deleted), in case autovacuum is off or behind."""
    await conn.execute(VACUUM)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
