"""Relations: contacts.organization_id mapped to a connect-boards column that links each
contact's item to its organization's item, both ways (issue 18). Against a real database and
the emulator over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from emulator import Emulator, values
from listener import db, settings
from listener.capture import install
from listener.settings import ConfigError
from tests.conftest import CONTACTS_BOARD, ORGANIZATIONS_BOARD, MakeSettings
from tests.helpers import drain
from tests.inbound.helpers import PUBLIC_URL, deliver

COMPANY = """
[tables.contacts]
name = "{first_name} {last_name}"
[tables.contacts.columns.email]
type = "email"
source = "email"
[tables.contacts.columns.company]
type = "board_relation"
source = "organization_id"
references = "organizations"

[tables.organizations]
name = "{name}"
"""


def relating(make_settings: MakeSettings, emulator: Emulator, tmp_path: Path,
             inbound: bool = False) -> settings.Settings:  # fmt: skip
    """Settings that map organization_id to a connect-boards column, and that column on the
    emulator's contacts board, connected to the organizations board."""
    path = tmp_path / "relations.toml"
    path.write_text(COMPANY)
    emulator.add_column(
        CONTACTS_BOARD, "company", "board_relation",
        settings={"boardIds": [int(ORGANIZATIONS_BOARD)]},
    )  # fmt: skip
    env = {"NPD_SYNC_CONFIG": str(path)}
    if inbound:
        env["NPD_SYNC_PUBLIC_URL"] = PUBLIC_URL
    return make_settings(**env)


def linked(emulator: Emulator, item_id: str) -> list[str]:
    """The items a contact's item links to, as the board holds them."""
    item = emulator.item(item_id)
    assert item is not None
    return sorted(str(i) for i in values.linked_ids(item.values.get("company")))


async def item_of(conn: asyncpg.Connection, table: str, key: int) -> str:
    found = await conn.fetchval(f"SELECT monday_id FROM {table} WHERE id = $1", key)
    assert found is not None
    return str(found)


async def test_a_contact_and_its_organization_made_together_end_linked(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = relating(make_settings, emulator, tmp_path)
    async with conn.transaction():
        await conn.execute("INSERT INTO organizations (name) VALUES ('Acme')")
        await conn.execute(
            "INSERT INTO contacts (first_name, last_name, organization_id) VALUES ('Ada', 'L', 1)"
        )
    worker = await drain(config)
    contact, org = await item_of(conn, "contacts", 1), await item_of(conn, "organizations", 1)
    assert linked(emulator, contact) == [org]
    # In one batch, organizations first: the link goes with the contact's create.
    assert worker.stats.requests == 2
    assert len(emulator.items(CONTACTS_BOARD)) == len(emulator.items(ORGANIZATIONS_BOARD)) == 1
    status = await conn.fetchrow("SELECT sync_status, sync_error FROM contacts")
    assert tuple(status) == ("SYNCED", None)


async def test_a_contact_pushed_before_its_organization_is_linked_once_it_has_an_item(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = relating(make_settings, emulator, tmp_path)
    # The organization is not pushed yet when its contacts are (another listener's batch).
    await conn.execute("INSERT INTO organizations (name, sync_enabled) VALUES ('Acme', false)")
    await conn.execute(
        "INSERT INTO contacts (first_name, organization_id)"
        " SELECT 'c' || i, 1 FROM generate_series(1, 3) i"
    )
    await drain(config)
    contacts = [await item_of(conn, "contacts", k) for k in (1, 2, 3)]
    assert all(linked(emulator, c) == [] for c in contacts)
    error = await conn.fetchval("SELECT sync_error FROM contacts WHERE id = 1")
    assert (
        error
        == "organization_id 1: organizations row 1 is not pushed to Monday, so it is not linked"
    )
    # Turned on: pushed, and its contacts follow, together.
    await conn.execute("UPDATE organizations SET sync_enabled = true")
    before = emulator.counters.mutations
    await drain(config)
    org = await item_of(conn, "organizations", 1)
    assert [linked(emulator, c) for c in contacts] == [[org]] * 3
    assert emulator.counters.mutations - before == 1 + 3  # the create, three updates
    requests = [r for r in emulator.requests if r.mutations]
    assert len(requests[-2:]) == 2  # one request for the organization, one for its contacts
    assert await conn.fetchval("SELECT count(*) FROM contacts WHERE sync_error IS NULL") == 3


async def test_waiting_contacts_follow_an_organization_synced_later(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = relating(make_settings, emulator, tmp_path)
    # The contact goes first (its organization waits behind a budget pause, say): it waits.
    await conn.execute("INSERT INTO organizations (name) VALUES ('Acme')")
    await conn.execute("DELETE FROM npd_sync.changes")  # not taken in yet
    await conn.execute("INSERT INTO contacts (first_name, organization_id) VALUES ('Ada', 1)")
    await drain(config)
    contact = await item_of(conn, "contacts", 1)
    assert linked(emulator, contact) == []
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.awaited") == 1
    assert await conn.fetchval("SELECT sync_error FROM contacts") is None  # it will link
    await conn.execute("UPDATE organizations SET notes = 'now'")  # its change, at last
    await drain(config)
    assert linked(emulator, contact) == [await item_of(conn, "organizations", 1)]
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.awaited") == 0


async def test_a_key_re_pointed_cleared_or_set_in_one_statement_shows_on_the_board(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = relating(make_settings, emulator, tmp_path)
    await conn.execute("INSERT INTO organizations (name) VALUES ('Acme'), ('Initech')")
    await conn.execute("INSERT INTO contacts (first_name, organization_id) VALUES ('Ada', 1)")
    await drain(config)
    contact = await item_of(conn, "contacts", 1)
    acme, initech = [await item_of(conn, "organizations", k) for k in (1, 2)]
    assert linked(emulator, contact) == [acme]
    await conn.execute("UPDATE contacts SET organization_id = 2")
    await drain(config)
    assert linked(emulator, contact) == [initech]
    await conn.execute("UPDATE contacts SET organization_id = NULL")
    await drain(config)
    assert linked(emulator, contact) == []
    # An organization made in the statement that points the contact at it.
    await conn.execute(
        "WITH o AS (INSERT INTO organizations (name) VALUES ('Globex') RETURNING id)"
        " UPDATE contacts SET organization_id = (SELECT id FROM o)"
    )
    await drain(config)
    assert linked(emulator, contact) == [await item_of(conn, "organizations", 3)]
    assert len(emulator.items(CONTACTS_BOARD)) == 1  # no duplicates


async def test_deleting_an_organization_clears_its_contacts_links_and_archives_its_item(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = relating(make_settings, emulator, tmp_path)
    await conn.execute("INSERT INTO organizations (name) VALUES ('Acme')")
    await conn.execute("INSERT INTO contacts (first_name, organization_id) VALUES ('Ada', 1)")
    await drain(config)
    contact, org = await item_of(conn, "contacts", 1), await item_of(conn, "organizations", 1)
    await conn.execute("DELETE FROM organizations")
    await drain(config)
    found = emulator.item(org)
    assert found is not None
    assert found.state == "archived"
    assert linked(emulator, contact) == []
    assert await conn.fetchval("SELECT sync_status FROM contacts") == "SYNCED"


async def test_links_made_or_removed_on_the_board_reach_the_key(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = relating(make_settings, emulator, tmp_path, inbound=True)
    await conn.execute("INSERT INTO organizations (name) VALUES ('Acme'), ('Initech')")
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('Ada')")
    await drain(config)
    contact = await item_of(conn, "contacts", 1)
    initech = await item_of(conn, "organizations", 2)
    emulator.edit_item(contact, {"company": {"item_ids": [int(initech)]}})
    await deliver(config, contact)
    await drain(config)
    assert await conn.fetchval("SELECT organization_id FROM contacts") == 2
    emulator.edit_item(contact, {"company": {"item_ids": []}})
    await deliver(config, contact)
    sent = emulator.counters.mutations
    await drain(config)
    assert await conn.fetchval("SELECT organization_id FROM contacts") is None
    assert emulator.counters.mutations == sent  # no echo


@pytest.mark.parametrize("case", ["not a row of the referenced table", "two links for one key"])
async def test_a_board_link_the_key_cannot_hold_is_a_conflict(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path,
    case: str,
) -> None:  # fmt: skip
    config = relating(make_settings, emulator, tmp_path, inbound=True)
    await conn.execute("INSERT INTO organizations (name) VALUES ('Acme'), ('Initech')")
    await conn.execute("INSERT INTO contacts (first_name, organization_id) VALUES ('Ada', 1)")
    await drain(config)
    contact = await item_of(conn, "contacts", 1)
    acme, initech = [await item_of(conn, "organizations", k) for k in (1, 2)]
    if case == "two links for one key":
        links = [int(acme), int(initech)]
    else:
        stray = emulator.add_item(ORGANIZATIONS_BOARD, "Made by hand", {})
        links = [int(stray.id)]
    emulator.edit_item(contact, {"company": {"item_ids": links}})
    await deliver(config, contact)
    await drain(config)
    row = await conn.fetchrow("SELECT organization_id, sync_status, sync_error FROM contacts")
    assert (row["organization_id"], row["sync_status"]) == (1, "CONFLICT")
    assert "company" in row["sync_error"]
    conflict = await conn.fetchrow("SELECT * FROM npd_sync.conflicts")
    assert (conflict["column_id"], conflict["state"]) == ("company", "open")
    assert json.loads(conflict["monday_value"]) == {"item_ids": sorted(links)}


async def test_many_links_from_an_array_key(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    await conn.execute("ALTER TABLE contacts ADD COLUMN organization_ids integer[]")
    path = tmp_path / "many.toml"
    path.write_text(COMPANY.replace('source = "organization_id"', 'source = "organization_ids"'))
    emulator.add_column(
        CONTACTS_BOARD, "company", "board_relation",
        settings={"boardIds": [int(ORGANIZATIONS_BOARD)], "allowMultipleItems": True},
    )  # fmt: skip
    config = make_settings(NPD_SYNC_CONFIG=str(path))
    installer = await db.connect(config.require_database())
    try:
        await install.install(installer, config.tables)  # the new column is a change now
    finally:
        await installer.close()
    await conn.execute("INSERT INTO organizations (name) VALUES ('Acme'), ('Initech')")
    await conn.execute(
        "INSERT INTO contacts (first_name, organization_ids) VALUES ('Ada', '{2,1}')"
    )
    await drain(config)
    contact = await item_of(conn, "contacts", 1)
    orgs = sorted([await item_of(conn, "organizations", k) for k in (1, 2)])
    assert linked(emulator, contact) == orgs


def test_a_relation_to_a_table_that_is_not_synced_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(COMPANY.replace('references = "organizations"', 'references = "companies"'))
    with pytest.raises(ConfigError, match=r"tables\.contacts\.columns\.company\.references: "
                       r"'companies' is not a synced table"):  # fmt: skip
        settings.load(environ={"NPD_SYNC_CONFIG": str(path)})
    without = tmp_path / "no-board.toml"
    without.write_text(COMPANY)
    env = {"NPD_SYNC_CONFIG": str(without), "MONDAY_CONTACTS_BOARD_ID": "1"}
    with pytest.raises(ConfigError, match="organizations is not synced"):
        settings.load(environ=env)


async def test_an_item_created_on_the_board_with_a_link_becomes_a_row_with_its_key(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = relating(make_settings, emulator, tmp_path, inbound=True)
    await conn.execute("INSERT INTO organizations (name) VALUES ('Acme')")
    await drain(config)
    acme = await item_of(conn, "organizations", 1)
    made = emulator.add_item(CONTACTS_BOARD, "Grace Hopper", {"company": {"item_ids": [int(acme)]}})
    await deliver(config, made.id, "create_pulse")
    await drain(config)
    row = await conn.fetchrow("SELECT * FROM contacts")
    assert (row["first_name"], row["organization_id"], row["monday_id"]) == ("Grace", 1, made.id)
    assert linked(emulator, made.id) == [acme]  # its first push (the npd_id) kept the link


async def test_check_and_install_see_what_keeps_a_relation_from_linking(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    from listener.commands import check

    path = tmp_path / "relations.toml"
    path.write_text(COMPANY)
    # A connect-boards column connected to no board: Monday refuses every link.
    emulator.add_column(CONTACTS_BOARD, "company", "board_relation", settings={"boardIds": []})
    config = make_settings(NPD_SYNC_CONFIG=str(path))
    lines: list[str] = []
    assert not await check.run(config, echo=lines.append)
    assert any(
        f"column 'company' does not connect to board {ORGANIZATIONS_BOARD} (organizations)" in line
        for line in lines
    ), lines
    # A foreign key that cannot hold the referenced table's keys.
    await conn.execute("ALTER TABLE contacts ADD COLUMN organization_name text")
    path.write_text(COMPANY.replace('"organization_id"', '"organization_name"'))
    config = make_settings(NPD_SYNC_CONFIG=str(path))
    installer = await db.connect(config.require_database())
    try:
        with pytest.raises(
            install.InstallError, match="organization_name is text; expected integer"
        ):
            await install.install(installer, config.tables)
    finally:
        await installer.close()
