"""The engine's turn: take a batch, plan it, exchange with Monday, record the outcome.

    source.take ──► load rows ──► plans.plan ──► exchange.board ──► decide ──► recorder.record
    (queue)         (one query      (pure)        (Monday, a few       (pure)     (one transaction)
                     per table)                    requests a board)

Each step is one round trip per table or board rather than per row. `drain` works batches
until nothing is due; the listener (`listener.daemon`), `npd-sync backfill` and `npd-sync pull`
all use it. Items created on the board (no row linked to them yet) ride along with the batch:
their items are read and a row is made for each (on_monday_create = insert).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence

import asyncpg

from listener import db, links, rows
from listener.engine import decide, plans, queue
from listener.engine.bisect import bisect
from listener.engine.exchange import Exchange, Exchanged
from listener.engine.outcome import Outcome, Stats, Tally
from listener.engine.plans import Plan
from listener.engine.queue import Entry
from listener.engine.recorder import Recorder
from listener.engine.source import Source
from listener.inbound import inbox
from listener.metrics import Metrics
from listener.monday import api, governor
from listener.settings import Settings, Tuning

log = logging.getLogger("npd_sync.worker")

__all__ = ["Stats", "Worker", "open_worker"]


@contextlib.asynccontextmanager
async def open_worker(
    settings: Settings,
    pool: asyncpg.Pool,
    tables: Sequence[rows.Table],
    listener_id: str,
    *,
    metrics: Metrics | None = None,
    inbound: bool | None = None,
) -> AsyncIterator[Worker]:
    """A worker with its governor and its Monday client (none without MONDAY_API_KEY), the
    client's HTTP session open for as long as the block runs. `inbound` overrides whether
    the board's edits flow back (on when NPD_SYNC_PUBLIC_URL is set)."""
    metrics = metrics or Metrics()
    tuning = settings.tuning
    meter = governor.Governor(
        pool, governor.limits_for(tuning), max_wait=tuning.max_rate_wait, metrics=metrics,
        lease_seconds=tuning.request_timeout + 5,
    )  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(meter.flush)
        client = None
        if settings.api_key is not None:
            client = api.client(settings)
            await stack.enter_async_context(client)
        yield Worker(
            tuning,
            pool,
            client,
            meter,
            tables,
            listener_id,
            metrics=metrics,
            inbound=settings.inbound if inbound is None else inbound,
        )


class Worker:
    """Works batches of queue entries for a set of tables.

    `client` is None when no API key is set: changes are then taken in and left pending.
    """

    def __init__(
        self,
        tuning: Tuning,
        pool: asyncpg.Pool,
        client: api.Client | None,
        meter: governor.Governor,
        tables: Sequence[rows.Table],
        listener_id: str,
        *,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        inbound: bool = False,
    ) -> None:
        self.tuning = tuning
        self.pool = pool
        self.client = client
        self.governor = meter
        self.tables = {t.id: t for t in tables}
        self.listener_id = listener_id
        self.inbound = inbound
        self.metrics = metrics or Metrics()
        self.tally = Tally(self.metrics)
        self.finished = time.monotonic()  # when an entry was last synced or failed for good
        rng = rng or random.Random()
        policy = decide.Policy(
            tuning.max_attempts,
            tuning.backoff_base,
            tuning.backoff_cap,
            tuning.write_back_retry_seconds,
        )
        self.policies = {
            t.id: dataclasses.replace(policy, conflict_status=t.conflict_status) for t in tables
        }
        self.rng = rng
        self.source = Source(
            pool,
            listener_id,
            batch_size=tuning.batch_size,
            lease_seconds=tuning.lease_seconds,
            inbound=inbound,
        )
        self.recorder = Recorder(
            pool, self.tables, listener_id, policy, patience=tuning.lease_seconds / 2, rng=rng
        )
        self.exchange = (
            None
            if client is None
            else Exchange(client, meter, tuning.batch_size, self.metrics, self._rows_of)
        )

    async def _rows_of(self, items: Sequence[str]) -> Mapping[str, tuple[int, str]]:
        """Which rows npd-sync linked these items to (for connect-boards links read back)."""
        async with self.pool.acquire() as conn:
            return await links.linked(conn, items)

    @property
    def stats(self) -> Stats:
        """Running totals, for logs, status and tests."""
        return self.tally.stats

    @property
    def boards(self) -> dict[str, rows.Table]:
        """The tables whose boards are configured, by board id."""
        return {t.mapping.board_id: t for t in self.tables.values() if t.mapping.board_id}

    @property
    def active_tables(self) -> list[int]:
        """Tables whose entries can be worked now: a board is set and Monday is configured."""
        if self.client is None:
            return []
        return [t.id for t in self.boards.values()]

    async def next_due(self) -> float | None:
        """Seconds until there is work: 0 when there is some now (change records to take in,
        an entry due), the rest of a pause Monday asked for, the time the next entry falls due;
        None when nothing waits."""
        async with self.pool.acquire() as conn:
            changes, due_in = await queue.pending_work(
                conn, self.active_tables, inbound=self.inbound
            )
        # Monday asked to pause, or the day's calls must last the day, or the minute's.
        paused = await self._held(self.active_tables)
        if paused:
            return paused
        if changes or (due_in is not None and due_in <= 0):
            return 0.0
        return due_in

    async def _held(self, active: Sequence[int]) -> float:
        """Seconds until a request to Monday may go: the rest of a pause Monday asked for, else
        the day's pace, else the minute's (0: now), which a full batch of the `active` tables
        does not wait for (waiting would not make its requests carry more)."""
        for look in (self.governor.paused_for, self.governor.next_call_in):
            seconds = await look()
            if seconds > 0:
                return seconds
        seconds = await self.governor.next_request_in()
        if seconds > 0 and active:
            async with self.pool.acquire() as conn:
                due = await queue.due_count(conn, active, self.tuning.batch_size)
            if due >= self.tuning.batch_size:
                return await self.governor.next_request_in(full=True)
        return seconds

    async def drain(self, stop: asyncio.Event | None = None) -> int:
        """Work batches until nothing is due (or `stop` is set); returns entries handled."""
        handled = 0
        while stop is None or not stop.is_set():
            count = await self.run_once()
            if count == 0:
                break
            handled += count
        return handled

    async def run_once(self) -> int:
        """Take in what waits, then work one batch; returns entries handled."""
        started = time.perf_counter()
        active = self.active_tables
        if active and await self._held(active) > 0:
            # Monday asked every listener to wait, or the day's or the minute's pace: only take
            # in; the rows gather and go together when the next request may.
            active = []
        batch = await self.source.take(active, list(self.boards) if active else [])
        outcome = Outcome(rejected=batch.taken.rejected, records=batch.taken.records)
        if batch.entries:
            await self._work(batch.entries, outcome)
        if batch.created:
            await self._created(batch.created, outcome)
        outcome.seconds = time.perf_counter() - started
        self.tally.add(outcome)
        self.governor.synced(outcome.total("synced"))
        return len(batch)

    async def _work(self, entries: Sequence[Entry], outcome: Outcome) -> None:
        """Handle claimed entries, keeping their leases alive meanwhile; entries that could
        not be finished go back at once."""
        renewing = asyncio.create_task(self._renew(entries), name="leases")
        try:
            await self.handle(entries, outcome)
        except BaseException:
            # Don't leave the batch leased for lease_seconds: let it be retried now.
            await asyncio.shield(self.recorder.release(entries))
            raise
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    async def _renew(self, entries: Sequence[Entry]) -> None:
        # Only the batch in flight: a lease left behind by a batch that could not give it
        # back (the database was away) must run out, so that the entry is claimed again.
        every = self.tuning.lease_seconds / 3
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
                async with self.pool.acquire(timeout=10) as conn:
                    await queue.renew(conn, self.listener_id, entries, self.tuning.lease_seconds)

    async def handle(self, entries: Sequence[Entry], outcome: Outcome | None = None) -> None:
        """Plan a claimed batch, exchange it with Monday and record the outcome of each
        entry."""
        outcome = outcome if outcome is not None else Outcome()
        assert self.exchange is not None
        by_table: dict[int, list[Entry]] = defaultdict(list)
        for entry in entries:
            by_table[entry.table_id].append(entry)
        planned, linked = await self._plan(by_table)
        decisions: list[decide.Decision] = []
        retired: list[str] = []
        found: dict[tuple[int, str], str] = {}  # items rows got in this batch
        # Tables whose connect-boards columns reference others go after those: a link to a row
        # created in the same batch is then written with the row's first push.
        for layer in _layers(planned, self.tables):
            boards = await asyncio.gather(
                *(
                    self.exchange.board(
                        self.tables[t], self._linked(planned[t], found), linked,
                        inbound=self.inbound,
                    )
                    for t in layer
                )
            )  # fmt: skip
            for table_id, ex in zip(layer, boards, strict=True):
                decisions += self._decided(table_id, ex)
                found.update(_new_items(table_id, ex))
                retired += ex.retired
                outcome.requests += ex.requests
        completions = await self.recorder.record(decisions, retired, outcome)
        for d, c in zip(decisions, completions, strict=True):
            outcome.entry(self.tables[c.entry.table_id].name, d, c)
        if outcome.total("synced") or outcome.total("failed"):
            self.finished = time.monotonic()

    def _decided(self, table_id: int, ex: Exchanged) -> list[decide.Decision]:
        policy = self.policies[table_id]
        return [
            decide.decide(
                push, ex.landings.get(push.entry.key), ex.items[push.entry.key],
                ex.failures[push.entry.key], policy, self.rng, looked=push.entry.key in ex.looked,
                request_id=ex.request_ids.get(push.entry.key),
            )
            for push in ex.pushes
        ]  # fmt: skip

    def _linked(
        self, planned: Sequence[Plan | plans.Claim], found: Mapping[tuple[int, str], str]
    ) -> list[Plan | plans.Claim]:
        """The plans again where a row they reference got its item in this batch."""
        if not found:
            return list(planned)
        again: list[Plan | plans.Claim] = []
        for p in planned:
            row = p.row if isinstance(p, plans.Claim | plans.Push) else p.push.row
            if row is None or not _awaits(row, found):
                again.append(p)
                continue
            table = self.tables[p.entry.table_id]
            again.append(self._planned(p.entry, plans.with_items(row, found), table))
        return again

    async def _plan(
        self, by_table: Mapping[int, Sequence[Entry]]
    ) -> tuple[dict[int, list[Plan | plans.Claim]], dict[str, tuple[int, str]]]:
        """Each table's plans (one query a table loads the rows), and the links of the items
        they would archive or claim."""
        planned: dict[int, list[Plan | plans.Claim]] = {}
        async with self.pool.acquire() as conn:
            for table_id, group in by_table.items():
                table = self.tables[table_id]
                loaded, unreadable = await _load(conn, table, [e.key for e in group])
                planned[table_id] = [
                    plans.unreadable(e, unreadable[e.key])
                    if e.key in unreadable
                    else self._planned(e, loaded.get(e.key), table)
                    for e in group
                ]
            items = [i for ps in planned.values() for p in ps for i in _items_named(p)]
            linked = await links.linked(conn, items) if items else {}
        return planned, linked

    def _planned(self, entry: Entry, row: rows.Row | None, table: rows.Table) -> Plan | plans.Claim:
        try:
            return plans.plan(entry, row, table.mapping, inbound=self.inbound)
        except Exception as exc:
            # A bug must cost its row (FAILED, with why), not the batch again and again.
            log.exception("sync.plan_failed", extra={"table": table.name, "key": entry.key})
            return plans.failed(entry, row, f"npd-sync could not handle the row: {exc!r}")

    async def _created(self, entries: Sequence[inbox.Entry], outcome: Outcome) -> None:
        """Items created on the board: read them, and make a row for each one to make."""
        assert self.exchange is not None
        by_board: dict[str, list[inbox.Entry]] = defaultdict(list)
        for entry in entries:
            by_board[entry.board_id].append(entry)
        for board, group in by_board.items():
            table = self.boards[board]
            read = await self.exchange.created(table, group)
            outcome.requests += read.requests
            await self.recorder.made(table, read, outcome)


def _layers(planned: Mapping[int, object], tables: Mapping[int, rows.Table]) -> list[list[int]]:
    """The batch's tables in the order their boards are worked: those referencing no other
    table of the batch first (together), then the others (together)."""
    first = [
        t for t in planned
        if not any(ref != t and ref in planned for ref in tables[t].references.values())
    ]  # fmt: skip
    rest = [t for t in planned if t not in first]
    return [layer for layer in (first or rest, rest if first else []) if layer]


def _awaits(row: rows.Row, found: Mapping[tuple[int, str], str]) -> bool:
    return any(
        not r.item_id and (r.table_id, r.key) in found for refs in row.refs.values() for r in refs
    )


def _new_items(table_id: int, ex: Exchanged) -> dict[tuple[int, str], str]:
    """The items rows of the board got: created, or found by a lookup."""
    found: dict[tuple[int, str], str] = {}
    for push in ex.pushes:
        item = ex.items.get(push.entry.key)
        if item and push.action in ("create", "find") and not ex.failures[push.entry.key]:
            found[table_id, push.entry.key] = item
    return found


def _items_named(plan: Plan | plans.Claim) -> tuple[str, ...]:
    """The items a plan archives, or claims."""
    if isinstance(plan, plans.Claim):
        return (plan.item_id,)
    return plan.archive if isinstance(plan, plans.Push) else plan.push.archive


async def _load(
    conn: db.Conn, table: rows.Table, keys: Sequence[str]
) -> tuple[dict[str, rows.Row], dict[str, str]]:
    """The rows that still exist among `keys`, and the keys that cannot be read, with why: one
    query, split by halving only when it fails on a key (one that does not cast to the key
    column's type)."""
    split = await bisect(
        keys,
        lambda part: rows.load(conn, table, part),
        lambda exc: isinstance(exc, asyncpg.DataError),
    )
    loaded = {key: row for part in split.results for key, row in part.items()}
    bad = {key: f"the key does not fit the table's key column: {exc}" for key, exc in split.faults}
    return loaded, bad
