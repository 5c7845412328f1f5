"""The wake-up: a LISTEN connection of its own, the flag that asks writers to NOTIFY, and a
fallback timer.

NOTIFY only wakes; the queue tables decide what there is to do. The protocol with the triggers
(sql/triggers/capture.sql), which exists because a NOTIFY in every transaction would halve the
application's write throughput:

- a listener with nothing left to do takes the advisory lock WAKE_LOCK (session level, never
  waiting), sets the sequence npd_sync.waiting to 1, and sleeps until a NOTIFY or its timer;
- a writer that appends a change reads npd_sync.waiting; only when it is set does it check the
  lock (try-lock shared: failing means a listener holds it) and NOTIFY;
- a listener that wakes sets npd_sync.waiting back to 0 and releases the lock while it works, so
  a busy database pays one sequence read per change and no NOTIFY at all.

A writer that read the flag just before it was set may commit after the listener's last look at
the queue. So after setting the flag the listener lists the transactions holding the change
log's write lock (pg_locks) and does not go to sleep before they are all gone. A listener that
dies releases the lock with its connection, and writers stop notifying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

import asyncpg

from listener import db, sql

log = logging.getLogger("npd_sync.notify")

CHANNEL = "npd_sync"
WAKE_LOCK = (7237732, 1)  # (classid, objid) of the advisory lock; filled into capture.sql


async def wake(conn: db.Conn) -> None:
    """Wake an idle listener at this transaction's commit (at once outside one)."""
    await conn.execute(sql.query("wake"), CHANNEL)


class Waker:
    """Owns the LISTEN connection: reconnects on loss and tells the worker when to look."""

    def __init__(self, dsn: str, *, heartbeat: float = 10.0, reconnect_cap: float = 30.0) -> None:
        self._dsn = dsn
        self._heartbeat = heartbeat
        self._reconnect_cap = reconnect_cap
        self._conn: asyncpg.Connection | None = None
        # None: not waiting. A list: waiting, for these writers to finish first.
        self._suspects: list[str] | None = None
        self._event = asyncio.Event()
        self._lost = asyncio.Event()
        self._busy = asyncio.Lock()  # one query at a time on the connection
        self.connected = asyncio.Event()
        self.notifications = 0
        self.reconnects = 0

    async def run(self) -> None:
        """Keep a LISTEN connection open until cancelled, reconnecting with backoff."""
        failures = 0
        try:
            while True:
                try:
                    await self._connect()
                except Exception as exc:
                    # Whatever it is (the server starting up or shutting down, refusing
                    # connections, ...), try again later: this task must not die.
                    failures += 1
                    delay = min(self._reconnect_cap, 0.2 * 2**failures) * random.uniform(0.5, 1)
                    # Every failure on a first few, then one line in ten: readable, not silent.
                    if failures <= 3 or failures % 10 == 0:
                        log.warning(
                            "notify.connect_failed",
                            extra={
                                "attempt": failures,
                                "retry_in": round(delay, 1),
                                "error": str(exc),
                            },
                        )
                    await asyncio.sleep(delay)
                    continue
                if failures or self.reconnects:
                    log.info("notify.connected", extra={"after_failures": failures})
                failures = 0
                self.wake()  # drain whatever was committed while we were away
                await self._watch()
                self.reconnects += 1
        finally:
            await self._close()

    async def _connect(self) -> None:
        conn = await db.connect(self._dsn, application_name="npd-sync listen (notify)")
        try:
            conn.add_termination_listener(lambda _: self._lost.set())
            await conn.add_listener(CHANNEL, self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        self._suspects = None
        self._lost.clear()
        self.connected.set()

    async def _watch(self) -> None:
        """Return when the connection is lost: terminated, or silent to a heartbeat query."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self._heartbeat)
            if self._lost.is_set():
                break
            try:
                await self._query("SELECT 1", timeout=self._heartbeat)
            except db.ERRORS as exc:
                log.warning(
                    "notify.heartbeat_failed", extra={"error": str(exc) or type(exc).__name__}
                )
                break
        log.warning("notify.connection_lost")
        await self._close()

    async def _close(self) -> None:
        self.connected.clear()
        self._suspects = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def _query(self, query: str, *args: object, timeout: float = 10.0) -> Any:
        async with self._busy:
            if self._conn is None:
                raise asyncpg.InterfaceError("no LISTEN connection")
            return await self._conn.fetchval(query, *args, timeout=timeout)

    def _on_notify(self, *_: object) -> None:
        self.notifications += 1
        self._event.set()

    @property
    def waiting(self) -> bool:
        """Whether writers are asked to NOTIFY and none that skipped it is still mid-commit."""
        return self._suspects == []

    @property
    def asleep(self) -> bool:
        """Whether only a NOTIFY (or the timer) can wake the listener now: writers are asked to
        NOTIFY, and no wake-up is pending (one that is makes the next `wait` return at once)."""
        return self.waiting and not self._event.is_set()

    def wake(self) -> None:
        """Make the next `wait` return at once."""
        self._event.set()

    async def arm(self) -> bool:
        """Ask writers to NOTIFY; True once no writer that may have skipped it is mid-commit.

        False also when another listener is the one waiting: its NOTIFYs reach us too.
        """
        try:
            if self._suspects is None:
                if not await self._query("SELECT pg_try_advisory_lock($1, $2)", *WAKE_LOCK):
                    return False
                await self._query(sql.query("arm"))
                self._suspects = list(await self._query(sql.query("writers"), None))
            elif self._suspects:
                self._suspects = list(await self._query(sql.query("writers"), self._suspects))
        except db.ERRORS:
            return False
        return not self._suspects

    async def disarm(self) -> None:
        """Stop asking writers to NOTIFY: the worker is busy and will see their changes anyway."""
        if self._suspects is None:
            return
        self._suspects = None
        with contextlib.suppress(*db.ERRORS):
            await self._query(sql.query("disarm"))
            await self._query("SELECT pg_advisory_unlock($1, $2)", *WAKE_LOCK)

    async def wait(self, timeout: float) -> bool:
        """Sleep until a notification (True) or the timeout (False)."""
        try:
            await asyncio.wait_for(self._event.wait(), max(timeout, 0))
        except TimeoutError:
            return False
        finally:
            self._event.clear()
        return True
