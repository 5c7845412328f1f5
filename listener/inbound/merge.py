"""Three-way merge of one row with its item, against the values both sides last agreed on.

Pure: the row as loaded (through `engine.plans.Pull`), the item as Monday holds it, the
agreed values (`npd_sync.links`), and the table's policies go in; what to send to Monday, what
to write into the row, what is now agreed, and the conflicts come out. Values are compared in
one form, the one npd-sync sends (`mapping.column_value`), so an echo of npd-sync's own write
on either side is equal to the agreed value and changes nothing.

Per column, with A the agreed value, D the database's and M Monday's:

    M == A           the board did not change it: push D if D != A (an ordinary update)
    D == A           only the board changed it: write M into the row
    D == M           both changed it the same way: agreed now
    otherwise        a conflict, settled by the table's policy (the losing value is kept)

A column never agreed on (new in the mapping, a link older than agreed values) counts as
unchanged on the side that does not lead: the database for a row that pushes, the board for
a MONDAY_TO_NPD row. Columns fed from several database columns (a joined address), npd_id, and
the name of a template that cannot be split are outbound only: the board's edits to them do
not flow back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from listener import mapping
from listener.monday.api import Item

Winner = Literal["npd", "monday"]
_UNSET = object()  # a column missing from the agreed values


@dataclass(frozen=True, slots=True)
class Conflict:
    """A column changed on both sides to different values; `winner` None while it is open."""

    column_id: str
    agreed: Any
    npd: Any
    monday: Any
    winner: Winner | None


@dataclass(frozen=True, slots=True)
class Merge:
    """What to do for a row after comparing it with its item."""

    push: dict[str, Any] = field(default_factory=dict)  # column id -> value to send
    write: dict[str, str | None] = field(default_factory=dict)  # row column -> value
    agree: dict[str, Any] = field(default_factory=dict)  # column id -> agreed without a push
    conflicts: tuple[Conflict, ...] = ()
    settled: tuple[str, ...] = ()  # open conflicts whose two sides now hold the same value


@dataclass(frozen=True, slots=True)
class Backlinks:
    """For a connect-boards column: which row of the referenced table each item is (item id ->
    key), and whether the foreign key holds many."""

    keys: Mapping[str, str]
    many: bool = False


Relations = Mapping[str, Backlinks]  # connect-boards column id -> its backlinks


def monday_values(item: Item, table: mapping.TableMapping, key: str) -> dict[str, Any]:
    """The item's values in the form npd-sync sends, for the columns that flow back (and the
    name, when it does); each is what the row would send once Monday's value is written."""
    out: dict[str, Any] = {}
    for column in table.inbound_columns:
        raw, text = item.values.get(column.id, (None, None))
        if column.type == mapping.RELATION:
            out[column.id] = mapping.relation_value(mapping.relation_items(raw))
            continue
        value = mapping.from_monday(column, raw, text)
        try:
            out[column.id] = mapping.column_value(column, {column.sources[0]: value})
        except mapping.MappingError:
            # A value the mapping cannot send (Monday took it from a person): it still
            # differs from what was agreed, and the row gets it as Monday shows it.
            out[column.id] = {"unreadable": value}
    split = mapping.name_to_row(table, item.name)
    if split is not None:
        out[mapping.NAME] = mapping.item_name(split, table, key)
    return out


def row_values(
    column_id: str, item: Item, table: mapping.TableMapping, relations: Relations | None = None
) -> dict[str, str | None] | None:
    """The row columns (and their text values) to write so that the row holds Monday's value
    of one column; None when no row value can hold it (a link to an item that is no row of
    the referenced table, or several links where the key holds one)."""
    if column_id == mapping.NAME:
        return mapping.name_to_row(table, item.name) or {}
    column = next(c for c in table.inbound_columns if c.id == column_id)
    raw, text = item.values.get(column.id, (None, None))
    if column.type != mapping.RELATION:
        return {column.sources[0]: mapping.from_monday(column, raw, text)}
    back = (relations or {}).get(column.id, Backlinks({}))
    items = mapping.relation_items(raw)
    keys = [back.keys[i] for i in items if i in back.keys]
    if len(keys) < len(items) or (len(keys) > 1 and not back.many):
        return None
    return {column.sources[0]: mapping.keys_value(keys, back.many)}


def merge(
    *,
    key: str,
    ours: Mapping[str, Any],
    agreed: Mapping[str, Any] | None,
    item: Item,
    table: mapping.TableMapping,
    pushes: bool,
    conflicted: frozenset[str] = frozenset(),
    npd_changed_at: dt.datetime | None = None,
    monday_changed_at: dt.datetime | None = None,
    relations: Relations | None = None,
) -> Merge:
    """Merge one row (`ours`: every column's value and the name, as the row would send them)
    with its item. `pushes`: the row goes to Monday (BIDIRECTIONAL), else it only receives
    (MONDAY_TO_NPD). `conflicted`: columns with an open conflict, left alone unless their two
    sides now agree. `relations`: which rows the items of connect-boards columns are. A board
    value no row value can hold is a conflict, whatever the policy."""
    theirs = monday_values(item, table, key)
    base = agreed or {}
    winner = _winner(table.conflict, pushes, npd_changed_at, monday_changed_at, item)
    merging = _Merging(item, table, pushes, winner, relations)
    for column_id, d in ours.items():
        if column_id not in theirs:  # outbound only
            if pushes and base.get(column_id, _UNSET) != d:
                merging.push[column_id] = d
            continue
        m = theirs[column_id]
        # Never agreed on: the side that leads sets it.
        a = base.get(column_id, m if pushes else d)
        if column_id in conflicted:
            merging.converged(column_id, d, m)
        else:
            merging.column(column_id, a, d, m)
    return Merge(
        merging.push, merging.write, merging.agree, tuple(merging.conflicts),
        tuple(merging.settled),
    )  # fmt: skip


@dataclass
class _Merging:
    """A merge under way: the rules for one column at a time."""

    item: Item
    table: mapping.TableMapping
    pushes: bool
    winner: Winner | None  # who wins a conflict, by the table's policy
    relations: Relations | None
    push: dict[str, Any] = field(default_factory=dict)
    write: dict[str, str | None] = field(default_factory=dict)
    agree: dict[str, Any] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)

    def converged(self, column_id: str, d: Any, m: Any) -> None:
        """A column with an open conflict: settled once both sides hold the same value."""
        if d == m:
            self.agree[column_id] = m
            self.settled.append(column_id)

    def column(self, column_id: str, a: Any, d: Any, m: Any) -> None:
        """One column, by the table at the top of this module."""
        if m == a:
            if d != a and self.pushes:
                self.push[column_id] = d
            return
        if d == m:
            self.agree[column_id] = m  # both sides changed it the same way
            if self.pushes and any(c.id == column_id for c in self.table.relations):
                # Monday hides links to archived items from reads, and shows them again on a
                # restore: what it stores must be what the row says.
                self.push[column_id] = d
            return
        board = row_values(column_id, self.item, self.table, self.relations)
        if d == a and board is not None:
            self.write.update(board)
            self.agree[column_id] = m
            return
        # The row cannot hold the board's value: for people to settle, whatever the policy.
        winner = None if self.winner == "monday" and board is None else self.winner
        self.conflicts.append(Conflict(column_id, a, d, m, winner))
        if winner == "npd":
            self.push[column_id] = d
        elif winner == "monday":
            self.write.update(board or {})
            self.agree[column_id] = m


def _winner(
    policy: mapping.ConflictPolicy,
    pushes: bool,
    npd_at: dt.datetime | None,
    monday_at: dt.datetime | None,
    item: Item,
) -> Winner | None:
    if not pushes:
        return "monday"  # a MONDAY_TO_NPD row takes the board's value; its own is kept
    match policy:
        case "npd_wins":
            return "npd"
        case "monday_wins":
            return "monday"
        case "newest_wins":
            monday = monday_at or item.updated_at
            if npd_at is None or monday is None:
                return "monday" if npd_at is None else "npd"
            return "npd" if npd_at > monday else "monday"
    return None


def new_row(
    item: Item, table: mapping.TableMapping, relations: Relations | None = None
) -> dict[str, str | None] | None:
    """The row for an item no row is linked to, when one is to be made: an active item of the
    table's board without an npd_id (a row's item carries its key), on a table whose policy is
    insert."""
    if item.state != "active" or table.on_monday_create != "insert" or not table.npd_id_column:
        # Without an npd_id column npd-sync's own items cannot be told from people's.
        return None
    if item.board_id is not None and item.board_id != table.board_id:
        return None  # a delivery for our board naming another board's item is not ours
    raw, text = item.values.get(table.npd_id_column, (None, None))
    if (text or "").strip() or (raw or "").strip('"{} '):
        return None
    values: dict[str, str | None] = {}
    for column in table.inbound_columns:
        # A link no row value can hold is left out: the row's first push shows the conflict.
        values.update(row_values(column.id, item, table, relations) or {})
    values.update(mapping.name_to_row(table, item.name) or {})
    return values
