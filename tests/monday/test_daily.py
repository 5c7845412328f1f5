"""The daily call limit's pure rules: which limit holds, and a pace that makes the day's calls
last the day (issue 17)."""

from __future__ import annotations

import datetime as dt

import pytest

from listener.monday import daily

NOON = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("monday", "configured", "plan", "expected"),
    [
        (25_000, 1_000, "standard", daily.Limit(25_000, "monday")),
        (None, 1_000, "pro", daily.Limit(1_000, "daily_calls")),
        (None, None, "standard", daily.Limit(1_000, "plan")),
        (None, None, "free", daily.Limit(200, "plan")),
        (0, None, "enterprise", daily.Limit(25_000, "plan")),
        (None, None, None, None),  # with neither, no pacing
    ],
)
def test_which_limit_holds(
    monday: int | None, configured: int | None, plan: str | None, expected: daily.Limit | None
) -> None:
    assert daily.limit(monday, configured, plan) == expected


@pytest.mark.parametrize(("calls", "burst"), [(200, 10), (1_000, 10), (10_000, 100), (25_000, 250)])
def test_the_burst_is_a_hundredth_at_least_ten(calls: int, burst: float) -> None:
    assert daily.burst(calls) == burst


def test_the_even_share_is_what_is_left_over_the_time_left() -> None:
    assert daily.until_midnight(NOON) == 43_200
    assert daily.rate(1_000, 568, NOON) == pytest.approx(432 / 43_200)
    assert daily.rate(1_000, 1_200, NOON) == 0  # spent (others spent ours too)
    assert daily.used(300, 250) == 550  # our count, and what Monday showed beyond it
    assert daily.used(300, -20) == 300  # Monday's figure lags ours
    assert daily.used(300, None) == 300


def test_a_full_bucket_lets_a_burst_go_then_the_even_share() -> None:
    full = daily.Bucket(None, None)
    assert daily.refill(full, 1_000, 0, 0, NOON) == 10
    assert daily.wait(10, 1_000, 0, NOON) == 0
    # Ten calls later the bucket is empty: the next waits for a token at 1,000 / 43,200 s.
    assert daily.refill(full, 1_000, 0, 10, NOON) == 0
    assert daily.wait(0, 1_000, 0, NOON) == pytest.approx(43.2)
    later = NOON + dt.timedelta(seconds=43.2)
    assert daily.refill(daily.Bucket(0.0, NOON), 1_000, 10, 0, later) == pytest.approx(
        990 / (43_200 - 43.2) * 43.2
    )
    # Never more than the burst, however long nobody called.
    assert daily.refill(daily.Bucket(3.0, NOON - dt.timedelta(hours=5)), 1_000, 0, 0, NOON) == 10


def test_nothing_left_waits_for_midnight() -> None:
    assert daily.wait(0.5, 1_000, 1_000, NOON) == 43_200
    # A burst never holds more than what is left: 4 calls of 1,000 left, 4 tokens at most.
    assert daily.refill(daily.Bucket(None, None), 1_000, 996, 0, NOON) == 4
    assert daily.refill(daily.Bucket(None, None), 1_000, 1_000, 0, NOON) == 0


def test_over_any_stretch_at_most_a_burst_plus_the_even_share() -> None:
    # A listener calling whenever the rule lets it, from 06:00 to midnight on a 1,000-call
    # day: every hour holds at most the burst plus that hour's even share of what was left.
    now = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)
    calls: list[dt.datetime] = []
    bucket = daily.Bucket(None, None)
    while now < dt.datetime(2026, 12, 2, tzinfo=dt.UTC) and len(calls) < 1_000:
        tokens = daily.refill(bucket, 1_000, len(calls), 0, now)
        seconds = daily.wait(tokens, 1_000, len(calls), now)
        if seconds == 0:
            calls.append(now)
            bucket = daily.Bucket(tokens - 1, now)
            continue
        bucket = daily.Bucket(tokens, now)
        now += dt.timedelta(seconds=seconds)
    assert 990 <= len(calls) <= 1_000  # the day's calls last the day, and are used
    for start in range(6, 24):
        begin = dt.datetime(2026, 12, 1, start, tzinfo=dt.UTC)
        spent_before = sum(1 for c in calls if c < begin)
        share = (1_000 - spent_before) / daily.until_midnight(begin) * 3_600
        in_hour = sum(1 for c in calls if begin <= c < begin + dt.timedelta(hours=1))
        assert in_hour <= daily.burst(1_000) + share + 1


def test_when_the_calls_would_run_out() -> None:
    assert daily.runs_out(1_000, 400, 100, NOON) == NOON + dt.timedelta(hours=6)
    assert daily.runs_out(1_000, 400, 10, NOON) is None  # 60 hours: they last the day
    assert daily.runs_out(1_000, 400, 0, NOON) is None


def test_asking_monday_for_the_day_costs_at_most_a_hundredth_of_it() -> None:
    assert daily.ask_every(None) == 1_800
    assert daily.ask_every(daily.Limit(1_000, "plan")) == 8_640  # 10 calls a day
    assert daily.ask_every(daily.Limit(25_000, "monday")) == 1_800  # 48 calls a day


@pytest.mark.parametrize(
    ("needed", "spent", "seconds", "days"),
    [
        (0, 0, 0.0, 1),
        (10, 990, 0.0, 1),  # within the burst: at once
        (110, 0, 100 / (1_000 / 43_200), 1),  # the rest at today's even share
        (1_000, 0, 990 / (1_000 / 43_200), 1),  # every call left: about midnight
        (1_500, 0, 43_200 + 490 / 1_000 * 86_400, 2),  # 500 tomorrow
        (2_000, 1_000, 43_200 + 86_400 + 990 / 1_000 * 86_400, 3),  # none left today
        (2_010, 1_000, 43_200 + 2 * 86_400, 4),  # the last ten in the burst of day 4
    ],
)
def test_a_span_goes_at_the_days_pace_and_past_midnight(
    needed: int, spent: float, seconds: float, days: int
) -> None:
    found = daily.span(needed, 1_000, spent, NOON)
    assert found.seconds == pytest.approx(seconds)
    assert found.days == days
    assert found.left == 1_000 - spent


UNKNOWN = daily.PassCost()  # a board never reconciled: 1 call a pass assumed
CHEAP = daily.PassCost(incremental=1, full=1)
BIG = daily.PassCost(incremental=1, full=20)  # 10,000 items: 20 pages of 500 a day


@pytest.mark.parametrize(
    ("configured", "share", "calls", "costs", "expected"),
    [
        (600, 0.05, None, [UNKNOWN], 600),  # no limit known: the configured interval
        (600, 0.05, 1_000, [UNKNOWN], 1_728),  # 50 passes a day of 1 call
        (600, 0.05, 1_000, [CHEAP, UNKNOWN], 3_456),  # 2 boards: 25 passes a day each
        (600, 0.05, 1_000, [BIG], 86_400 / 31),  # the full read takes 20 of the 50
        (600, 0.05, 1_000, [daily.PassCost(1, 60)], 86_400),  # a full read a day is all
        (600, 0.05, 1_000, [daily.PassCost(3, 3)], 5_184),  # each pass 3 pages of activity
        (600, 0.05, 200, [UNKNOWN], 8_640),  # Free: 10 calls for it
        (600, 0.05, 10_000, [UNKNOWN], 600),  # Pro: 144 a day fits in 500
        (600, 0.05, 25_000, [CHEAP, CHEAP], 600),
        (600, 1.0, 1_000, [UNKNOWN], 600),  # the whole day: never shorter than configured
        (3_600, 0.05, 1_000, [UNKNOWN], 3_600),  # wider than the share needs already
        (0, 0.05, 1_000, [UNKNOWN], 0),  # the timer off stays off
        (600, 0.05, 1_000, [], 600),  # no board
    ],
)
def test_reconciliation_widens_to_keep_within_its_share_of_the_day(
    configured: float,
    share: float,
    calls: int | None,
    costs: list[daily.PassCost],
    expected: float,
) -> None:
    every = daily.reconcile_every(configured, share, calls, costs)
    assert every == pytest.approx(expected)
    if calls is not None and every < daily.DAY:
        assert daily.reconcile_calls(every, costs) <= share * calls + 1e-9


@pytest.mark.parametrize(
    ("spent", "seconds", "expected"),
    [
        (0, 86_400, 1_728),  # a day ahead, 50 calls: a pass every 1,728 s
        (0, 300, 6),  # 5 minutes to midnight, nothing spent: its 50 calls go over them
        (25, 43_200, 1_728),  # half the day gone, half the share: the same pace
        (45, 43_200, 8_640),  # a heavy morning: the afternoon's passes spread wider
        (49, 43_200, 43_200),  # room for one more pass, until midnight
        (49.5, 43_200, 86_400),  # no room for a pass: none until the day turns
        (60, 43_200, 86_400),
    ],
)
def test_what_is_left_of_the_share_goes_evenly_until_midnight(
    spent: float, seconds: float, expected: float
) -> None:
    every = daily.reconcile_every(1, 0.05, 1_000, [UNKNOWN], spent=spent, seconds=seconds)
    assert every == pytest.approx(expected)
    if every < daily.DAY:  # the passes left fit in what is left of the share
        assert spent + seconds / every * 1 <= 50 + 1e-9


def test_an_idle_day_spends_its_share_and_no_more() -> None:
    # Passes as the listeners take them, each as soon as it is due, over a whole day: within
    # 5% of the day's calls whatever the pass costs, though they go until midnight.
    for cost in (daily.PassCost(1, 1), daily.PassCost(3, 20), daily.PassCost(7, 7)):
        now, spent, passes = 0.0, 0.0, 0
        while True:
            every = daily.reconcile_every(
                600, 0.05, 1_000, [cost], spent=spent, seconds=daily.DAY - now
            )
            now += every
            if now >= daily.DAY:
                break
            spent += cost.full if passes == 0 else cost.incremental  # type: ignore[operator]
            passes += 1
        assert spent <= 50, cost
        assert spent >= 50 - 2 * cost.incremental - cost.full, cost  # type: ignore[operator]


def test_what_reconciliation_costs_a_day() -> None:
    # Issue 17: every 600 s, a board's activity log is 144 calls a day (14% of a Standard day).
    assert daily.reconcile_calls(600, [UNKNOWN]) == 144
    assert daily.reconcile_calls(600, [BIG, CHEAP]) == 20 + 143 + 144
    assert daily.reconcile_calls(86_400, [BIG]) == 20  # a pass a day: the full read
    assert daily.reconcile_calls(0, [BIG]) == 0  # off
