"""`npd-sync listen`: drain on start, then on every wake-up, until asked to stop.

The listener process puts the layers together: the capture's wake-up (`capture.notify`), the
engine (`engine.worker`, with its governor and Monday client), metrics and health.
One stop event ends everything. Side tasks (the LISTEN connection, heartbeat, gauges, log
summaries, the per-minute history the console charts, reconciliation, vacuum) run beside the
drain loop and are supervised: an error in one round of a side task is logged and the task
goes on; a side task that ends is a bug, logged, and it stops the listener with exit code 1 so
that its supervisor (systemd, the container runtime) starts a fresh one. On stop, the batch in
flight gets `shutdown_grace` seconds to finish; whatever is still held is released.

Health (/healthz, `npd_sync_stalled`, and the `problem` each listener writes with its heartbeat
for `npd-sync status`): the LISTEN connection is up, the drain loop goes round, and the queue
moves: the oldest change still to be synced is not older than `stall_after` while no listener
finished an entry (synced or failed) for as long, whatever the cause (Monday's pause or outage,
a database error, a row retried again and again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiohttp import web

from listener import attempts, console, db, fault, listeners, metrics, rows, throughput
from listener.capture import notify
from listener.engine import queue, worker
from listener.inbound import inbox, receiver, reconcile
from listener.metrics import Metrics
from listener.monday import governor, ledger
from listener.redact import redact
from listener.settings import Settings, cannot_listen, plain_http_elsewhere, shown_url

T = TypeVar("T")

log = logging.getLogger("npd_sync.daemon")

# Database errors that mean "try again in a moment", not "give up". Statement errors
# (PostgresError) count too: a failover can make a server briefly read-only.
DB_ERRORS = (*db.ERRORS, asyncpg.PostgresError)
SUMMARY = 10.0  # seconds between summary log lines (only when there was work)
EVENTS_KEPT = 3 * 86400.0  # seconds webhook deliveries are kept (Monday retries for 30 min)
HEARTBEAT = 10.0  # seconds between heartbeats (status: alive, and its problem)
GAUGES = 5.0  # seconds between reads of the queue's depth and of the oldest pending change
# Seconds between two looks at whether the day's figures are due from Monday (one statement;
# one listener asks, at most 1% of the day's calls: see Governor.day_due).
DAY_EVERY = 5.0
ALIVE = 30.0  # a listener whose heartbeat is older is gone


class SideTaskFailed(Exception):
    """A side task of the listener ended; the listener stopped (exit code 1)."""


async def listen(
    settings: Settings,
    *,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    webhook_port: int | None = None,
    webhook_host: str = "127.0.0.1",
    console_options: console.Options | None = None,
) -> None:
    """`npd-sync listen`: run the listener until SIGTERM or SIGINT."""
    listener = Daemon(
        settings,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        webhook_port=webhook_port,
        webhook_host=webhook_host,
        console_options=console_options,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, listener.request_stop)
    await listener.run()


class Daemon:
    """The listener process: one per `npd-sync listen`."""

    def __init__(
        self,
        settings: Settings,
        *,
        shutdown_grace: float = 30.0,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        webhook_port: int | None = None,
        webhook_host: str = "127.0.0.1",
        console_options: console.Options | None = None,
        stall_after: float | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.console_options = console_options
        self.console: console.Served | None = None  # the console, once served
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self.webhook_port = webhook_port
        self.webhook_host = webhook_host
        self.last_cycle = time.monotonic()  # when the drain loop last went round (health)
        tuning = settings.tuning
        # Idle, the loop goes round at least every poll interval; a batch is bounded by the
        # request timeout (and Monday's pauses by max_rate_wait).
        self.allowed = tuning.poll_interval + 2 * tuning.request_timeout + tuning.max_rate_wait + 30
        self.stall_after = self.allowed if stall_after is None else stall_after
        self.oldest_pending: float | None = None  # seconds; from the gauges task
        self.paused: str | None = None  # why Monday paused every listener, while it does
        self.last_error: str | None = None  # why the last drain failed, until one succeeds
        self.pending_error: str | None = None  # the latest error of a pending entry
        self.others_finished: float | None = None  # monotonic: another listener, by heartbeats
        self.dsn = settings.require_database()
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stop = asyncio.Event()
        self.shutdown_grace = shutdown_grace
        self.waker = notify.Waker(self.dsn)
        self.worker: worker.Worker | None = None
        self.metrics_runner: web.AppRunner | None = None
        self.ready = asyncio.Event()  # set once the first drain is done (tests wait on it)
        self._db_failures = 0
        self._db_logged = 0.0
        self._summarised = (0, 0, 0, 0, 0, 0)
        self._vacuumed = 0

    def request_stop(self) -> None:
        """Finish the batch in flight, then exit."""
        self.stop.set()
        self.waker.wake()

    async def run(self) -> None:
        """Run until `request_stop`; raises install.NotInstalled if the database is not set up,
        SideTaskFailed if a side task ended."""
        started = await self._connect()
        if started is None:
            return  # asked to stop before the database could be reached
        pool, tables = started
        try:
            async with worker.open_worker(
                self.settings, pool, tables, self.id, metrics=self.metrics
            ) as w, contextlib.AsyncExitStack() as stack:  # fmt: skip
                self.worker = w
                if self.metrics_port is not None:
                    self.metrics_runner = await _bound(
                        "--metrics-port", self.metrics_host, self.metrics_port,
                        metrics.serve(
                            self.metrics, self.healthy, self.metrics_host, self.metrics_port
                        ),
                    )  # fmt: skip
                    stack.push_async_callback(self.metrics_runner.cleanup)
                if self.webhook_port is not None and self.settings.public_url is not None:
                    signing = self.settings.signing_secret
                    hooks = receiver.Receiver(
                        pool,
                        public_url=self.settings.public_url,
                        boards=[t.mapping.board_id for t in tables if t.mapping.board_id],
                        signing_secret=signing.get_secret_value() if signing else None,
                        metrics=self.metrics,
                        on_stored=self.waker.wake,
                    )
                    runner = await _bound(
                        "--webhook-port", self.webhook_host, self.webhook_port,
                        receiver.serve(hooks, self.webhook_host, self.webhook_port),
                    )  # fmt: skip
                    stack.push_async_callback(runner.cleanup)
                if (options := self.console_options) is not None:
                    self.console = await _bound(
                        "--console-port", options.host, options.port,
                        console.serve(self.settings, options),
                    )  # fmt: skip
                    stack.push_async_callback(self.console.cleanup)
                self._announce(tables, has_client=w.client is not None)
                side = [
                    asyncio.create_task(self.waker.run(), name="notify"),
                    asyncio.create_task(self._heartbeats(pool), name="heartbeat"),
                    asyncio.create_task(self._every(GAUGES, self._gauge, pool), name="gauges"),
                    asyncio.create_task(self._every(SUMMARY, self._summary, pool), name="summary"),
                    asyncio.create_task(self._every(60.0, self._vacuum, pool), name="vacuum"),
                    asyncio.create_task(self._every(60.0, self._history, pool), name="history"),
                ]
                if w.client is not None:
                    side.append(
                        asyncio.create_task(self._every(DAY_EVERY, self._day, pool), name="day")
                    )
                interval = self.settings.tuning.reconcile_interval
                if self.settings.inbound and w.client is not None and interval > 0:
                    side.append(
                        asyncio.create_task(
                            self._every(min(interval, 60.0), self._reconcile, pool),
                            name="reconcile",
                        )
                    )
                loop = asyncio.create_task(self._loop(), name="drain")
                try:
                    await self._until_stopped(loop, side)
                finally:
                    for task in side:
                        task.cancel()
                    await asyncio.gather(*side, return_exceptions=True)
                    with contextlib.suppress(*DB_ERRORS):
                        await self._history(pool)
                    with contextlib.suppress(*DB_ERRORS):
                        async with pool.acquire(timeout=5) as conn:
                            await queue.release(conn, self.id)
                            await listeners.forget(conn, self.id)
        finally:
            await pool.close()
        log.info("listener.stopped", extra={"listener": self.id})

    async def _connect(self) -> tuple[asyncpg.Pool, list[rows.Table]] | None:
        """The pool and the tables, waiting for the database for as long as it takes.

        Only errors that a wait can cure are waited out (server down, starting, full); a
        wrong password or database name is a configuration error and ends the command.
        """
        delay = 0.5
        while not self.stop.is_set():
            try:
                pool = await db.create_pool(self.dsn)
                try:
                    async with pool.acquire() as conn:
                        return pool, await rows.load_tables(conn, self.settings)
                except BaseException:
                    await pool.close()
                    raise
            except db.UNAVAILABLE as exc:
                self._database_failed(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)
                delay = min(delay * 2, 30.0)
        return None

    def _announce(self, tables: list[rows.Table], *, has_client: bool) -> None:
        if not has_client:
            log.warning(
                "listener.no_api_key",
                extra={
                    "detail": "MONDAY_API_KEY is not set: changes are recorded and left pending"
                },
            )
        for table in tables:
            if not table.mapping.board_id:
                log.warning(
                    "listener.no_board",
                    extra={
                        "table": table.name,
                        "detail": f"{table.mapping.board_env} is not set: changes stay pending",
                    },
                )
        url = self.settings.api_url
        log.info(
            "listener.started",
            extra={
                "listener": self.id,
                "tables": ",".join(t.name for t in tables) or "-",
                "api_url": shown_url(url),
                "api_version": self.settings.api_version,
            },
        )
        if plain_http_elsewhere(url):
            log.warning(
                "listener.insecure_api_url",
                extra={
                    "api_url": shown_url(url),
                    "detail": "plain http to another host: the API key travels unencrypted",
                },
            )

    async def _loop(self) -> None:
        """Drain, then sleep until woken; the protocol is described in listener.capture.notify."""
        assert self.worker is not None
        poll = self.settings.tuning.poll_interval
        arm_wait = 0.005
        while not self.stop.is_set():
            self.last_cycle = time.monotonic()
            await self.waker.disarm()
            if not await self._drain():
                # The database is unreachable: the notify task says so; poll again later.
                await self.waker.wait(min(poll, 1.0))
                continue
            self.ready.set()
            if self.stop.is_set():
                break
            if await self.waker.arm():
                arm_wait = 0.005
                try:
                    due = await self.worker.next_due()
                except DB_ERRORS:
                    continue
                if due == 0:
                    continue
                # Writes wake us before the timeout; so does the end of a pause Monday asked for.
                await self.waker.wait(poll if due is None else min(poll, max(due, 0.01)))
            else:
                # A writer is mid-commit, or another listener is the one waiting.
                await self.waker.wait(arm_wait)
                arm_wait = min(arm_wait * 2, poll)

    async def _until_stopped(
        self, loop: asyncio.Task[None], side: list[asyncio.Task[None]]
    ) -> None:
        """Wait for the drain loop; once stop is asked (or a side task ended), give its batch a
        grace period."""
        stopping = asyncio.create_task(self.stop.wait())
        try:
            await asyncio.wait({loop, stopping, *side}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        ended = [task for task in side if task.done()]
        for task in ended:
            error = None if task.cancelled() else task.exception()
            log.error(
                "listener.side_task_crashed",
                extra={"task": task.get_name(), "error": repr(error) if error else "returned"},
                exc_info=error,
            )
        if ended:
            self.request_stop()
        if not loop.done():
            try:
                await asyncio.wait_for(asyncio.shield(loop), self.shutdown_grace)
            except TimeoutError:
                log.warning("listener.shutdown_timeout", extra={"grace": self.shutdown_grace})
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
        if not loop.cancelled():
            loop.result()  # re-raise a crash of the loop itself
        if ended:
            names = ", ".join(task.get_name() for task in ended)
            raise SideTaskFailed(f"the listener's {names} task ended; see the log")

    async def _drain(self) -> bool:
        """Handle batches until nothing is due; False if the database failed us."""
        assert self.worker is not None
        try:
            await self.worker.drain(self.stop)
        except DB_ERRORS as exc:
            self.last_error = f"database error: {str(exc) or type(exc).__name__}"
            self._database_failed(exc)
            return False
        except Exception as exc:
            # A bug must cost one batch (given back to the queue), not the daemon.
            self.last_error = f"a batch failed: {exc!r}"
            log.exception("listener.batch_crashed")
            await asyncio.sleep(1.0)
            return False
        self.last_error = None
        if self._db_failures:
            log.info("listener.database_back", extra={"failures": self._db_failures})
            self._db_failures = 0
        self.last_cycle = time.monotonic()
        return True

    def _database_failed(self, exc: BaseException) -> None:
        # Keep trying, and say so: the first failure, then one line every 30 s.
        self._db_failures += 1
        now = time.monotonic()
        if self._db_failures == 1 or now - self._db_logged >= 30:
            self._db_logged = now
            log.warning(
                "listener.database_error",
                extra={"error": str(exc) or type(exc).__name__, "failures": self._db_failures},
            )

    async def _every(
        self, seconds: float, job: Callable[[asyncpg.Pool], Awaitable[None]], pool: asyncpg.Pool
    ) -> None:
        while True:
            try:
                await job(pool)
            except DB_ERRORS as exc:
                log.debug("listener.side_task_failed", extra={"error": str(exc)})
            except Exception:
                # A side task must outlive its bugs, like the drain loop.
                log.exception("listener.side_task_crashed", extra={"task": job.__name__})
            await asyncio.sleep(seconds)

    def healthy(self) -> tuple[bool, str]:
        """For /healthz: the LISTEN connection is up, the drain loop goes round, and the queue
        moves (see the module's docstring)."""
        if not self.waker.connected.is_set():
            return False, "LISTEN connection down"
        now = time.monotonic()
        stalled = now - self.last_cycle
        if stalled > self.allowed:
            return False, f"queue not moving for {stalled:.0f}s"
        finished = max(self.worker.finished if self.worker else 0.0, self.others_finished or 0.0)
        idle = now - (finished or self.last_cycle)
        if self.oldest_pending is not None and min(self.oldest_pending, idle) > self.stall_after:
            if self.paused:
                why = f"Monday asked every listener to pause ({self.paused})"
            else:
                why = self.last_error or self.pending_error or "no error: see the log"
            return False, (
                f"queue stalled: the oldest change waits for {self.oldest_pending:.0f}s and "
                f"nothing was synced for {idle:.0f}s: {why}"
            )
        return True, "ok"

    async def _gauge(self, pool: asyncpg.Pool) -> None:
        self.metrics.listen_connected.set(1 if self.waker.connected.is_set() else 0)
        assert self.worker is not None
        names = {t.id: t.name for t in self.worker.tables.values()}
        await self.worker.governor.flush()
        active = self.worker.active_tables
        async with pool.acquire(timeout=10) as conn:
            found = await queue.health(conn, active, ALIVE)
            use = await governor.budget_use(conn)
            day = governor.day_view(await ledger.day_use(conn), self.worker.governor.limits)
            if (found.oldest_pending or 0) > self.stall_after:
                error = await queue.latest_error(conn, active)
                self.pending_error = None if error is None else fault.line(error)
        self.oldest_pending, self.paused = found.oldest_pending, found.paused
        ago = found.finished_ago
        self.others_finished = None if ago is None else time.monotonic() - ago
        for gauge, value in (
            (self.metrics.budget, use.limit_per_minute),
            (self.metrics.budget_used, use.points_per_minute),
            (self.metrics.points_per_row, use.points_per_row),
        ):
            gauge.set(float("nan") if value is None else value)  # NaN: not known yet
        self._day_gauges(day)
        self.metrics.oldest_pending.set(self.oldest_pending or 0.0)
        self.metrics.stalled.set(0 if self.healthy()[0] else 1)
        for table_id, table_name in names.items():
            for state in ("pending", "in_flight", "failed"):
                n = found.depth.get((table_id, state), 0)
                self.metrics.queue_depth.labels(table_name, state).set(n)

    def _day_gauges(self, day: governor.DayView) -> None:
        m = self.metrics
        m.daily_limit.set(float("nan") if day.limit is None else day.limit.calls)
        m.daily_used.labels("account").set(day.used)
        m.daily_used.labels("npd-sync").set(day.own)
        m.daily_pace.set(day.per_hour)
        out = day.runs_out_in
        m.daily_runs_out.set(float("nan") if out is None else max(out, 0.0))

    async def _day(self, _pool: asyncpg.Pool) -> None:
        # Monday's daily limit and today's usage, for the pacing every listener shares.
        assert self.worker is not None
        assert self.worker.client is not None
        if await self.worker.governor.day_due():
            await self.worker.governor.learn_day(self.worker.client)

    async def _summary(self, pool: asyncpg.Pool) -> None:
        # One line every SUMMARY seconds when there was work: rates, not a line per row.
        assert self.worker is not None
        stats = self.worker.stats
        now = (
            stats.synced, stats.unchanged, stats.skipped, stats.failed, stats.retried, stats.waited
        )  # fmt: skip
        previous, self._summarised = self._summarised, now
        delta = [a - b for a, b in zip(now, previous, strict=True)]
        if any(delta):
            synced, unchanged, skipped, failed, retried, waited = delta
            log.info(
                "sync.summary",
                extra={
                    "synced": synced, "unchanged": unchanged, "skipped": skipped, "failed": failed,
                    "retried": retried, "waited": waited, "per_second": round(synced / SUMMARY, 1),
                    "requests": stats.requests,
                },
            )  # fmt: skip

    async def _vacuum(self, pool: asyncpg.Pool) -> None:
        # The change log and the queue churn: every row is written, then deleted. Reclaim the
        # space once a minute when there was work, in case autovacuum is off or behind (it is
        # cheap on tables this small; skipped with a warning unless we own them).
        assert self.worker is not None
        if self.worker.stats.ingested == self._vacuumed:
            return
        self._vacuumed = self.worker.stats.ingested
        async with pool.acquire(timeout=10) as conn:
            await queue.vacuum(conn)
            await attempts.forget(conn, self.settings.tuning.history_days)
            if self.settings.inbound:
                await inbox.forget_events(conn, EVENTS_KEPT)

    async def _reconcile(self, pool: asyncpg.Pool) -> None:
        # The safety net for lost deliveries: a pass over each board whose last one (by any
        # listener: the time is in the database) is older than reconcile_interval, widened to
        # keep within reconcile_share of the day's calls.
        assert self.worker is not None
        assert self.worker.client is not None
        boards = {t.mapping.board_id: t for t in self.worker.tables.values() if t.mapping.board_id}
        tuning = self.settings.tuning
        async with pool.acquire(timeout=10) as conn:
            limit = await governor.day_limit(conn, self.worker.governor.limits)
            due = await reconcile.due(
                conn, list(boards), tuning.reconcile_interval, share=tuning.reconcile_share,
                calls=limit.calls if limit else None,
            )  # fmt: skip
        for board in due:
            table = boards[board]
            found = await reconcile.pull(
                pool, self.worker.client, self.worker.governor, table.id, table.mapping
            )
            if found.changed:
                log.info(
                    "reconcile.found", extra={"table": table.name, "items": len(found.changed)}
                )
                self.waker.wake()

    async def _history(self, pool: asyncpg.Pool) -> None:
        # What was counted since the last write, added to this minute's row; given back to
        # be written next time when the write fails. Never on the drain loop's path.
        assert self.worker is not None
        gained = self.worker.tally.take_history()
        if not gained:
            return
        try:
            async with pool.acquire(timeout=10) as conn:
                await throughput.record(conn, self.id, gained)
        except BaseException:
            self.worker.tally.restore(gained)
            raise

    async def _heartbeats(self, pool: asyncpg.Pool) -> None:
        # The first once the LISTEN connection is up (or a beat later): written before, it
        # would show every listener that just started as unhealthy until the next beat.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.waker.connected.wait(), HEARTBEAT)
        await self._every(HEARTBEAT, self._heartbeat, pool)

    async def _heartbeat(self, pool: asyncpg.Pool) -> None:
        ok, why = self.healthy()
        problem = None if ok else redact(why, self.settings.secrets())
        assert self.worker is not None
        finished = time.monotonic() - self.worker.finished
        async with pool.acquire(timeout=10) as conn:
            await listeners.heartbeat(conn, self.id, problem, finished)


async def _bound(option: str, host: str, port: int, serving: Awaitable[T]) -> T:
    """What `serving` returns, or a configuration error naming the option whose port it is."""
    try:
        return await serving
    except OSError as exc:
        raise cannot_listen(option, host, port, exc) from None
