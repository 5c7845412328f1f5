"""The console's conflict pages over real HTTP, against a real PostgreSQL, with conflicts made
by the real worker and the emulator: what they show (open ones side by side, resolved ones with
the value that lost, in the overview and a row's story), resolving per field and per row (the
same operation as `npd-sync conflicts resolve`), and every resolve that must be refused."""

from __future__ import annotations

import asyncpg

from emulator import Emulator
from listener import settings
from tests.conftest import CONTACTS_BOARD, MakeSettings
from tests.console.helpers import TOKEN, Client, make_conflicts, served
from tests.helpers import drain
from tests.inbound.helpers import PUBLIC_URL, deliver, synced_ada

SECRET_KEY = "monday-secret-key-1234567890"
ROLE = [("table", "contacts"), ("key", "1"), ("column", "text")]  # role_title, on Monday "text"


def inbound(make_settings: MakeSettings, **env: str) -> settings.Settings:
    return make_settings(NPD_SYNC_PUBLIC_URL=PUBLIC_URL, **env)


async def open_conflicts(conn: asyncpg.Connection) -> list[str]:
    return [
        r["column_id"]
        for r in await conn.fetch(
            "SELECT column_id FROM npd_sync.conflicts WHERE state = 'open' ORDER BY column_id"
        )
    ]


async def contact(conn: asyncpg.Connection) -> asyncpg.Record:
    return await conn.fetchrow("SELECT role_title, email, sync_status FROM contacts WHERE id = 1")


# --- what the pages show ------------------------------------------------------------------------


async def test_open_conflicts_show_each_field_agreed_and_both_sides(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = inbound(make_settings)
    item = await make_conflicts(conn, config, emulator)
    async with served(config) as s, Client(s.url) as client:
        response, page = await client.get("/conflicts")
        _, contacts = await client.get("/conflicts?table=contacts")
        _, organizations = await client.get("/conflicts?table=organizations")
        _, resolved = await client.get("/conflicts?show=resolved")
        _, beyond = await client.get("/conflicts?page=2")
        refused = [
            (await client.get(path))[0].status
            for path in ("/conflicts?show=all", "/conflicts?page=0", "/conflicts?table=nope")
        ]
    assert response.status == 200
    assert '<a href="/conflicts" aria-current="page">Conflicts</a>' in page  # navigation
    assert "2 open conflicts in 1 row; oldest first." in page
    assert '<a href="/row?table=contacts&amp;key=1">contacts 1</a>' in page
    assert f"/boards/{CONTACTS_BOARD}/pulses/{item}" in page
    # Per field: agreed, the database's, Monday's, side by side, in that order.
    role = page[page.index('<th scope="row">role_title</th>') :]
    cells = ["Countess", "Admiral", "Duchess", 'name="column" value="text"']
    assert sorted(cells, key=role.index) == cells
    email = page[page.index('<th scope="row">email</th>') :]
    cells = ["ada@example.com", "ada@db.example", "ada@board.example"]
    assert sorted(cells, key=email.index) == cells
    assert page.count('name="take" value="npd"') == 3  # per field, and the whole row
    assert "for every field of contacts 1" in page
    assert "Inbound sync is off" not in page
    assert "2 open conflicts in 1 row of contacts; oldest first." in contacts
    assert "No open conflicts in organizations." in organizations
    assert "No resolved conflicts." in resolved
    assert "go to the first" in beyond
    assert refused == [400, 400, 400]


async def test_conflicts_come_a_page_at_a_time(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    # 25 rows with two open conflicts each, and 60 resolved conflicts.
    await conn.execute(
        "INSERT INTO npd_sync.conflicts (table_id, row_key, column_id, npd_value, monday_value,"
        " policy, detected_at)"
        " SELECT 1, k::text, c, to_jsonb('npd ' || k), to_jsonb('monday ' || k), 'manual',"
        "        now() - make_interval(mins => 100 - k)"
        "   FROM generate_series(1, 25) AS k, unnest(ARRAY['text', 'long_text']) AS c"
    )
    await conn.execute(
        "INSERT INTO npd_sync.conflicts (table_id, row_key, column_id, policy, state, winner,"
        " resolved_by, resolved_at)"
        " SELECT 1, k::text, 'text', 'npd_wins', 'resolved', 'npd', 'policy',"
        "        now() - make_interval(mins => k)"
        "   FROM generate_series(101, 160) AS k"
    )
    async with served(inbound(make_settings)) as s, Client(s.url) as client:
        _, first = await client.get("/conflicts")
        _, second = await client.get("/conflicts?show=open&table=&page=2")
        _, resolved = await client.get("/conflicts?show=resolved&table=contacts&page=2")
    assert "50 open conflicts in 25 rows, page 1 of 2; oldest first." in first
    assert first.count('<section class="conflict"') == 20
    assert ">contacts 1</a></h2>" in first  # the oldest first
    assert ">contacts 21</a></h2>" not in first
    assert '<a href="/conflicts?show=open&amp;table=&amp;page=2">Next page</a>' in first
    assert second.count('<section class="conflict"') == 5
    assert ">contacts 21</a></h2>" in second
    assert "Previous page" in second
    assert "Next page" not in second
    assert "60 resolved conflicts in contacts, page 2 of 2; latest first" in resolved
    assert resolved.count('<th scope="row"><a href="/row?') == 10
    assert ">contacts 151</a></th>" in resolved


async def test_the_overview_says_an_unlinked_row_is_not_synced(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = inbound(make_settings)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    emulator.set_item_state(item, "archived")
    await deliver(config, item, "archive_pulse")
    await drain(config)
    async with served(config) as s, Client(s.url) as client:
        _, page = await client.get("/")
    assert "<dt>Synced</dt><dd>0</dd>" in page
    assert "<dt>Unlinked</dt><dd>1</dd>" in page
    assert "its item was archived or deleted on Monday" in page


async def test_the_overview_counts_open_conflicts_and_shows_inbound(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = inbound(make_settings)
    await make_conflicts(conn, config, emulator)
    await conn.execute(
        "INSERT INTO npd_sync.inbox (board_id, item_id, changed_at) VALUES ($1, '9', now())",
        CONTACTS_BOARD,
    )
    async with served(config) as s, Client(s.url) as client:
        _, page = await client.get("/")
    # Two fields of one row in conflict, said as the conflicts page and status say it.
    assert '<a href="/conflicts?table=contacts">2 open conflicts in 1 row<' in page
    assert "<dt>Open conflicts</dt><dd>0</dd>" in page  # organizations
    assert 'class="card has-conflicts"' in page
    assert ">on</span> edits on the boards come back" in page
    assert "Last webhook: none yet." in page
    assert "1 item waiting to be read (oldest " in page
    assert "No webhooks registered" in page
    assert 'Open conflicts: <a href="/conflicts">2 open conflicts in 1 row</a>.' in page


async def test_resolve_one_field_then_the_rest_of_the_row(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = inbound(make_settings)
    item = await make_conflicts(conn, config, emulator)
    assert (await contact(conn))["sync_status"] == "CONFLICT"
    async with served(config) as s, Client(s.url) as client:
        await client.get("/conflicts")
        response, _ = await client.post(
            "/resolve", [("back", "/conflicts"), *ROLE, ("take", "npd")]
        )
        assert (response.status, response.headers["Location"]) == (303, "/conflicts")
        assert await open_conflicts(conn) == ["email"]
        _, page = await client.get("/conflicts")
        assert '<div class="flash" role="status">' in page
        assert "contacts 1: role_title resolved for npd; the next sync writes it to Monday" in page
        assert '<th scope="row">role_title</th>' not in page
        assert "for every field" not in page  # one field left: its own buttons do
        await drain(config)
        board = emulator.item(item)
        assert board is not None
        assert board.values["text"] == "Admiral"
        assert board.values["email"]["email"] == "ada@board.example"  # still in conflict
        assert dict(await contact(conn)) == {
            "role_title": "Admiral",
            "email": "ada@db.example",
            "sync_status": "CONFLICT",
        }

        back = "/row?table=contacts&key=1"
        response, _ = await client.post(
            "/resolve", [("back", back), ("table", "contacts"), ("key", "1"), ("take", "monday")]
        )
        assert (response.status, response.headers["Location"]) == (303, back)
        assert await open_conflicts(conn) == []
        await drain(config)
        assert dict(await contact(conn)) == {
            "role_title": "Admiral",
            "email": "ada@board.example",
            "sync_status": "SYNCED",
        }
        _, story = await client.get(back)
        _, resolved = await client.get("/conflicts?show=resolved")
        _, empty = await client.get("/conflicts")
    assert "contacts 1: email resolved for monday; the next sync writes it to the database" in story
    assert '<span class="badge s-synced" id="sync-status">SYNCED</span>' in story
    assert "No open conflict; the latest resolved ones follow." in story
    assert "2 resolved conflicts; latest first" in resolved
    # The value that lost, each time: Monday's role_title, the database's email.
    lost = '<span class="value">{}</span> <span class="badge s-failed">lost</span>'
    for page in (story, resolved):
        assert lost.format("Duchess") in page
        assert lost.format("ada@db.example") in page
        assert "Monday's value taken by hand" in page
    assert "No open conflicts." in empty


async def test_resolve_says_what_it_could_not_do(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()  # inbound off: the conflicts stay, and can still be resolved
    await make_conflicts(conn, inbound(make_settings), emulator)
    async with served(config) as s, Client(s.url) as client:
        _, page = await client.get("/conflicts")
        assert "Inbound sync is off" in page
        for fields, status in [
            ([*ROLE, ("take", "both")], 400),
            ([*ROLE], 400),  # no side
            ([("table", "nope"), ("key", "1"), ("take", "npd")], 400),
            ([("table", "contacts"), ("key", "abc"), ("take", "npd")], 400),  # not a key
            ([("table", "contacts"), ("take", "npd")], 400),
            ([("table", "contacts"), ("key", "1" * 201), ("take", "npd")], 400),
            ([("table", "contacts"), ("key", "1"), ("column", "x" * 201), ("take", "npd")], 400),
        ]:
            response, text = await client.post("/resolve", fields)
            assert response.status == status, (fields, text)
        assert await open_conflicts(conn) == ["email", "text"]
        # A field with no open conflict (resolved meanwhile elsewhere) says so; back never
        # leaves the console.
        response, _ = await client.post(
            "/resolve",
            [("back", "//evil.example/"), *ROLE[:2], ("column", "phone"), ("take", "npd")],
        )
        assert response.headers["Location"] == "/conflicts"
        _, page = await client.get("/conflicts")
        assert "contacts 1: no open conflict on phone" in page
        await client.post("/resolve", [*ROLE, ("take", "monday")])
        _, page = await client.get("/conflicts")
    assert "role_title resolved for monday" in page
    assert "inbound is off (NPD_SYNC_PUBLIC_URL is not set)" in page
    assert await open_conflicts(conn) == ["email"]


# --- who may ----------------------------------------------------------------------------------


async def test_forged_cross_site_oversized_and_anonymous_resolves_are_refused(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = inbound(make_settings)
    await make_conflicts(conn, config, emulator)
    take = [*ROLE, ("take", "npd")]
    async with served(config) as s, Client(s.url) as client:
        await client.get("/conflicts")
        refused = [
            await client.post("/resolve", take, csrf=False),
            await client.post("/resolve", [("csrf", "forged"), *take], csrf=False),
            await client.post("/resolve", take, headers={"Origin": "https://evil.example"}),
            await client.post("/resolve", take, headers={"Sec-Fetch-Site": "cross-site"}),
        ]
        for response, page in refused:
            assert response.status == 403, page
            assert "Refused" in page
        response, _ = await client.post("/resolve", None, json=dict([("csrf", client.csrf), *take]))
        assert response.status == 415
        response, _ = await client.post("/resolve", [("junk", "x" * 100_000), *take])
        assert response.status == 413
        response, _ = await client.post("/resolve", [*take, *[("column", "text")] * 600])
        assert response.status == 413
        response, _ = await client.get("/resolve")
        assert response.status == 405
        async with Client(s.url) as other:  # another visitor's session, this one's token
            await other.get("/conflicts")
            response, _ = await other.post("/resolve", [("csrf", client.csrf), *take], csrf=False)
            assert response.status == 403
    assert await open_conflicts(conn) == ["email", "text"]

    async with served(config, token=TOKEN) as s, Client(s.url) as client:
        for path in ("/conflicts", "/conflicts?show=resolved"):
            response, page = await client.get(path)
            assert response.status == 303
            assert response.headers["Location"].startswith("/login")
            assert "Admiral" not in page
        await client.get("/login")  # a CSRF token, but no signed-in session
        response, _ = await client.post("/resolve", take)
        assert (response.status, response.headers["Location"]) == (303, "/login")
    assert await open_conflicts(conn) == ["email", "text"]


async def test_nothing_secret_is_shown_with_conflicts(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = inbound(make_settings, MONDAY_API_KEY=SECRET_KEY)
    item = await make_conflicts(conn, inbound(make_settings), emulator)
    receiver = "webhook-secret-abcdefghijklmnop"
    await conn.execute("INSERT INTO npd_sync.receiver (secret) VALUES ($1)", receiver)
    # Someone pasted the API key into a field on both sides; one conflict is resolved.
    await conn.execute(
        "UPDATE npd_sync.conflicts SET npd_value = to_jsonb($1::text),"
        " monday_value = to_jsonb($2::text) WHERE column_id = 'text'",
        f"key {SECRET_KEY}",
        f"{SECRET_KEY}!",
    )
    await conn.execute(
        "INSERT INTO npd_sync.conflicts (table_id, row_key, column_id, item_id, npd_value,"
        " monday_value, policy, state, winner, resolved_by, resolved_at)"
        " VALUES (1, '1', 'long_text', $1, $2, $3, 'npd_wins', 'resolved', 'npd', 'policy', now())",
        item,
        f'{{"text": "{SECRET_KEY}"}}',
        '{"text": "old notes"}',
    )
    async with served(config, token=TOKEN) as s, Client(s.url) as client:
        await client.get("/login")
        await client.post("/login", [("token", TOKEN)])
        pages = [
            (await client.get(path))[1]
            for path in (
                "/",
                "/conflicts",
                "/conflicts?show=resolved",
                "/row?table=contacts&key=1",
            )
        ]
    for page in pages:
        for secret in (SECRET_KEY, TOKEN, receiver):
            assert secret not in page
    assert all("[redacted]" in page for page in pages[1:])
    assert "by the policy npd_wins" in pages[2]
