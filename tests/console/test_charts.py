"""The overview's charts: the history summed over listeners, percentiles off a histogram, and
the SVG (pure functions)."""

from __future__ import annotations

import datetime as dt

import pytest

from listener.console import charts
from listener.metrics import LATENCY_BUCKETS

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
EMPTY = [0] * (len(LATENCY_BUCKETS) + 1)


def buckets(**at: int) -> list[int]:
    """Counts per bucket, given as bound=count (b0_05=3: three rows in the bucket up to 0.05)."""
    counts = list(EMPTY)
    for name, count in at.items():
        bound = float(name[1:].replace("_", "."))
        counts[LATENCY_BUCKETS.index(bound)] = count
    return counts


def row(minutes_ago: int, synced: int = 0, failed: int = 0, latency: list[int] | None = None):
    return {
        "minute": NOW - dt.timedelta(minutes=minutes_ago),
        "synced": synced,
        "failed": failed,
        "retried": 0,
        "latency_buckets": latency if latency is not None else list(EMPTY),
        "latency_sum": 0.0,
    }


@pytest.mark.parametrize(
    ("q", "counts", "expected"),
    [
        (0.5, buckets(b0_01=10), 0.0075),  # halfway through (0.005, 0.01]
        (0.5, buckets(b0_005=10), 0.0025),  # the first bucket starts at 0
        (0.95, buckets(b0_01=90, b1=10), 0.75),  # rank 95: halfway into (0.5, 1]
        (0.5, [*EMPTY[:-1], 4], LATENCY_BUCKETS[-1]),  # beyond the last bound: the last bound
    ],
)
def test_quantile_interpolates_inside_the_bucket(
    q: float, counts: list[int], expected: float
) -> None:
    assert charts.quantile(q, counts) == pytest.approx(expected)


def test_quantile_of_nothing_is_none() -> None:
    assert charts.quantile(0.5, EMPTY) is None


def test_history_sums_listeners_per_minute_over_the_last_hour() -> None:
    rows = [
        row(0, synced=3, latency=buckets(b0_01=3)),
        row(0, synced=2, failed=1, latency=buckets(b0_01=1, b1=1)),  # another listener
        row(59, synced=7, latency=buckets(b0_1=7)),
        row(60, synced=100),  # an hour and a minute ago: not shown
        row(5, synced=1, latency=[1, 2]),  # other histogram bounds: counted, latency left out
    ]
    h = charts.history(rows, NOW)
    assert len(h.minutes) == charts.MINUTES
    assert (h.minutes[0], h.minutes[-1]) == (NOW - dt.timedelta(minutes=59), NOW)
    assert h.synced[-1] == 5
    assert h.failed[-1] == 1
    assert h.synced[0] == 7
    assert h.synced[-6] == 1
    assert h.p50[-6] is None
    assert sum(h.synced) == 13
    assert h.p50[-1] == pytest.approx(0.005 + 0.005 * 2.5 / 4)  # rank 2.5 of the 4 in (.005, .01]
    assert h.p50[1] is None  # a minute without synced rows has no latency
    assert h.hour_p95 is not None
    assert h.recorded


def test_an_empty_hour_draws_an_empty_chart_that_says_so() -> None:
    h = charts.history([], NOW)
    assert not h.recorded
    chart = charts.lines(h, label="Latency")
    assert "no row synced in the last hour" in chart.summary
    assert "<polyline" not in chart.svg
    assert "<rect" not in charts.bars(h, label="Rows").svg


def test_bars_and_lines_draw_each_minute_and_say_what_they_show() -> None:
    rows = [row(0, synced=40, failed=2, latency=buckets(b0_05=40)), row(1, synced=10)]
    h = charts.history(rows, NOW)
    bars = charts.bars(h, label="Rows synced per minute")
    assert bars.svg.count('class="bar-synced"') == 2
    assert bars.svg.count('class="bar-failed"') == 1
    assert bars.top == "50 a minute"  # 42 rounded up to a round number
    assert "50 rows synced in the last hour, at most 40 in a minute; 2 failed" in bars.summary
    assert f"<title>{bars.summary}</title>" in bars.svg
    lines = charts.lines(h, label="Latency")
    assert lines.svg.count("<circle") == 2  # one minute with a value: a dot per series
    assert "median 38 ms" in lines.summary


def test_labels_are_escaped() -> None:
    chart = charts.bars(charts.history([], NOW), label='<script>"x"')
    assert "<script>" not in chart.svg
    assert "&lt;script&gt;" in chart.svg


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "-"), (0.004, "4 ms"), (0.25, "0.25 s"), (2.5, "2.5 s"), (45, "45 s"), (600, "10 min")],
)
def test_seconds_for_people(value: float | None, shown: str) -> None:
    assert charts.seconds(value) == shown
