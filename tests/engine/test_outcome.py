"""A batch's outcome is counted once and fed everywhere: the running totals, Prometheus, the
console's per-minute history. Pure: no database, no network."""

from __future__ import annotations

import datetime as dt

import pytest

from listener import fault, metrics
from listener.engine.decide import Decision
from listener.engine.outcome import Outcome, Tally
from listener.engine.queue import Completion, Entry
from listener.engine.queue import Outcome as Done


def recorded(outcome: Done, *, status: str | None = "SYNCED", unchanged: bool = False,
             age: float = 0.0) -> tuple[Decision, Completion]:  # fmt: skip
    changed = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age)
    entry = Entry(1, "7", 1, 1, 0, False, None, (), changed)
    error = None if outcome is Done.DONE else fault.ours("boom")
    completion = Completion(entry, outcome, error)
    return Decision(completion, status, None, unchanged=unchanged), completion


@pytest.mark.parametrize(
    ("done", "status", "unchanged", "counted"),
    [
        (Done.DONE, "SYNCED", False, "synced"),
        # nothing was sent and the row already said so
        (Done.DONE, None, True, "unchanged"),
        # a row that is not pushed
        (Done.DONE, None, False, "skipped"),
        (Done.RETRY, "PENDING", False, "retried"),
        (Done.FAILED, "FAILED", False, "failed"),
        (Done.WAIT, None, False, "waited"),
    ],
)
def test_an_entry_counts_as_what_was_recorded_for_it(
    done: Done, status: str | None, unchanged: bool, counted: str
) -> None:
    outcome = Outcome()
    outcome.entry("contacts", *recorded(done, status=status, unchanged=unchanged))
    assert dict(outcome.counts) == {("contacts", counted): 1}


def test_a_batch_is_counted_once_everywhere() -> None:
    m = metrics.Metrics()
    tally = Tally(m)
    outcome = Outcome(records=9, requests=2)
    for table, done, age in (
        ("contacts", Done.DONE, 0.003),
        ("contacts", Done.DONE, 2.0),
        ("organizations", Done.DONE, 5000.0),
        ("contacts", Done.FAILED, 0.0),
    ):
        outcome.entry(table, *recorded(done, age=age))
    outcome.entry("contacts", *recorded(Done.DONE, status=None, unchanged=True))
    outcome.landed("contacts", "written", 2)
    tally.add(outcome)

    s = tally.stats
    assert (s.synced, s.failed, s.unchanged, s.pulled, s.ingested, s.requests) == (3, 1, 1, 2, 9, 2)
    sample = m.registry.get_sample_value
    assert sample("npd_sync_changes_total", {"table": "contacts", "outcome": "synced"}) == 2
    assert sample("npd_sync_changes_total", {"table": "organizations", "outcome": "synced"}) == 1
    assert sample("npd_sync_inbound_total", {"table": "contacts", "outcome": "written"}) == 2
    assert sample("npd_sync_commit_to_monday_seconds_count") == 3

    history = tally.take_history()
    assert (history.synced, history.failed, history.retried) == (3, 1, 0)
    per_bucket = dict(zip([*metrics.LATENCY_BUCKETS, "inf"], history.latency_buckets, strict=True))
    assert {k: v for k, v in per_bucket.items() if v} == {0.005: 1, 2.5: 1, "inf": 1}
    assert history.latency_sum == pytest.approx(5002.003, abs=0.1)
    assert not tally.take_history()  # taken: counted once


def test_history_that_could_not_be_written_is_counted_again() -> None:
    tally = Tally(metrics.Metrics())
    outcome = Outcome()
    outcome.entry("contacts", *recorded(Done.DONE, age=0.02))
    tally.add(outcome)
    lost = tally.take_history()
    tally.add(outcome)
    tally.restore(lost)
    again = tally.take_history()
    assert (again.synced, sum(again.latency_buckets)) == (2, 2)
