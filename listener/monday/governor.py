"""Keeping every listener of a database inside Monday's limits, together.

Monday limits an account per minute (complexity points, requests) and per day, and asks that
mutations to one board not be sent concurrently (developer.monday.com, "Rate limits"). The
budget lives in one row of `npd_sync.monday`, so several listener processes share it instead of
each spending the whole of it: before a request a listener reserves its estimated cost there;
after it, the figures Monday reports (`complexity { after reset_in_x_seconds }`, the
`RateLimit` header) replace our estimate. When Monday says stop (429, complexity exhausted,
daily limit, a refused token) every listener pauses until it says to try again. A board is held
with an advisory lock while a request to it is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from listener import db, sql
from listener.metrics import Metrics
from listener.monday import api, errors
from listener.settings import Tuning

log = logging.getLogger("npd_sync.governor")

BOARD_LOCK = 7237734  # advisory lock class; the object id is a hash of the board id


@dataclass(frozen=True, slots=True)
class Limits:
    """An account's per-minute limits, as Monday publishes them per plan."""

    complexity_per_minute: int
    requests_per_minute: int
    max_query_complexity: int = 5_000_000


PLANS = {
    "standard": Limits(10_000_000, 1_000),
    "pro": Limits(10_000_000, 2_500),
    "enterprise": Limits(10_000_000, 5_000),
    # Trial, NGO and free accounts get a tenth of the complexity budget.
    "free": Limits(1_000_000, 1_000),
}


def limits_for(tuning: Tuning) -> Limits:
    """The account's limits: the plan's, with the figures `[tuning]` overrides."""
    base = PLANS[tuning.plan]
    return Limits(
        tuning.complexity_per_minute or base.complexity_per_minute,
        tuning.requests_per_minute or base.requests_per_minute,
    )


def until_midnight_utc(now: dt.datetime | None = None) -> float:
    """Seconds until Monday's daily limits reset (00:00 UTC)."""
    now = now or dt.datetime.now(dt.UTC)
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds()


def pause_for(exc: errors.MondayError) -> float:
    """How long all traffic should stop after `exc` (0: not an account-wide stop)."""
    if exc.code == "DAILY_LIMIT_EXCEEDED":
        return exc.retry_after if exc.retry_after else until_midnight_utc()
    if exc.kind is errors.Kind.RATE_LIMITED:
        return exc.retry_after if exc.retry_after is not None else 60.0
    if exc.kind is errors.Kind.BLOCKED:
        # A refused token or a blocked API: look again in a minute, fail no row meanwhile.
        return exc.retry_after if exc.retry_after is not None else 60.0
    return 0.0


class Governor:
    """Paces this listener's Monday requests within the budget it shares with the others."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        limits: Limits,
        *,
        max_wait: float = 10.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.pool = pool
        self.limits = limits
        self.max_wait = max_wait
        self.metrics = metrics or Metrics()
        # Per-operation complexity, learnt from replies; Monday's docs put a create at 10,000.
        self.op_cost = 10_000.0
        self._paused_until = 0.0  # monotonic; a cache of the shared pause
        self._paused_checked = 0.0

    def op_points(self) -> int:
        """Estimated complexity of one operation; a request of n costs n times this."""
        per_minute = min(self.limits.complexity_per_minute, self.limits.max_query_complexity)
        return max(1, min(math.ceil(self.op_cost), per_minute))

    async def paused_for(self) -> float:
        """Seconds left of the account-wide pause (read at most once a second)."""
        now = time.monotonic()
        if now - self._paused_checked >= 1.0:
            async with self.pool.acquire() as conn:
                row = await conn.fetchrow(sql.query("paused_for"))
            self._paused_until = now + (row["seconds"] if row else 0.0)
            self._paused_checked = now
        return max(0.0, self._paused_until - now)

    @contextlib.asynccontextmanager
    async def request(self, board: str | None, operations: int) -> AsyncIterator[int]:
        """Hold the board and a share of the budget while a request is sent; yields how many of
        the `operations` the budget holds now (at least one).

        Raises errors.RateLimited when even one would mean waiting longer than `max_wait`.
        """
        started = time.monotonic()
        async with self.pool.acquire() as conn:
            locked = False
            try:
                if board is not None:
                    await self._lock_board(conn, board, started)
                    locked = True
                yield await self._reserve(conn, operations, started)
            finally:
                if locked:
                    assert board is not None
                    try:
                        await asyncio.shield(
                            conn.execute(
                                "SELECT pg_advisory_unlock($1, $2)", BOARD_LOCK, board_key(board)
                            )
                        )
                    except BaseException:
                        # The lock must not go back to the pool with the connection: end the
                        # session, and the lock with it (unless it has ended already).
                        with contextlib.suppress(asyncpg.InterfaceError):
                            conn.terminate()
                        raise

    async def _lock_board(self, conn: db.Conn, board: str, started: float) -> None:
        delay = 0.005
        while not await conn.fetchval(
            "SELECT pg_try_advisory_lock($1, $2)", BOARD_LOCK, board_key(board)
        ):
            # Another listener is sending to this board: Monday asks for one at a time.
            if time.monotonic() - started > self.max_wait:
                raise errors.RateLimited("board busy with another listener", retry_after=1.0)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        self._waited(time.monotonic() - started)

    async def _reserve(self, conn: db.Conn, operations: int, started: float) -> int:
        limits = self.limits
        points = self.op_points()
        while True:
            row = await conn.fetchrow(
                sql.query("reserve"),
                points,
                max(operations, 1),
                min(limits.complexity_per_minute, limits.max_query_complexity),
                limits.requests_per_minute,
            )
            assert row is not None
            if row["granted"] >= 1:
                return int(row["granted"])
            wait = max(float(row["wait"] or 0.0), 0.05)
            if time.monotonic() - started + wait > self.max_wait:
                reason = row["pause_reason"] or "complexity or request budget spent"
                raise errors.RateLimited(f"waiting for Monday's limits: {reason}", retry_after=wait)
            log.debug("governor.wait", extra={"seconds": round(wait, 2), "points": points})
            await asyncio.sleep(wait)
            self._waited(wait)

    def _waited(self, seconds: float) -> None:
        if seconds > 0:
            self.metrics.rate_wait.inc(seconds)

    async def observe(self, reply: api.Reply) -> None:
        """Take Monday's own figures from a reply, and learn the cost of an operation.

        Best effort: a database hiccup here must not fail the request that just succeeded.
        """
        self.metrics.requests.labels("200", "").inc()
        complexity = reply.complexity
        operations = len([k for k in reply.data if k != "complexity"])
        if complexity is not None and operations and complexity.query > 0:
            # The mean of the last few requests: costs differ little between operations.
            self.op_cost = 0.7 * self.op_cost + 0.3 * (complexity.query / operations)
        minute = next(
            (x for x in errors.parse_ratelimit(reply.headers.get("RateLimit", ""))
             if x.name == "minuteRate"),
            None,
        )  # fmt: skip
        with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
            async with self.pool.acquire() as conn:
                await conn.execute(
                    sql.query("observe"),
                    complexity.after if complexity else None,
                    float(complexity.reset_in_x_seconds) if complexity else None,
                    int(minute.remaining) if minute and minute.remaining is not None else None,
                    float(minute.reset) if minute and minute.reset is not None else None,
                )

    async def pause(self, exc: errors.MondayError) -> float:
        """Stop every listener's traffic if `exc` calls for it; returns the pause in seconds."""
        seconds = pause_for(exc)
        if seconds > 0:
            async with self.pool.acquire() as conn:
                await conn.execute(sql.query("pause"), seconds, f"{exc.code or exc.kind.value}")
            self._paused_checked = 0.0
            log.warning(
                "governor.paused",
                extra={"seconds": round(seconds, 1), "reason": exc.code or exc.kind.value},
            )
        return seconds


def board_key(board: str) -> int:
    """A stable 31-bit number for a board id (advisory lock object id)."""
    return zlib.crc32(board.encode()) & 0x7FFFFFFF
