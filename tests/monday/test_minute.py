"""The minute's requests, paced: a burst at once, then the window's even share, so that a
scarce request carries more rows rather than the last ones waiting for the next minute
(issue 17)."""

from __future__ import annotations

import pytest

from listener.monday import minute
from listener.monday.minute import Window


@pytest.mark.parametrize(
    ("quota", "burst"), [(5, 5), (20, 10), (40, 10), (1_000, 250), (2_500, 625), (5_000, 1_250)]
)
def test_the_burst_is_a_quarter_at_least_ten(quota: int, burst: float) -> None:
    assert minute.burst(quota) == burst


@pytest.mark.parametrize(
    ("window", "seconds"),
    [
        # A new window (or none yet): at once.
        (Window(1_000, 0, None, 60), 0.0),
        (Window(1_000, 0, 0, 60), 0.0),
        # Plentiful: within the burst, or within the burst plus the share of the time gone by.
        (Window(1_000, 1_000, 60, 60), 0.0),
        (Window(1_000, 751, 60, 60), 0.0),
        (Window(1_000, 400, 30, 60), 0.0),  # 600 spent of 625 allowed at half time
        (Window(2_500, 1_500, 40, 60), 0.0),  # 50 a second for 20 s on a 2,500 plan
        (Window(1_000, 750, 61, 60), 0.08),  # the ledger's guess of the end is a second late
        # Scarce: the burst is spent, the next request waits for its share (750 over 60 s).
        (Window(1_000, 750, 60, 60), 0.08),
        (Window(1_000, 300, 30, 60), 6.08),  # 700 spent, 625 allowed at half time
        (Window(20, 10, 60, 60), 6.0),  # a 20-request account: 10 at once, then one in 6 s
        (Window(20, 10, 30, 60), 0.0),
        # Nothing left: until the window starts again.
        (Window(1_000, 0, 12, 60), 12.0),
        (Window(1_000, 0.5, 12, 60), 12.0),
        (Window(5, 0, 30, 60), 30.0),
        (Window(5, 1, 30, 60), 0.0),  # a quota below the burst: all of it at once
    ],
)
def test_when_the_next_request_may_go(window: Window, seconds: float) -> None:
    assert minute.wait(window) == pytest.approx(seconds, abs=0.01)


@pytest.mark.parametrize(
    ("window", "seconds"),
    [
        # A full request (a backlog) cannot carry more for waiting: it goes while any is left.
        (Window(1_000, 750, 60, 60), 0.0),
        (Window(1_000, 300, 30, 60), 0.0),
        (Window(20, 1, 50, 60), 0.0),
        (Window(1_000, 0, 12, 60), 12.0),
        (Window(1_000, 0, None, 60), 0.0),
    ],
)
def test_a_full_request_waits_only_for_a_spent_window(window: Window, seconds: float) -> None:
    assert minute.wait(window, full=True) == pytest.approx(seconds, abs=0.01)


@pytest.mark.parametrize(
    ("window", "room"),
    [
        (Window(1_000, 0, None, 60), 250),  # a new window: its burst
        (Window(1_000, 1_000, 60, 60), 250),
        (Window(1_000, 400, 30, 60), 25),
        (Window(1_000, 300, 30, 60), 0),
        (Window(1_000, 20, 1, 60), 7),  # near its end: 987.5 allowed
        (Window(2_500, 1_500, 40, 60), 250),
    ],
)
def test_how_many_may_go_at_once(window: Window, room: int) -> None:
    assert minute.room(window) == room


def test_the_wait_ends_when_the_share_allows_one_more() -> None:
    # After waiting what `wait` says, the window holds one more request.
    window = Window(1_000, 300, 30, 60)
    later = Window(1_000, 300, 30 - minute.wait(window) - 1e-6, 60)
    assert minute.wait(later) == 0
    assert minute.room(later) == 1
