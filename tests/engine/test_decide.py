"""What to record for an entry once Monday answered, as tables: `decide`, which error decides
(`worst`), the backoff, and what a refused write-back costs (`refused`). Pure: no database, no
network."""

from __future__ import annotations

import dataclasses
import random

import pytest

from listener import fault
from listener.engine import decide, plans
from listener.engine.queue import Entry, Outcome
from listener.monday import errors
from listener.rows import Row
from tests.engine.helpers import CONTACTS, entry, row

POLICY = decide.Policy(max_attempts=3, backoff_base=1.0, backoff_cap=60.0, write_back_retry=1.0)


def planned(e: Entry, r: Row | None) -> plans.Push:
    push = plans.plan(e, r, CONTACTS, inbound=False)
    assert isinstance(push, plans.Push)
    return push


def decided(
    push: plans.Push,
    item: str | None,
    failure: errors.MondayError | None,
    rng: random.Random | None = None,
) -> decide.Decision:
    return decide.decide(push, None, item, [] if failure is None else [failure], POLICY, rng)


# --- decide: what to record ----------------------------------------------------------------

PUSHED = planned(entry(), row())  # a create
UPDATED = planned(entry(attempts=1), row(monday_id="200"))
LAST_TRY = planned(entry(attempts=2), row(monday_id="200"))
SKIPPED = planned(entry(), row(enabled=False))
BROKEN = planned(entry(), row(phone="not a phone"))


@pytest.mark.parametrize(
    ("work", "item", "failure", "outcome", "status", "uncertain"),
    [
        # success: the row is SYNCED with its item; a skipped row is not written
        (PUSHED, "200", None, Outcome.DONE, "SYNCED", False),
        (SKIPPED, None, None, Outcome.DONE, None, False),
        # the row cannot be sent: FAILED at once, no attempt left
        (BROKEN, None, None, Outcome.FAILED, "FAILED", False),
        # Monday's limits and a blocked account: wait, no attempt used, the row untouched
        (PUSHED, None, errors.RateLimited("slow down", retry_after=7), Outcome.WAIT, None, False),
        (PUSHED, None, errors.Blocked("daily limit"), Outcome.WAIT, None, False),
        # the item is gone on Monday: find or recreate it at once
        (UPDATED, None, errors.ItemGone("gone"), Outcome.WAIT, "PENDING", True),
        # a permanent error: FAILED with Monday's message
        (UPDATED, "200", errors.Permanent("bad email"), Outcome.FAILED, "FAILED", False),
        # a transient error: retried, the row PENDING; on the last attempt, FAILED
        (UPDATED, "200", errors.Transient("500"), Outcome.RETRY, "PENDING", False),
        (LAST_TRY, "200", errors.Transient("500"), Outcome.FAILED, "FAILED", False),
        # no answer to a create: it may have happened, look it up next time
        (PUSHED, None, errors.OutcomeUnknown("timeout"), Outcome.RETRY, "PENDING", True),
        # ... but an update without an answer is safe to repeat as it is
        (UPDATED, "200", errors.OutcomeUnknown("timeout"), Outcome.RETRY, "PENDING", False),
    ],
)
def test_decide(
    work: plans.Push,
    item: str | None,
    failure: errors.MondayError | None,
    outcome: Outcome,
    status: str | None,
    uncertain: bool,
) -> None:
    decision = decided(work, item, failure, random.Random(1))
    assert decision.completion.outcome is outcome
    assert decision.status == status
    assert decision.completion.uncertain is uncertain
    if failure is not None and status is not None:
        assert decision.error is not None
        assert failure.message in decision.error


def test_decide_waits_as_long_as_monday_says() -> None:
    limited = errors.RateLimited("slow down", retry_after=7)
    assert decided(PUSHED, None, limited).completion.delay == 7
    # no hint: a minute
    assert decided(PUSHED, None, errors.Blocked("x")).completion.delay == 60


def test_decide_retries_with_backoff_unless_monday_gives_a_time() -> None:
    hinted = errors.Transient("locked", retry_after=3)
    assert decided(UPDATED, "200", hinted).completion.delay == 3
    delays = {
        decided(UPDATED, "200", errors.Transient("x"), random.Random(s)).completion.delay
        for s in range(20)
    }
    # attempt 1: uniform(0, min(60, 1 * 2**1))
    assert all(0 <= d <= 2 for d in delays)
    assert len(delays) > 1


def test_giving_up_says_after_how_many_attempts() -> None:
    decision = decided(LAST_TRY, "200", errors.Transient("HTTP 500"))
    assert decision.error == "gave up after 3 attempts: HTTP 500"


def test_the_item_id_is_kept_whatever_the_outcome() -> None:
    # A create that succeeded but whose batch then failed must not be created again.
    decision = decided(PUSHED, "200", errors.Transient("x"))
    assert decision.completion.monday_id == "200"


@pytest.mark.parametrize(
    ("failures", "kind"),
    [
        ([], None),
        ([errors.Transient("a"), errors.ItemGone("b")], errors.Kind.ITEM_GONE),
        ([errors.ItemGone("a"), errors.RateLimited("b")], errors.Kind.RATE_LIMITED),
        ([errors.RateLimited("a"), errors.Blocked("b")], errors.Kind.BLOCKED),
        ([errors.Blocked("a"), errors.Permanent("b")], errors.Kind.PERMANENT),
    ],
)
def test_the_worst_failure_decides(failures: list[errors.MondayError], kind: object) -> None:
    worst = decide.worst(failures)
    assert (worst.kind if worst else None) is kind


def test_backoff_is_capped() -> None:
    rng = random.Random(0)
    assert all(decide.backoff(30, base=1, cap=5, rng=rng) <= 5 for _ in range(100))


# --- refused: a write-back the database refused -------------------------------------------


CHECK = fault.Fault("database", "check constraint", "23514")


def test_a_refused_write_back_costs_the_entry_its_attempts() -> None:
    done = decided(planned(entry(), row()), "200", None).completion
    retry = decide.refused(done, CHECK, POLICY, random.Random(1))
    assert (retry.outcome, retry.error, retry.monday_id) == (
        Outcome.RETRY, fault.Fault("database", "write-back refused: check constraint", "23514"),
        "200",
    )  # fmt: skip
    assert 0 <= retry.delay <= POLICY.backoff_base
    last = dataclasses.replace(done, entry=entry(attempts=POLICY.max_attempts - 1))
    failed = decide.refused(last, CHECK, POLICY)
    assert (failed.outcome, failed.monday_id) == (Outcome.FAILED, "200")
    assert failed.error == fault.Fault(
        "database", "gave up after 3 attempts: write-back refused: check constraint", "23514"
    )


def test_a_refused_write_back_of_a_failure_keeps_both_reasons() -> None:
    bad = errors.Permanent("invalid email", code="ColumnValueException", request_id="r-1")
    failed = decided(planned(entry(), row()), None, bad).completion
    refused = decide.refused(failed, CHECK, POLICY)
    assert refused.outcome is Outcome.FAILED
    # Monday's error decided the outcome: it stays Monday's, with the refusal said after it.
    assert refused.error == fault.Fault(
        "monday", "invalid email; write-back refused: check constraint",
        "ColumnValueException", request_id="r-1",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("work", "failure", "recorded"),
    [
        # Monday answered: its code, HTTP status and request id are kept apart
        (UPDATED, errors.Permanent("bad email", code="ColumnValueException", status=200,
                                   request_id="r-7"),
         fault.Fault("monday", "bad email", "ColumnValueException", 200, "r-7")),
        (LAST_TRY, errors.Transient("HTTP 500 without data", status=500, request_id="r-8"),
         fault.Fault("monday", "gave up after 3 attempts: HTTP 500 without data", None, 500,
                     "r-8")),
        # no answer, or npd-sync's own wait: npd-sync says so, not Monday
        (UPDATED, errors.OutcomeUnknown("no answer within 65s"),
         fault.Fault("npd-sync", "no answer within 65s")),
        (PUSHED, errors.RateLimited("board busy with another listener", code="BOARD_BUSY"),
         fault.Fault("npd-sync", "board busy with another listener", "BOARD_BUSY")),
        # a row that cannot be sent as it is
        (BROKEN, None, fault.Fault("npd-sync", BROKEN.error or "")),
    ],
)  # fmt: skip
def test_the_entry_records_what_was_said_and_who_said_it(
    work: plans.Push, failure: errors.MondayError | None, recorded: fault.Fault
) -> None:
    decision = decided(work, "200", failure, random.Random(1))
    assert decision.completion.error == recorded
    # The row's sync_error says it all on one line, as it always did.
    if decision.error is not None:
        assert decision.error == fault.line(recorded)
    if failure is not None and work is not LAST_TRY:
        assert decision.completion.error is not None
        assert fault.line(decision.completion.error) == str(failure)
