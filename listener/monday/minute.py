"""Monday's requests a minute: when the next request may go. Pure: no I/O.

Monday counts every request of the account against a limit a minute (1,000 / 2,500 / 5,000 by
plan; developer.monday.com, "Rate limits"). Spent as fast as changes come, a minute's requests
run out early, and what comes after waits for the next minute. Spent evenly, what comes while a
request waits goes with the next one: a scarce request carries more rows. So a request goes at
once while the window holds a burst (a quarter of the quota, at least 10) plus the even share
of the window gone by; beyond that it waits for its share, unless it is full already (a
backlog: waiting would not make it carry more; only a window with nothing left holds it). The
engine asks before it claims work, so that rows gather in the queue rather than wait, claimed,
for the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BURST_SHARE = 0.25
MIN_BURST = 10.0


@dataclass(frozen=True, slots=True)
class Window:
    """The requests limit's current window, as the ledger holds it."""

    quota: float  # requests a window (Monday's figure, else the plan's)
    left: float  # requests left to reserve in it (Monday's figure less those in flight)
    reset_in: float | None  # seconds until it starts again (None, <= 0: a new window)
    length: float  # seconds


def burst(quota: float) -> float:
    """How many requests of a window may go at once: a quarter, at least 10 (never more than
    the quota)."""
    return min(quota, max(MIN_BURST, BURST_SHARE * quota))


def allowed(window: Window) -> float:
    """Requests the window may have spent by now: the burst, plus the even share of the rest
    for the time gone by (all of it at its end)."""
    if window.reset_in is None or window.reset_in <= 0:
        return 0.0
    gone = max(window.length - window.reset_in, 0.0)
    share = burst(window.quota)
    return share + (window.quota - share) * min(gone / window.length, 1.0)


def room(window: Window) -> int:
    """Requests that may go at once, now (a new window: its burst)."""
    if window.reset_in is None or window.reset_in <= 0:
        return math.floor(burst(window.quota))
    used = max(window.quota - window.left, 0.0)
    return max(0, min(math.floor(allowed(window) - used), math.floor(window.left)))


def wait(window: Window, *, full: bool = False) -> float:
    """Seconds until the next request may go (0: now); with nothing left, until the window
    starts again. A `full` request (it carries all one request may) does not wait for the
    pace, which could not make it carry more: only for a window with nothing left."""
    if window.reset_in is None or window.reset_in <= 0 or window.quota <= 0:
        return 0.0
    reset_in = min(window.reset_in, window.length)
    if window.left < 1:
        return window.reset_in
    if full or room(window) >= 1:
        return 0.0
    used = max(window.quota - window.left, 0.0)
    share = burst(window.quota)
    # When `allowed` reaches used + 1 (the quota exceeds the burst here: else room >= 1).
    due = (used + 1 - share) * window.length / (window.quota - share)
    gone = window.length - reset_in
    return min(max(due - gone, 0.0), reset_in)
