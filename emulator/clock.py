"""Time as the emulator sees it: wall-clock seconds, replaceable in tests and benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable

# Seconds since the epoch (UTC); `time.time` in production.
Clock = Callable[[], float]

system_clock: Clock = time.time

DAY = 86_400.0


class ManualClock:
    """A clock that moves only when told to, for windows and expiry in tests."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


class ScaledClock:
    """Wall-clock time running `speed` times as fast from `start` (default: now), so that a
    benchmark lives a whole Monday day in minutes: at 144, a day lasts 10 minutes.

    Everything the emulator times runs on it (the day and its reset at 00:00 UTC, the minute
    and complexity windows, Retry-After and retry_in_seconds, timestamps), all in emulated
    seconds: a client on real time divides them by `speed` (`real_seconds`).
    """

    def __init__(
        self,
        speed: float,
        start: float | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._monotonic = monotonic
        self._origin = monotonic()
        self._start = time.time() if start is None else start

    def __call__(self) -> float:
        return self._start + (self._monotonic() - self._origin) * self.speed

    def advance(self, seconds: float) -> None:
        """Jump forward by `seconds` of emulated time (e.g. to just before midnight)."""
        self._start += seconds

    def real_seconds(self, emulated: float) -> float:
        """How long `emulated` seconds of this clock last in real time."""
        return emulated / self.speed


def utc_day(now: float) -> int:
    """The UTC day `now` falls in, counted from the epoch (Monday's days end at 00:00 UTC)."""
    return int(now // DAY)


def to_midnight(now: float) -> float:
    """Seconds from `now` to the next 00:00 UTC."""
    return (utc_day(now) + 1) * DAY - now
