"""Monday's daily call limit: which limit holds, how much of it is used, and when the next call
may go. Pure: no I/O.

Monday counts every call of the account (every app and token of it) against a limit a day that
resets at 00:00 UTC (developer.monday.com, "Rate limits"). npd-sync spends what is left so that
it lasts the day: over any stretch of time, at most a burst (1% of the limit, at least 10 calls)
plus the stretch's even share of the calls left until midnight. A token bucket is that rule: it
fills at the even share's rate (the calls left over the seconds left) up to the burst, and each
call takes one token; a call may go when a whole token is there.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

# The plans' limits (Monday's rate-limits page, 2026-09; Free and Trial 200).
PLAN_CALLS = {"free": 200, "standard": 1_000, "pro": 10_000, "enterprise": 25_000}
BURST_SHARE = 0.01
MIN_BURST = 10.0
REFUSED_CALL = 0.1  # a call refused by a rate limit counts a tenth
ASK_SHARE = 0.01  # of the day's calls, at most, spent on asking Monday for the day's figures
ASK_EVERY = 1_800.0  # seconds: at most this often


@dataclass(frozen=True, slots=True)
class Limit:
    """The daily limit that holds, and where it comes from."""

    calls: int
    source: str  # "monday" (platform_api), "daily_calls" ([tuning]), or "plan"


def limit(monday: int | None, configured: int | None, plan: str | None) -> Limit | None:
    """Monday's figure, else `[tuning] daily_calls`, else the plan's; None: no pacing."""
    if monday is not None and monday > 0:
        return Limit(monday, "monday")
    if configured is not None:
        return Limit(configured, "daily_calls")
    if plan is not None:
        return Limit(PLAN_CALLS[plan], "plan")
    return None


def ask_every(known: Limit | None) -> float:
    """Seconds between two questions to Monday about the day's limit and usage: every half
    hour at most, and no more than 1% of the day's calls (a 1,000-call day: every 2.4 h)."""
    if known is None:
        return ASK_EVERY
    return max(ASK_EVERY, 86_400 / (ASK_SHARE * known.calls))


def until_midnight(now: dt.datetime) -> float:
    """Seconds until 00:00 UTC."""
    tomorrow = (now + dt.timedelta(days=1)).astimezone(dt.UTC).date()
    midnight = dt.datetime.combine(tomorrow, dt.time(), dt.UTC)
    return max((midnight - now).total_seconds(), 1.0)


def burst(calls: int) -> float:
    """How many calls may go at once: 1% of the limit, at least 10."""
    return max(MIN_BURST, BURST_SHARE * calls)


def used(own: float, others: float | None) -> float:
    """Today's calls of the account: npd-sync's own count, plus what Monday's last figure
    showed beyond it (other apps and tokens; None: Monday has not said)."""
    return own + max(others or 0.0, 0.0)


def rate(calls: int, spent: float, now: dt.datetime) -> float:
    """The even share of the calls left: calls a second until midnight."""
    return max(calls - spent, 0.0) / until_midnight(now)


@dataclass(frozen=True, slots=True)
class Bucket:
    """The pacing bucket shared by every listener: tokens at a moment (None: full)."""

    tokens: float | None
    at: dt.datetime | None


def refill(bucket: Bucket, calls: int, spent: float, unpaid: float, now: dt.datetime) -> float:
    """The tokens now: filled at the even share's rate since the bucket was last looked at, up
    to the burst (never more than the calls left), less the calls made since (`unpaid`)."""
    top = min(burst(calls), max(calls - spent, 0.0))
    if bucket.tokens is None or bucket.at is None:
        return top - unpaid
    elapsed = max((now - bucket.at).total_seconds(), 0.0)
    return min(top, bucket.tokens + rate(calls, spent, now) * elapsed) - unpaid


def wait(tokens: float, calls: int, spent: float, now: dt.datetime) -> float:
    """Seconds until the next call may go (0: now). With nothing left today, until midnight."""
    if tokens >= 1.0:
        return 0.0
    per_second = rate(calls, spent, now)
    if per_second <= 0:
        return until_midnight(now)
    return min((1.0 - tokens) / per_second, until_midnight(now))


def runs_out(calls: int, spent: float, per_hour: float, now: dt.datetime) -> dt.datetime | None:
    """When the day's calls would be spent at `per_hour` (None: they last until midnight)."""
    if per_hour <= 0:
        return None
    hours = max(calls - spent, 0.0) / per_hour
    if hours * 3600 >= until_midnight(now):
        return None
    return now + dt.timedelta(seconds=math.floor(hours * 3600))


DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Span:
    """How long a number of calls takes at the day's pace."""

    calls: int  # the calls needed
    left: float  # of today's, before them
    seconds: float  # until the last of them may go, about
    days: int  # the UTC days it spans (1: it ends today)


def span(needed: int, calls: int, spent: float, now: dt.datetime) -> Span:
    """The time `needed` calls take when the day's `calls` are paced to last the day: a burst
    at once, then today's even share of what is left; the rest goes on after 00:00 UTC, each
    day's whole limit over the day (assuming nobody else's calls)."""
    left = max(calls - spent, 0.0)
    if needed <= left:
        paced = max(needed - burst(calls), 0.0)
        seconds = paced / rate(calls, spent, now) if paced else 0.0
        return Span(needed, left, seconds, 1)
    beyond = needed - left
    more = math.ceil(beyond / calls)  # days after today
    last = beyond - (more - 1) * calls  # calls on the last day
    seconds = until_midnight(now) + (more - 1) * DAY + max(last - burst(calls), 0.0) / calls * DAY
    return Span(needed, left, seconds, 1 + more)


# --- reconciliation's share of the day ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PassCost:
    """What a reconciliation pass over one board costs, in calls: an incremental pass (the
    activity log since the last) and a full read (one a day); None: not known yet, assumed to
    be the cheapest, 1 call."""

    incremental: float | None = None
    full: float | None = None


def reconcile_calls(interval: float, costs: Sequence[PassCost]) -> float:
    """Calls a day that reconciliation every `interval` seconds costs over the boards: a full
    read of each once a day, incremental passes the rest of the time."""
    if interval <= 0 or not costs:
        return 0.0
    passes = DAY / min(interval, DAY)
    incremental = sum(_known(c.incremental) for c in costs)
    full = sum(_known(c.full) for c in costs)
    return full + (passes - 1) * incremental


def reconcile_every(
    configured: float,
    share: float,
    calls: int | None,
    costs: Sequence[PassCost],
    *,
    spent: float | None = None,
    seconds: float = DAY,
) -> float:
    """Seconds between two passes over every board: `configured`, widened so that the passes
    cost at most `share` of the daily limit (`calls`; None: no limit, nothing widens). Given
    the calls reconciliation `spent` today, what is left of its share is spread over the
    `seconds` until midnight, as the day's calls are; without, a whole day with a full read
    of each board in it. With no room left for a pass, a day."""
    if configured <= 0 or calls is None or not costs:
        return configured
    incremental = sum(_known(c.incremental) for c in costs)
    full = sum(_known(c.full) for c in costs)
    if incremental <= 0:
        return configured
    if spent is None:
        # full + (DAY / interval - 1) * incremental <= share * calls, solved for interval.
        room = share * calls - full + incremental
        if room <= 0:
            return DAY
    else:
        # What is left of the share, spread over the passes left today: an idle day's passes
        # go evenly until midnight, and none goes that the share has no room for.
        room = share * calls - spent
        if room < incremental:
            return DAY
    return min(max(configured, seconds * incremental / room), DAY)


def _known(calls: float | None) -> float:
    return 1.0 if calls is None else max(calls, 0.0)
