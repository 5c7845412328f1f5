"""The sync itself: claim a batch, load its rows, push them to Monday, record the outcome.

A batch is handled in four steps, each one round trip per table rather than per row: claim
(one statement), load (one query per table), push (a few requests per board, many mutations
each), then write-back and completion together in one transaction. The loop around batches,
and the wake-ups, are in `listener.daemon`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from listener import catalog, db, errors, governor, monday, plan, queue, rows, sql
from listener.metrics import Metrics
from listener.settings import Settings

log = logging.getLogger("npd_sync.worker")

ANALYZE_EVERY = 10_000  # change records ingested between two ANALYZEs of the queue


class NotInstalled(Exception):
    """The database has no npd_sync schema, or a configured table has no capture."""


async def load_tables(conn: db.Conn, settings: Settings) -> list[rows.Table]:
    """The configured tables that have capture installed, compiled; raises on problems."""
    if not await conn.fetchval("SELECT to_regclass('npd_sync.tables') IS NOT NULL"):
        raise NotInstalled("npd-sync is not installed in this database: run `npd-sync install`")
    attached = {r["name"]: r for r in await conn.fetch(sql.query("attached_tables"))}
    tables = []
    problems = []
    for table in settings.tables:
        row = attached.get(table.table)
        info = await catalog.describe(conn, table.table)
        if row is None or info is None:
            if table.board_id:
                problems.append(f"{table.table}: capture not installed (run `npd-sync install`)")
            continue
        issues = catalog.problems(info, table)
        if row["key_column"] != table.key_column:
            issues.append(f"installed with key {row['key_column']!r}: run `npd-sync install`")
        if issues:
            problems.extend(f"{table.table}: {issue}" for issue in issues)
            continue
        tables.append(rows.compile_table(row["id"], table, info))
    if problems:
        raise NotInstalled("\n".join(problems))
    return tables


@dataclass
class Stats:
    """Running totals, for logs, status and tests."""

    synced: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    waited: int = 0
    requests: int = 0


class Worker:
    """Handles batches of queue entries for a set of tables."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        client: monday.Client | None,
        tables: Sequence[rows.Table],
        listener_id: str,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.client = client
        self.tables = {t.id: t for t in tables}
        self.listener_id = listener_id
        self.rng = rng or random.Random()
        tuning = settings.tuning
        self.policy = plan.Policy(
            tuning.max_attempts, tuning.backoff_base, tuning.backoff_cap,
            tuning.write_back_retry_seconds,
        )  # fmt: skip
        self.stats = Stats()
        self.metrics = metrics or Metrics()
        self.in_flight: Sequence[queue.Entry] = []  # the batch being handled (leases renewed)
        self.ingested = 0  # change records moved into the queue by this worker
        self._analyzed = 0
        base = governor.PLANS[tuning.plan]
        limits = governor.Limits(
            tuning.complexity_per_minute or base.complexity_per_minute,
            tuning.requests_per_minute or base.requests_per_minute,
        )
        self.governor = governor.Governor(
            pool, limits, max_wait=tuning.max_rate_wait, on_wait=self.metrics.rate_wait.inc
        )
        if client is not None:
            client.on_reply = self._on_reply

    async def _on_reply(self, reply: monday.Reply) -> None:
        self.metrics.requests.labels("200", "").inc()
        await self.governor.observe(reply)

    @property
    def active_tables(self) -> list[int]:
        """Tables whose entries can be worked now: a board is set and Monday is configured."""
        if self.client is None:
            return []
        return [t.id for t in self.tables.values() if t.mapping.board_id]

    async def run_once(self) -> int:
        """Ingest change records, then claim and handle one batch; returns entries handled."""
        tuning = self.settings.tuning
        async with self.pool.acquire() as conn:
            self.ingested += await queue.ingest(conn, max(1000, tuning.batch_size))
            if self.ingested - self._analyzed >= ANALYZE_EVERY:
                # A backlog grew since the queue's statistics were taken: without fresh ones
                # the claim query sorts the whole queue (measured: 40 ms a claim instead of 1
                # at 200,000 entries), and autovacuum may be off or late.
                self._analyzed = self.ingested
                await conn.execute("ANALYZE npd_sync.queue")
            active = self.active_tables
            if not active or await self.governor.paused_for() > 0:
                return 0
            entries = await queue.claim(
                conn, active, limit=tuning.batch_size, listener_id=self.listener_id,
                lease_seconds=tuning.lease_seconds,
            )  # fmt: skip
        if entries:
            self.in_flight = entries
            try:
                await self.handle(entries)
            except BaseException:
                # Don't leave the batch leased for lease_seconds: let it be retried now.
                await asyncio.shield(self._release(entries))
                raise
            finally:
                self.in_flight = []
        return len(entries)

    async def _release(self, entries: Sequence[queue.Entry]) -> None:
        with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
            async with self.pool.acquire(timeout=10) as conn:
                await queue.release_leases(conn, self.listener_id, entries)

    async def handle(self, entries: Sequence[queue.Entry]) -> None:
        """Push a claimed batch to Monday and record the outcome of each entry."""
        started = time.perf_counter()
        by_table: dict[int, list[queue.Entry]] = defaultdict(list)
        for entry in entries:
            by_table[entry.table_id].append(entry)
        async with self.pool.acquire() as conn:
            loaded = {
                table_id: await rows.load(conn, self.tables[table_id], [e.key for e in group])
                for table_id, group in by_table.items()
            }
        plans = {
            table_id: [
                plan.plan(e, loaded[table_id].get(e.key), self.tables[table_id].mapping)
                for e in group
            ]
            for table_id, group in by_table.items()
        }
        pushed = await asyncio.gather(
            *(self._push(self.tables[table_id], ps) for table_id, ps in plans.items())
        )
        decisions = [d for table_decisions in pushed for d in table_decisions]
        await self._record(decisions)
        self._count(decisions, time.perf_counter() - started)

    async def _push(self, table: rows.Table, plans: Sequence[plan.Plan]) -> list[plan.Decision]:
        """Do the Monday work of one board's plans; one decision per plan."""
        assert self.client is not None
        assert table.mapping.board_id is not None
        board = table.mapping.board_id
        item: dict[str, str | None] = {p.entry.key: p.item_id for p in plans}
        failures: dict[str, list[errors.MondayError]] = defaultdict(list)

        found: dict[str, list[str]] = {}
        finds = [p.entry.key for p in plans if p.push == "find" and p.error is None]
        if finds and table.mapping.npd_id_column:
            try:
                async with self.governor.request(None, 1):
                    found = await self.client.find_items(board, table.mapping.npd_id_column, finds)
                self.stats.requests += 1
            except errors.MondayError as exc:
                await self._note_request_error(exc)
                for key in finds:
                    failures[key].append(exc)

        ready = [p for p in plans if p.error is None and not failures[p.entry.key]]
        ops = plan.operations(table.mapping, ready, found)

        size = self.settings.tuning.batch_size
        while ops:
            granted = 0
            try:
                # The governor may grant fewer operations than asked: what the budget holds.
                async with self.governor.request(board, min(size, len(ops))) as granted:
                    results = await self.client.mutate(board, ops[:granted])
                self.stats.requests += 1
            except errors.MondayError as exc:
                await self._note_request_error(exc)
                stop = exc.kind in (errors.Kind.RATE_LIMITED, errors.Kind.BLOCKED)
                # Don't send the rest into the same wall: they wait too.
                granted = len(ops) if stop or not granted else granted
                results = [monday.Result(op, None, exc) for op in ops[:granted]]
            for result in results:
                self._apply(result, item, failures)
            ops = ops[granted:]

        return [
            plan.decide(
                p, item[p.entry.key], plan.worst(failures[p.entry.key]), self.policy, self.rng
            )
            for p in plans
        ]

    @staticmethod
    def _apply(
        result: monday.Result,
        item: dict[str, str | None],
        failures: dict[str, list[errors.MondayError]],
    ) -> None:
        op, error = result.op, result.error
        if isinstance(op, monday.Archive | monday.Delete):
            # Already gone is what we wanted.
            if error is not None and error.kind is not errors.Kind.ITEM_GONE:
                failures[op.key].append(error)
            return
        if error is None:
            item[op.key] = result.item_id
            return
        failures[op.key].append(error)
        if error.kind is errors.Kind.ITEM_GONE:
            item[op.key] = None

    async def _note_request_error(self, exc: errors.MondayError) -> None:
        self.metrics.requests.labels(str(exc.status or ""), exc.code or exc.kind.value).inc()
        with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
            await self.governor.pause(exc)
        level = logging.ERROR if exc.kind is errors.Kind.BLOCKED else logging.WARNING
        log.log(level, "monday.request_failed", extra={"kind": exc.kind.value, "error": str(exc)})

    async def _record(self, decisions: Sequence[plan.Decision]) -> None:
        """Write back to the rows and complete the entries, in one transaction."""
        writes: dict[int, list[rows.WriteBack]] = defaultdict(list)
        for d in decisions:
            if d.status is not None:
                c = d.completion
                writes[c.entry.table_id].append(
                    rows.WriteBack(c.entry.key, c.monday_id, d.status, d.error)
                )
        # The write-back must land even if we are being cancelled, or a create is redone; and
        # it is worth waiting for a database that restarts (a few seconds) rather than leaving
        # the batch to be redone after its lease runs out.
        deadline = time.monotonic() + self.settings.tuning.lease_seconds / 2
        delay = 0.2
        while True:
            try:
                await asyncio.shield(self._commit(decisions, writes))
                return
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                pass  # cannot happen by design (key order, SKIP LOCKED); cheap insurance
            except (*db.ERRORS, asyncpg.CannotConnectNowError) as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning(
                    "sync.write_back_retry", extra={"error": str(exc) or type(exc).__name__}
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _commit(
        self, decisions: Sequence[plan.Decision], writes: dict[int, list[rows.WriteBack]]
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            written: set[tuple[int, str]] = set()
            for table_id, table_writes in writes.items():
                keys = await rows.write_back(conn, self.tables[table_id], table_writes)
                written.update((table_id, key) for key in keys)
            completions = []
            for d in decisions:
                c = d.completion
                if (
                    d.status is not None
                    and c.outcome is queue.Outcome.DONE
                    and (c.entry.table_id, c.entry.key) not in written
                ):
                    # The row is locked by the application or was just deleted: keep the entry
                    # (and the item id we learnt) and come back to it.
                    c = queue.Completion(
                        c.entry, queue.Outcome.WAIT, "row busy, write-back postponed",
                        self.policy.write_back_retry, c.monday_id, c.uncertain,
                    )  # fmt: skip
                completions.append(c)
            await queue.complete(conn, self.listener_id, completions)

    def _count(self, decisions: Sequence[plan.Decision], seconds: float) -> None:
        stats = self.stats
        counts: dict[str, int] = defaultdict(int)
        now = dt.datetime.now(dt.UTC)
        failed = []
        for d in decisions:
            c = d.completion
            outcome = OUTCOME_NAMES[c.outcome]
            if c.outcome is queue.Outcome.DONE and d.status != "SYNCED":
                outcome = "skipped"
            counts[outcome] += 1
            self.metrics.changes.labels(self.tables[c.entry.table_id].name, outcome).inc()
            if outcome == "synced":
                self.metrics.latency.observe((now - c.entry.changed_at).total_seconds())
            elif outcome == "failed":
                failed.append(c)
        stats.synced += counts["synced"]
        stats.skipped += counts["skipped"]
        stats.failed += counts["failed"]
        stats.retried += counts["retried"]
        stats.waited += counts["waited"]
        level = logging.INFO if failed or counts["retried"] else logging.DEBUG
        log.log(
            level,
            "sync.batch",
            extra={"rows": len(decisions), **counts, "ms": round(seconds * 1000)},
        )
        # A few rows by name, not one line per row: a poison batch must not flood the log.
        for c in failed[:3]:
            log.warning(
                "sync.row_failed",
                extra={
                    "table": self.tables[c.entry.table_id].name,
                    "key": c.entry.key,
                    "error": c.error,
                },
            )
        if len(failed) > 3:
            log.warning("sync.rows_failed", extra={"more": len(failed) - 3})


OUTCOME_NAMES = {
    queue.Outcome.DONE: "synced",
    queue.Outcome.RETRY: "retried",
    queue.Outcome.FAILED: "failed",
    queue.Outcome.WAIT: "waited",
}
