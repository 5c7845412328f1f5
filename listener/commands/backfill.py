"""`npd-sync backfill`: bring rows that existed before the triggers onto Monday.

There is no second sync path: the rows go into the queue the triggers feed, and the same
worker (leases, governor, Idempotency-Key, npd_id lookups) pushes them, beside any listener
that runs meanwhile. Rows are queued a page at a time in key order, so memory stays flat
whatever the table's size. Queued entries are marked uncertain: an item already on the board
with the row's npd_id (an earlier import) is adopted instead of being created again.
Interrupting loses nothing: what was queued stays queued, and a re-run queues what is left.

Before it starts, a backfill says what it needs of Monday's daily call limit: the rows per
table, the requests they take as the engine batches them, the calls left today and so the time
at the day's pace (`estimate`, pure). Its progress bar shows today's calls beside the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import asyncpg
from tqdm import tqdm

from listener import db, rows, text
from listener.engine import plans, queue, worker
from listener.monday import api, daily, errors, governor, ledger
from listener.settings import ConfigError, Settings
from listener.text import counted

log = logging.getLogger("npd_sync.backfill")

PAGE = 5_000  # rows queued per statement
SAMPLES = 3  # payloads --dry-run shows per table
WAIT_FOR_RETRIES = 60.0  # seconds: wait for retries due that soon, leave later ones
# Off a terminal, the progress goes to the log as plain text: no bar, no carriage returns.
LOG_FORMAT = "{n_fmt}/{total_fmt} rows [{elapsed}<{remaining}, {rate_fmt}{postfix}]"

Echo = Callable[[str], None]


@dataclass
class Report:
    """What a backfill did."""

    queued: dict[str, int] = field(default_factory=dict)
    synced: int = 0
    failed: int = 0
    left: int = 0  # still pending at the end: retries due later, or Monday asked to wait


@dataclass(frozen=True, slots=True)
class Backlog:
    """One table's rows that a backfill pushes."""

    table: str
    creates: int  # rows with no item yet: created (looked up by npd_id first)
    updates: int  # rows with an item: updated
    reads: int = 0  # of the updates, those whose item is read first (inbound on)
    lookups: bool = True  # the board has an npd_id column: creates are looked up first

    @property
    def rows(self) -> int:
        """Every row to push."""
        return self.creates + self.updates


def requests(backlog: Backlog, batch_size: int) -> int:
    """The requests a table's backlog takes as the engine batches it: a mutation request a
    batch of `batch_size` rows, a lookup a batch of creates, a read a page of items read
    first. A tighter complexity budget may split some requests further."""
    mutations = math.ceil(backlog.rows / batch_size)
    lookups = math.ceil(backlog.creates / batch_size) if backlog.lookups else 0
    reads = math.ceil(backlog.reads / min(batch_size, api.ITEMS_PAGE))
    return mutations + lookups + reads


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a backfill needs of Monday's daily calls, said before it starts."""

    backlogs: tuple[Backlog, ...]
    batch_size: int
    calls: int  # the requests it takes
    limit: daily.Limit | None  # None: no daily limit known, calls are not paced
    span: daily.Span | None  # the time at the day's pace (None: not paced)
    now: dt.datetime


def estimate(
    backlogs: Sequence[Backlog],
    batch_size: int,
    limit: daily.Limit | None,
    spent: float,
    now: dt.datetime,
) -> Estimate:
    """The calls the backlogs take and, under the day's `limit` of which `spent` are used,
    the time they take at the day's pace."""
    calls = sum(requests(b, batch_size) for b in backlogs)
    span = daily.span(calls, limit.calls, spent, now) if limit is not None else None
    return Estimate(tuple(backlogs), batch_size, calls, limit, span, now)


def backlog_line(backlog: Backlog) -> str:
    """'contacts: 92 rows to push (90 to create, 2 to update)'."""
    return (
        f"{backlog.table}: {counted(backlog.rows, 'row')} to push "
        f"({backlog.creates:,} to create, {backlog.updates:,} to update)"
    )


def calls_line(e: Estimate) -> str:
    """The calls a backfill takes, today's left, and how long they last at the day's pace."""
    line = f"about {counted(e.calls, 'call')} to Monday ({e.batch_size:,} rows a request)"
    if e.limit is None or e.span is None:
        return line + "; no daily limit known ([tuning] daily_calls or plan): not paced"
    s = e.span
    line += f"; {s.left:,.0f} of {e.limit.calls:,} calls left today ({e.limit.source})"
    if s.days > 1:
        ends = e.now + dt.timedelta(seconds=s.seconds)
        return line + (
            f": more than today's, so it spans {s.days} days at the day's pace, going on after "
            f"00:00 UTC; done about {text.when(ends)}"
        )
    if s.seconds < 1:
        return line + ": within the day's burst, not slowed by the pace"
    return line + f": about {text.age(s.seconds)} at the day's pace"


def estimate_lines(e: Estimate) -> list[str]:
    """The estimate as backfill prints it: the rows per table, then the calls and the time."""
    return ["; ".join(backlog_line(b) for b in e.backlogs) or "nothing to push", calls_line(e)]


async def backlogs(
    conn: db.Conn, tables: Sequence[rows.Table], *, everything: bool, inbound: bool
) -> list[Backlog]:
    """Each table's rows a backfill pushes, as creates and updates."""
    found = []
    for table in tables:
        row = await conn.fetchrow(table.backlog_sql, everything)
        assert row is not None
        creates = int(row["creates"])
        found.append(
            Backlog(
                table.name,
                creates,
                int(row["rows"]) - creates,
                reads=int(row["receiving"]) if inbound else 0,
                lookups=bool(table.mapping.npd_id_column),
            )
        )
    return found


async def estimate_for(
    conn: db.Conn, settings: Settings, tables: Sequence[rows.Table], *, everything: bool
) -> Estimate:
    """The estimate for these tables, under the day's limit and usage as the ledger holds
    them (the figures `status` shows)."""
    found = await backlogs(conn, tables, everything=everything, inbound=settings.inbound)
    use = await ledger.day_use(conn)
    day = governor.day_view(use, governor.limits_for(settings.tuning))
    return estimate(found, settings.tuning.batch_size, day.limit, day.used, use.now)


async def _learn_day(settings: Settings, pool: asyncpg.Pool) -> bool:
    """Ask Monday for the day's limit and usage (one call) before spending many, unless a
    listener asked lately; whether Monday answered."""
    tuning = settings.tuning
    meter = governor.Governor(pool, governor.limits_for(tuning), max_wait=tuning.max_rate_wait)
    if not await meter.day_due(after=0):
        return False
    # Monday paused or away: the estimate stands on the figures known, the push waits as usual.
    with contextlib.suppress(errors.MondayError):
        async with api.client(settings) as client:
            return await meter.learn_day(client) is not None
    return False


def choose(tables: Sequence[rows.Table], name: str | None) -> list[rows.Table]:
    """The tables to backfill: the one named, or every table with a board."""
    if name is not None:
        return [t for t in tables if t.name == name]
    return [t for t in tables if t.mapping.board_id]


async def show_dry_run(pool: asyncpg.Pool, settings: Settings, tables: Sequence[rows.Table],
                       *, everything: bool, echo: Echo) -> None:  # fmt: skip
    """Say how many rows each table would push, with a few sample payloads, and the calls."""
    async with pool.acquire() as conn:
        planned = await estimate_for(conn, settings, tables, everything=everything)
        for table, backlog in zip(tables, planned.backlogs, strict=True):
            echo(backlog_line(backlog))
            keys = [
                r[0] for r in await conn.fetch(table.backlog_keys_sql, None, SAMPLES, everything)
            ]
            loaded = await rows.load(conn, table, keys)
            for key in keys:
                echo("  " + _sample(table, key, loaded.get(key)))
    echo(calls_line(planned))


def _sample(table: rows.Table, key: str, row: rows.Row | None) -> str:
    entry = queue.Entry(table.id, key, 1, 1, 0, True, None, (), dt.datetime.now(dt.UTC))
    p = plans.plan(entry, row, table.mapping, inbound=False)
    if isinstance(p, plans.Claim):
        return f"{key}: item {p.item_id}, set by the application: checked first"
    assert isinstance(p, plans.Push)  # not read first: inbound is off
    if p.error is not None:
        return f"{key}: cannot be sent: {p.error}"
    verb = "update item " + str(p.item_id) if p.item_id else "create (or adopt)"
    payload = json.dumps({"name": p.name, **(p.values or {})}, ensure_ascii=False)
    return f"{key}: {verb} {payload}"


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
            await show_dry_run(pool, settings, tables, everything=everything, echo=echo)
            return True
        if settings.api_key is None:
            raise ConfigError("MONDAY_API_KEY is not set: backfill needs to reach Monday")
        async with pool.acquire() as conn:
            planned = await estimate_for(conn, settings, tables, everything=everything)
        if planned.calls and await _learn_day(settings, pool):
            async with pool.acquire() as conn:  # again, with Monday's figures
                planned = await estimate_for(conn, settings, tables, everything=everything)
        for line in estimate_lines(planned):
            echo(line)
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
    progress = Progress(total)
    limits = governor.limits_for(settings.tuning)
    shown = asyncio.create_task(_show_progress(pool, ids, limits, progress))
    pending = total
    try:
        async with worker.open_worker(settings, pool, tables, f"backfill:{id(report):x}") as w:
            while True:
                await w.drain()
                pending, due_in = await _left(pool, ids)
                paused = await w.governor.paused_for()
                if pending == 0 or (not paused and (due_in is None or due_in > WAIT_FOR_RETRIES)):
                    break
                # Monday asked to wait, the day's pace holds the next call, or retries fall due
                # soon (or another listener holds them).
                paced = await w.governor.next_call_in()
                await asyncio.sleep(min(max(paused, paced, due_in or 0.0, 0.05), 5.0))
    except BaseException:
        progress.close()
        raise
    finally:
        shown.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await shown
    progress.show(total - min(total, pending), await _day(pool, limits))
    progress.close()
    report.synced += w.stats.synced
    report.failed += w.stats.failed
    report.left += pending


async def _left(pool: asyncpg.Pool, table_ids: Sequence[int]) -> tuple[int, float | None]:
    async with pool.acquire() as conn:
        return await queue.backlog(conn, table_ids)


async def _day(pool: asyncpg.Pool, limits: governor.Limits) -> governor.DayView | None:
    """The day's calls as `status` shows them (None: the database did not answer)."""
    with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
        async with pool.acquire() as conn:
            return governor.day_view(await ledger.day_use(conn), limits)
    return None


async def _show_progress(
    pool: asyncpg.Pool, table_ids: Sequence[int], limits: governor.Limits, progress: Progress
) -> None:
    while True:
        await asyncio.sleep(progress.every)
        with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
            pending, _ = await _left(pool, table_ids)
            progress.show(progress.total - min(progress.total, pending), await _day(pool, limits))


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


def calls_today(day: governor.DayView | None) -> str:
    """The day's calls as the progress bar shows them: 'calls today 120/1,000'."""
    if day is None:
        return "calls today ?"
    if day.limit is None:
        return f"calls today {day.used:,.0f} (not paced)"
    return f"calls today {day.used:,.0f}/{day.limit.calls:,}"


class Progress:
    """Backfill's progress: rows done of the total, rate, ETA and the day's calls. On a
    terminal a tqdm bar; otherwise (a log, a pipe) the same figures as a log line every 10 s,
    plain text with no carriage return or escape."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = 0.5 if self.tty else 10.0  # seconds between two looks
        self.started = time.monotonic()
        self.bar = tqdm(
            total=total, unit="row", file=self.stream, disable=not self.tty,
            mininterval=self.every, dynamic_ncols=True,
        )  # fmt: skip

    def show(self, done: int, day: governor.DayView | None) -> None:
        """Rows done so far, and the day's calls."""
        postfix = calls_today(day)
        if self.tty:
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(done - self.bar.n)
            return
        line = tqdm.format_meter(
            done, self.total, time.monotonic() - self.started, unit="row",
            postfix=postfix, bar_format=LOG_FORMAT,
        )  # fmt: skip
        extra: dict[str, object] = {"done": done, "total": self.total, "progress": line}
        if day is not None:
            extra |= {"calls_today": round(day.used, 1),
                      "calls_limit": day.limit.calls if day.limit else None}  # fmt: skip
        log.info("backfill.progress", extra=extra)

    def close(self) -> None:
        """End the bar's line (on a terminal)."""
        self.bar.close()
