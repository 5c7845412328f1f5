"""One row's page in the console: its history (each attempt, newest first), its relations both
ways (issue 18), and values as people read them. Over real HTTP, against a real PostgreSQL and
the emulator."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import pytest

from emulator import Emulator
from listener import fault
from listener.operations import items
from tests.conftest import CONTACTS_BOARD, MakeSettings
from tests.console.helpers import Client, make_failed, served
from tests.engine.test_relations import relating
from tests.helpers import drain

ITEM_URL = "https://acme.monday.com/boards/{board}/pulses/{item}"


async def test_a_rows_history_lists_its_attempts_newest_first(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings(MONDAY_API_KEY="test-token")
    await make_failed(conn, config, emulator)  # the board lacked email, then got it back
    await conn.execute("UPDATE contacts SET phone = '+44 20 7183 8750' WHERE id = 1")
    await drain(config)
    async with served(config) as s, Client(s.url) as client:
        _, page = await client.get("/row?table=contacts&key=1")
    history = page[page.index('id="history-heading"') :]
    assert "2 attempts, newest first (kept 7 days)" in history
    outcomes = re.findall(r'<span class="badge s-\w+">(\w+)</span>', history)
    assert outcomes == ["synced", "failed"]
    first, second = history.split("<tr>")[2:4]
    # The push that synced: an update? No: the create never happened, so a create, and what it
    # sent, read as people read it.
    assert "create" in first
    assert '<a href="mailto:ada@example.com">ada@example.com</a>' in first
    assert '<a href="tel:+442071838750">+44 20 7183 8750</a>' in first
    assert "<dt>name</dt>" in first
    # The one that failed: Monday's error, as Monday said it, and its request id.
    assert "InvalidColumnIdException" in second
    assert "from Monday" in second
    [request] = await conn.fetch(
        "SELECT request_id FROM npd_sync.attempts WHERE row_key = '1' AND outcome = 'failed'"
    )
    assert request["request_id"]
    assert f"<code>{request['request_id']}</code>" in second
    assert '<time datetime="' in first


async def test_no_history_and_a_redacted_one(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    secret = "monday-secret-key-1234567890"
    config = make_settings(MONDAY_API_KEY=secret)
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('a'), ('b')")
    await conn.execute(
        "INSERT INTO npd_sync.attempts (table_id, row_key, outcome, action, sent, error)"
        " VALUES (1, '2', 'failed', 'create', '{\"name\": \"b\"}', $1::jsonb)",
        fault.Fault("monday", f"token {secret} refused", "UNAUTHORIZED", 401).to_json(),
    )
    async with served(config) as s, Client(s.url) as client:
        _, none = await client.get("/row?table=contacts&key=1")
        _, redacted = await client.get("/row?table=contacts&key=2")
    assert "No attempt in the last 7 days." in none
    assert secret not in redacted
    assert "token [redacted] refused" in redacted


async def test_the_row_page_shows_the_link_both_ways(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = relating(make_settings, emulator, tmp_path)
    await conn.execute("INSERT INTO organizations (name) VALUES ('Acme'), ('Empty Inc')")
    await conn.execute(
        "INSERT INTO contacts (first_name, last_name, organization_id)"
        " SELECT 'P', g::text, 1 FROM generate_series(1, 25) g"
    )
    await conn.execute("INSERT INTO contacts (first_name, last_name) VALUES ('No', 'Org')")
    await drain(config)
    org_item = await conn.fetchval("SELECT monday_id FROM organizations WHERE id = 1")
    contact_item = await conn.fetchval("SELECT monday_id FROM contacts WHERE id = 1")
    async with served(config, item_url=ITEM_URL) as s, Client(s.url) as client:
        _, contact = await client.get("/row?table=contacts&key=1")
        _, lonely = await client.get("/row?table=contacts&key=26")
        _, org = await client.get("/row?table=organizations&key=1")
        _, second = await client.get("/row?table=organizations&key=1&linked=2")
        _, empty = await client.get("/row?table=organizations&key=2")
        polled, refreshed = await client.get(
            "/row?table=organizations&key=1", headers={"HX-Request": "true", "HX-Trigger": "live"}
        )
        bad, _ = await client.get("/row?table=organizations&key=1&linked=0")
    # A contact: its organization's row and item.
    assert contact.count("Links to organizations") == 1
    links = contact[contact.index('id="relations-heading"') :]
    assert '<a href="/row?table=organizations&amp;key=1">organizations 1</a>' in links
    assert f"pulses/{org_item}" in links
    # The company value reads as the row it links, not as JSON.
    values = contact[contact.index('id="monday-heading"') : contact.index('id="conflicts-heading"')]
    assert (
        '<a href="/row?table=organizations&amp;key=1">organizations 1</a> '
        f'<span class="muted">(item {org_item})</span>'
    ) in values
    assert "item_ids" not in values
    assert "None (organization_id is empty)." in lonely
    # An organization: the contacts that point at it, a page of them, with the count.
    assert "Linked from contacts" in org
    assert "25 rows of contacts point at this row; page 1 of 2." in org
    assert '<a href="/row?table=contacts&amp;key=1">contacts 1</a>' in org
    assert f"pulses/{contact_item}" in org
    assert org.count('<a href="/row?table=contacts&amp;key=') == 20
    assert 'href="/row?table=organizations&amp;key=1&amp;linked=2" rel="next"' in org
    assert second.count('<a href="/row?table=contacts&amp;key=') == 5
    assert 'rel="prev"' in second
    assert "Linked from contacts" in empty
    assert "None." in empty[empty.index("Linked from contacts") :]
    # A refresh of the page's live part does not read them again.
    assert polled.status == 200
    assert "Linked from contacts" not in refreshed
    assert bad.status == 400


# --- the item as Monday holds it now --------------------------------------------------------


async def test_read_the_item_from_monday_now(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await conn.execute(
        "INSERT INTO contacts (first_name, last_name, email) VALUES ('Ada', 'L', 'ada@db.example')"
    )
    await drain(config)
    [item] = emulator.items(CONTACTS_BOARD)
    email = "ada@board.example"
    emulator.edit_item(item.id, {"email": {"email": email, "text": email}})
    async with served(config) as s, Client(s.url) as client:
        _, page = await client.get("/row?table=contacts&key=1")
        assert "Read it from Monday now" in page
        assert "As Monday holds it" not in page  # never read on a page view
        before = emulator.counters.requests
        response, _ = await client.post("/item/read", [("table", "contacts"), ("key", "01")])
        assert response.status == 303
        assert response.headers["Location"] == "/row?table=contacts&key=1#monday-now"
        assert emulator.counters.requests == before + 1
        _, page = await client.get("/row?table=contacts&key=1")
        _, again = await client.get("/row?table=contacts&key=1")
        async with Client(s.url) as other:
            _, theirs = await other.get("/row?table=contacts&key=1")
    now = page[page.index('id="now-heading"') : page.index('id="conflicts-heading"')]
    assert f"Item {item.id} as Monday said it (request <code>" in now
    assert f'<td><a href="mailto:{email}">{email}</a></td>' in now  # on Monday now
    assert '<a href="mailto:ada@db.example">ada@db.example</a>' in now  # last agreed
    assert emulator.counters.requests == before + 1  # pages show the reading, never read
    assert 'id="now-heading"' in again  # kept for this visitor
    assert 'id="now-heading"' not in theirs  # and for no one else


async def test_a_read_on_demand_is_refused_when_the_limits_say_no(
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(items, "READ_WAIT", 0.1)
    config = make_settings()
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('Ada'), ('Bob')")
    await drain(config)
    # The listeners spent this minute's requests, as the ledger they share says.
    await conn.execute(
        "UPDATE npd_sync.monday_limits SET quota = 100, reported = 0, in_flight = 0,"
        " reset_at = now() + interval '1 minute' WHERE name = 'requests'"
    )
    async with served(config) as s, Client(s.url) as client:
        await client.get("/row?table=contacts&key=1")
        before = emulator.counters.requests
        await client.post("/item/read", [("table", "contacts"), ("key", "1")])
        _, spent = await client.get("/row?table=contacts&key=1")
        # Monday asked everyone to pause: refused without asking.
        await conn.execute(
            "UPDATE npd_sync.monday SET paused_until = now() + interval '1 hour',"
            " pause_reason = 'DAILY_LIMIT_EXCEEDED'"
        )
        await client.post("/item/read", [("table", "contacts"), ("key", "2")])
        _, paused = await client.get("/row?table=contacts&key=2")
    assert emulator.counters.requests == before  # neither reached Monday
    assert "Not read: not now: waiting for Monday&#39;s limits: requests budget spent" in spent
    assert "the listeners&#39; work comes first" in spent
    assert "Not read: Monday asked every listener to pause (DAILY_LIMIT_EXCEEDED) for" in paused


async def test_a_read_on_demand_without_an_item_or_a_token(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    # Contact 2 has an item (its page has the button, and the form's token); 1 has none.
    await conn.execute(
        "INSERT INTO contacts (first_name, monday_id) VALUES ('Ada', NULL), ('Bob', '12345')"
    )
    config = make_settings()
    async with served(config) as s, Client(s.url) as client:
        _, page = await client.get("/row?table=contacts&key=1")
        assert "Read it from Monday now" not in page
        _, page = await client.get("/row?table=contacts&key=2")
        assert "Read it from Monday now" in page
        response, _ = await client.post("/item/read", [("table", "contacts"), ("key", "1")])
        assert response.headers["Location"] == "/row?table=contacts&key=1"
        _, page = await client.get("/row?table=contacts&key=1")
        assert "contacts 1: no item on Monday to read yet" in page
        for fields in ([("table", "nope"), ("key", "1")], [("table", "contacts"), ("key", "x")]):
            response, _ = await client.post("/item/read", fields)
            assert response.status == 400
    async with served(make_settings(MONDAY_API_KEY=None)) as s, Client(s.url) as client:
        await client.get("/row?table=contacts&key=2")
        await client.post("/item/read", [("table", "contacts"), ("key", "2")])
        _, page = await client.get("/row?table=contacts&key=2")
    assert "Not read: MONDAY_API_KEY is not set where the console runs." in page


async def test_monday_s_stop_on_a_read_pauses_everyone_a_refused_token_does_not(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('Ada')")
    await drain(config)
    async with served(config) as s, Client(s.url) as client:
        await client.get("/row?table=contacts&key=1")
        emulator.set_faults(next_http_429=1, retry_in_seconds=30)
        await client.post("/item/read", [("table", "contacts"), ("key", "1")])
        _, page = await client.get("/row?table=contacts&key=1")
    assert "Not read:" in page
    assert "from Monday" in page
    paused = await conn.fetchval("SELECT paused_until > now() FROM npd_sync.monday")
    assert paused is True  # every listener waits, as after a listener's own 429
    await conn.execute("UPDATE npd_sync.monday SET paused_until = NULL, pause_reason = NULL")
    wrong = make_settings(MONDAY_API_KEY="not-the-token")
    async with served(wrong) as s, Client(s.url) as client:
        await client.get("/row?table=contacts&key=1")
        await client.post("/item/read", [("table", "contacts"), ("key", "1")])
        _, page = await client.get("/row?table=contacts&key=1")
    assert "Not read:" in page
    paused = await conn.fetchval("SELECT paused_until > now() FROM npd_sync.monday")
    assert not paused  # the console's token, not the listeners'


async def test_a_read_on_demand_waits_for_the_day_s_pace(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('Ada')")
    await drain(config)
    # A 100-call day, spent: the next call may go only when the day's even share comes in.
    await conn.execute(
        "UPDATE npd_sync.monday_day SET daily_limit = 100, own_calls = 100, tokens = 0,"
        " tokens_at = now()"
    )
    before = emulator.counters.requests
    async with served(config) as s, Client(s.url) as client:
        await client.get("/row?table=contacts&key=1")
        await client.post("/item/read", [("table", "contacts"), ("key", "1")])
        _, page = await client.get("/row?table=contacts&key=1")
        _, mapping = await client.get("/mapping")
    assert emulator.counters.requests == before  # nothing reached Monday
    assert "Not read: the day&#39;s calls to Monday are paced to last the day" in page
    assert "Board titles unknown: Monday: the day&#39;s calls to Monday are paced" in mapping
