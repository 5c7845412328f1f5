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
import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from listener import db, monday, plan, queue, rows, sql, worker
from listener.settings import Settings

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


async def dry_run(pool: asyncpg.Pool, tables: Sequence[rows.Table], *, everything: bool,
                  echo: Echo) -> None:  # fmt: skip
    """Say how many rows each table would push, with a few sample payloads."""
    async with pool.acquire() as conn:
        for table in tables:
            count = int(await conn.fetchval(table.backlog_sql, everything))
            echo(f"{table.name}: {count} row{'' if count == 1 else 's'} to push")
            keys = [
                r[0] for r in await conn.fetch(table.backlog_keys_sql, None, SAMPLES, everything)
            ]
            loaded = await rows.load(conn, table, keys)
            for key in keys:
                row = loaded[key]
                entry = queue.Entry(table.id, key, 1, 1, 0, True, None, (), dt.datetime.now(dt.UTC))
                p = plan.plan(entry, row, table.mapping)
                if p.error is not None:
                    echo(f"  {key}: cannot be sent: {p.error}")
                    continue
                verb = "update item " + str(p.item_id) if p.item_id else "create (or adopt)"
                payload = json.dumps({"name": p.name, **(p.values or {})}, ensure_ascii=False)
                echo(f"  {key}: {verb} {payload}")


async def run(settings: Settings, pool: asyncpg.Pool, client: monday.Client,
              tables: Sequence[rows.Table], *, everything: bool, echo: Echo) -> Report:  # fmt: skip
    """Queue the tables' rows that need a push, then work the queue until they are done."""
    report = Report()
    async with pool.acquire() as conn:
        for table in tables:
            report.queued[table.name] = await _queue_table(conn, table, everything)
        await conn.execute("ANALYZE npd_sync.queue")  # so that claims use its index
    total = sum(report.queued.values())
    echo(", ".join(f"{name}: {n} queued" for name, n in report.queued.items()) or "nothing")
    w = worker.Worker(settings, pool, client, tables, f"backfill:{id(report):x}")
    ids = [t.id for t in tables]
    progress = Progress(total, echo)
    while True:
        handled = await w.run_once()
        async with pool.acquire() as conn:
            left = await conn.fetchrow(sql.query("backlog_left"), ids)
        assert left is not None
        progress.show(total - min(total, left["pending"]))
        if handled:
            continue
        paused = await w.governor.paused_for()
        due_in = left["due_in"]
        if left["pending"] == 0 or (not paused and (due_in is None or due_in > WAIT_FOR_RETRIES)):
            break
        # Monday asked to wait, or retries fall due soon (or another listener holds them).
        await asyncio.sleep(min(max(paused, due_in or 0.0, 0.05), 5.0))
    progress.done()
    report.synced, report.failed = w.stats.synced, w.stats.failed
    report.left = int(left["pending"])
    return report


async def _queue_table(conn: db.Conn, table: rows.Table, everything: bool) -> int:
    queued, last = 0, None
    while True:
        keys = [r[0] for r in await conn.fetch(table.backlog_keys_sql, last, PAGE, everything)]
        if not keys:
            return queued
        await queue.enqueue(conn, table.id, keys)
        queued += len(keys)
        last = keys[-1]


class Progress:
    """A progress line with rate and ETA on a terminal; a log line every 10 s otherwise."""

    def __init__(self, total: int, echo: Echo) -> None:
        self.total = total
        self.echo = echo
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.shown = 0.0
        self.done_count = 0

    def show(self, done: int) -> None:
        self.done_count = done
        now = time.monotonic()
        if now - self.shown < (0.2 if self.tty else 10.0):
            return
        self.shown = now
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

    def done(self) -> None:
        self.shown = 0.0
        self.show(self.done_count)
        if self.tty:
            sys.stderr.write("\n")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
