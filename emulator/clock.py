"""Time as the emulator sees it: wall-clock seconds, replaceable in tests."""

from __future__ import annotations

import time
from collections.abc import Callable

# Seconds since the epoch (UTC); `time.time` in production.
Clock = Callable[[], float]

system_clock: Clock = time.time


class ManualClock:
    """A clock that moves only when told to, for windows and expiry in tests."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds
