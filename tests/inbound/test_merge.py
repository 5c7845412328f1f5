"""The three-way merge as tables: pure, no database, no network."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest

from listener import mapping
from listener.inbound import merge
from listener.inbound.merge import Conflict
from listener.monday.api import Item

CONTACTS = mapping.default_mappings()[0]
ORGANIZATIONS = mapping.default_mappings()[1]
ADA = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
       "phone": "+44 20 7946 0958", "role_title": "Countess", "notes": None}  # fmt: skip


def ours(row: dict[str, str | None], table: mapping.TableMapping = CONTACTS) -> dict[str, Any]:
    """What the row sends: every column and the name."""
    values = mapping.column_values(row, table, "7")
    return {**values, mapping.NAME: mapping.item_name(row, table, "7")}


def item(row: dict[str, str | None], *, name: str | None = None, **raw: Any) -> Item:
    """The item holding the row's values, as Monday stores them; `raw` overrides columns with
    Monday's stored JSON (None clears)."""
    values: dict[str, tuple[str | None, str | None]] = {}
    for column_id, value in mapping.column_values(row, CONTACTS, "7").items():
        values[column_id] = _stored(column_id, value)
    for column_id, value in raw.items():
        values[column_id] = _stored(column_id, value)
    return Item("2000", name or mapping.item_name(row, CONTACTS, "7"), "active", values)


def _stored(column_id: str, value: Any) -> tuple[str | None, str | None]:
    if value is None:
        return (None, "")
    if column_id == "phone":  # Monday adds what the client did not send
        value = {**value, "changed_at": "2026-11-28T10:00:00.000Z"}
    text = value if isinstance(value, str) else next(iter(value.values()))
    return (json.dumps(value), text)


AGREED = ours(ADA)


def run(
    row: dict[str, str | None],
    board: Item,
    *,
    agreed: dict[str, Any] | None = AGREED,
    table: mapping.TableMapping = CONTACTS,
    pushes: bool = True,
    **kw: Any,
) -> merge.Merge:
    return merge.merge(
        key="7", ours=ours(row, table), agreed=agreed, item=board, table=table, pushes=pushes,
        **kw,
    )  # fmt: skip


def test_nothing_changed_nothing_to_do() -> None:
    assert run(ADA, item(ADA)) == merge.Merge()


def test_an_echo_of_our_own_push_is_nothing() -> None:
    # Monday stores the phone with its changed_at; the email as sent: still the agreed values.
    board = item(ADA, email={"email": "ada@example.com", "text": "ada@example.com"})
    assert run(ADA, board) == merge.Merge()


def test_a_database_change_is_pushed() -> None:
    row = {**ADA, "role_title": "Admiral"}
    assert run(row, item(ADA)) == merge.Merge(push={"text": "Admiral"})


def test_a_board_change_is_written_into_the_row() -> None:
    board = item(ADA, phone={"phone": "+442079460000", "countryShortName": "GB"})
    result = run(ADA, board)
    assert result.write == {"phone": "+442079460000"}
    assert result.agree == {"phone": {"phone": "+442079460000", "countryShortName": "GB"}}
    assert result.push == {}


def test_a_phone_typed_on_the_board_in_national_form_is_agreed_in_e164() -> None:
    board = item(ADA, phone={"phone": "020 7946 0000", "countryShortName": "GB"})
    result = run(ADA, board)
    assert result.write == {"phone": "+442079460000"}
    # Writing it changes nothing more: the row now sends exactly the agreed value.
    after = {**ADA, "phone": "+442079460000"}
    assert run(after, board, agreed={**AGREED, **result.agree}) == merge.Merge()


def test_a_name_changed_on_the_board_splits_into_first_and_last_name() -> None:
    result = run(ADA, item(ADA, name="Augusta  Ada King"))
    assert result.write == {"first_name": "Augusta", "last_name": "Ada King"}
    assert result.agree == {"name": "Augusta Ada King"}


def test_a_cleared_column_clears_the_row() -> None:
    result = run(ADA, item(ADA, text=None))
    assert result.write == {"role_title": None}
    assert result.agree == {"text": None}


def test_both_sides_changed_the_same_way_is_agreed() -> None:
    row = {**ADA, "role_title": "Admiral"}
    result = run(row, item(ADA, text="Admiral"))
    assert result == merge.Merge(agree={"text": "Admiral"})


def test_different_columns_on_each_side_both_flow() -> None:
    row = {**ADA, "role_title": "Admiral"}
    board = item(ADA, email={"email": "ada@new.example", "text": "Ada"})
    result = run(row, board)
    assert result.push == {"text": "Admiral"}
    assert result.write == {"email": "ada@new.example"}
    assert result.conflicts == ()


BOTH = ({**ADA, "role_title": "Admiral"}, item(ADA, text="Duchess"))


@pytest.mark.parametrize(
    ("policy", "winner", "push", "write"),
    [
        ("manual", None, {}, {}),
        ("npd_wins", "npd", {"text": "Admiral"}, {}),
        ("monday_wins", "monday", {}, {"role_title": "Duchess"}),
    ],
)
def test_a_conflict_follows_the_policy_and_keeps_both_values(
    policy: mapping.ConflictPolicy, winner: str | None, push: dict[str, Any], write: dict[str, Any]
) -> None:
    row, board = BOTH
    table = dataclasses.replace(CONTACTS, conflict=policy)
    result = run(row, board, table=table)
    assert result.conflicts == (Conflict("text", "Countess", "Admiral", "Duchess", winner),)  # type: ignore[arg-type]
    assert (result.push, result.write) == (push, write)


@pytest.mark.parametrize(
    ("npd_at", "monday_at", "winner"),
    [(10, 20, "monday"), (20, 10, "npd"), (None, 10, "monday"), (10, None, "npd")],
)
def test_newest_wins_compares_when_each_side_changed(
    npd_at: int | None, monday_at: int | None, winner: str
) -> None:
    row, board = BOTH
    table = dataclasses.replace(CONTACTS, conflict="newest_wins")

    def at(s: int | None) -> dt.datetime | None:
        return None if s is None else dt.datetime.fromtimestamp(s, dt.UTC)

    result = run(
        row, board, table=table, npd_changed_at=at(npd_at), monday_changed_at=at(monday_at)
    )
    assert [c.winner for c in result.conflicts] == [winner]


def test_newest_wins_falls_back_to_the_items_update_time() -> None:
    row, board = BOTH
    table = dataclasses.replace(CONTACTS, conflict="newest_wins")
    board = dataclasses.replace(board, updated_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    result = run(row, board, table=table, npd_changed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert [c.winner for c in result.conflicts] == ["monday"]


def test_an_open_conflict_is_left_alone_until_both_sides_agree() -> None:
    row, board = BOTH
    assert run(row, board, conflicted=frozenset({"text"})) == merge.Merge()
    settled = run(row, item(ADA, text="Admiral"), conflicted=frozenset({"text"}))
    assert settled == merge.Merge(agree={"text": "Admiral"}, settled=("text",))


def test_a_monday_to_npd_row_takes_the_boards_value_and_keeps_its_own() -> None:
    row, board = BOTH
    result = run(row, board, pushes=False)
    assert result.write == {"role_title": "Duchess"}
    assert result.conflicts == (Conflict("text", "Countess", "Admiral", "Duchess", "monday"),)
    # ... and never pushes, whatever changed in the database
    assert run({**ADA, "notes": "x"}, item(ADA), pushes=False).push == {}


def test_columns_that_do_not_flow_back_are_outbound_only() -> None:
    # npd_id, and the organizations' joined address: the board's edits stay on the board.
    org = {"name": "Initech", "address_line1": "1 Way", "city": "Austin", "notes": None}
    values = mapping.column_values(org, ORGANIZATIONS, "7")
    stored = {k: _stored(k, v) for k, v in values.items()}
    stored["address"] = (json.dumps("Elsewhere"), "Elsewhere")
    stored["npd_id"] = (json.dumps("99"), "99")
    board = Item("2000", "Initech", "active", stored)
    agreed = ours(org, ORGANIZATIONS)
    assert run(org, board, agreed=agreed, table=ORGANIZATIONS) == merge.Merge()
    moved = {**org, "city": "Boston"}
    result = run(moved, board, agreed=agreed, table=ORGANIZATIONS)
    assert result.push == {"address": "1 Way, Boston"}


def test_a_template_that_cannot_be_split_keeps_the_name_outbound_only() -> None:
    table = dataclasses.replace(CONTACTS, name_template="{last_name}, {first_name}")
    board = item(ADA, name="Someone Else")
    agreed = ours(ADA, table)
    assert run(ADA, board, agreed=agreed, table=table) == merge.Merge()


def test_a_column_never_agreed_on_is_led_by_the_side_that_leads() -> None:
    agreed = {k: v for k, v in AGREED.items() if k != "text"}
    board = item(ADA, text="Duchess")
    assert run(ADA, board, agreed=agreed).push == {"text": "Countess"}  # BIDIRECTIONAL
    received = run(ADA, board, agreed=agreed, pushes=False)  # MONDAY_TO_NPD
    assert received.write == {"role_title": "Duchess"}


def test_a_value_the_mapping_cannot_send_still_reaches_the_row() -> None:
    board = item(ADA, phone={"phone": "12", "countryShortName": "GB"})
    result = run(ADA, board)
    assert result.write == {"phone": "+4412"}
    assert result.conflicts == ()


# --- connect-boards columns ----------------------------------------------------------------

RELATING = dataclasses.replace(
    CONTACTS,
    columns=(*CONTACTS.columns, mapping.Column("company", "board_relation", ("organization_id",),
                                               references="organizations")),
)  # fmt: skip
ORG_ITEMS = merge.Backlinks({"500": "1", "501": "2"})


def related(keys: list[str], links: list[str], agreed_links: list[str]) -> merge.Merge:
    """A row whose organization_id holds `keys` (items 500, 501 for rows 1, 2), its item
    linking `links`, both sides having last agreed on `agreed_links`."""
    row = {**ADA, "organization_id": keys[0] if keys else None}
    ids = {"1": "500", "2": "501"}
    values = mapping.column_values(row, RELATING, "7", {"company": [ids[k] for k in keys]})
    ours_ = {**values, mapping.NAME: mapping.item_name(row, RELATING, "7")}
    agreed = {**ours_, "company": mapping.relation_value(agreed_links)}
    board = dataclasses.replace(
        item(ADA),
        values={**item(ADA).values, "company": (json.dumps({"item_ids": links}), None)},
    )
    return merge.merge(
        key="7", ours=ours_, agreed=agreed, item=board, table=RELATING, pushes=True,
        relations={"company": ORG_ITEMS},
    )  # fmt: skip


def test_links_are_compared_as_sets() -> None:
    assert related(["1"], ["500"], ["500"]) == merge.Merge()
    values = mapping.column_values({}, RELATING, "7", {"company": ["501", "500", "500"]})
    assert values["company"] == {"item_ids": [500, 501]}


def test_a_link_made_on_the_board_reaches_the_key() -> None:
    assert related([], ["501"], []).write == {"organization_id": "2"}
    assert related(["1"], [], ["500"]).write == {"organization_id": None}


@pytest.mark.parametrize(
    "links",
    [["999"], ["500", "501"]],  # not a row of the referenced table; two for one key
)
def test_a_board_link_no_key_can_hold_is_an_open_conflict(links: list[str]) -> None:
    found = related(["1"], links, ["500"])
    (conflict,) = found.conflicts
    assert (conflict.column_id, conflict.winner, found.write) == ("company", None, {})


def test_a_link_monday_hides_is_cleared_anyway() -> None:
    # Row 1's item was archived: Monday's reads leave it out, the row's key was cleared too.
    found = related([], [], ["500"])
    assert found.push == {"company": None}
