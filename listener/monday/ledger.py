"""The ledger of Monday's limits in the database, shared by every listener of it: reserve,
settle, pause; and the leases that hold a board while a request to it is in flight.

Each limit of the account is a row of `npd_sync.monday_limits` (the complexity budget, the
requests a minute): a quota a window, what Monday last said was left, what is reserved and not
settled yet. A reservation takes from every limit at once, as many operations as all of them
hold; settling corrects each limit by what Monday said of it. Adding a limit is a `Limit` and
its figures in a reading: the statements handle every row alike. Each function here is one
statement on a connection the caller holds only for it: nothing waits on Monday with one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from listener import db, sql


@dataclass(frozen=True, slots=True)
class Limit:
    """One of the account's limits as the plan publishes it: a first guess until Monday
    reports its own figures."""

    name: str  # its row in npd_sync.monday_limits
    quota: int  # units a window
    window: float  # seconds


@dataclass(frozen=True, slots=True)
class Demand:
    """What the first k operations of a request need of one limit, k = 1, 2, ..."""

    limit: Limit
    needs: Sequence[int]
    guessing: bool = False  # the first figure is a guess: any of the limit left takes one


@dataclass(frozen=True, slots=True)
class Taken:
    """What one limit gave a request: units, from which of its windows."""

    name: str
    amount: int
    window_id: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """The ledger's answer: operations granted and what was taken for them; or, with none
    granted, in how many seconds some could be, and why."""

    granted: int
    taken: tuple[Taken, ...]
    wait: float | None  # seconds (None: not known)
    pause_reason: str | None  # an account-wide pause holds every request
    short: tuple[str, ...]  # the limits that hold none of the operations
    settling: bool  # requests in flight hold what is missing: their replies may give it back


@dataclass(frozen=True, slots=True)
class Reading:
    """What Monday said of one limit for one request (None: not said)."""

    used: float | None = None  # units the request used (0: refused, nothing charged)
    before: float | None = None
    after: float | None = None  # left after it
    reset: float | None = None  # seconds until the window starts again
    quota: float | None = None  # units a window
    window: float | None = None  # the window's length, seconds


@dataclass(frozen=True, slots=True)
class Lease:
    """A board held by one holder."""

    board: str
    holder: str


async def reserve(conn: db.Conn, demands: Sequence[Demand]) -> Reservation:
    """Take from every limit what the most operations that all of them hold need."""
    count = len(demands[0].needs)
    if any(len(d.needs) != count for d in demands):
        raise ValueError("every demand must name the same number of operations")
    row = await conn.fetchrow(
        sql.query("reserve"),
        [d.limit.name for d in demands],
        [d.limit.quota for d in demands],
        [d.limit.window for d in demands],
        [n for d in demands for n in d.needs],
        count,
        [d.guessing for d in demands],
    )
    assert row is not None
    taken = tuple(
        Taken(name, int(amount), int(window))
        for name, amount, window in zip(
            row["names"] or [], row["amounts"] or [], row["window_ids"] or [], strict=True
        )
    )
    short = tuple(row["short"].split(",")) if row["short"] else ()
    return Reservation(
        int(row["granted"]), taken, row["wait"], row["pause_reason"], short, row["settling"]
    )


async def settle(
    conn: db.Conn,
    taken: Sequence[Taken],
    readings: Mapping[str, Reading],
    *,
    points: float,
    rows: int,
    refused: bool,
    lease: Lease | None = None,
    calls: float = 1.0,
) -> None:
    """Correct each limit a request took from by what Monday said of it, count the request
    (and `rows` synced) in this minute's row and `calls` against the day, and give the board
    back."""
    said = [readings.get(t.name, Reading()) for t in taken]
    await conn.execute(
        sql.query("settle"),
        [t.name for t in taken],
        [t.amount for t in taken],
        [t.window_id for t in taken],
        [_int(r.used) for r in said],
        [_int(r.before) for r in said],
        [_int(r.after) for r in said],
        [r.reset for r in said],
        [_int(r.quota) for r in said],
        [r.window for r in said],
        int(points),
        rows,
        refused,
        lease.board if lease else None,
        lease.holder if lease else None,
        calls,
    )


@dataclass(frozen=True, slots=True)
class Window:
    """One limit's current window: the quota, its length, what is left to reserve and when it
    starts again (None: it has, or none started yet)."""

    quota: float
    length: float
    left: float
    reset_in: float | None


async def window(conn: db.Conn, limit: Limit) -> Window | None:
    """The current window of `limit` (its plan's figures until Monday reports)."""
    row = await conn.fetchrow(sql.query("limit_window"), limit.name, limit.quota, limit.window)
    if row is None:
        return None
    return Window(row["quota"], row["window_seconds"], row["remaining"], row["reset_in"])


async def take_board(conn: db.Conn, lease: Lease, seconds: float) -> bool:
    """Hold a board for `seconds`, unless another holder's lease on it still runs."""
    return bool(await conn.fetchval(sql.query("take_board"), lease.board, lease.holder, seconds))


async def give_board(conn: db.Conn, lease: Lease) -> None:
    """Release a lease (nothing if it ran out and another holder took the board)."""
    await conn.execute(sql.query("give_board"), lease.board, lease.holder)


async def pause(conn: db.Conn, seconds: float, reason: str) -> None:
    """Hold every listener's traffic for `seconds` (a longer pause stays)."""
    await conn.execute(sql.query("pause"), seconds, reason)


async def paused_for(conn: db.Conn) -> float:
    """Seconds left of the account-wide pause (0 when none)."""
    row = await conn.fetchrow(sql.query("paused_for"))
    return float(row["seconds"]) if row else 0.0


async def synced_rows(conn: db.Conn, rows: int) -> None:
    """Count rows synced this minute (and forget the minutes of more than a day ago)."""
    await conn.execute(sql.query("synced_rows"), rows)


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


@dataclass(frozen=True, slots=True)
class Day:
    """The day's counts and the pacing bucket, as every listener shares them."""

    own_calls: float  # npd-sync's calls today, all listeners
    unpaid: float  # calls not yet taken from the bucket
    tokens: float | None  # the bucket (None: full)
    tokens_at: dt.datetime | None
    daily_limit: int | None  # as Monday states it (None: not known)
    others_used: float | None  # other apps' and tokens' calls today (None: not known)
    now: dt.datetime  # the database's clock


async def day_for_pacing(conn: db.Conn) -> Day:
    """The day's counts and the bucket, locked until the transaction ends (a new UTC day
    starts them again)."""
    row = await conn.fetchrow(sql.query("day_for_pacing"))
    assert row is not None
    return Day(
        row["own_calls"], row["unpaid"], row["tokens"], row["tokens_at"], row["daily_limit"],
        row["others_used"], row["now"],
    )  # fmt: skip


async def day_paced(conn: db.Conn, tokens: float) -> None:
    """The bucket after a look: `tokens` now, the calls counted in them paid."""
    await conn.execute(sql.query("day_paced"), tokens)


async def day_ask(conn: db.Conn, every: float, after: float) -> bool:
    """Take the turn to ask Monday for the day's figures, if npd-sync made `after` calls today
    and nobody asked in `every` seconds."""
    return bool(await conn.fetchval(sql.query("day_ask"), every, after))


async def day_limit(conn: db.Conn) -> int | None:
    """The daily limit Monday last stated (None: not known)."""
    value = await conn.fetchval(sql.query("day_limit"))
    return None if value is None else int(value)


async def day_learnt(
    conn: db.Conn,
    daily_limit: int | None,
    usage: Mapping[dt.date, int],
    updated: dt.datetime | None,
) -> None:
    """Keep what Monday said of the day: its limit, and the account's usage today as of
    `updated` (other apps' share is that less npd-sync's own calls until then)."""
    days = list(usage)
    await conn.execute(
        sql.query("day_learnt"), daily_limit, days, [usage[d] for d in days], updated
    )


@dataclass(frozen=True, slots=True)
class DayUse:
    """The day's calls as status shows them."""

    day: dt.date
    daily_limit: int | None  # as Monday states it
    account_used: int | None  # the account's usage as Monday last reported it
    account_updated_at: dt.datetime | None
    others_used: float | None
    own_calls: float  # npd-sync's own, today
    last_hour: float  # npd-sync's calls in the past hour
    now: dt.datetime


async def day_use(conn: db.Conn) -> DayUse:
    """The day's calls (for status and /metrics)."""
    row = await conn.fetchrow(sql.query("day_use"))
    assert row is not None
    return DayUse(
        row["day"], row["daily_limit"], row["account_used"], row["account_updated_at"],
        row["others_used"], row["own_calls"], row["last_hour"], row["now"],
    )  # fmt: skip


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)
