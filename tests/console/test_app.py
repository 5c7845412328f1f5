"""The console's pages and actions over real HTTP, against a real PostgreSQL: what each page
shows, retry (one, a selection, a whole table), one row's story; and every request that must be
refused: anonymous, forged, cross-site, oversized."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import asyncpg
import pytest
from yarl import URL

from emulator import Emulator
from listener import console, daemon, fault
from listener.settings import ConfigError
from tests.conftest import CONTACTS_BOARD, MakeSettings
from tests.console.helpers import TOKEN, Client, make_failed, served, states, statuses
from tests.helpers import drain, eventually, write_config

SECRET_KEY = "monday-secret-key-1234567890"


# --- pages ------------------------------------------------------------------------------------


async def test_overview_shows_each_table_listeners_and_monday(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await make_failed(conn, config, emulator)
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('waiting')")
    await conn.execute(
        "INSERT INTO npd_sync.listeners (id, hostname, pid, version)"
        " VALUES ('l1', 'app-1', 42, '0.1.0')"
    )
    async with served(config) as s, Client(s.url) as client:
        response, page = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert '<h3 id="table-1">contacts</h3>' in page
    assert "<dt>Pending</dt><dd>1</dd>" in page  # 'waiting', recorded and not taken in yet
    assert '<a href="/failed?table=contacts">2<' in page
    assert "<dt>Synced</dt><dd>1</dd>" in page
    assert "app-1 pid 42" in page
    assert ">alive<" in page
    assert "not paused" in page
    assert "InvalidColumnIdException" in page  # the latest errors
    assert "<dt>Open conflicts</dt><dd>0</dd>" in page
    assert ">off</span> NPD_SYNC_PUBLIC_URL is not set" in page  # inbound


async def test_overview_shows_the_days_calls_as_status_does(
    conn: asyncpg.Connection, make_settings: MakeSettings, tmp_path: Path
) -> None:
    # 1,000 a day configured; other apps spent 30 today, npd-sync 120 of which 100 in the past
    # hour: the line status prints, in the Monday section.
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", daily_calls=1000)))
    await conn.execute("UPDATE npd_sync.monday_day SET own_calls = 120, others_used = 30")
    await conn.execute(
        "INSERT INTO npd_sync.monday_minutes (minute, requests)"
        " VALUES (date_trunc('minute', now()) - interval '10 minutes', 100)"
    )
    async with served(config) as s, Client(s.url) as client:
        _, page = await client.get("/")
    (line,) = re.findall(r'<li class="day">(.*?)</li>', page)
    assert line.startswith(
        "Calls today: 150 of 1,000 (daily_calls), npd-sync&#39;s own 120; 100 in the past hour; "
        "at that pace they "
    )
    assert re.search(r"reset at \d{4}-\d\d-\d\d 00:00:00Z\.$", line)


async def test_overview_charts_what_the_listeners_recorded(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    await conn.execute(
        "INSERT INTO npd_sync.throughput (minute, listener_id, synced, failed, latency_buckets)"
        " VALUES (date_trunc('minute', now()), 'a', 30, 2, $1),"
        " (date_trunc('minute', now()), 'b', 12, 0, $2)",
        [0, 0, 30, *[0] * 13],
        [0, 0, 0, 12, *[0] * 12],
    )
    async with served(make_settings()) as s, Client(s.url) as client:
        _, page = await client.get("/")
    assert "42 rows synced in the last hour, at most 42 in a minute; 2 failed" in page
    assert page.count('class="bar-synced"') == 1
    assert "Nothing recorded in the last hour" not in page


async def test_failed_rows_with_monday_error_attempts_and_item_link(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await make_failed(conn, config, emulator)
    # Bob was linked to an item once (a later update failed).
    await conn.execute(
        "INSERT INTO npd_sync.links (table_id, row_key, item_id) VALUES (1, '2', '777')"
    )
    item_url = "https://acme.monday.com/boards/{board}/pulses/{item}"
    async with served(config, item_url=item_url) as s, Client(s.url) as client:
        _, page = await client.get("/failed")
        _, filtered = await client.get("/failed?table=organizations")
        bad, _ = await client.get("/failed?table=nope")
        past, _ = await client.get("/failed?page=0")
    assert "2 failed rows; newest error first." in page
    assert 'value="contacts 1"' in page
    assert 'value="contacts 2"' in page
    assert "from Monday · code InvalidColumnIdException · HTTP 200 · request " in page
    assert f'href="https://acme.monday.com/boards/{CONTACTS_BOARD}/pulses/777"' in page
    assert 'rel="noopener noreferrer"' in page
    assert "Retry every failed row of contacts" in page
    assert "No failed rows in organizations." in filtered
    assert (bad.status, past.status) == (400, 400)


async def failing(conn: asyncpg.Connection, keys: range, error: fault.Fault | None) -> None:
    """Failed queue entries of contacts with these keys, as a listener leaves them."""
    await conn.execute(
        "INSERT INTO npd_sync.queue (table_id, row_key, changed_at, next_attempt_at, state,"
        " attempts, last_error, last_error_at)"
        " SELECT 1, k::text, now(), now(), 'failed', 3, $2::jsonb,"
        "        now() - make_interval(secs => k)"
        "   FROM unnest($1::int[]) AS k",
        list(keys),
        None if error is None else error.to_json(),
    )


EMAIL = fault.Fault("monday", "invalid email", "ColumnValueException", 200, "r-1")
GONE = fault.Fault("npd-sync", "the referenced row is gone")


async def test_failed_rows_grouped_by_error_filtered_and_paged(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    await failing(conn, range(1, 61), EMAIL)
    await failing(conn, range(61, 64), GONE)
    await failing(conn, range(64, 65), None)
    async with served(make_settings()) as s, Client(s.url) as client:
        _, page = await client.get("/failed")
        groups = re.findall(r'href="/failed\?table=&amp;error=([0-9a-f]{12})"', page)
        assert len(groups) == 3
        email, gone, nothing = groups  # the most rows first
        _, of_email = await client.get(f"/failed?error={email}")
        _, second = await client.get(f"/failed?error={email}&page=2")
        _, of_gone = await client.get(f"/failed?table=contacts&error={gone}")
        _, of_nothing = await client.get(f"/failed?error={nothing}")
        _, elsewhere = await client.get(f"/failed?table=organizations&error={email}")
        bad, _ = await client.get("/failed?error=x' OR 1=1")
    # The groups: rows, who said it, the code and the message.
    assert '<caption class="visually-hidden">Failed rows by error</caption>' in page
    assert re.search(r'<td class="num" data-label="Rows">60</td>\s*<th scope="row"', page)
    assert "ColumnValueException: invalid email</a>" in page
    assert "from Monday · code ColumnValueException" in page
    assert "the referenced row is gone</a>" in page
    assert "from npd-sync" in page
    assert "no error recorded</a>" in page
    assert "64 failed rows, page 1 of 2; newest error first." in page
    # One group: its rows only, 50 a page, linked both ways at the top and the bottom.
    assert (
        "60 failed rows with the error <q>ColumnValueException: invalid email</q>, page 1 of 2"
        in of_email
    )
    assert of_email.count('data-label="Attempts"') == 50
    assert of_email.count(f'href="/failed?table=&amp;error={email}&amp;page=2" rel="next"') == 2
    assert 'rel="prev"' not in of_email
    assert second.count('data-label="Attempts"') == 10
    assert second.count(f'href="/failed?table=&amp;error={email}&amp;page=1" rel="prev"') == 2
    assert 'rel="next"' not in second
    assert of_gone.count('data-label="Attempts"') == 3
    assert 'value="contacts 61"' in of_gone
    assert 'value="contacts 1"' not in of_gone
    assert of_nothing.count('data-label="Attempts"') == 1
    assert "No failed rows in organizations with this error." in elsewhere
    assert bad.status == 400


async def test_stop_retrying_rows(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await make_failed(conn, config, emulator)
    async with served(config) as s, Client(s.url) as client:
        _, page = await client.get("/failed")
        assert 'formaction="/discard"' in page
        _, story = await client.get("/row?table=contacts&key=1")
        assert "Stop retrying this row" in story
        response, _ = await client.post(
            "/discard", [("back", "/row?table=contacts&key=1"), ("one", "contacts 1")]
        )
        assert (response.status, response.headers["Location"]) == (303, "/row?table=contacts&key=1")
        assert await states(conn) == {"2": "failed"}
        _, story = await client.get("/row?table=contacts&key=1")
        assert "contacts: stopped retrying 1 row (1): out of the queue until new data" in story
        assert "Stop retrying this row" not in story
        _, page = await client.get("/failed")
        assert 'value="contacts 1"' not in page
        assert "1 failed row; newest error first." in page
        nothing, _ = await client.post("/discard", [("selection", "1")])
        _, page = await client.get("/failed")
        assert "Nothing selected: tick the rows to stop retrying." in page
        for fields, status in [
            ([("one", "nope 1")], 400),
            ([("one", "contacts abc")], 400),
            ([("row", f"contacts {n}") for n in range(501)], 413),
        ]:
            response, text = await client.post("/discard", fields)
            assert response.status == status, (fields[:1], text)
        response, _ = await client.post("/discard", [("row", "contacts 2"), ("row", "contacts 3")])
        _, page = await client.get("/failed")
        assert "contacts: not failed, left as they are: 3" in page
    assert nothing.status == 303
    assert await states(conn) == {}
    # The rows stay FAILED in the table; new data queues them again.
    assert await statuses(conn) == {1: "FAILED", 2: "FAILED", 3: "SYNCED"}
    await conn.execute("UPDATE contacts SET role_title = 'x' WHERE id = 1")
    await drain(config)
    assert await statuses(conn) == {1: "SYNCED", 2: "FAILED", 3: "SYNCED"}


async def test_retry_one_row_then_it_syncs(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await make_failed(conn, config, emulator)
    async with served(config) as s, Client(s.url) as client:
        await client.get("/failed")
        response, _ = await client.post(
            "/retry", [("back", "/failed"), ("row", "contacts 2"), ("one", "contacts 1")]
        )
        assert (response.status, response.headers["Location"]) == (303, "/failed")
        # The clicked row only, not the ticked one.
        assert await states(conn) == {"1": "pending", "2": "failed"}
        assert await statuses(conn) == {1: "PENDING", 2: "FAILED", 3: "SYNCED"}
        _, page = await client.get("/failed")
        assert '<div class="flash" role="status">' in page
        assert "contacts: 1 row back in the queue" in page
        _, again = await client.get("/failed")
        assert "1 row back in the queue" not in again  # said once
    await drain(config)
    assert await statuses(conn) == {1: "SYNCED", 2: "FAILED", 3: "SYNCED"}


async def test_retry_a_selection_and_a_whole_table(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await make_failed(conn, config, emulator)
    await conn.execute("INSERT INTO contacts (first_name, email) VALUES ('Di', 'not an email')")
    await drain(config)
    assert await states(conn) == {"1": "failed", "2": "failed", "4": "failed"}
    async with served(config) as s, Client(s.url) as client:
        await client.get("/failed")
        response, _ = await client.post(
            "/retry", [("selection", "1"), ("row", "contacts 1"), ("row", "contacts 4")]
        )
        assert response.status == 303
        assert await states(conn) == {"1": "pending", "2": "failed", "4": "pending"}
        await drain(config)
        assert await states(conn) == {"2": "failed", "4": "failed"}  # Di's email is still bad
        # Every failed row of a table is asked for once more, with the count.
        response, _ = await client.post(
            "/retry", [("all", "contacts"), ("row", "contacts 4"), ("back", "/failed?page=1")]
        )
        assert response.status == 303
        confirm = response.headers["Location"]
        assert URL(confirm).path == "/retry/confirm"
        assert dict(URL(confirm).query) == {"table": "contacts", "back": "/failed?page=1"}
        assert await states(conn) == {"2": "failed", "4": "failed"}
        response, page = await client.get(confirm)
        assert response.status == 200
        assert "<h1>Retry every failed row of contacts?</h1>" in page
        assert "2 failed rows of contacts go back in the queue" in page
        assert '<button type="submit" name="confirm" value="yes">Retry 2 rows</button>' in page
        assert '<a href="/failed?page=1" class="button secondary">Cancel</a>' in page
        response, _ = await client.post(
            "/retry", [("all", "contacts"), ("confirm", "yes"), ("back", "/failed")]
        )
        assert (response.status, response.headers["Location"]) == (303, "/failed")
        assert await states(conn) == {"2": "pending", "4": "pending"}
        _, page = await client.get("/failed")
        bad, _ = await client.get("/retry/confirm?table=nope")
        none, _ = await client.get("/retry/confirm")
    assert "contacts: 2 rows back in the queue" in page
    assert (bad.status, none.status) == (400, 400)
    await drain(config)
    assert await statuses(conn) == {1: "SYNCED", 2: "SYNCED", 3: "SYNCED", 4: "FAILED"}


async def test_retry_says_what_it_could_not_do(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await make_failed(conn, config, emulator)
    async with served(config) as s, Client(s.url) as client:
        await client.get("/failed")
        nothing, _ = await client.post("/retry", [("back", "/row?table=contacts&key=1")])
        assert nothing.headers["Location"] == "/row?table=contacts&key=1"
        _, page = await client.get("/failed")
        assert "Nothing selected" in page
        for fields, status in [
            ([("one", "nope 1")], 400),  # no such table
            ([("one", "contacts abc")], 400),  # not a key of contacts
            ([("one", "contacts")], 400),  # no key
            ([("row", f"contacts {n}") for n in range(501)], 413),
        ]:
            response, text = await client.post("/retry", fields)
            assert response.status == status, (fields[:1], text)
        # Going back never leaves the console.
        response, _ = await client.post(
            "/retry", [("back", "//evil.example/"), ("one", "contacts 7")]
        )
        assert response.headers["Location"] == "/failed"
        _, page = await client.get("/failed")
        assert "contacts: not failed, left as they are: 7" in page
    assert await states(conn) == {"1": "failed", "2": "failed"}


async def test_one_rows_story_by_key_and_by_item(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await make_failed(conn, config, emulator)
    await conn.execute("UPDATE contacts SET role_title = 'Boss' WHERE id = 3")  # not taken in yet
    [item] = emulator.items(CONTACTS_BOARD)
    async with served(config) as s, Client(s.url) as client:
        _, failed = await client.get("/row?table=contacts&key=001")
        _, synced = await client.get("/row?table=contacts&key=3")
        found, _ = await client.get(f"/row?item={item.id}")
        unknown, unknown_page = await client.get("/row?item=123456")
        not_a_key, not_a_key_page = await client.get("/row?table=contacts&key=abc")
        missing, _ = await client.get("/row?table=contacts&key=99")
        letters, _ = await client.get("/row?item=12ab")
        empty, empty_page = await client.get("/row")
        long, _ = await client.get("/row?table=contacts&key=" + "1" * 300)
    assert "<h2>contacts 1</h2>" in failed  # 001 is key 1
    assert '<span class="badge s-failed" id="sync-status">FAILED</span>' in failed
    assert "InvalidColumnIdException" in failed
    assert "Retry this row" in failed
    assert "Nothing agreed with Monday yet" in failed
    assert '<span class="badge s-synced" id="sync-status">SYNCED</span>' in synced
    assert "1 change record not taken in by a listener yet" in synced
    assert f"Item {item.id}" in synced
    assert "Boss" in synced
    assert "differs" in synced
    assert "Retry this row" not in synced
    assert (found.status, found.headers["Location"]) == (303, "/row?table=contacts&key=3")
    assert unknown.status == 404
    assert "No row is linked to Monday item 123456" in unknown_page
    assert not_a_key.status == 400
    assert "is not a key of contacts (id is integer)" in not_a_key_page
    assert missing.status == 404
    assert letters.status == 400
    assert empty.status == 200
    assert "By Monday item id" in empty_page
    assert long.status == 400


async def test_nothing_secret_is_ever_shown(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings(MONDAY_API_KEY=SECRET_KEY)
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
    await conn.execute("DELETE FROM npd_sync.changes")  # as if taken in, then failed:
    await conn.execute(
        "INSERT INTO npd_sync.queue (table_id, row_key, changed_at, next_attempt_at, state,"
        " attempts, last_error, last_error_at)"
        " VALUES (1, '1', now(), now(), 'failed', 1, $1, now())",
        fault.Fault(
            "monday", f"Unauthorized: token {SECRET_KEY} refused", "UNAUTHORIZED", 401
        ).to_json(),
    )
    await conn.execute(
        "UPDATE npd_sync.monday SET paused_until = now() + interval '1 hour', pause_reason = $1",
        f"refused {SECRET_KEY}",
    )
    async with served(config, token=TOKEN) as s, Client(s.url) as client:
        _, login = await client.get("/login")
        await client.post("/login", [("token", TOKEN)])
        pages = [login] + [
            (await client.get(path))[1]
            for path in ("/", "/failed", "/row?table=contacts&key=1", "/nope")
        ]
    for page in pages:
        assert SECRET_KEY not in page
        assert TOKEN not in page
    assert all("[redacted]" in page for page in pages[1:4])


async def test_database_away_and_not_installed_are_said_plainly(
    empty_dsn: str, make_settings: MakeSettings
) -> None:
    async with served(make_settings(DATABASE_URL=empty_dsn)) as s, Client(s.url) as client:
        response, page = await client.get("/")
        assert response.status == 503
        assert "npd-sync is not installed in this database" in page
    away = make_settings(DATABASE_URL="postgresql://nobody:hunter2@127.0.0.1:1/x")
    async with served(away) as s, Client(s.url) as client:
        response, page = await client.get("/failed")
        assert response.status == 503
        assert "The database cannot be read right now" in page
        assert "hunter2" not in page
        # The console is still up and says so again.
        response, _ = await client.get("/")
        assert response.status == 503


# --- who may ----------------------------------------------------------------------------------


async def test_every_response_carries_the_security_headers(make_settings: MakeSettings) -> None:
    async with served(make_settings()) as s, Client(s.url) as client:
        for path in ("/", "/static/console.css", "/nope", "/static/nope.js"):
            response, _ = await client.get(path)
            headers = response.headers
            assert headers["Content-Security-Policy"].startswith("default-src 'none'"), path
            assert "script-src 'self';" in headers["Content-Security-Policy"]
            assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
            assert headers["X-Frame-Options"] == "DENY"
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] == "same-origin"
        response, page = await client.get("/")
        assert response.headers["Cache-Control"] == "no-store"
        assert "<script>" not in page
        assert " style=" not in page


async def test_static_files_are_a_fixed_set(make_settings: MakeSettings) -> None:
    async with served(make_settings()) as s, Client(s.url) as client:
        js, body = await client.get("/static/htmx.min.js")
        assert (js.status, js.content_type) == (200, "text/javascript")
        assert body.startswith("var htmx=")
        again, _ = await client.get(
            "/static/htmx.min.js", headers={"If-None-Match": js.headers["ETag"]}
        )
        assert again.status == 304
        css, _ = await client.get("/static/console.css")
        assert css.content_type == "text/css"
        for path in ("/static/../app.py", "/static/%2e%2e%2fapp.py", "/static/data.py", "/static/"):
            response, _ = await client.get(path)
            assert response.status == 404, path


async def test_forged_and_cross_site_posts_are_refused(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await make_failed(conn, config, emulator)
    async with served(config) as s, Client(s.url) as client:
        await client.get("/failed")
        one = [("one", "contacts 1")]
        refused = [
            await client.post("/retry", one, csrf=False),  # no token
            await client.post("/retry", [("csrf", "forged"), *one], csrf=False),
            await client.post("/retry", one, headers={"Origin": "https://evil.example"}),
            await client.post("/retry", one, headers={"Sec-Fetch-Site": "cross-site"}),
        ]
        for response, page in refused:
            assert response.status == 403, page
            assert "Refused" in page
        response, _ = await client.post(
            "/retry", None, json={"csrf": client.csrf, "one": "contacts 1"}
        )
        assert response.status == 415
        response, _ = await client.post("/retry", [("junk", "x" * 100_000), *one])
        assert response.status == 413
        response, _ = await client.get("/retry")
        assert response.status == 405
        # Another visitor's session has a token of its own.
        async with Client(s.url) as other:
            await other.get("/failed")
            response, _ = await other.post("/retry", [("csrf", client.csrf), *one], csrf=False)
            assert response.status == 403
        # The same request with the token goes through.
        response, _ = await client.post("/retry", one)
        assert response.status == 303
    assert await states(conn) == {"1": "pending", "2": "failed"}


async def test_open_console_answers_only_to_loopback_names(make_settings: MakeSettings) -> None:
    async with served(make_settings()) as s, Client(s.url) as client:
        response, _page = await client.get("/", headers={"Host": "rebound.evil.example"})
        assert response.status == 421
        assert "set-cookie" not in response.headers
        response, _ = await client.get("/", headers={"Host": "localhost"})
        assert response.status == 200


async def test_with_a_token_everything_needs_a_session(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await make_failed(conn, config, emulator)
    async with served(config, token=TOKEN) as s, Client(s.url) as client:
        for path in ("/", "/failed", "/row?table=contacts&key=1"):
            response, page = await client.get(path)
            assert response.status == 303, path
            assert response.headers["Location"].startswith("/login")
            assert "contacts" not in page
        response, _ = await client.get("/failed", headers={"HX-Request": "true"})
        assert (response.status, response.headers["HX-Redirect"]) == (401, "/login?next=%2Ffailed")
        response, _ = await client.get("/static/console.css")
        assert response.status == 200
        # Not even with a CSRF token from the login page.
        _, login = await client.get("/login?next=/failed")
        assert 'name="next" value="/failed"' in login
        response, _ = await client.post("/retry", [("one", "contacts 1")])
        assert response.status == 303
        assert response.headers["Location"].startswith("/login")
        response, page = await client.post("/login", [("token", "wrong"), ("next", "/failed")])
        assert response.status == 401
        assert "not the console&#39;s token" in page
        response, _ = await client.post("/login", [("token", TOKEN)], csrf=False)
        assert response.status == 403  # the login form is CSRF-protected too
        anonymous = client.session.cookie_jar.filter_cookies(URL(s.url))["npd_sync_console"].value
        response, _ = await client.post("/login", [("token", TOKEN), ("next", "/failed")])
        assert (response.status, response.headers["Location"]) == (303, "/failed")
        cookie = response.headers["Set-Cookie"]
        for attribute in ("HttpOnly", "SameSite=Strict", "Path=/"):
            assert attribute in cookie
        session_id = response.cookies["npd_sync_console"].value
        assert session_id != anonymous  # a new session on login, never the one before
        response, page = await client.get("/failed")
        assert response.status == 200
        assert 'value="contacts 1"' in page
        forged = {"Cookie": "npd_sync_console=" + session_id[:-2] + "xx"}
        async with Client(s.url) as stranger:
            response, _ = await stranger.get("/failed", headers=forged)
            assert response.status == 303
        response, _ = await client.post("/logout", [])
        assert (response.status, response.headers["Location"]) == (303, "/login")
        headers = {"Cookie": f"npd_sync_console={session_id}"}
        async with Client(s.url) as replay:
            response, _ = await replay.get("/failed", headers=headers)
            assert response.status == 303  # the session is gone on the server
    async with served(config, token=TOKEN, secure_cookie=True) as s, Client(s.url) as client:
        response, _ = await client.get("/login")
        assert "Secure" in response.headers["Set-Cookie"]
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_wrong_tokens_are_throttled(make_settings: MakeSettings) -> None:
    async with served(make_settings(), token=TOKEN) as s, Client(s.url) as client:
        await client.get("/login")
        for _ in range(10):
            response, _ = await client.post("/login", [("token", "guess")])
            assert response.status == 401
        response, page = await client.post("/login", [("token", TOKEN)])
        assert response.status == 429
        assert int(response.headers["Retry-After"]) > 0
        assert "Too many wrong tokens" in page


async def test_wrong_tokens_lock_out_their_client_only(make_settings: MakeSettings) -> None:
    # The lock was the whole process's: anyone could keep the real users out.
    attacker = {"X-Real-IP": "203.0.113.7"}  # as the README's nginx sets it
    async with served(make_settings(), token=TOKEN) as s:
        async with Client(s.url) as client:
            await client.get("/login")
            for _ in range(10):
                response, _ = await client.post("/login", [("token", "guess")], headers=attacker)
                assert response.status == 401
            response, _ = await client.post("/login", [("token", TOKEN)], headers=attacker)
            assert response.status == 429
        async with Client(s.url) as user:
            await user.get("/login")
            headers = {"X-Real-IP": "198.51.100.2"}
            response, _ = await user.post("/login", [("token", TOKEN)], headers=headers)
            assert response.status == 303


def test_options_refuse_what_is_unsafe() -> None:
    with pytest.raises(ConfigError, match="NPD_SYNC_CONSOLE_TOKEN is not set"):
        console.Options(host="0.0.0.0").checked()
    with pytest.raises(ConfigError, match="--item-url"):
        console.Options(item_url="javascript:alert(1)//{item}").checked()
    with pytest.raises(ConfigError, match="--item-url"):
        console.Options(item_url="https://x.monday.com/{account}/{item}").checked()
    assert console.Options(host="0.0.0.0", token=TOKEN).checked().token == TOKEN


# --- in the listener ---------------------------------------------------------------------------


async def test_the_listener_serves_the_console_and_records_its_minutes(
    conn: asyncpg.Connection, make_settings: MakeSettings, tmp_path: Path
) -> None:
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", poll_interval=1)))
    options = console.Options(port=0).checked()
    # An hour-old minute from another day is forgotten when the listener writes.
    await conn.execute(
        "INSERT INTO npd_sync.throughput (minute, listener_id, latency_buckets)"
        " VALUES (now() - interval '2 days', 'old', '{}')"
    )
    listener = daemon.Daemon(config, console_options=options)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.ready.wait(), 10)
        await conn.execute("INSERT INTO contacts (first_name) VALUES ('a'), ('b'), ('c')")
        await eventually(lambda: statuses(conn), lambda s: list(s.values()) == ["SYNCED"] * 3)
        url = await eventually(lambda: _console_url(listener))
        async with Client(url) as client:
            response, page = await client.get("/")
        assert response.status == 200
        assert "1 alive." in page
    finally:
        listener.request_stop()
        await asyncio.wait_for(task, 20)
    # On its way out the listener wrote what it had not yet.
    rows = await conn.fetch(
        "SELECT listener_id, synced, failed, latency_buckets FROM npd_sync.throughput"
    )
    assert [(r["listener_id"], r["synced"], r["failed"]) for r in rows] == [(listener.id, 3, 0)]
    assert sum(rows[0]["latency_buckets"]) == 3


async def _console_url(listener: daemon.Daemon) -> str | None:
    served = listener.console
    return None if served is None else served.url


# --- the new pages and actions, each tried anonymous and forged -------------------------------

NEW_PAGES = (
    "/rows?q=ada@example.com",
    "/rows",
    "/mapping",
    "/retry/confirm?table=contacts",
    "/failed?error=0123456789ab",
    "/row?table=contacts&key=1&linked=2",
)
NEW_ACTIONS = (
    ("/discard", [("one", "contacts 1")]),
    ("/item/read", [("table", "contacts"), ("key", "1")]),
    ("/retry", [("all", "contacts"), ("confirm", "yes")]),
)


async def test_new_pages_and_actions_refuse_the_anonymous_and_the_forged(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await make_failed(conn, config, emulator)
    # Token mode: nothing without a session, neither pages nor actions.
    async with served(config, token=TOKEN) as s, Client(s.url) as client:
        for path in NEW_PAGES:
            response, page = await client.get(path)
            assert response.status == 303, path
            assert response.headers["Location"].startswith("/login"), path
            assert "contacts 1" not in page, path
        await client.get("/login")  # an anonymous session, with a CSRF token of its own
        for path, fields in NEW_ACTIONS:
            response, _ = await client.post(path, fields)
            assert response.status == 303, path
            assert response.headers["Location"].startswith("/login"), path
    # Open on loopback: a page elsewhere reaching in through DNS, a forged or cross-site form.
    async with served(config) as s, Client(s.url) as client:
        for path in NEW_PAGES:
            response, _ = await client.get(path, headers={"Host": "rebound.evil.example"})
            assert response.status == 421, path
        await client.get("/failed")
        for path, fields in NEW_ACTIONS:
            for response, page in [
                await client.post(path, fields, csrf=False),
                await client.post(path, [("csrf", "forged"), *fields], csrf=False),
                await client.post(path, fields, headers={"Origin": "https://evil.example"}),
                await client.post(path, fields, headers={"Sec-Fetch-Site": "cross-site"}),
                await client.post(path, fields, headers={"Host": "rebound.evil.example"}),
            ]:
                assert response.status in (403, 421), (path, page)
            response, _ = await client.get(path)
            assert response.status == 405, path
    assert await states(conn) == {"1": "failed", "2": "failed"}
