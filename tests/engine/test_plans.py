"""What an entry needs, as tables: its plan (`plan`), and which archives it may send
(`vet_archives`). Pure: no database, no network."""

from __future__ import annotations

import dataclasses

import pytest

from listener.engine import plans
from listener.engine.queue import Entry
from listener.monday.api import Item
from listener.rows import Row
from tests.engine.helpers import CONTACTS, entry, row

# --- plan: what an entry needs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("e", "r", "push", "item", "archive"),
    [
        # a new row: create
        (entry(), row(), "create", None, ()),
        # a row with an item: update it
        (entry(), row(monday_id="200"), "update", "200", ()),
        # an item id learnt but not written back yet counts as the row's item
        (entry(monday_id="200"), row(), "update", "200", ()),
        # a create that may have happened (uncertain, or an interrupted claim): look first
        (entry(uncertain=True), row(), "find", None, ()),
        (entry(claims=3, attempts=0), row(), "find", None, ()),
        # rows not to push: nothing for the row
        (entry(), row(enabled=False), None, None, ()),
        (entry(), row(enabled=None), None, None, ()),
        (entry(), row(direction="MONDAY_TO_NPD"), None, None, ()),
        (entry(), row(direction="NONE"), None, None, ()),
        (entry(), row(direction=None), None, None, ()),
        # the row is gone: archive its item, and one created before the delete was written
        (entry(archive_ids=("300",)), None, None, None, ("300",)),
        (entry(monday_id="301"), None, None, None, ("301",)),
        # a key change: the old key's item is archived, not the row's current one
        (entry(archive_ids=("300", "200")), row(monday_id="200"), "update", "200", ("300",)),
    ],
)
def test_plan(
    e: Entry, r: Row | None, push: str | None, item: str | None, archive: tuple[str, ...]
) -> None:
    work = plans.plan(e, r, CONTACTS, inbound=False)
    assert isinstance(work, plans.Push)
    assert (work.action, work.item_id, work.archive) == (push, item, archive)
    assert work.error is None


def test_plan_ignores_deletes_when_the_policy_says_so() -> None:
    table = dataclasses.replace(CONTACTS, on_delete="ignore")
    work = plans.plan(entry(archive_ids=("300",)), None, table, inbound=False)
    assert isinstance(work, plans.Push)
    assert work.archive == ()


def test_a_row_that_cannot_be_sent_is_an_error_without_a_request() -> None:
    work = plans.plan(entry(), row(phone="not a phone"), CONTACTS, inbound=False)
    assert isinstance(work, plans.Push)
    assert work.action is None
    assert work.error is not None
    assert "phone" in work.error


# --- vet_archives: only items npd-sync linked to that row -------------------------------------

BOARD = "1000000001"


@pytest.mark.parametrize(
    ("item", "linked", "boards", "reason"),
    [
        # linked to this very row (table 1, key 7): archived
        ("200", {"200": (1, "7")}, {}, None),
        # linked to another row, of this table or another: never
        ("200", {"200": (1, "8")}, {}, "linked to row 8 of table id 1"),
        ("200", {"200": (2, "7")}, {}, "linked to row 7 of table id 2"),
        # no link (synced before links were kept): only if Monday has it on this board
        ("200", {}, {"200": BOARD}, None),
        ("200", {}, {"200": "1000000002"}, "on board 1000000002, not on the table's board"),
        ("200", {}, {}, "not found on Monday"),
        # not an item id at all
        ("abc", {}, {}, "not a Monday item id"),
        ("1" * 21, {}, {}, "not a Monday item id"),
    ],
)
def test_vet_archives(
    item: str,
    linked: dict[str, tuple[int, str]],
    boards: dict[str, str],
    reason: str | None,
) -> None:
    work = plans.plan(entry(archive_ids=(item,)), None, CONTACTS, inbound=False)
    assert isinstance(work, plans.Push)
    (kept,), refusals = plans.vet_archives([work], 1, BOARD, linked, boards)
    if reason is None:
        assert (kept.archive, refusals) == ((item,), [])
    else:
        assert (kept.archive, refusals) == ((), [plans.Refusal("7", item, reason)])


def test_only_unlinked_item_ids_are_looked_up() -> None:
    work = plans.plan(
        entry(archive_ids=("300", "200", "abc", "100")), None, CONTACTS, inbound=False
    )
    assert isinstance(work, plans.Push)
    assert plans.unlinked_items([work], {"100": (1, "7")}) == ["200", "300"]


# --- claims: a monday_id npd-sync did not write ------------------------------------------------


def claimed(direction: str = "BIDIRECTIONAL", linked: str | None = None) -> Row:
    """A row whose monday_id the application set (to 500): npd-sync linked it to `linked`."""
    return dataclasses.replace(row(direction=direction), monday_id="500", linked_item=linked)


@pytest.mark.parametrize(
    ("e", "r", "inbound", "is_claim"),
    [
        # set by the application, never linked: checked before anything is sent
        (entry(), claimed(), False, True),
        # ... or linked by npd-sync to another item
        (entry(), claimed(linked="200"), False, True),
        # the item npd-sync learnt for the row and has not written back yet is its own
        (entry(monday_id="500"), claimed(), False, False),
        # a row that only receives checks its claim when inbound is on, else nothing happens
        (entry(), claimed("MONDAY_TO_NPD"), True, True),
        (entry(), claimed("MONDAY_TO_NPD"), False, False),
        (entry(), claimed("NONE"), True, False),
    ],
)
def test_a_monday_id_npd_sync_did_not_write_is_a_claim(
    e: Entry, r: Row, inbound: bool, is_claim: bool
) -> None:
    assert isinstance(plans.plan(e, r, CONTACTS, inbound=inbound), plans.Claim) is is_claim


def item(board: str = BOARD, npd_id: str | None = "7", state: str = "active") -> Item:
    values = {} if npd_id is None else {"npd_id": (f'"{npd_id}"', npd_id)}
    return Item("500", "Ada Lovelace", state, values, board_id=board)


CLAIM = plans.Claim(entry(), claimed(), "500")


@pytest.mark.parametrize(
    ("found", "holder", "reason"),
    [
        # on the table's board, nobody's, carrying the row's key (or no key yet): adopted
        (item(), None, None),
        (item(npd_id=None), None, None),
        (item(), (1, "7"), None),
        # another row's item: refused, and the owner named
        (item(), (1, "8"), "item 500 is row 8's item: monday_id left as it is, nothing sent"),
        (
            item(),
            (2, "8"),
            "item 500 is a row of table id 2's item: monday_id left as it is, nothing sent",
        ),
        (item(npd_id="8"), None, "item 500 carries npd_id 8: it is row 8's item, not this row's"),
        # not there, not active, not on the board
        (None, None, "item 500 not found on Monday"),
        (item(state="archived"), None, "item 500 is archived on Monday"),
        (item(board="999"), None, "item 500 is on board 999, not on the table's board " + BOARD),
    ],
)
def test_check_claim(
    found: Item | None, holder: tuple[int, str] | None, reason: str | None
) -> None:
    table = dataclasses.replace(CONTACTS, board_id=BOARD)
    assert plans.check_claim(CLAIM, found, holder, 1, table) == reason


def test_an_adopted_claim_pushes_everything_and_links_the_item() -> None:
    adopted = plans.adopted(CLAIM, CONTACTS, inbound=False)
    assert isinstance(adopted, plans.Push)
    assert (adopted.action, adopted.item_id, adopted.changes, adopted.adopting) == (
        "update", "500", None, True,
    )  # fmt: skip


def test_an_adopted_claim_of_a_row_that_receives_reads_its_item_first() -> None:
    claim = plans.Claim(entry(), claimed("MONDAY_TO_NPD"), "500")
    adopted = plans.adopted(claim, CONTACTS, inbound=True)
    assert isinstance(adopted, plans.Pull)
    assert (adopted.item_id, adopted.push.action, adopted.push.adopting) == ("500", None, True)


def test_a_refused_claim_sends_nothing_and_keeps_the_monday_id() -> None:
    refused = plans.refuse_claim(CLAIM, "why")
    assert (refused.action, refused.archive, refused.error, refused.keeps) == (
        None, (), "why", "500",
    )  # fmt: skip
