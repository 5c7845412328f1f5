"""Keeping every listener of a database inside Monday's limits, together, and using all of them.

Monday limits an account per window of a minute (complexity points, requests) and per day,
and asks that mutations to one board not be sent concurrently (developer.monday.com, "Rate
limits"). The limits live in a ledger in the database (`listener.monday.ledger`), so several
listener processes share them instead of each spending the whole of them. The contract:

    async with governor.reserve(ops, board=board_id) as grant:
        results, reply = await api.mutate(client, board_id, grant.ops)
        await grant.settle(reply)

`reserve` holds the board (a lease in the ledger) and takes from every limit what the leading
operations need, as many as the limits hold now (at least one; it waits up to `max_wait`, then
raises `errors.RateLimited`). `grant.settle(reply)` gives Monday's own figures to the ledger (the
reply's `complexity`, the `RateLimit` and `RateLimit-Policy` headers): where Monday states
them they replace the plan's, larger or smaller. `grant.settle(exc)` tells the ledger of a
failure and says what to do: None to send the same operations again at once in smaller
requests (a refusal for complexity halved the next one), else the error to handle. A grant left
unsettled is settled as "unknown" when the block ends. No database connection is held while a
request is in flight.

What an operation costs is learnt from every reply, per kind (`listener.monday.cost`). When
the budget is spent, or Monday says stop (429, daily limit, a refused token), every listener
pauses until it starts again (`pause`, `paused_for`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

import asyncpg

from listener import db
from listener.metrics import Metrics
from listener.monday import api, cost, daily, errors, ledger, minute
from listener.monday.ledger import BudgetUse as BudgetUse
from listener.monday.ledger import budget_use as budget_use
from listener.settings import Tuning

log = logging.getLogger("npd_sync.governor")

BOARD_BUSY = "BOARD_BUSY"  # another listener holds the board: wait, but pause nobody
BUDGET_SPENT = "COMPLEXITY_BUDGET_SPENT"  # our own accounting says wait for the next window
REQUESTS_SPENT = "MINUTE_REQUESTS_SPENT"  # the same, for the requests a minute
COMPLEXITY = "complexity"
REQUESTS = "requests"
SPENT = {COMPLEXITY: BUDGET_SPENT, REQUESTS: REQUESTS_SPENT}
SETTLING_POLL = 0.2  # at most this long between two looks while replies are on their way
UNPACED_RECHECK = 30.0  # seconds between two looks for a daily limit while none is known
# While the minute's requests (or the day's calls) are plentiful, the answer "now" holds this
# long, or for half of those that may go at once (the other half for the other listeners),
# whichever ends first.
PLENTY_RECHECK = 1.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Limits:
    """An account's limits as the plan publishes them: a first guess until Monday reports."""

    complexity_per_minute: int  # the budget a window
    requests_per_minute: int
    max_query_complexity: int = cost.MAX_QUERY  # Monday's cap on one request
    window: float = 60.0  # seconds
    daily_calls: int | None = None  # `[tuning] daily_calls`
    plan: str | None = None  # the plan, when it is set: its daily limit holds

    def ledger(self) -> tuple[ledger.Limit, ...]:
        """The limits as rows of the ledger."""
        return (
            ledger.Limit(COMPLEXITY, self.complexity_per_minute, self.window),
            ledger.Limit(REQUESTS, self.requests_per_minute, 60.0),
        )


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
        daily_calls=tuning.daily_calls,
        # The plan's daily limit only when the plan is said: it defaults to pro's.
        plan=tuning.plan if "plan" in tuning.model_fields_set else None,
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


def readings(reply: api.Reply) -> dict[str, ledger.Reading]:
    """What a reply says of each limit: the complexity field and the RateLimit headers."""
    complexity = reply.complexity
    header = errors.complexity_limit(reply.headers)
    after: float | None = complexity.after if complexity else None
    reset: float | None = complexity.reset_in_x_seconds if complexity else None
    if after is None and header is not None:
        after, reset = header.remaining, header.reset
    return {
        COMPLEXITY: ledger.Reading(
            used=complexity.query if complexity else None,
            before=complexity.before if complexity else None,
            after=after,
            reset=reset,
            quota=header.quota if header else None,
            window=header.window if header else None,
        ),
        REQUESTS: minute_rate(reply.headers),
    }


def calls_of(exc: errors.MondayError | None) -> float:
    """What a request counts against the day: a call, a tenth when a rate limit refused it."""
    if exc is not None and (exc.budget is not None or exc.kind is errors.Kind.RATE_LIMITED):
        return daily.REFUSED_CALL
    if exc is not None and exc.code == "DAILY_LIMIT_EXCEEDED":
        return daily.REFUSED_CALL
    return 1.0


def refusal_readings(exc: errors.MondayError) -> dict[str, ledger.Reading]:
    """What a refused or failed request says of each limit. Monday counts every request it
    received; one refused by a limit (or the token) was charged no points; of any other
    failure the points are unknown, as if the reservation was spent."""
    budget = exc.budget
    requests = ledger.Reading(used=1)
    if budget is not None and budget.max_query is not None:
        # Over the cap on one query: the budget itself is as it was.
        return {COMPLEXITY: ledger.Reading(used=0), REQUESTS: requests}
    if budget is not None:
        return {
            COMPLEXITY: ledger.Reading(
                used=0,
                after=budget.left if budget.left is not None else 0,
                reset=budget.reset if budget.reset is not None else exc.retry_after,
                quota=budget.limit,
                window=budget.window,
            ),
            REQUESTS: requests,
        }
    refused = exc.kind in (errors.Kind.RATE_LIMITED, errors.Kind.BLOCKED)
    return {COMPLEXITY: ledger.Reading(used=0 if refused else None), REQUESTS: requests}


def minute_rate(headers: Mapping[str, str]) -> ledger.Reading:
    """The requests a minute as the RateLimit and RateLimit-Policy headers state them."""
    state = _named(headers.get("RateLimit", ""), "minuteRate")
    policy = _named(headers.get("RateLimit-Policy", ""), "minuteRate")
    return ledger.Reading(
        used=1,
        after=state.remaining if state else None,
        reset=state.reset if state else None,
        quota=policy.quota if policy else None,
        window=policy.window if policy else None,
    )


def _named(header: str, name: str) -> errors.Limit | None:
    return next((x for x in errors.parse_ratelimit(header) if x.name == name), None)


async def day_limit(conn: db.Conn, limits: Limits) -> daily.Limit | None:
    """The daily limit that holds: Monday's last figure, `[tuning] daily_calls`, the plan's
    (None: no limit, calls are not paced)."""
    return daily.limit(await ledger.day_limit(conn), limits.daily_calls, limits.plan)


@dataclass(frozen=True, slots=True)
class DayView:
    """The day's calls as status and /metrics show them."""

    limit: daily.Limit | None  # None: no daily limit known, calls are not paced
    used: float  # the account's calls today, as far as known (npd-sync's own at least)
    own: float  # npd-sync's own, all listeners
    account_reported_at: dt.datetime | None  # when Monday last refreshed its figure
    per_hour: float  # npd-sync's calls in the past hour
    runs_out: dt.datetime | None  # when the calls would be spent at that pace (None: never)
    resets: dt.datetime  # 00:00 UTC next
    runs_out_in: float | None = None  # seconds until `runs_out`


def day_view(use: ledger.DayUse, limits: Limits) -> DayView:
    """The day's limit, usage, pace and when the calls would run out."""
    chosen = daily.limit(use.daily_limit, limits.daily_calls, limits.plan)
    used = daily.used(use.own_calls, use.others_used)
    runs_out = daily.runs_out(chosen.calls, used, use.last_hour, use.now) if chosen else None
    resets = use.now + dt.timedelta(seconds=daily.until_midnight(use.now))
    runs_out_in = None if runs_out is None else (runs_out - use.now).total_seconds()
    return DayView(
        chosen, used, use.own_calls, use.account_updated_at, use.last_hour, runs_out, resets,
        runs_out_in,
    )  # fmt: skip


@dataclass(eq=False)
class Grant(Generic[T]):
    """The part of a request's operations that the limits hold now, and what it took of them;
    settle it with what came of the request."""

    ops: Sequence[T]
    kinds: tuple[cost.Kind, ...]
    governor: Governor = field(repr=False)
    taken: tuple[ledger.Taken, ...] = ()
    lease: ledger.Lease | None = None
    settled: bool = False

    async def settle(self, outcome: api.Reply | errors.MondayError) -> errors.MondayError | None:
        """Tell the ledger what came of the request: a reply (returns None) or an error
        (returns None to send the same operations again at once, in a smaller request;
        else the error to handle). A second settle changes nothing."""
        if self.settled:
            return None if isinstance(outcome, api.Reply) else outcome
        self.settled = True
        if isinstance(outcome, api.Reply):
            await self.governor._replied(self, outcome)
            return None
        return await self.governor._failed(self, outcome)

    def points(self) -> int:
        """The complexity points reserved for the request."""
        return next((t.amount for t in self.taken if t.name == COMPLEXITY), 0)


class Governor:
    """Paces this listener's Monday requests within the limits it shares with the others."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        limits: Limits,
        *,
        max_wait: float = 10.0,
        metrics: Metrics | None = None,
        lease_seconds: float = 70.0,
    ) -> None:
        self.pool = pool
        self.limits = limits
        self.max_wait = max_wait
        self.metrics = metrics or Metrics()
        # A board's lease outlasts the longest request; one whose holder died runs out.
        self.lease_seconds = lease_seconds
        self.model = cost.Model(max_query=limits.max_query_complexity)
        self._rows = 0  # rows synced, to be counted with the next settle
        self._paused_until = 0.0  # monotonic; a cache of the shared pause
        self._paused_checked = 0.0
        self._unpaced_until = 0.0  # monotonic: no daily limit is known until then
        self._plenty_until = 0.0  # monotonic: the minute's requests are plentiful until then
        self._plenty = 0  # requests this listener may reserve meanwhile without a look
        self._calls_until = 0.0  # monotonic: the day's calls are plentiful until then
        self._calls = 0  # calls this listener may make meanwhile without a look at the bucket

    async def paused_for(self) -> float:
        """Seconds left of the account-wide pause (read at most once a second)."""
        now = time.monotonic()
        if now - self._paused_checked >= 1.0:
            async with self.pool.acquire() as conn:
                seconds = await ledger.paused_for(conn)
            self._paused_until = now + seconds
            self._paused_checked = now
        return max(0.0, self._paused_until - now)

    @contextlib.asynccontextmanager
    async def reserve(
        self, ops: Sequence[T], *, kind: cost.Kind | None = None, board: str | None = None
    ) -> AsyncIterator[Grant[T]]:
        """Hold `board` (if given) and a share of the limits for the leading `ops`, at least
        one: operations of `kind`, or mutations (`api.Op`) when no kind is given.

        Raises errors.RateLimited when even one would mean waiting longer than `max_wait`.
        """
        kinds = tuple(kind if kind is not None else cost.kind_of(cast(api.Op, op)) for op in ops)
        if not kinds:
            raise ValueError("a request holds at least one operation")
        started = time.monotonic()
        lease = await self._take_board(board, started) if board is not None else None
        try:
            got = await self._reserve(kinds, started)
        except BaseException:
            if lease is not None:
                await asyncio.shield(self._give_board(lease))
            raise
        grant = Grant(ops[: got.granted], kinds[: got.granted], self, got.taken, lease)
        try:
            yield grant
        finally:
            if not grant.settled:
                grant.settled = True
                unknown = refusal_readings(_UNKNOWN)
                await asyncio.shield(self._settle(grant, unknown, 0, False, calls=1.0))

    async def _take_board(self, board: str, started: float) -> ledger.Lease:
        lease = ledger.Lease(board, secrets.token_hex(8))
        delay = 0.005
        while True:
            # A statement of its own, never in a transaction with the limits' rows: `settle`
            # locks both in one statement, in an order of PostgreSQL's choosing.
            async with self.pool.acquire() as conn:
                if await ledger.take_board(conn, lease, self.lease_seconds):
                    return lease
            # Another request holds this board: Monday asks for one at a time.
            if time.monotonic() - started > self.max_wait:
                raise errors.RateLimited(
                    "board busy with another listener", code=BOARD_BUSY, retry_after=1.0
                )
            await asyncio.sleep(delay)
            self._waited(delay)
            delay = min(delay * 2, 0.2)

    async def _give_board(self, lease: ledger.Lease) -> None:
        with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
            async with self.pool.acquire() as conn:
                await ledger.give_board(conn, lease)

    async def _reserve(self, kinds: tuple[cost.Kind, ...], started: float) -> ledger.Reservation:
        poll = 0.02
        while True:
            demands = self._demands(kinds)
            async with self.pool.acquire() as conn:
                got = await ledger.reserve(conn, demands)
            if got.granted >= 1:
                self._granted()
                return got
            until = max(got.wait or 0.0, 0.05)
            # Requests in flight hold what is missing: their replies may show more (Monday's
            # figures win over our estimates); look again soon rather than at the window's end.
            wait = min(until, poll) if got.settling and got.pause_reason is None else until
            poll = min(poll * 2, SETTLING_POLL)
            if time.monotonic() - started + wait > self.max_wait:
                reason = got.pause_reason
                code = SPENT.get(got.short[0]) if reason is None and got.short else None
                spent = f"{(got.short or (COMPLEXITY,))[0]} budget spent"
                raise errors.RateLimited(
                    f"waiting for Monday's limits: {reason or spent}", code=code, retry_after=until
                )
            log.debug(
                "governor.wait", extra={"seconds": round(wait, 2), "points": demands[0].needs[0]}
            )
            await asyncio.sleep(wait)
            self._waited(wait)

    def _demands(self, kinds: tuple[cost.Kind, ...]) -> list[ledger.Demand]:
        complexity, requests = self.limits.ledger()
        needs = self.model.totals(kinds)
        return [
            ledger.Demand(complexity, needs, guessing=self.model.guessing(kinds[0])),
            ledger.Demand(requests, [1] * len(needs)),
        ]

    def _granted(self) -> None:
        # A request that goes spends one of those this listener may send without a look.
        self._plenty -= 1
        self._calls -= 1

    def _waited(self, seconds: float) -> None:
        if seconds > 0:
            self.metrics.rate_wait.inc(seconds)

    def synced(self, rows: int) -> None:
        """Count rows synced (points per synced row); written with the next settle."""
        self._rows += rows

    async def _replied(self, grant: Grant[T], reply: api.Reply) -> None:
        """Take Monday's own figures from a reply, and learn what the operations cost."""
        self.metrics.requests.labels("200", "").inc()
        complexity = reply.complexity
        spent = complexity.query if complexity is not None else None
        if spent is not None:
            self.metrics.complexity_points.inc(spent)
        self.model.replied(grant.kinds, spent)
        points = spent if spent is not None else grant.points()
        said = readings(reply)
        self._told(said[REQUESTS])
        await self._settle(grant, said, points, False)

    def _told(self, requests: ledger.Reading) -> None:
        """Monday stated the minute's requests: "now" holds no longer than they allow."""
        if requests.after is None or requests.reset is None:
            return
        _, plan = self.limits.ledger()
        window = minute.Window(
            requests.quota or plan.quota, requests.after, requests.reset,
            requests.window or plan.window,
        )  # fmt: skip
        self._plenty = min(self._plenty, minute.room(window) // 2)

    async def _failed(self, grant: Grant[T], exc: errors.MondayError) -> errors.MondayError | None:
        """Account for a failed request; for a refusal for complexity, learn from it and say
        whether to send the operations again at once."""
        then: errors.MondayError | None = exc
        if exc.budget is not None:
            self.model.refused(grant.kinds, exc.budget)
            then = self.model.verdict(grant.kinds, exc)
            if then is None:
                log.info("governor.shrink", extra={"operations": self.model.cap})
        refused = exc.budget is not None
        await self._settle(grant, refusal_readings(exc), 0, refused, calls=calls_of(exc))
        return then

    async def _settle(
        self,
        grant: Grant[T],
        said: Mapping[str, ledger.Reading],
        points: float,
        refused: bool,
        *,
        calls: float = 1.0,
    ) -> None:
        # Best effort: a database hiccup here must not fail the request that just succeeded
        # (the reservation then runs out with its window, the lease with its time).
        rows, self._rows = self._rows, 0
        try:
            async with self.pool.acquire() as conn:
                await ledger.settle(
                    conn, grant.taken, said, points=points, rows=rows, refused=refused,
                    lease=grant.lease, calls=calls,
                )  # fmt: skip
        except (*db.ERRORS, asyncpg.PostgresError):
            self._rows += rows  # counted with the next settle

    async def flush(self) -> None:
        """Count the rows synced since the last settle, and forget old minutes."""
        rows, self._rows = self._rows, 0
        if not rows:
            return
        try:
            async with self.pool.acquire() as conn:
                await ledger.synced_rows(conn, rows)
        except (*db.ERRORS, asyncpg.PostgresError):
            self._rows += rows

    async def next_call_in(self) -> float:
        """Seconds until the next call to Monday may go under the day's pacing (0: now): the
        engine asks before it claims work, as it asks `paused_for`. Without a daily limit
        (Monday's, `[tuning] daily_calls` or the plan's) calls are not paced."""
        now = time.monotonic()
        if now < self._unpaced_until or (now < self._calls_until and self._calls > 0):
            return 0.0
        async with self.pool.acquire() as conn, conn.transaction():
            day = await ledger.day_for_pacing(conn)
            chosen = daily.limit(day.daily_limit, self.limits.daily_calls, self.limits.plan)
            if chosen is None:
                self._unpaced_until = time.monotonic() + UNPACED_RECHECK
                return 0.0
            spent = daily.used(day.own_calls, day.others_used)
            bucket = daily.Bucket(day.tokens, day.tokens_at)
            tokens = daily.refill(bucket, chosen.calls, spent, day.unpaid, day.now)
            await ledger.day_paced(conn, tokens)
        # A look is a committed write to the one shared row: with tokens to spare and the day
        # far from spent, the next calls go without one, up to half the tokens (the rest for
        # the other listeners) or for a second; the next look pays for them. Near the day's end
        # every call looks, so that none goes beyond the limit.
        plenty = chosen.calls - spent >= 2 * daily.burst(chosen.calls)
        self._calls = max(math.floor(tokens) // 2, 0) if plenty else 0
        self._calls_until = now + PLENTY_RECHECK
        return daily.wait(tokens, chosen.calls, spent, day.now)

    async def next_request_in(self, *, full: bool = False) -> float:
        """Seconds until the next request may go under the minute's pacing (0: now): while
        requests are scarce they go evenly over the window, so that each carries more rows
        (`listener.monday.minute`); a `full` one waits only for a window with none left. The
        engine asks before it claims work."""
        now = time.monotonic()
        if now < self._plenty_until and self._plenty > 0:
            return 0.0
        _, requests = self.limits.ledger()
        async with self.pool.acquire() as conn:
            found = await ledger.window(conn, requests)
        if found is None:
            return 0.0
        window = minute.Window(found.quota, found.left, found.reset_in, found.length)
        seconds = minute.wait(window, full=full)
        self._plenty = minute.room(window) // 2
        self._plenty_until = now + PLENTY_RECHECK if seconds == 0 else 0.0
        return seconds

    async def day_due(self, *, after: float = daily.MIN_BURST) -> bool:
        """Whether this listener is the one to ask Monday for the day's figures now. They are
        shared: one listener asks, once npd-sync made a first burst of calls today (`after`;
        an idle listener spends none on asking; the calls made before count against the day
        when the answer comes), then at most every half hour and 1% of the day's calls."""
        async with self.pool.acquire() as conn:
            chosen = await day_limit(conn, self.limits)
            return await ledger.day_ask(conn, daily.ask_every(chosen), after)

    async def learn_day(self, client: api.Client) -> api.Daily | None:
        """Ask Monday for the day's limit and the account's usage (platform_api, one call);
        None when it does not answer (the configured figures then stand)."""
        async with self.reserve(["platform_api"], kind=cost.Kind.QUERY) as grant:
            try:
                found, reply = await api.daily(client)
            except errors.MondayError as exc:
                await grant.settle(exc)
                log.info("governor.day_unknown", extra={"error": str(exc)})
                return None
            await grant.settle(reply)
        async with self.pool.acquire() as conn:
            await ledger.day_learnt(conn, found.limit, found.usage, found.updated)
        self._unpaced_until = self._calls_until = 0.0
        return found

    async def pause(self, exc: errors.MondayError) -> float:
        """Stop every listener's traffic if `exc` calls for it; returns the pause in seconds."""
        seconds = pause_for(exc)
        if seconds > 0:
            reason = exc.code or exc.kind.value
            async with self.pool.acquire() as conn:
                await ledger.pause(conn, seconds, reason)
            self._paused_checked = 0.0
            level = logging.INFO if exc.code in SPENT.values() else logging.WARNING
            extra = {"seconds": round(seconds, 1), "reason": reason}
            log.log(level, "governor.paused", extra=extra)
        return seconds


# A grant never settled (cancelled, an exception): what it cost is not known.
_UNKNOWN = errors.Transient("not settled")
