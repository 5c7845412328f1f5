"""Monday's daily call limit: the calls an account made each UTC day, and the late copy of them
that `platform_api { daily_analytics }` reports.

Monday counts every call of the account (every token and app together) against a limit that
resets at 00:00 UTC; a call refused for a rate limit counts 0.1 (developer.monday.com "Rate
limits"). Its analytics are refreshed "approximately every 10 minutes" (the API analytics
dashboard page): `report` answers what the count was at the last refresh, at multiples of
`refresh_seconds` (0: live), so that a client meets the lag: its latest calls are not there yet.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from emulator.clock import DAY, Clock, utc_day

HISTORY_DAYS = 14  # by_day covers "the past 14 days" (platform_api reference)


@dataclass(frozen=True, slots=True)
class Usage:
    """What platform_api reports: when the copy was taken (epoch seconds) and its calls per
    day, oldest first, as Monday's Int (whole calls, rounded down)."""

    last_updated: float
    by_day: tuple[tuple[str, int], ...]


def day_name(day: int) -> str:
    """A UTC day (days since the epoch) as PlatformApiDailyAnalyticsByDay.day: YYYY-MM-DD."""
    return dt.date.fromordinal(dt.date(1970, 1, 1).toordinal() + day).isoformat()


class DailyCalls:
    """Calls counted per UTC day, and the copy of them taken at the last refresh."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._used: dict[int, float] = {}
        self._copy: dict[int, float] = {}
        self._copied_at = clock()

    def count(self, amount: float, refresh_seconds: float) -> None:
        """Add `amount` calls (0.1 for a refused one; negative to take back) to today."""
        now = self._clock()
        self._refresh(now, refresh_seconds)
        day = utc_day(now)
        if day not in self._used:  # a new day: forget those no report shows any more
            for old in [d for d in self._used if d <= day - HISTORY_DAYS]:
                del self._used[old]
        self._used[day] = max(0.0, self._used.get(day, 0.0) + amount)

    def today(self) -> float:
        """Calls counted today so far (exact, with the tenths)."""
        return self._used.get(utc_day(self._clock()), 0.0)

    def set_today(self, used: float, *, reported: bool) -> None:
        """Make today's count `used` (other apps spent them); `reported`: the analytics show
        it at once, as if the calls had been made before the last refresh."""
        now = self._clock()
        self._used[utc_day(now)] = used
        if reported:
            self._copy, self._copied_at = dict(self._used), now

    def report(self, refresh_seconds: float) -> Usage:
        """The analytics as Monday shows them now: the copy of the last refresh."""
        now = self._clock()
        self._refresh(now, refresh_seconds)
        if refresh_seconds <= 0:
            self._copy, self._copied_at = dict(self._used), now
        newest = utc_day(self._copied_at)
        days = sorted(d for d in self._copy if newest - HISTORY_DAYS < d <= newest)
        by_day = tuple((day_name(d), math.floor(self._copy[d] + 1e-9)) for d in days)
        return Usage(self._copied_at, by_day)

    def resets_in(self) -> float:
        """Seconds to the next 00:00 UTC."""
        now = self._clock()
        return (utc_day(now) + 1) * DAY - now

    def _refresh(self, now: float, refresh_seconds: float) -> None:
        # The count at a refresh is the count before the first call after it: take the copy
        # lazily, on the first count or report past a refresh time.
        if refresh_seconds <= 0:
            return
        due = math.floor(now / refresh_seconds) * refresh_seconds
        if due > self._copied_at:
            self._copy, self._copied_at = dict(self._used), due
