"""The rules of a row's sync, as pure functions of a queue entry, its row as it is now and
Monday's answers: what an entry needs (`plan`), what reading its item changes (`merged`,
`gone`), which items it may archive (`vet_archives`), in which requests (`operations`), and
what to record afterwards (`decide`, `refused`), with the
retry policy (`backoff`).
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from listener import fault, links, mapping
from listener.inbound.merge import Conflict, Merge
from listener.monday import api, errors
from listener.outbound.queue import Completion, Entry, Outcome
from listener.outbound.rows import Row

Push = Literal["create", "update", "find"]
# What becomes of the row itself: kept; unlinked from an item gone on Monday; deleted with
# it; linked again to an item restored on Monday.
Fate = Literal["keep", "unlink", "delete", "relink"]
ITEM_ID = re.compile(r"^[0-9]{1,20}$")


@dataclass(frozen=True, slots=True)
class Work:
    """What one entry needs, on Monday and in the row."""

    entry: Entry
    row: Row | None
    archive: tuple[str, ...] = ()  # items of deleted rows to archive (or delete)
    push: Push | None = None  # what to do with the row's own item
    item_id: str | None = None  # the row's item, when it has one
    name: str = ""
    values: Mapping[str, Any] | None = None  # every mapped column's value (None: empty)
    # An update of an item whose agreed values are known sends only what differs from them
    # ("name" included when the name does); None: send everything.
    changes: Mapping[str, Any] | None = None
    in_sync: bool = False  # the item holds the row's values already: nothing to send
    error: str | None = None  # the row cannot be sent as it is (FAILED without a request)
    # Inbound: the item must be read first (Monday's side may have changed), and what reading
    # it decided: values to write into the row, values agreed without a push, conflicts.
    read: bool = False
    receives: bool = False  # the row takes the board's edits (BIDIRECTIONAL, MONDAY_TO_NPD)
    write: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    agree: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    conflicts: tuple[Conflict, ...] = ()
    settled: tuple[str, ...] = ()
    fate: Fate = "keep"

    @property
    def writes_back(self) -> bool:
        """Whether the row gets monday_id / sync_status written."""
        return self.row is not None and (
            self.push is not None or self.error is not None or self.in_sync or self.read
        )

    @property
    def agreed(self) -> dict[str, Any]:
        """What the item holds once a full push succeeded: every column and the name."""
        return {**(self.values or {}), links.NAME: self.name}

    @property
    def pushed(self) -> dict[str, Any]:
        """What Monday holds once this entry's push succeeded, as far as it sent it."""
        if self.push == "update" and self.changes is not None:
            return dict(self.changes)
        return self.agreed

    @property
    def open_conflicts(self) -> list[Conflict]:
        """The conflicts left for someone to resolve (manual policy)."""
        return [c for c in self.conflicts if c.winner is None]


def plan(
    entry: Entry, row: Row | None, table: mapping.TableMapping, *, inbound: bool = False
) -> Work:
    """Decide what an entry needs: archive items of deleted rows, create or update the row's,
    and, with `inbound`, whether its item must be read first."""
    current = (row.monday_id if row else None) or entry.monday_id
    stale = set(entry.archive_ids)
    if row is None and entry.monday_id:
        stale.add(entry.monday_id)  # created, then the row went before we could write it back
    stale.discard(current if row is not None else "")
    archive = () if table.on_delete == "ignore" else tuple(sorted(stale))
    if row is None:
        return Work(entry, row, archive)
    pushes = mapping.is_syncable(row.enabled, row.direction)
    receives = inbound and mapping.receives(row.enabled, row.direction)
    # A row unlinked from an item that went on Monday keeps its link, for a restore.
    unlinked = row.unlinked and current is None
    item = current or (row.linked_item if unlinked else None)
    linked = item is not None and row.linked_item == item
    if not pushes and not (receives and linked):
        return Work(entry, row, archive)
    try:
        name = mapping.item_name(row.values, table, row.key)
        values = mapping.column_values(row.values, table, row.key)
    except mapping.MappingError as exc:
        return Work(entry, row, archive, item_id=current, error=str(exc))
    work = Work(entry, row, archive, None, current, name, values, receives=receives)
    changes = None
    # An uncertain entry (a backfill, a create whose reply was lost) trusts no record of what
    # Monday holds: it sends everything.
    if row.agreed is not None and linked and not entry.uncertain:
        changes = links.changed(work.agreed, row.agreed)
    changed_here = changes != {}
    if receives and linked and (entry.pull or (pushes and not unlinked and changed_here)):
        # Monday's side may have changed (it said so, or a push would overwrite what it
        # holds): read the item first; the merge decides what to send.
        push: Push | None = "update" if pushes else None
        return dataclasses.replace(work, push=push, item_id=item, changes=changes, read=True)
    if not pushes:
        return Work(entry, row, archive)
    if current is not None:
        if not changed_here:
            # Monday holds these values already (an update of unmapped columns, a value
            # written back unchanged): nothing to send.
            return dataclasses.replace(work, in_sync=True)
        return dataclasses.replace(work, push="update", changes=changes)
    if unlinked and not changed_here:
        return Work(entry, row, archive)  # pushed again, as a new item, once it changes
    # A create whose reply never came (timeout, crash) may have happened: look first.
    push = "find" if entry.uncertain or entry.interrupted else "create"
    return dataclasses.replace(work, push=push)


def merged(work: Work, merge: Merge) -> Work:
    """The work once the row's item was read and merged: send only what the merge says, write
    the board's edits into the row, record what is agreed and the conflicts."""
    push = work.push if merge.push else None
    fate: Fate = "relink" if work.row is not None and work.row.unlinked else "keep"
    return dataclasses.replace(
        work,
        push=push,
        changes=merge.push if push == "update" else work.changes,
        in_sync=push is None,
        write=merge.write,
        agree=merge.agree,
        conflicts=merge.conflicts,
        settled=merge.settled,
        fate=fate,
    )


def gone(work: Work, table: mapping.TableMapping) -> Work:
    """The work once the row's item turned out archived or deleted on Monday."""
    row = work.row
    if row is not None and row.unlinked and work.entry.monday_id is None and not row.monday_id:
        # Unlinked already (the item was not restored): a new item only if the row changed.
        push: Push | None = "create" if work.push and work.changes != {} else None
        return dataclasses.replace(work, push=push, item_id=None, changes=None, read=False)
    if table.on_monday_delete == "ignore" or row is None:
        return dataclasses.replace(work, read=False)
    fate: Fate = "delete" if table.on_monday_delete == "delete" else "unlink"
    return dataclasses.replace(work, push=None, changes=None, fate=fate)


def unreadable(entry: Entry, reason: str) -> Work:
    """An entry whose row cannot be read (its key does not fit the key column): it fails, and
    nothing is sent or archived for it."""
    return Work(entry, None, error=reason)


@dataclass(frozen=True, slots=True)
class Refusal:
    """An item an entry asked to archive that npd-sync did not link to that row: never sent."""

    key: str
    item_id: str
    reason: str


def unlinked_items(plans: Sequence[Work], linked: Mapping[str, tuple[int, str]]) -> list[str]:
    """The items to archive that have no link: Monday must say which board they are on."""
    items = {i for p in plans for i in p.archive if ITEM_ID.match(i) and i not in linked}
    return sorted(items)


def vet_archives(
    plans: Sequence[Work],
    table_id: int,
    board_id: str,
    linked: Mapping[str, tuple[int, str]],
    boards: Mapping[str, str],
) -> tuple[list[Work], list[Refusal]]:
    """Keep, of the items each plan would archive, only those npd-sync linked to that very row:
    its link says so or, for an item without a link (synced before links were kept), Monday
    has it on the table's board. `linked` maps items to the (table id, key) of their link,
    `boards` items without one to their board as Monday says."""
    kept: list[Work] = []
    refusals: list[Refusal] = []
    for p in plans:
        allowed = []
        for item in p.archive:
            reason = _archive_refusal(item, (table_id, p.entry.key), board_id, linked, boards)
            if reason is None:
                allowed.append(item)
            else:
                refusals.append(Refusal(p.entry.key, item, reason))
        kept.append(p if len(allowed) == len(p.archive) else replace(p, archive=tuple(allowed)))
    return kept, refusals


def _archive_refusal(
    item: str,
    row: tuple[int, str],
    board_id: str,
    linked: Mapping[str, tuple[int, str]],
    boards: Mapping[str, str],
) -> str | None:
    if not ITEM_ID.match(item):
        return "not a Monday item id"
    link = linked.get(item)
    if link is not None:
        return None if link == row else f"linked to row {link[1]} of table id {link[0]}"
    board = boards.get(item)
    if board is None:
        return "not found on Monday"
    return None if board == board_id else f"on board {board}, not on the table's board"


def adopt(found: Sequence[str]) -> str | None:
    """Of the items already carrying a row's npd_id, the one to keep: the oldest."""
    return min(found, key=lambda item: (len(item), item)) if found else None


def backoff(attempts: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempts))."""
    return (rng or random).uniform(0, min(cap, base * 2**attempts))


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
    unchanged: bool = False  # Monday held the row's values already: nothing was sent
    work: Work | None = None  # what reading the item decided for the row (inbound)


def decide(
    p: Work,
    item_id: str | None,
    failure: errors.MondayError | None,
    policy: Policy,
    rng: random.Random | None = None,
) -> Decision:
    """Fold the results of an entry's operations into one outcome.

    `item_id` is the row's item after the push (None if none); `failure` the worst error among
    its operations (None if all succeeded).
    """
    entry = p.entry
    if p.error is not None:
        done = Completion(entry, Outcome.FAILED, fault.ours(p.error), monday_id=p.item_id)
        return Decision(done, "FAILED" if p.row is not None else None, p.error)
    if failure is None:
        completion = Completion(entry, Outcome.DONE, monday_id=item_id)
        link = None
        if p.push is not None and item_id is not None:
            link = links.Link(entry.key, item_id, p.pushed)
        if p.read or p.fate != "keep":
            return _inbound(p, completion, link, policy)
        if p.in_sync:
            # Nothing was sent; the row is written only if it does not say so yet.
            row = p.row
            stale = row is None or row.status != "SYNCED" or row.monday_id != item_id
            return Decision(completion, "SYNCED" if stale else None, None, unchanged=True)
        return Decision(completion, "SYNCED" if p.writes_back else None, None, link)
    error = fault.from_monday(failure)
    message = fault.line(error)  # the row's sync_error
    known = item_id or entry.monday_id
    if failure.kind in (errors.Kind.RATE_LIMITED, errors.Kind.BLOCKED):
        pause = failure.retry_after if failure.retry_after is not None else 60.0
        wait = Completion(entry, Outcome.WAIT, error, pause, known, entry.uncertain)
        return Decision(wait, None, None)
    if failure.kind is errors.Kind.ITEM_GONE:
        # The row's item is gone from Monday: forget it, find or recreate it at once.
        gone_ = Completion(entry, Outcome.WAIT, error, 0.0, None, uncertain=True)
        return Decision(gone_, "PENDING" if p.writes_back else None, message)
    uncertain = entry.uncertain or (
        isinstance(failure, errors.OutcomeUnknown) and p.push in ("create", "find")
    )
    if failure.kind is errors.Kind.PERMANENT or entry.attempts + 1 >= policy.max_attempts:
        if failure.kind is not errors.Kind.PERMANENT:
            error = fault.gave_up(error, entry.attempts + 1)
            message = fault.line(error)
        failed = Completion(entry, Outcome.FAILED, error, 0.0, known, uncertain)
        return Decision(failed, "FAILED" if p.writes_back else None, message)
    delay = failure.retry_after
    if delay is None:
        delay = backoff(entry.attempts, base=policy.backoff_base, cap=policy.backoff_cap, rng=rng)
    retry = Completion(entry, Outcome.RETRY, error, delay, known, uncertain)
    return Decision(retry, "PENDING" if p.writes_back else None, message)


def _inbound(p: Work, done: Completion, link: links.Link | None, policy: Policy) -> Decision:
    """The outcome of an entry whose item was read: the row ends SYNCED, or shows its open
    conflicts, or is unlinked from an item that went."""
    row = p.row
    match p.fate:
        case "unlink":
            why = f"unlinked: item {p.item_id} was archived or deleted on Monday"
            return Decision(dataclasses.replace(done, monday_id=None), "SYNCED", why, work=p)
        case "delete":
            return Decision(done, None, None, work=p)
        case "relink" if row is not None:
            relinked = dataclasses.replace(done, monday_id=done.monday_id or row.linked_item)
            return Decision(relinked, "SYNCED", None, link, work=p)
    still = set(row.conflicted if row else ()) - set(p.settled)
    open_ = sorted(still | {c.column_id for c in p.open_conflicts})
    if open_:
        why = f"conflict on {', '.join(open_)}: changed on both sides; see `npd-sync conflicts`"
        return Decision(done, policy.conflict_status, why, link, work=p)
    return Decision(done, "SYNCED", None, link, work=p)


def refused(
    completion: Completion, reason: fault.Fault, policy: Policy, rng: random.Random | None = None
) -> Completion:
    """What to record for an entry whose write-back the database refused (a constraint or a
    trigger of the application, `reason`): that entry alone pays, with its own attempts, and
    what was learnt from Monday (the item id) is kept."""
    message = f"write-back refused: {reason.message}"
    error = replace(reason, message=message)
    entry = completion.entry
    if completion.outcome is Outcome.DONE:
        if entry.attempts + 1 >= policy.max_attempts:
            error = fault.gave_up(error, entry.attempts + 1)
            return replace(completion, outcome=Outcome.FAILED, error=error)
        delay = backoff(entry.attempts, base=policy.backoff_base, cap=policy.backoff_cap, rng=rng)
        return replace(completion, outcome=Outcome.RETRY, error=error, delay=delay)
    # Failed or coming back anyway: keep why, and say why the row does not show it.
    if completion.error is not None:
        error = fault.also(completion.error, message)
    return replace(completion, error=error)


def worst(failures: Sequence[errors.MondayError]) -> errors.MondayError | None:
    """The error that decides an entry's fate when several of its operations failed."""
    order = {
        errors.Kind.PERMANENT: 0,
        errors.Kind.BLOCKED: 1,
        errors.Kind.RATE_LIMITED: 2,
        errors.Kind.ITEM_GONE: 3,
        errors.Kind.TRANSIENT: 4,
    }
    return min(failures, key=lambda f: order[f.kind], default=None)


def operations(
    table: mapping.TableMapping, plans: Sequence[Work], found: Mapping[str, Sequence[str]]
) -> list[api.Op]:
    """The Monday operations for a board's plans, creates first, then updates, then archives.

    Grouping by kind keeps the number of distinct documents small (servers cache them).
    `found` holds the items already carrying each looked-up row's npd_id.
    """
    creates: list[api.Op] = []
    updates: list[api.Op] = []
    retires: list[api.Op] = []
    retire = api.Delete if table.on_delete == "delete" else api.Archive
    for p in plans:
        key, change = p.entry.key, p.entry.change
        retires.extend(retire(key, item_id, change) for item_id in p.archive)
        if p.push is None or p.values is None:
            continue
        target = p.item_id if p.push == "update" else adopt(found.get(key, []))
        if target is not None:
            values = dict(p.changes) if p.changes is not None else p.agreed
            updates.append(api.Update(key, target, values, change, table.create_labels))
        else:
            values = {k: v for k, v in p.values.items() if v is not None}
            creates.append(api.Create(key, p.name, values, change, table.create_labels))
    return creates + updates + retires
