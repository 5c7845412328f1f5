"""listener.text: counts, durations, times and one-line cuts, as the CLI and the console print
them."""

from __future__ import annotations

import datetime as dt

import pytest

from listener import text


@pytest.mark.parametrize(
    ("n", "noun", "said"),
    [(0, "row", "0 rows"), (1, "row", "1 row"), (2000, "open conflict", "2,000 open conflicts")],
)
def test_counted(n: int, noun: str, said: str) -> None:
    assert text.counted(n, noun) == said


def test_times_for_people_and_for_json() -> None:
    at = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    assert text.when(at) == "2026-03-04 05:06:07Z"
    assert text.when(None) == "-"
    assert text.iso(at) == "2026-03-04T05:06:07Z"
    assert text.iso(None) is None


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0, "0s"), (59.9, "59s"), (60, "1m 00s"), (3599, "59m 59s"), (3600, "1h 00m"),
     (86399, "23h 59m"), (90000, "1d 01h"), (-5, "0s")],
)  # fmt: skip
def test_age(seconds: float, said: str) -> None:
    assert text.age(seconds) == said


def test_one_line_folds_and_cuts() -> None:
    assert text.one_line("a\n  b\tc") == "a b c"
    cut = text.one_line("x" * 200)
    assert len(cut) == text.WIDTH
    assert cut.endswith("…")


@pytest.mark.parametrize(
    ("conflicts", "rows", "said"),
    [(0, 0, "0 open conflicts"), (1, 1, "1 open conflict in 1 row"),
     (2, 1, "2 open conflicts in 1 row"), (3, 2, "3 open conflicts in 2 rows")],
)  # fmt: skip
def test_open_conflicts_are_said_with_their_rows(conflicts: int, rows: int, said: str) -> None:
    assert text.open_conflicts(conflicts, rows) == said


def test_unlinked_rows_say_why_they_are_not_synced() -> None:
    assert text.unlinked(2).startswith("2 rows unlinked: its item was archived or deleted")
