"""Inbound sync through the real worker, a real PostgreSQL and the emulator over real HTTP:
board edits reach the rows, echoes do nothing, conflicts follow the policy, and the outbound
path never overwrites an edit whose delivery has not arrived. Deliveries are stored as the
receiver stores them (tests/inbound/test_receiver.py covers the HTTP side)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from emulator import Emulator
from listener import settings
from listener.commands import conflicts as conflicting
from listener.commands import pull
from tests.conftest import CONTACTS_BOARD, MakeSettings
from tests.helpers import drain
from tests.inbound.helpers import ADA, contact, deliver, inbound, synced_ada


async def test_a_board_edit_reaches_the_row_and_goes_no_further(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    emulator.edit_item(item, {"phone": {"phone": "020 7946 0000", "countryShortName": "GB"}})
    await deliver(config, item)
    sent = emulator.counters.mutations
    worker = await drain(config)
    row = await contact(conn)
    assert row["phone"] == "+442079460000"
    assert row["sync_status"] == "SYNCED"
    assert worker.stats.pulled == 1
    # No echo: the row's new value is not pushed back, and nothing is captured.
    assert emulator.counters.mutations == sent
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.changes") == 0
    # The echo of a push is no change either: the delivery reads the item, and stops.
    await deliver(config, item)
    await drain(config)
    assert emulator.counters.mutations == sent
    assert (await contact(conn))["phone"] == "+442079460000"


async def test_the_name_flows_back_into_first_and_last_name(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    emulator.edit_item(item, name="Augusta Ada King")
    await deliver(config, item, "update_name")
    await drain(config)
    row = await contact(conn)
    assert (row["first_name"], row["last_name"]) == ("Augusta", "Ada King")


@pytest.mark.parametrize("direction", ["NPD_TO_MONDAY", "NONE"])
async def test_rows_whose_direction_forbids_inbound_are_never_written(
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
    direction: str,
) -> None:
    config = inbound(make_settings, tmp_path)
    await conn.execute(ADA, "BIDIRECTIONAL")
    await drain(config)
    (item,) = emulator.items(CONTACTS_BOARD)
    await conn.execute("UPDATE contacts SET sync_direction = $1", direction)
    await drain(config)
    before = await contact(conn)
    emulator.edit_item(item.id, {"text": "set on the board"})
    await deliver(config, item.id)
    await drain(config)
    assert await contact(conn) == before


async def test_a_monday_to_npd_row_receives(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    await conn.execute("UPDATE contacts SET sync_direction = 'MONDAY_TO_NPD'")
    await drain(config)
    emulator.edit_item(item, {"text": "Duchess"})
    await deliver(config, item)
    await drain(config)
    assert (await contact(conn))["role_title"] == "Duchess"


async def test_the_outbound_path_never_overwrites_an_edit_not_delivered_yet(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    # The board's edit has no delivery (the receiver was down); the database changes the same
    # field: a blind push would lose the board's value. It reads the item first: a conflict.
    config = inbound(make_settings, tmp_path)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    emulator.edit_item(item, {"text": "Duchess"})
    await conn.execute("UPDATE contacts SET role_title = 'Admiral', notes = 'from the app'")
    await drain(config)
    board = emulator.item(item)
    assert board is not None
    assert board.values["text"] == "Duchess"  # kept
    assert board.values["long_text"] == {"text": "from the app"}  # the other field flows
    row = await contact(conn)
    assert row["role_title"] == "Admiral"
    assert row["sync_status"] == "CONFLICT"
    assert "text" in row["sync_error"]
    listed = await conflicts(config)
    seen = [(c["field"], c["npd_value"], c["monday_value"], c["agreed_value"]) for c in listed]
    assert seen == [("role_title", "Admiral", "Duchess", "Countess")]
    assert [c["state"] for c in listed] == ["open"]


async def conflicts(config: settings.Settings, *, everything: bool = False) -> list[dict[str, Any]]:
    out: list[str] = []
    await conflicting.run(config, table=None, everything=everything, as_json=True, echo=out.append)
    return list(json.loads(out[0]))


@pytest.mark.parametrize(("take", "winner"), [("npd", "Admiral"), ("monday", "Duchess")])
async def test_resolving_a_conflict_writes_the_chosen_side_to_the_other(
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
    take: str,
    winner: str,
) -> None:
    config = inbound(make_settings, tmp_path)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    emulator.edit_item(item, {"text": "Duchess"})
    await conn.execute("UPDATE contacts SET role_title = 'Admiral'")
    await drain(config)
    out: list[str] = []
    side = "npd" if take == "npd" else "monday"
    assert await conflicting.resolve(
        config, table="contacts", key="1", field="role_title", take=side, echo=out.append
    )
    await drain(config)
    board = emulator.item(item)
    assert board is not None
    assert board.values["text"] == winner
    row = await contact(conn)
    assert (row["role_title"], row["sync_status"]) == (winner, "SYNCED")
    [resolved] = await conflicts(config, everything=True)
    assert (resolved["state"], resolved["winner"]) == ("resolved", take)
    assert await conflicts(config) == []
    # And it stays settled: nothing more to send.
    sent = emulator.counters.mutations
    await deliver(config, item)
    await drain(config)
    assert emulator.counters.mutations == sent


@pytest.mark.parametrize(
    ("policy", "row_value", "board_value"),
    [("npd_wins", "Admiral", "Admiral"), ("monday_wins", "Duchess", "Duchess")],
)
async def test_a_policy_settles_conflicts_and_keeps_the_losing_value(
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
    policy: str,
    row_value: str,
    board_value: str,
) -> None:
    config = inbound(make_settings, tmp_path, conflict=policy)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    emulator.edit_item(item, {"text": "Duchess"})
    await conn.execute("UPDATE contacts SET role_title = 'Admiral'")
    await drain(config)
    board = emulator.item(item)
    assert board is not None
    assert board.values["text"] == board_value
    row = await contact(conn)
    assert (row["role_title"], row["sync_status"]) == (row_value, "SYNCED")
    [kept] = await conflicts(config, everything=True)
    assert (kept["npd_value"], kept["monday_value"], kept["state"]) == (
        "Admiral",
        "Duchess",
        "resolved",
    )
    assert kept["winner"] == ("npd" if policy == "npd_wins" else "monday")


async def test_an_item_archived_on_the_board_unlinks_its_row_and_a_restore_relinks_it(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    emulator.set_item_state(item, "archived")
    await deliver(config, item, "archive_pulse")
    await drain(config)
    row = await contact(conn)
    assert row["monday_id"] is None
    assert row["first_name"] == "Ada"  # the row keeps its data
    assert "unlinked" in row["sync_error"]
    sent = emulator.counters.mutations
    emulator.set_item_state(item, "active")
    await deliver(config, item, "restore_pulse")
    await drain(config)
    row = await contact(conn)
    assert (row["monday_id"], row["sync_status"], row["sync_error"]) == (item, "SYNCED", None)
    assert emulator.counters.mutations == sent  # nothing to send: the item held the row


async def test_an_unlinked_row_that_changes_becomes_a_new_item(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    emulator.set_item_state(item, "deleted")
    await deliver(config, item, "delete_pulse")
    await drain(config)
    assert (await contact(conn))["monday_id"] is None
    await conn.execute("UPDATE contacts SET role_title = 'Admiral'")
    await drain(config)
    row = await contact(conn)
    assert row["monday_id"] not in (None, item)
    assert row["sync_status"] == "SYNCED"
    new = emulator.item(row["monday_id"])
    assert new is not None
    assert new.values["text"] == "Admiral"


async def test_an_item_deleted_on_the_board_deletes_the_row_when_the_policy_says_so(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path, on_monday_delete="delete")
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    emulator.set_item_state(item, "deleted")
    await deliver(config, item, "delete_pulse")
    await drain(config)
    assert await conn.fetchval("SELECT count(*) FROM contacts") == 0
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.changes") == 0  # no echo


async def test_an_item_created_on_the_board_becomes_a_row(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path)
    made = emulator.add_item(
        CONTACTS_BOARD, "Grace Hopper",
        {"email": {"email": "grace@example.com", "text": "grace@example.com"}, "text": "Admiral"},
    )  # fmt: skip
    await deliver(config, made.id, "create_pulse")
    await drain(config)
    row = await contact(conn)
    assert (row["first_name"], row["last_name"], row["email"], row["role_title"]) == (
        "Grace", "Hopper", "grace@example.com", "Admiral",
    )  # fmt: skip
    assert (row["monday_id"], row["sync_status"], row["sync_direction"]) == (
        made.id, "SYNCED", "BIDIRECTIONAL",
    )  # fmt: skip
    board = emulator.item(made.id)
    assert board is not None
    assert board.values["npd_id"] == "1"  # its key, written back
    # The creation's own echo, and npd-sync's own items, make no row.
    await deliver(config, made.id, "create_pulse")
    await drain(config)
    assert await conn.fetchval("SELECT count(*) FROM contacts") == 1


async def test_an_item_created_on_the_board_is_ignored_when_the_policy_says_so(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path, on_monday_create="ignore")
    made = emulator.add_item(CONTACTS_BOARD, "Grace Hopper")
    await deliver(config, made.id, "create_pulse")
    await drain(config)
    assert await conn.fetchval("SELECT count(*) FROM contacts") == 0
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.inbox") == 0


async def test_pull_brings_in_edits_whose_deliveries_were_lost(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    emulator.edit_item(item, {"text": "Duchess"})  # and no delivery
    made = emulator.add_item(CONTACTS_BOARD, "Grace Hopper")
    out: list[str] = []
    assert await pull.run(config, table=None, full=False, dry_run=True, echo=out.append)
    assert out[0] == "contacts: read 2 items in 1 request; 2 items to look at"
    assert (await contact(conn))["role_title"] == "Countess"  # a dry run changes nothing
    out.clear()
    assert await pull.run(config, table="contacts", full=False, dry_run=False, echo=out.append)
    assert (await contact(conn))["role_title"] == "Duchess"
    assert await conn.fetchval("SELECT monday_id FROM contacts WHERE id = 2") == made.id
    assert out[-1] == "done: 1 row updated and 1 inserted from Monday, 0 conflicts, 0 failed"


async def test_a_full_read_takes_a_page_of_500_items_a_request(
    make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    # Not capped at batch_size (100 by default): that bounds the rows of a batch, not a page.
    config = inbound(make_settings, tmp_path)
    for i in range(501):
        emulator.add_item(CONTACTS_BOARD, f"Person {i}")
    out: list[str] = []
    assert await pull.run(config, table="contacts", full=True, dry_run=True, echo=out.append)
    assert out[0] == "contacts: read 501 items in 2 requests; 501 items to look at"


async def test_a_phone_number_in_another_format_is_the_same_number_on_both_sides(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    # The row keeps the application's formatting, the board Monday's: neither is a change.
    config = inbound(make_settings, tmp_path)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    sent = emulator.counters.mutations
    emulator.edit_item(item, {"phone": {"phone": "020 7946 0958", "countryShortName": "GB"}})
    await deliver(config, item)
    await drain(config)
    row = await contact(conn)
    assert row["phone"] == "+44 20 7946 0958"  # as the application wrote it
    await conn.execute("UPDATE contacts SET phone = '+442079460958'")
    await drain(config)
    assert emulator.counters.mutations == sent  # nothing sent either way
    assert (await contact(conn))["sync_status"] == "SYNCED"
