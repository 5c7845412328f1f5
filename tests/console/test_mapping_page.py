"""The console's Mapping page: the mapping in effect, each column with its title on its board
(read through the governor, at most every few minutes) and whether it flows back."""

from __future__ import annotations

import asyncpg

from emulator import Emulator
from tests.conftest import CONTACTS_BOARD, MakeSettings
from tests.console.helpers import TOKEN, Client, served
from tests.inbound.helpers import PUBLIC_URL


async def test_the_mapping_with_board_titles(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    emulator.remove_column(CONTACTS_BOARD, "phone")
    config = make_settings(NPD_SYNC_PUBLIC_URL=PUBLIC_URL)
    async with served(config) as s, Client(s.url) as client:
        before = emulator.counters.requests
        response, page = await client.get("/mapping")
        _, again = await client.get("/mapping")
    assert response.status == 200
    assert emulator.counters.requests == before + 1  # read once, then shown as read
    assert again == page
    assert "inbound on" in page
    assert f"contacts → board {CONTACTS_BOARD} &#39;contacts&#39;</h2>" in page
    row = page[page.index("<code>email</code>") :]
    row = row[: row.index("</tr>")]
    assert '<td data-label="Title">&#39;email&#39;</td>' in row
    assert '<td data-label="From">email</td>' in row
    assert '<td data-label="Flows back">yes</td>' in row
    assert "(not on the board)" in page  # phone
    assert "flows back yes: the first word to first_name, the rest to last_name" in page
    assert "no: several columns joined" in page  # organizations' address
    assert "no: npd-sync&#39;s own" in page


async def test_the_mapping_without_monday(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    # Monday asked everyone to pause: the titles are not read, and the page says why.
    await conn.execute(
        "UPDATE npd_sync.monday SET paused_until = now() + interval '1 hour',"
        " pause_reason = 'DAILY_LIMIT_EXCEEDED'"
    )
    before = emulator.counters.requests
    async with served(make_settings()) as s, Client(s.url) as client:
        _, paused = await client.get("/mapping")
    assert emulator.counters.requests == before
    assert (
        "Board titles unknown: Monday: waiting for Monday&#39;s limits: DAILY_LIMIT_EXCEEDED"
        in paused
    )
    assert '<td data-label="Title">?</td>' in paused
    async with served(make_settings(MONDAY_API_KEY=None)) as s, Client(s.url) as client:
        _, nokey = await client.get("/mapping")
    assert "Board titles unknown: MONDAY_API_KEY is not set where the console runs." in nokey
    assert "inbound off" in nokey


async def test_the_mapping_needs_a_session(make_settings: MakeSettings) -> None:
    async with served(make_settings(), token=TOKEN) as s, Client(s.url) as client:
        response, page = await client.get("/mapping")
    assert response.status == 303
    assert "email" not in page
