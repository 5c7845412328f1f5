"""What each claimed entry needs, as pure functions of the entry, its row as it is now and
Monday's answers: one plan type per direction.

- A `Push` (outbound) says what the row's item needs on Monday: created, updated or looked
  up first (a create that may have happened), or nothing, and which items of deleted rows to
  archive.
- A `Pull` (inbound) is an entry whose item must be read first, because Monday's side may
  have changed (Monday said so, or a push would overwrite it). Reading it turns the pull into a
  push of what the merge says to send, and a `Landing`: what to write into the row.
- A `Claim` is a row whose `monday_id` npd-sync did not write (the application set it): the
  item is used only once the claim checks out (`check_claim`), and is then adopted, as if
  npd-sync had linked it; a claim that does not is refused, and nothing is sent or read.

`vet_archives` keeps only archives of items npd-sync linked to that very row; `operations`
turns the pushes of one board into Monday operations.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from listener import links, mapping
from listener.engine.queue import Entry
from listener.inbound.merge import Conflict, Merge
from listener.monday import api
from listener.rows import Row

Action = Literal["create", "update", "find"]
# What becomes of the row itself once its item was read: kept; unlinked from an item gone on
# Monday; deleted with it; linked again to an item restored on Monday.
Fate = Literal["keep", "unlink", "delete", "relink"]
ITEM_ID = re.compile(r"^[0-9]{1,20}$")


@dataclass(frozen=True, slots=True)
class Push:
    """What one entry needs on Monday."""

    entry: Entry
    row: Row | None
    archive: tuple[str, ...] = ()  # items of deleted rows to archive (or delete)
    action: Action | None = None  # what to do with the row's own item
    item_id: str | None = None  # the row's item, when it has one
    name: str = ""
    values: Mapping[str, Any] | None = None  # every mapped column's value (None: empty)
    # An update of an item whose agreed values are known sends only what differs from them
    # ("name" included when the name does); None: send everything.
    changes: Mapping[str, Any] | None = None
    in_sync: bool = False  # the item holds the row's values already: nothing to send
    error: str | None = None  # the row cannot be sent as it is (FAILED without a request)
    adopting: bool = False  # the row's claim on its item checked out: link them
    keeps: str | None = None  # an item id the row holds and keeps, never npd-sync's (a refusal)
    # Connect-boards columns: the referenced rows whose items are still to come (table id,
    # key), linked as soon as they have them; and why some never will (for sync_error).
    waiting: tuple[tuple[int, str], ...] = ()
    note: str | None = None

    @property
    def agreed(self) -> dict[str, Any]:
        """What the item holds once a full push succeeded: every column and the name."""
        return {**(self.values or {}), links.NAME: self.name}

    @property
    def pushed(self) -> dict[str, Any]:
        """What Monday holds once this push succeeded, as far as it sent it."""
        if self.action == "update" and self.changes is not None:
            return dict(self.changes)
        return self.agreed


@dataclass(frozen=True, slots=True)
class Pull:
    """An entry whose item is read first: `push` is what the row would send (an update of
    what changed here, or nothing for a row that only receives)."""

    push: Push
    item_id: str

    @property
    def entry(self) -> Entry:
        return self.push.entry


@dataclass(frozen=True, slots=True)
class Landing:
    """What reading an entry's item decided for its row: values to write into it, values agreed
    without a push, conflicts found and settled, and what becomes of the row."""

    item_id: str | None  # the item read (or the row's last one, when it went)
    write: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    agree: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    conflicts: tuple[Conflict, ...] = ()
    settled: tuple[str, ...] = ()
    fate: Fate = "keep"

    @property
    def open_conflicts(self) -> list[Conflict]:
        """The conflicts left for someone to resolve (manual policy)."""
        return [c for c in self.conflicts if c.winner is None]


@dataclass(frozen=True, slots=True)
class Claim:
    """A row whose `monday_id` npd-sync did not write: check the claim before using the item."""

    entry: Entry
    row: Row
    item_id: str


Plan = Push | Pull


def plan(
    entry: Entry, row: Row | None, table: mapping.TableMapping, *, inbound: bool
) -> Plan | Claim:
    """What an entry needs: archive items of deleted rows, create or update the row's item, and,
    with `inbound`, whether its item must be read first; a claim to check before all that."""
    current = (row.monday_id if row else None) or entry.monday_id
    archive = _stale(entry, row, current, table)
    if row is None:
        return Push(entry, row, archive)
    standing = _Standing.of(row, current, inbound=inbound)
    if (standing.pushes or standing.receives) and _claimed(entry, row):
        return Claim(entry, row, row.monday_id or "")
    if not standing.pushes and not (standing.receives and standing.linked):
        return Push(entry, row, archive)
    push = _valued(entry, row, table, archive, current)
    if push.error is not None:
        return push
    # An uncertain entry (a backfill, a create whose reply was lost) trusts no record of what
    # Monday holds: it sends everything.
    changes = None
    if row.agreed is not None and standing.linked and not entry.uncertain:
        changes = links.changed(push.agreed, row.agreed)
    if standing.item is not None and standing.reads(entry, changes):
        # Monday's side may have changed (it said so, or a push would overwrite what it
        # holds): read the item first; the merge decides what to send.
        action: Action | None = "update" if standing.pushes else None
        reading = dataclasses.replace(push, action=action, item_id=standing.item, changes=changes)
        return Pull(reading, standing.item)
    return _outbound(push, pushes=standing.pushes, unlinked=standing.unlinked, changes=changes)


@dataclass(frozen=True, slots=True)
class _Standing:
    """Where a row stands: whether it pushes and receives, and its item."""

    pushes: bool
    receives: bool
    unlinked: bool  # its item went on Monday; it keeps the link, for a restore
    item: str | None  # its item (the one it was unlinked from, when so)
    linked: bool  # npd-sync linked it to that item

    @classmethod
    def of(cls, row: Row, current: str | None, *, inbound: bool) -> _Standing:
        unlinked = row.unlinked and current is None
        item = current or (row.linked_item if unlinked else None)
        return cls(
            pushes=mapping.is_syncable(row.enabled, row.direction),
            receives=inbound and mapping.receives(row.enabled, row.direction),
            unlinked=unlinked,
            item=item,
            linked=item is not None and row.linked_item == item,
        )

    def reads(self, entry: Entry, changes: Mapping[str, Any] | None) -> bool:
        """Whether the item is read first: Monday said it changed, or a push would overwrite
        what it holds."""
        if not (self.receives and self.linked):
            return False
        return entry.pull or (self.pushes and not self.unlinked and changes != {})


def _valued(
    entry: Entry,
    row: Row,
    table: mapping.TableMapping,
    archive: tuple[str, ...],
    current: str | None,
) -> Push:
    """The push with the row's values, or with why they cannot be sent."""
    linked_items, waiting, note = _relations(row, table)
    try:
        name = mapping.item_name(row.values, table, row.key)
        values = mapping.column_values(row.values, table, row.key, linked_items)
    except mapping.MappingError as exc:
        return Push(entry, row, archive, item_id=current, error=str(exc))
    return Push(entry, row, archive, None, current, name, values, waiting=waiting, note=note)


def _relations(
    row: Row, table: mapping.TableMapping
) -> tuple[dict[str, list[str]], tuple[tuple[int, str], ...], str | None]:
    """Per connect-boards column, the items its keys' rows have; the rows without one yet
    (table id, key), whose items the links wait for; and why some will not get one as they
    are, for the row's sync_error (None: all will)."""
    items: dict[str, list[str]] = {}
    waiting: list[tuple[int, str]] = []
    notes: list[str] = []
    for column in table.relations:
        refs = row.refs.get(column.id, ())
        items[column.id] = [r.item_id for r in refs if r.item_id]
        # A row not pushed may be turned on: the link follows its item then too.
        waiting += [(r.table_id, r.key) for r in refs if not r.item_id and r.never != "missing"]
        notes += [
            f"{column.sources[0]} {r.key}: {column.references} row {r.key} "
            + ("does not exist" if r.never == "missing" else "is not pushed to Monday")
            + ", so it is not linked"
            for r in refs
            if r.never
        ]
    return items, tuple(waiting), "; ".join(notes) or None


def with_items(row: Row, found: Mapping[tuple[int, str], str]) -> Row:
    """The row, its references to rows that got their items meanwhile (`found`: by table id and
    key) now linked."""
    refs = {
        column: tuple(
            dataclasses.replace(r, item_id=found[r.table_id, r.key])
            if not r.item_id and (r.table_id, r.key) in found
            else r
            for r in references
        )
        for column, references in row.refs.items()
    }
    return dataclasses.replace(row, refs=refs)


def _claimed(entry: Entry, row: Row) -> bool:
    """Whether the row's monday_id is one npd-sync did not write: not the item it linked the
    row to, nor one it learnt for the row and has yet to write back."""
    return bool(row.monday_id) and row.monday_id not in (row.linked_item, entry.monday_id)


def _outbound(
    push: Push, *, pushes: bool, unlinked: bool, changes: Mapping[str, Any] | None
) -> Push:
    """The push of a row that is not read first."""
    changed_here = changes != {}
    if not pushes or (unlinked and not changed_here):
        # Nothing for the row (an unlinked row is pushed again, as a new item, once it changes).
        return Push(push.entry, push.row, push.archive)
    if push.item_id is not None:
        if not changed_here:
            # Monday holds these values already (an update of unmapped columns, a value
            # written back unchanged): nothing to send.
            return dataclasses.replace(push, in_sync=True)
        return dataclasses.replace(push, action="update", changes=changes)
    # A create whose reply never came (timeout, crash) may have happened: look first.
    entry = push.entry
    action: Action = "find" if entry.uncertain or entry.interrupted else "create"
    return dataclasses.replace(push, action=action)


def _stale(
    entry: Entry, row: Row | None, current: str | None, table: mapping.TableMapping
) -> tuple[str, ...]:
    """The items to archive: of deleted or re-keyed rows, never the row's current one."""
    if table.on_delete == "ignore":
        return ()
    stale = set(entry.archive_ids)
    if row is None and entry.monday_id:
        stale.add(entry.monday_id)  # created, then the row went before we could write it back
    stale.discard(current if row is not None else "")
    return tuple(sorted(stale))


def merged(pull: Pull, merge: Merge) -> tuple[Push, Landing]:
    """The pull once its item was read and merged: send only what the merge says, write the
    board's edits into the row, record what is agreed and the conflicts."""
    push = pull.push
    action = push.action if merge.push else None
    row = push.row
    # A row linked again to its item, or to the item it claimed: the link is recorded.
    relinked = push.adopting or (row is not None and row.unlinked)
    fate: Fate = "relink" if relinked else "keep"
    sent = dataclasses.replace(
        push,
        action=action,
        changes=merge.push if action == "update" else push.changes,
        in_sync=action is None,
    )
    landing = Landing(pull.item_id, merge.write, merge.agree, merge.conflicts, merge.settled, fate)
    return sent, landing


def gone(pull: Pull, table: mapping.TableMapping) -> tuple[Push, Landing | None]:
    """The pull once its item turned out archived or deleted on Monday."""
    push = pull.push
    row = push.row
    if row is not None and row.unlinked and push.entry.monday_id is None and not row.monday_id:
        # Unlinked already (the item was not restored): a new item only if the row changed.
        action: Action | None = "create" if push.action and push.changes != {} else None
        return dataclasses.replace(push, action=action, item_id=None, changes=None), None
    if table.on_monday_delete == "ignore" or row is None:
        return push, None
    fate: Fate = "delete" if table.on_monday_delete == "delete" else "unlink"
    return dataclasses.replace(push, action=None, changes=None), Landing(pull.item_id, fate=fate)


def check_claim(
    claim: Claim, item: api.Item | None, holder: tuple[int, str] | None, table_id: int,
    table: mapping.TableMapping,
) -> str | None:  # fmt: skip
    """Why a claimed item cannot be the row's (None: the claim checks out): it must be an
    active item of the table's board that no other row holds and, where the table has an npd_id
    column, that carries no other row's key. `holder`: the row npd-sync linked it to."""
    name = f"item {claim.item_id}"
    if not ITEM_ID.match(claim.item_id):
        return f"monday_id {claim.item_id!r} is not a Monday item id"
    if holder is not None and holder != (table_id, claim.row.key):
        whose = f"row {holder[1]}" if holder[0] == table_id else f"a row of table id {holder[0]}"
        return f"{name} is {whose}'s item: monday_id left as it is, nothing sent"
    if item is None:
        return f"{name} not found on Monday"
    if item.state != "active":
        return f"{name} is {item.state} on Monday"
    if item.board_id != table.board_id:
        return f"{name} is on board {item.board_id}, not on the table's board {table.board_id}"
    carried = _npd_id(item, table)
    if carried and carried != claim.row.key:
        return f"{name} carries npd_id {carried}: it is row {carried}'s item, not this row's"
    return None


def adopted(claim: Claim, table: mapping.TableMapping, *, inbound: bool) -> Plan:
    """The plan of a row whose claim checked out: as if npd-sync had linked it to the item,
    with nothing agreed yet (so the row's direction says which side leads)."""
    row = dataclasses.replace(claim.row, linked_item=claim.item_id, agreed=None, unlinked=False)
    # A row that receives reads its item at once, even with nothing to send.
    entry = dataclasses.replace(claim.entry, uncertain=False, pull=True)
    found = plan(entry, row, table, inbound=inbound)
    assert not isinstance(found, Claim)
    if isinstance(found, Pull):
        return dataclasses.replace(found, push=dataclasses.replace(found.push, adopting=True))
    return dataclasses.replace(found, adopting=True)


def refuse_claim(claim: Claim, reason: str) -> Push:
    """A claim that does not check out: the row fails with why, nothing is sent or archived,
    and the row keeps its monday_id."""
    return Push(claim.entry, claim.row, error=reason, keeps=claim.item_id)


def _npd_id(item: api.Item, table: mapping.TableMapping) -> str:
    if not table.npd_id_column:
        return ""
    raw, text = item.values.get(table.npd_id_column, (None, None))
    return (text or (raw or "").strip('"')).strip()


def unreadable(entry: Entry, reason: str) -> Push:
    """An entry whose row cannot be read (its key does not fit the key column): it fails, and
    nothing is sent or archived for it."""
    return Push(entry, None, error=reason)


def failed(entry: Entry, row: Row | None, reason: str) -> Push:
    """An entry npd-sync could not plan (a bug): it fails alone, with why."""
    return Push(entry, row, error=reason)


# --- archives -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """An item an entry asked to archive that npd-sync did not link to that row: never sent."""

    key: str
    item_id: str
    reason: str


def unlinked_items(pushes: Sequence[Push], linked: Mapping[str, tuple[int, str]]) -> list[str]:
    """The items to archive that have no link: Monday must say which board they are on."""
    items = {i for p in pushes for i in p.archive if ITEM_ID.match(i) and i not in linked}
    return sorted(items)


def vet_archives(
    pushes: Sequence[Push],
    table_id: int,
    board_id: str,
    linked: Mapping[str, tuple[int, str]],
    boards: Mapping[str, str],
) -> tuple[list[Push], list[Refusal]]:
    """Keep, of the items each push would archive, only those npd-sync linked to that very row:
    its link says so or, for an item without a link (synced before links were kept), Monday
    has it on the table's board. `linked` maps items to the (table id, key) of their link,
    `boards` items without one to their board as Monday says."""
    kept: list[Push] = []
    refusals: list[Refusal] = []
    for p in pushes:
        allowed = []
        for item in p.archive:
            reason = _archive_refusal(item, (table_id, p.entry.key), board_id, linked, boards)
            if reason is None:
                allowed.append(item)
            else:
                refusals.append(Refusal(p.entry.key, item, reason))
        same = len(allowed) == len(p.archive)
        kept.append(p if same else dataclasses.replace(p, archive=tuple(allowed)))
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


# --- operations -----------------------------------------------------------------------------


def adopt(found: Sequence[str]) -> str | None:
    """Of the items already carrying a row's npd_id, the one to keep: the oldest."""
    return min(found, key=lambda item: (len(item), item)) if found else None


def operations(
    table: mapping.TableMapping, pushes: Sequence[Push], found: Mapping[str, Sequence[str]]
) -> list[api.Op]:
    """The Monday operations of a board's pushes, creates first, then updates, then archives.

    Grouping by kind keeps the number of distinct documents small (servers cache them).
    `found` holds the items already carrying each looked-up row's npd_id.
    """
    creates: list[api.Op] = []
    updates: list[api.Op] = []
    retires: list[api.Op] = []
    retire = api.Delete if table.on_delete == "delete" else api.Archive
    for p in pushes:
        key, change = p.entry.key, p.entry.change
        retires.extend(retire(key, item_id, change) for item_id in p.archive)
        if p.action is None or p.values is None:
            continue
        target = p.item_id if p.action == "update" else adopt(found.get(key, []))
        if target is not None:
            values = dict(p.changes) if p.changes is not None else p.agreed
            updates.append(api.Update(key, target, values, change, table.create_labels))
        else:
            values = {k: v for k, v in p.values.items() if v is not None}
            creates.append(api.Create(key, p.name, values, change, table.create_labels))
    return creates + updates + retires
