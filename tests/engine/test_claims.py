"""A monday_id the application writes is a claim, not a link: checked before npd-sync uses it,
adopted when it checks out, refused visibly when not (issue 19, part 1). Against a real
database, with the application's own role, and the emulator over real HTTP."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from emulator import Emulator
from tests.conftest import CONTACTS_BOARD, ORGANIZATIONS_BOARD, MakeSettings
from tests.helpers import drain
from tests.inbound.helpers import contact, deliver, inbound, synced_ada


async def link_of(conn: asyncpg.Connection, item: str) -> list[tuple[int, str]]:
    found = await conn.fetch(
        "SELECT table_id, row_key FROM npd_sync.links WHERE item_id = $1", item
    )
    return [(r[0], r[1]) for r in found]


async def test_a_claim_on_another_row_s_item_changes_nothing_and_archives_nothing(
    conn: asyncpg.Connection,
    app: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    config = inbound(make_settings, tmp_path)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")  # row 1's item
    owner_before = await contact(conn)
    board_before = emulator.item(item)
    sent = emulator.counters.mutations
    # Item ids are sequential: easy to guess. The application's role claims row 1's item.
    await app.execute(
        "INSERT INTO contacts (first_name, email, monday_id, sync_direction)"
        " VALUES ('Mallory', 'mallory@example.com', $1, 'BIDIRECTIONAL')",
        item,
    )
    await drain(config)
    claimant = await conn.fetchrow("SELECT * FROM contacts WHERE first_name = 'Mallory'")
    assert claimant["sync_status"] == "FAILED"
    assert claimant["monday_id"] == item  # left as it is, for people to see
    assert claimant["sync_error"] == (
        f"item {item} is row 1's item: monday_id left as it is, nothing sent"
    )
    assert emulator.counters.mutations == sent  # nothing written on Monday
    assert emulator.item(item) == board_before
    assert await link_of(conn, item) == [(1, "1")]
    assert await contact(conn) == owner_before

    # Edits of the item on the board flow into the owner, not the claimant.
    emulator.edit_item(item, {"text": "Duchess"})
    await deliver(config, item)
    await drain(config)
    assert (await contact(conn))["role_title"] == "Duchess"
    assert (
        await conn.fetchval("SELECT role_title FROM contacts WHERE id = $1", claimant["id"]) is None
    )

    # Deleting the claimant archives nothing; the owner stays SYNCED.
    await app.execute("DELETE FROM contacts WHERE id = $1", claimant["id"])
    await drain(config)
    found = emulator.item(item)
    assert found is not None
    assert found.state == "active"
    assert (await contact(conn))["sync_status"] == "SYNCED"


async def test_a_claim_on_an_item_of_another_board_is_refused(
    conn: asyncpg.Connection, app: asyncpg.Connection, make_settings: MakeSettings,
    emulator: Emulator,
) -> None:  # fmt: skip
    acme = emulator.add_item(ORGANIZATIONS_BOARD, "Acme", {})
    await app.execute("INSERT INTO contacts (first_name, monday_id) VALUES ('Eve', $1)", acme.id)
    await drain(make_settings())
    row = await contact(conn)
    assert row["sync_status"] == "FAILED"
    assert row["sync_error"] == (
        f"item {acme.id} is on board {ORGANIZATIONS_BOARD}, not on the table's board "
        f"{CONTACTS_BOARD}"
    )
    assert emulator.item(acme.id) is not None
    assert emulator.items(CONTACTS_BOARD) == []  # and no item made for it either


async def test_a_claim_that_checks_out_is_adopted_and_pushed(
    conn: asyncpg.Connection, app: asyncpg.Connection, make_settings: MakeSettings,
    emulator: Emulator,
) -> None:  # fmt: skip
    # An item made for row 1 earlier (its npd_id says so), linked by hand.
    made = emulator.add_item(CONTACTS_BOARD, "Old name", {"npd_id": "1"})
    await app.execute(
        "INSERT INTO contacts (first_name, last_name, monday_id) VALUES ('Ada', 'Lovelace', $1)",
        made.id,
    )
    await drain(make_settings())
    row = await contact(conn)
    assert (row["sync_status"], row["monday_id"], row["sync_error"]) == ("SYNCED", made.id, None)
    assert [i.name for i in emulator.items(CONTACTS_BOARD)] == ["Ada Lovelace"]  # no duplicate
    assert await link_of(conn, made.id) == [(1, "1")]


async def test_a_monday_to_npd_row_linked_by_the_application_receives_its_item_s_edits(
    conn: asyncpg.Connection, app: asyncpg.Connection, make_settings: MakeSettings,
    emulator: Emulator, tmp_path: Path,
) -> None:  # fmt: skip
    config = inbound(make_settings, tmp_path)
    made = emulator.add_item(CONTACTS_BOARD, "Grace Hopper", {"npd_id": "1", "text": "Admiral"})
    # The application links it by hand (the item made for the row by an earlier sync).
    await app.execute(
        "INSERT INTO contacts (first_name, monday_id, sync_direction)"
        " VALUES ('Grace', $1, 'MONDAY_TO_NPD')",
        made.id,
    )
    sent = emulator.counters.mutations
    await drain(config)
    row = await contact(conn)
    assert (row["sync_status"], row["monday_id"]) == ("SYNCED", made.id)
    assert (row["last_name"], row["role_title"]) == ("Hopper", "Admiral")  # read from the item
    assert emulator.counters.mutations == sent  # it only receives
    emulator.edit_item(made.id, {"text": "Rear Admiral"})
    await deliver(config, made.id)
    await drain(config)
    assert (await contact(conn))["role_title"] == "Rear Admiral"
