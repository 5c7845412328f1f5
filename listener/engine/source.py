"""Where batches come from: the change log and the inbox flow into the queue, and a batch is
leased out of it, in one transaction.

What the triggers recorded (`capture.changes`) and what Monday said changed on rows' items
(`inbound.inbox`) arrive in the queue as new data for those rows; then up to `batch_size` due
entries are claimed, and, with inbound on, items created on the board (which no row is linked
to yet) are claimed beside them: a full page when the queue has nothing due, else a share of
the batch, so that under a load that keeps the queue busy they still become rows within
seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from listener import db
from listener.capture import changes
from listener.engine import queue
from listener.inbound import inbox
from listener.monday import api

INGEST = 1000  # change records (and inbox entries) taken into the queue per batch at least
CREATED_SHARE = 4  # under load, items created on the board take 1/4 of a batch's size
ANALYZE_EVERY = 10_000  # change records taken in between two ANALYZEs of the queue


@dataclass(frozen=True, slots=True)
class Batch:
    """What one turn of the engine works on."""

    entries: list[queue.Entry]  # rows with work outstanding
    created: list[inbox.Entry]  # items created on the board, no row linked to them yet
    taken: changes.Taken  # what came out of the change log

    def __len__(self) -> int:
        return len(self.entries) + len(self.created)


class Source:
    """Takes batches for one listener."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        listener_id: str,
        *,
        batch_size: int,
        lease_seconds: float,
        inbound: bool,
    ) -> None:
        self.pool = pool
        self.listener_id = listener_id
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.inbound = inbound
        self._taken = 0  # change records taken in
        self._analyzed = 0

    async def take(self, table_ids: Sequence[int], boards: Sequence[str]) -> Batch:
        """Take in what waits, then lease a batch of the given tables' entries and of items
        created on the given boards (none when `table_ids` is empty: then only take in)."""
        limit = max(INGEST, self.batch_size)
        created: list[inbox.Entry] = []
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                taken = await ingest(conn, limit)
                if not table_ids:
                    return Batch([], [], taken)
                if self.inbound:
                    await queue.arrive(conn, await inbox.take_linked(conn, limit))
                entries = await queue.claim(
                    conn, table_ids, limit=self.batch_size, listener_id=self.listener_id,
                    lease_seconds=self.lease_seconds,
                )  # fmt: skip
                if self.inbound and boards:
                    share = max(1, self.batch_size // CREATED_SHARE) if entries else api.ITEMS_PAGE
                    created = await inbox.claim(
                        conn, boards, limit=share, listener_id=self.listener_id,
                        lease_seconds=self.lease_seconds,
                    )  # fmt: skip
            await self._analyze(conn, taken.records)
        return Batch(entries, created, taken)

    async def _analyze(self, conn: db.Conn, records: int) -> None:
        self._taken += records
        if self._taken - self._analyzed >= ANALYZE_EVERY:
            # A backlog grew since the queue's statistics were taken: without fresh ones the
            # claim query sorts the whole queue (measured: 40 ms a claim instead of 1 at
            # 200,000 entries), and autovacuum may be off or late.
            self._analyzed = self._taken
            await queue.analyze(conn)


async def ingest(conn: db.Conn, limit: int = INGEST) -> changes.Taken:
    """Take up to `limit` change records into the queue (in one transaction)."""
    async with conn.transaction():
        taken = await changes.take(conn, limit, queue.KEY_MAX_BYTES)
        await queue.arrive(conn, [_arrival(c) for c in taken.changes])
    return taken


def _arrival(change: changes.Change) -> queue.Arrival:
    return queue.Arrival(
        change.table_id, change.key, change.changed_at, change.last_changed_at,
        change.archive_ids,
    )  # fmt: skip
