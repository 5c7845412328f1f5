"""Keeping every listener of a database inside Monday's limits, together, and using all of them.

Monday limits an account per window of a minute (complexity points, requests) and per day,
and asks that mutations to one board not be sent concurrently (developer.monday.com, "Rate
limits"). The budget lives in one row of `npd_sync.monday`, so several listener processes share
it instead of each spending the whole of it: before a request a listener reserves there what it
expects the request to cost; after it, what Monday reports is the truth and corrects the shared
figures (the reply's `complexity { query before after reset_in_x_seconds }`, the `RateLimit` and
`RateLimit-Policy` headers, a refusal's figures). The plan's figures are only a first guess.

What an operation costs is learnt from every reply (`complexity.query`, lookups included), per
kind of operation. A request holds as many operations as the budget holds now, and no more than
Monday's cap on one query; one that Monday refuses for its complexity halves the next request
and is sent again in pieces that fit, so no row waits behind a batch too big for the budget. When
the budget is spent, or Monday says stop (429, daily limit, a refused token), every listener
pauses until it starts again. A board is held with an advisory lock while a request to it is in
flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import datetime as dt
import itertools
import logging
import math
import time
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from listener import db, sql
from listener.metrics import Metrics
from listener.monday import api, errors
from listener.settings import Tuning

log = logging.getLogger("npd_sync.governor")

BOARD_LOCK = 7237734  # advisory lock class; the object id is a hash of the board id
BOARD_BUSY = "BOARD_BUSY"  # another listener holds the board: wait, but pause nobody
BUDGET_SPENT = "COMPLEXITY_BUDGET_SPENT"  # our own accounting says wait for the next window

# Kinds of operation, each with a cost of its own: the mutations, an npd_id lookup (a request,
# whatever it finds), an item read (one item of an `items(ids:)` request or of a board's page),
# and a page of a board's activity log (reconciliation).
MUTATIONS = ("create", "update", "archive", "delete")
LOOKUP = "lookup"
READ = "read"
ACTIVITY = "activity"
# First guesses, until a reply says: Monday's staff put a mutation at 30,000 points (its own
# error text quotes 30,001 for a create returning its id); a lookup of a page of 500 items with
# one column, and an item read with its columns, weigh what their selections weigh (a scalar 1,
# an object 10, times the page). High guesses cost one short first request; low ones a refusal.
FIRST_GUESS = {
    **dict.fromkeys(MUTATIONS, 30_001.0),
    LOOKUP: 12_011.0,
    READ: 350.0,
    ACTIVITY: 5_000.0,
}


@dataclass(frozen=True, slots=True)
class Limits:
    """An account's limits as the plan publishes them: a first guess until Monday reports."""

    complexity_per_minute: int  # the budget a window
    requests_per_minute: int
    max_query_complexity: int = 5_000_000  # Monday's cap on one request
    window: float = 60.0  # seconds


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
    if exc.code == BOARD_BUSY:
        return 0.0  # one listener's wait for another, not Monday's word
    if exc.kind is errors.Kind.RATE_LIMITED:
        return exc.retry_after if exc.retry_after is not None else 60.0
    if exc.kind is errors.Kind.BLOCKED:
        # A refused token or a blocked API: look again in a minute, fail no row meanwhile.
        return exc.retry_after if exc.retry_after is not None else 60.0
    return 0.0


def kind_of(op: api.Op) -> str:
    """The kind of a mutation, for its cost."""
    match op:
        case api.Create():
            return "create"
        case api.Update():
            return "update"
        case api.Archive():
            return "archive"
    return "delete"


def learn(
    costs: dict[str, float], kinds: Sequence[str], spent: float, known: set[str] | None = None
) -> None:
    """Fit the costs of `kinds` to what a request of them cost, and count them as `known`:
    exactly when they are all of one kind, or when one kind in them was not known yet (it gets
    the rest); else each scaled by the same factor (the next request of one kind settles it)."""
    known = set() if known is None else known
    if not kinds or spent <= 0:
        return
    present = set(kinds)
    new = present - known
    if len(present) == 1 or len(new) == 1:
        kind = kinds[0] if len(present) == 1 else next(iter(new))
        rest = spent - sum(costs[k] for k in kinds if k != kind)
        if rest > 0:
            costs[kind] = rest / kinds.count(kind)
            known.update(present)
            return
    expected = sum(costs.get(k, FIRST_GUESS.get(k, spent)) for k in kinds)
    factor = spent / expected
    for k in present:
        costs[k] = costs.get(k, FIRST_GUESS.get(k, spent)) * factor
    known.update(present)


@dataclass
class Grant:
    """What a request reserved: its operations, their points, and the window they came from."""

    kinds: tuple[str, ...]
    points: int
    window_id: int | None
    observed: bool = False  # a reply has accounted for it (later pages are charged as they go)


_GRANT: contextvars.ContextVar[Grant | None] = contextvars.ContextVar("grant", default=None)


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
        # Per kind of operation, its cost as the latest reply told it (first guesses until then).
        self.costs = dict(FIRST_GUESS)
        self.confirmed: set[str] = set()  # the kinds a reply has told the cost of
        # Operations a request may hold: halved by each refusal, doubled by each success, up to
        # Monday's largest page (a batch holds at most batch_size rows already).
        self.max_operations = api.BOARD_PAGE
        self.cap = self.max_operations
        self._rows = 0  # rows synced, to be counted with the next report
        self._paused_until = 0.0  # monotonic; a cache of the shared pause
        self._paused_checked = 0.0

    def estimate(self, kinds: Sequence[str]) -> list[int]:
        """The estimated cost of each operation of `kinds`, in points: what was learnt, else
        what the dearest mutation learnt costs (for a mutation), else the first guess."""
        known = [self.costs[k] for k in MUTATIONS if k in self.confirmed]
        return [
            max(
                1,
                math.ceil(
                    self.costs[k] if k in self.confirmed
                    else max(known) if known and k in MUTATIONS
                    else self.costs.get(k, FIRST_GUESS["update"])
                ),
            )
            for k in kinds
        ]  # fmt: skip

    def guessing(self, kind: str) -> bool:
        """Whether the cost of `kind` is only the first guess, with nothing learnt to go by."""
        if kind in self.confirmed:
            return False
        if kind in MUTATIONS:
            return not self.confirmed.intersection(MUTATIONS)
        return True

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
    async def request(
        self, board: str | None, operations: int | Sequence[str]
    ) -> AsyncIterator[int]:
        """Hold the board and a share of the budget while a request is sent; yields how many of
        the leading `operations` (kinds, or a count of updates) the budget holds now, at least
        one.

        Raises errors.RateLimited when even one would mean waiting longer than `max_wait`.
        """
        kinds = tuple(["update"] * operations if isinstance(operations, int) else operations)
        started = time.monotonic()
        async with self.pool.acquire() as conn:
            locked = False
            try:
                if board is not None:
                    await self._lock_board(conn, board, started)
                    locked = True
                grant = await self._reserve(conn, kinds or ("update",), started)
                token = _GRANT.set(grant)
                try:
                    yield len(grant.kinds)
                except errors.MondayError as exc:
                    if exc.budget is not None and not grant.observed:
                        await self._refused(exc, grant)
                    raise
                finally:
                    _GRANT.reset(token)
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
                raise errors.RateLimited(
                    "board busy with another listener", code=BOARD_BUSY, retry_after=1.0
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        self._waited(time.monotonic() - started)

    def _sizes(self, kinds: Sequence[str]) -> list[int]:
        """The running totals of the operations' costs that one request may carry: at most
        `cap` of them, within Monday's cap on one query (the first always)."""
        totals = list(itertools.accumulate(self.estimate(kinds[: max(1, self.cap)])))
        fitting = [t for t in totals if t <= self.limits.max_query_complexity]
        return fitting or totals[:1]

    async def _reserve(self, conn: db.Conn, kinds: tuple[str, ...], started: float) -> Grant:
        limits = self.limits
        while True:
            totals = self._sizes(kinds)
            row = await conn.fetchrow(
                sql.query("reserve"),
                totals,
                limits.complexity_per_minute,
                limits.window,
                limits.requests_per_minute,
                self.guessing(kinds[0]),
            )
            assert row is not None
            granted = int(row["granted"])
            if granted >= 1:
                return Grant(kinds[:granted], int(row["points"]), row["window_id"])
            wait = max(float(row["wait"] or 0.0), 0.05)
            if time.monotonic() - started + wait > self.max_wait:
                reason = row["pause_reason"] if row["pause_reason"] else None
                raise errors.RateLimited(
                    f"waiting for Monday's limits: {reason or 'complexity budget spent'}",
                    code=BUDGET_SPENT if reason is None else None,
                    retry_after=wait,
                )
            log.debug("governor.wait", extra={"seconds": round(wait, 2), "points": totals[0]})
            await asyncio.sleep(wait)
            self._waited(wait)

    def _waited(self, seconds: float) -> None:
        if seconds > 0:
            self.metrics.rate_wait.inc(seconds)

    def synced(self, rows: int) -> None:
        """Count rows synced (points per synced row); written with the next report."""
        self._rows += rows

    async def observe(self, reply: api.Reply) -> None:
        """Take Monday's own figures from a reply, and learn what the operations cost.

        Best effort: a database hiccup here must not fail the request that just succeeded.
        """
        self.metrics.requests.labels("200", "").inc()
        grant = _GRANT.get()
        fresh = grant is not None and not grant.observed
        complexity = reply.complexity
        spent = complexity.query if complexity is not None else None
        if spent is not None:
            self.metrics.complexity_points.inc(spent)
        if fresh:
            assert grant is not None
            grant.observed = True
            if spent is not None:
                learn(self.costs, grant.kinds, spent, self.confirmed)
            self.cap = min(self.max_operations, self.cap * 2)
        header = errors.complexity_limit(reply.headers)
        minute = _minute_rate(reply.headers)
        after: float | None = complexity.after if complexity else None
        reset: float | None = complexity.reset_in_x_seconds if complexity else None
        if after is None and header is not None:
            after, reset = header.remaining, header.reset
        await self._report(
            grant if fresh else None,
            spent,
            complexity.before if complexity else None,
            after,
            reset,
            header,
            minute,
            refused=False,
        )

    async def _refused(self, exc: errors.MondayError, grant: Grant) -> None:
        """Account for a request Monday refused for its complexity: nothing was charged, so the
        reservation comes back, corrected by what Monday said is left; learn what the refusal
        tells of the costs and the caps, and halve the next request."""
        grant.observed = True
        kinds = grant.kinds
        budget = exc.budget or errors.Budget()
        if budget.cost is not None:
            learn(self.costs, kinds, budget.cost, self.confirmed)
        elif budget.left is not None and sum(self.estimate(kinds)) <= budget.left:
            # Our estimate fitted what Monday said was left, so it was too low.
            learn(self.costs, kinds, budget.left + len(kinds))
        self.cap = max(1, len(kinds) // 2)
        if budget.max_query is not None:
            # Over the cap on one query: the budget itself is as it was.
            self.limits = dataclasses.replace(
                self.limits, max_query_complexity=int(budget.max_query)
            )
            await self._report(grant, 0, None, None, None, None, None, refused=True)
            return
        await self._report(
            grant,
            0,
            None,
            budget.left if budget.left is not None else 0,
            budget.reset if budget.reset is not None else exc.retry_after,
            errors.Limit(errors.COMPLEXITY_LIMIT, None, None, budget.limit, budget.window),
            None,
            refused=True,
        )

    def refused(self, exc: errors.MondayError, kinds: Sequence[str]) -> errors.MondayError | None:
        """What to do with `kinds` after Monday refused them for their complexity (the
        governor has learnt from it already): None to send them again at once, in smaller
        requests (the budget holds some of them now); else the error to record on them, a wait
        for the next window or, for one operation bigger than a whole window or than one query
        may be, a permanent failure."""
        budget = exc.budget or errors.Budget()
        first = self.estimate(kinds[:1])[0]
        if budget.max_query is not None:
            if len(kinds) > 1:
                log.info("governor.shrink", extra={"operations": self.cap})
                return None
            return errors.Permanent(
                f"costs {budget.cost or first:,.0f} complexity points, more than Monday allows "
                f"in one request ({budget.max_query:,.0f})",
                code=exc.code or errors.TOO_COMPLEX,
                request_id=exc.request_id,
            )
        # Nothing of the window spent yet: whatever was refused is too big for all of it.
        untouched = (
            budget.left is not None and budget.limit is not None and budget.left >= budget.limit
        )
        if len(kinds) == 1 and (
            untouched or (budget.cost is not None and budget.limit is not None
                          and budget.cost > budget.limit)
        ):  # fmt: skip
            return errors.Permanent(
                f"costs {budget.cost or first:,.0f} complexity points, more than the account's "
                f"whole budget of {budget.limit or 0:,.0f} a window",
                code=exc.code,
                request_id=exc.request_id,
            )
        if len(kinds) > 1 and budget.left is not None and (untouched or first <= budget.left):
            log.info("governor.shrink", extra={"operations": self.cap, "left": budget.left})
            return None
        return exc

    async def _report(
        self,
        grant: Grant | None,
        spent: float | None,
        before: float | None,
        after: float | None,
        reset: float | None,
        policy: errors.Limit | None,
        minute: errors.Limit | None,
        *,
        refused: bool,
    ) -> None:
        rows, self._rows = self._rows, 0
        try:
            async with self.pool.acquire() as conn:
                await conn.execute(
                    sql.query("observe"),
                    grant.points if grant else 0,
                    grant.window_id if grant else None,
                    _int(spent),
                    _int(before),
                    _int(after),
                    reset,
                    _int(policy.quota) if policy else None,
                    policy.window if policy else None,
                    _int(minute.remaining) if minute else None,
                    minute.reset if minute else None,
                    rows,
                    refused,
                )
        except (*db.ERRORS, asyncpg.PostgresError):
            self._rows += rows  # counted with the next report

    async def flush(self) -> None:
        """Count the rows synced since the last report, and forget old minutes."""
        rows, self._rows = self._rows, 0
        if not rows:
            return
        try:
            async with self.pool.acquire() as conn:
                await conn.execute(sql.query("synced_rows"), rows)
        except (*db.ERRORS, asyncpg.PostgresError):
            self._rows += rows

    async def pause(self, exc: errors.MondayError) -> float:
        """Stop every listener's traffic if `exc` calls for it; returns the pause in seconds."""
        seconds = pause_for(exc)
        if seconds > 0:
            reason = exc.code or exc.kind.value
            async with self.pool.acquire() as conn:
                await conn.execute(sql.query("pause"), seconds, reason)
            self._paused_checked = 0.0
            level = logging.INFO if exc.code == BUDGET_SPENT else logging.WARNING
            extra = {"seconds": round(seconds, 1), "reason": reason}
            log.log(level, "governor.paused", extra=extra)
        return seconds


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """What all listeners spent lately, as `npd_sync.monday_minutes` holds it."""

    limit: int | None  # points a window, as Monday reports it (None: not reported yet)
    window: float | None  # the window's length, seconds
    points_per_minute: float | None  # mean of the last busy minutes (None: none lately)
    minutes: int  # how many busy minutes that mean is over
    refused: int  # requests refused for their complexity in those minutes
    points_per_row: float | None  # over the last hour (None: no row synced)

    @property
    def limit_per_minute(self) -> float | None:
        """The budget of a minute of the clock (windows are a minute on Monday)."""
        if self.limit is None:
            return None
        return self.limit * 60.0 / (self.window or 60.0)

    @property
    def share(self) -> float | None:
        """Points spent a minute as a share of the budget."""
        per_minute = self.limit_per_minute
        if not per_minute or self.points_per_minute is None:
            return None
        return self.points_per_minute / per_minute


async def budget_use(conn: db.Conn) -> BudgetUse:
    """What all listeners of this database spent lately (for status and /metrics)."""
    row = await conn.fetchrow(sql.query("budget_recent"))
    if row is None:
        return BudgetUse(None, None, None, 0, 0, None)
    return BudgetUse(
        row["complexity_limit"],
        row["complexity_window"],
        row["points_per_minute"],
        row["minutes"],
        row["refused"],
        row["points_per_row"],
    )


def _minute_rate(headers: Mapping[str, str]) -> errors.Limit | None:
    found = errors.parse_ratelimit(headers.get("RateLimit", ""))
    return next((x for x in found if x.name == "minuteRate"), None)


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def board_key(board: str) -> int:
    """A stable 31-bit number for a board id (advisory lock object id)."""
    return zlib.crc32(board.encode()) & 0x7FFFFFFF
