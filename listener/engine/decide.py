"""What to record for each entry once Monday answered, as pure functions: the queue's outcome
(done, retry with backoff, wait, failed), the row's `sync_status` and `sync_error`, and the
link to record; and what a write-back the database refused costs its entry.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from listener import fault, links
from listener.engine.plans import Landing, Push
from listener.engine.queue import Completion, Outcome
from listener.monday import errors


@dataclass(frozen=True, slots=True)
class Policy:
    max_attempts: int
    backoff_base: float
    backoff_cap: float
    write_back_retry: float
    conflict_status: str = "CONFLICT"  # FAILED where sync_status cannot hold CONFLICT


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one entry: what goes to the queue and what to the row."""

    completion: Completion
    status: str | None  # sync_status to write, or None to leave the row alone
    error: str | None  # sync_error to write
    link: links.Link | None = None  # the row's item and the values Monday now holds
    unchanged: bool = False  # nothing changed on either side: nothing was sent or written
    landing: Landing | None = None  # what reading the item decided for the row (inbound)
    keeps: str | None = None  # written back as the row's monday_id instead of the queue's
    waiting: tuple[tuple[int, str], ...] = ()  # referenced rows whose items the links await
    # For the row's history: what was done on Monday and sent, and the request that did it.
    action: str | None = None
    sent: Mapping[str, Any] | None = None
    request_id: str | None = None


def backoff(attempts: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempts))."""
    return (rng or random).uniform(0, min(cap, base * 2**attempts))


_ORDER = {
    errors.Kind.PERMANENT: 0,
    errors.Kind.BLOCKED: 1,
    errors.Kind.RATE_LIMITED: 2,
    errors.Kind.ITEM_GONE: 3,
    errors.Kind.TRANSIENT: 4,
}


def worst(failures: Sequence[errors.MondayError]) -> errors.MondayError | None:
    """The error that decides an entry's fate when several of its operations failed."""
    return min(failures, key=lambda f: _ORDER[f.kind], default=None)


def decide(
    push: Push,
    landing: Landing | None,
    item_id: str | None,
    failures: Sequence[errors.MondayError],
    policy: Policy,
    rng: random.Random | None = None,
    *,
    looked: bool = False,
    request_id: str | None = None,
) -> Decision:
    """Fold the results of an entry's operations into one outcome.

    `item_id` is the row's item after the exchange (None if none); `failures` the errors of its
    operations; `looked`: its npd_id lookup was answered (what it found is kept as monday_id);
    `request_id`: Monday's id of the request that carried its push.
    """
    decision = _decide(push, landing, item_id, failures, policy, rng, looked=looked)
    return dataclasses.replace(
        decision, waiting=push.waiting, request_id=request_id, **_done(push, landing)
    )


def _done(push: Push, landing: Landing | None) -> dict[str, Any]:
    """What the entry did on Monday, for the row's history."""
    if push.action in ("create", "update"):
        return {"action": push.action, "sent": push.pushed}
    if push.action == "find":
        return {"action": "create", "sent": push.agreed}
    if push.archive:
        return {"action": "archive", "sent": {"archived": list(push.archive)}}
    return {"action": "read" if landing is not None else None, "sent": None}


def _decide(
    push: Push,
    landing: Landing | None,
    item_id: str | None,
    failures: Sequence[errors.MondayError],
    policy: Policy,
    rng: random.Random | None,
    *,
    looked: bool,
) -> Decision:
    if push.error is not None:
        why = fault.ours(push.error)
        done = Completion(push.entry, Outcome.FAILED, why, monday_id=push.item_id)
        status = "FAILED" if push.row is not None else None
        return Decision(done, status, push.error, keeps=push.keeps)
    failure = worst(failures)
    if failure is None:
        return _succeeded(push, landing, item_id, policy)
    decision = _failed(push, landing is not None, item_id, failure, policy, rng)
    c = decision.completion
    if looked and c.uncertain and c.outcome is Outcome.WAIT and _only_waits(failures):
        # Looked up, and the push was refused or never sent: Monday holds what the lookup
        # found (kept as monday_id), so the next attempt need not look again.
        return dataclasses.replace(decision, completion=dataclasses.replace(c, uncertain=False))
    return decision


def _only_waits(failures: Sequence[errors.MondayError]) -> bool:
    return all(
        f.kind is errors.Kind.RATE_LIMITED and f.code != "IDEMPOTENCY_CONFLICT" for f in failures
    )


def _writes_back(push: Push, read: bool) -> bool:
    """Whether the row gets monday_id / sync_status written."""
    return push.row is not None and (
        push.action is not None or push.error is not None or push.in_sync or read
    )


def _succeeded(
    push: Push, landing: Landing | None, item_id: str | None, policy: Policy
) -> Decision:
    completion = Completion(push.entry, Outcome.DONE, monday_id=item_id)
    link = None
    if push.action is not None and item_id is not None:
        link = links.Link(push.entry.key, item_id, push.pushed)
    if landing is not None:
        return _landed(push, landing, completion, link, policy)
    if push.in_sync:
        # Nothing was sent; the row is written only if it does not say so yet.
        status = _stale_status(push, item_id)
        return Decision(completion, status, push.note if status else None, unchanged=True)
    status = "SYNCED" if _writes_back(push, False) else None
    return Decision(completion, status, push.note if status else None, link)


def _stale_status(push: Push, item_id: str | None) -> str | None:
    """SYNCED when the row does not say so yet (or names another item), else None."""
    row = push.row
    stale = row is None or row.status != "SYNCED" or row.monday_id != item_id
    return "SYNCED" if stale else None


def _landed(
    push: Push, landing: Landing, done: Completion, link: links.Link | None, policy: Policy
) -> Decision:
    """The outcome of an entry whose item was read: the row ends SYNCED, or shows its open
    conflicts, or is unlinked from an item that went."""
    row = push.row
    match landing.fate:
        case "unlink":
            why = f"unlinked: item {landing.item_id} was archived or deleted on Monday"
            gone = dataclasses.replace(done, monday_id=None)
            return Decision(gone, "SYNCED", why, landing=landing)
        case "delete":
            return Decision(done, None, None, landing=landing)
        case "relink" if row is not None:
            relinked = dataclasses.replace(done, monday_id=done.monday_id or row.linked_item)
            return Decision(relinked, "SYNCED", None, link, landing=landing)
    still = set(row.conflicted if row else ()) - set(landing.settled)
    open_ = sorted(still | {c.column_id for c in landing.open_conflicts})
    if open_:
        why = f"conflict on {', '.join(open_)}: changed on both sides; see `npd-sync conflicts`"
        return Decision(done, policy.conflict_status, why, link, landing=landing)
    if row is not None and _quiet(push, landing, link):
        # Read, and nothing changed on either side (the echo of our own push, a pull that
        # found nothing): neither a sync to count nor a row to touch.
        return Decision(done, _stale_status(push, done.monday_id), None, None, True, landing)
    return Decision(done, "SYNCED", push.note, link, landing=landing)


def _quiet(push: Push, landing: Landing, link: links.Link | None) -> bool:
    """Nothing was sent, and nothing is to be written into the row or settled."""
    return (
        link is None
        and push.action is None
        and not landing.write
        and not landing.conflicts
        and not landing.settled
    )


def _failed(
    push: Push,
    read: bool,
    item_id: str | None,
    failure: errors.MondayError,
    policy: Policy,
    rng: random.Random | None,
) -> Decision:
    entry = push.entry
    error = fault.from_monday(failure)
    message = fault.line(error)  # the row's sync_error
    known = item_id or entry.monday_id
    writes_back = _writes_back(push, read)
    if failure.kind in (errors.Kind.RATE_LIMITED, errors.Kind.BLOCKED):
        pause = failure.retry_after if failure.retry_after is not None else 60.0
        wait = Completion(entry, Outcome.WAIT, error, pause, known, entry.uncertain)
        return Decision(wait, None, None)
    if failure.kind is errors.Kind.ITEM_GONE:
        # The row's item is gone from Monday: forget it, find or recreate it at once.
        gone = Completion(entry, Outcome.WAIT, error, 0.0, None, uncertain=True)
        return Decision(gone, "PENDING" if writes_back else None, message)
    uncertain = entry.uncertain or (
        isinstance(failure, errors.OutcomeUnknown) and push.action in ("create", "find")
    )
    if failure.kind is errors.Kind.PERMANENT or entry.attempts + 1 >= policy.max_attempts:
        if failure.kind is not errors.Kind.PERMANENT:
            error = fault.gave_up(error, entry.attempts + 1)
            message = fault.line(error)
        failed = Completion(entry, Outcome.FAILED, error, 0.0, known, uncertain)
        return Decision(failed, "FAILED" if writes_back else None, message)
    delay = failure.retry_after
    if delay is None:
        delay = backoff(entry.attempts, base=policy.backoff_base, cap=policy.backoff_cap, rng=rng)
    retry = Completion(entry, Outcome.RETRY, error, delay, known, uncertain)
    return Decision(retry, "PENDING" if writes_back else None, message)


def refused(
    completion: Completion, reason: fault.Fault, policy: Policy, rng: random.Random | None = None
) -> Completion:
    """What to record for an entry whose write-back the database refused (a constraint or a
    trigger of the application, `reason`): that entry alone pays, with its own attempts, and
    what was learnt from Monday (the item id) is kept."""
    message = f"write-back refused: {reason.message}"
    error = dataclasses.replace(reason, message=message)
    entry = completion.entry
    if completion.outcome is Outcome.DONE:
        if entry.attempts + 1 >= policy.max_attempts:
            error = fault.gave_up(error, entry.attempts + 1)
            return dataclasses.replace(completion, outcome=Outcome.FAILED, error=error)
        delay = backoff(entry.attempts, base=policy.backoff_base, cap=policy.backoff_cap, rng=rng)
        return dataclasses.replace(completion, outcome=Outcome.RETRY, error=error, delay=delay)
    # Failed or coming back anyway: keep why, and say why the row does not show it.
    if completion.error is not None:
        error = fault.also(completion.error, message)
    return dataclasses.replace(completion, error=error)
