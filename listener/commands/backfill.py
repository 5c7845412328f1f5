"""`npd-sync backfill`: bring rows that existed before the triggers onto Monday.

There is no second sync path: the rows go into the queue the triggers feed, and the same
worker (leases, governor, Idempotency-Key, npd_id lookups) pushes them, beside any listener
that runs meanwhile. Rows are queued a page at a time in key order, so memory stays flat
whatever the table's size. Queued entries are marked uncertain: an item already on the board
with the row's npd_id (an earlier import) is adopted instead of being created again.
Interrupting loses nothing: what was queued stays queued, and a re-run queues what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from listener import db, rows
from listener.engine import plans, queue, worker
from listener.settings import ConfigError, Settings
from listener.text import counted

log = logging.getLogger("npd_sync.backfill")

PAGE = 5_000  # rows queued per statement
SAMPLES = 3  # payloads --dry-run shows per table
WAIT_FOR_RETRIES = 60.0  # seconds: wait for retries due that soon, leave later ones

Echo = Callable[[str], None]


@dataclass
class Report:
    """What a backfill did."""

    queued: dict[str, int] = field(default_factory=dict)
    synced: int = 0
    failed: int = 0
    left: int = 0  # still pending at the end: retries due later, or Monday asked to wait


def choose(tables: Sequence[rows.Table], name: str | None) -> list[rows.Table]:
    """The tables to backfill: the one named, or every table with a board."""
    if name is not None:
        return [t for t in tables if t.name == name]
    return [t for t in tables if t.mapping.board_id]


async def show_dry_run(pool: asyncpg.Pool, tables: Sequence[rows.Table], *, everything: bool,
                  echo: Echo) -> None:  # fmt: skip
    """Say how many rows each table would push, with a few sample payloads."""
    async with pool.acquire() as conn:
        for table in tables:
            count = int(await conn.fetchval(table.backlog_sql, everything))
            echo(f"{table.name}: {counted(count, 'row')} to push")
            keys = [
                r[0] for r in await conn.fetch(table.backlog_keys_sql, None, SAMPLES, everything)
            ]
            loaded = await rows.load(conn, table, keys)
            for key in keys:
                row = loaded[key]
                entry = queue.Entry(table.id, key, 1, 1, 0, True, None, (), dt.datetime.now(dt.UTC))
                p = plans.plan(entry, row, table.mapping, inbound=False)
                if isinstance(p, plans.Claim):
                    echo(f"  {key}: item {p.item_id}, set by the application: checked first")
                    continue
                assert isinstance(p, plans.Push)  # not read first: inbound is off
                if p.error is not None:
                    echo(f"  {key}: cannot be sent: {p.error}")
                    continue
                verb = "update item " + str(p.item_id) if p.item_id else "create (or adopt)"
                payload = json.dumps({"name": p.name, **(p.values or {})}, ensure_ascii=False)
                echo(f"  {key}: {verb} {payload}")


async def run(
    settings: Settings, *, table: str | None, everything: bool, dry_run: bool, echo: Echo
) -> bool:
    """`npd-sync backfill`: push existing rows that need it; False when some ended FAILED."""
    if table is not None:
        settings.table(table)  # an unknown name is a ConfigError (exit 2)
    pool = await db.create_pool(settings.require_database(), application_name="npd-sync backfill")
    try:
        async with pool.acquire() as conn:
            tables = choose(await rows.load_tables(conn, settings), table)
        if not tables:
            raise ConfigError("no table to backfill: set a board id (MONDAY_<TABLE>_BOARD_ID)")
        if dry_run:
            await show_dry_run(pool, tables, everything=everything, echo=echo)
            return True
        if settings.api_key is None:
            raise ConfigError("MONDAY_API_KEY is not set: backfill needs to reach Monday")
        report = await push(settings, pool, tables, everything=everything, echo=echo)
    finally:
        await pool.close()
    echo(f"done: {report.synced} synced, {report.failed} failed, {report.left} left pending")
    if report.left:
        echo("the rows left pending are retried by `npd-sync listen` (or the next backfill)")
    return report.failed == 0


async def push(
    settings: Settings,
    pool: asyncpg.Pool,
    tables: Sequence[rows.Table],
    *,
    everything: bool,
    echo: Echo,
) -> Report:
    """Queue the tables' rows that need a push, then work the queue until they are done: the
    tables other tables' connect-boards columns reference first, so that the others' links
    go with their first push."""
    report = Report()
    for stage in stages(tables):
        await _push(settings, pool, stage, report, everything=everything, echo=echo)
    return report


def stages(tables: Sequence[rows.Table]) -> list[list[rows.Table]]:
    """The tables in the order a backfill takes them: those referencing none of the others,
    then the others."""
    ids = {t.id for t in tables}
    first = [t for t in tables if not (set(t.references.values()) - {t.id}) & ids]
    rest = [t for t in tables if t not in first]
    return [stage for stage in (first or rest, rest if first else []) if stage]


async def _push(
    settings: Settings,
    pool: asyncpg.Pool,
    tables: Sequence[rows.Table],
    report: Report,
    *,
    everything: bool,
    echo: Echo,
) -> None:
    queued = {}
    async with pool.acquire() as conn:
        for table in tables:
            queued[table.name] = await _queue_table(conn, table, everything)
        await queue.analyze(conn)  # so that claims use its index
    report.queued.update(queued)
    total = sum(queued.values())
    echo(", ".join(f"{name}: {n} queued" for name, n in queued.items()) or "nothing")
    ids = [t.id for t in tables]
    progress = Progress(total, echo)
    shown = asyncio.create_task(_show_progress(pool, ids, progress))
    try:
        async with worker.open_worker(settings, pool, tables, f"backfill:{id(report):x}") as w:
            while True:
                await w.drain()
                pending, due_in = await _left(pool, ids)
                paused = await w.governor.paused_for()
                if pending == 0 or (not paused and (due_in is None or due_in > WAIT_FOR_RETRIES)):
                    break
                # Monday asked to wait, or retries fall due soon (or another listener holds
                # them).
                await asyncio.sleep(min(max(paused, due_in or 0.0, 0.05), 5.0))
    finally:
        shown.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await shown
    progress.done(total - min(total, pending))
    report.synced += w.stats.synced
    report.failed += w.stats.failed
    report.left += pending


async def _left(pool: asyncpg.Pool, table_ids: Sequence[int]) -> tuple[int, float | None]:
    async with pool.acquire() as conn:
        return await queue.backlog(conn, table_ids)


async def _show_progress(pool: asyncpg.Pool, table_ids: Sequence[int], progress: Progress) -> None:
    while True:
        await asyncio.sleep(progress.every)
        with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
            pending, _ = await _left(pool, table_ids)
            progress.show(progress.total - min(progress.total, pending))


async def _queue_table(conn: db.Conn, table: rows.Table, everything: bool) -> int:
    queued, last = 0, None
    while True:
        keys = [r[0] for r in await conn.fetch(table.backlog_keys_sql, last, PAGE, everything)]
        if not keys:
            return queued
        # Uncertain: an item already carrying the row's npd_id (an earlier import) is adopted.
        await queue.arrive(conn, [queue.Arrival(table.id, key, uncertain=True) for key in keys])
        queued += len(keys)
        last = keys[-1]


class Progress:
    """A progress line with rate and ETA on a terminal; a log line every 10 s otherwise."""

    def __init__(self, total: int, echo: Echo) -> None:
        self.total = total
        self.echo = echo
        self.tty = sys.stderr.isatty()
        self.every = 0.2 if self.tty else 10.0  # seconds between two lines
        self.started = time.monotonic()

    def show(self, done: int) -> None:
        now = time.monotonic()
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed
        eta = (self.total - done) / rate if rate > 0 else None
        if self.tty:
            share = done / self.total if self.total else 1.0
            bar = "#" * int(share * 30)
            line = f"\r[{bar:<30}] {done}/{self.total} {rate:,.0f} rows/s"
            line += f"  ETA {_duration(eta)}" if eta is not None else ""
            sys.stderr.write(line + "   ")
            sys.stderr.flush()
        else:
            log.info(
                "backfill.progress",
                extra={"done": done, "total": self.total, "rate": round(rate, 1),
                       "eta_s": None if eta is None else round(eta)},
            )  # fmt: skip

    def done(self, done: int) -> None:
        self.show(done)
        if self.tty:
            sys.stderr.write("\n")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
