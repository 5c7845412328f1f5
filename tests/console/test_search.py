"""The console's search (`GET /rows?q=`): a key, an item id, an email or a name across the
synced tables, against a real PostgreSQL; what the text is taken for, as a table."""

from __future__ import annotations

import asyncpg
import pytest
from yarl import URL

from emulator import Emulator
from listener.operations import search
from tests.conftest import CONTACTS_BOARD, MakeSettings
from tests.console.helpers import TOKEN, Client, served
from tests.helpers import drain


@pytest.mark.parametrize(
    ("text", "item", "email", "words"),
    [
        ("42", "42", None, ()),
        ("  Ada   Lovelace ", None, None, ("ada", "lovelace")),
        ("ADA@Example.com", None, "ADA@Example.com", ()),
        ("ada@", None, None, ()),  # not an email: a key at most
        ("a", None, None, ()),  # too short for a name
        ("a b c d e f g", None, None, ("a", "b", "c", "d", "e")),
        (
            "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            None,
            None,
            ("3f2504e0-4f89-11d3-9a0c-0305e82c3301",),
        ),
    ],
)
def test_what_the_text_is_taken_for(
    text: str, item: str | None, email: str | None, words: tuple[str, ...]
) -> None:
    found = search.wanted(text)
    assert (found.item, found.email, found.words) == (item, email, words)


@pytest.mark.parametrize(
    ("word", "pattern"),
    [("ada", "ada%"), ("50%", "50\\%%"), ("a_b", "a\\_b%"), ("c:\\x", "c:\\\\x%")],
)
def test_a_word_is_a_prefix_its_wildcards_taken_literally(word: str, pattern: str) -> None:
    assert search.like_prefix(word) == pattern


async def people(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "INSERT INTO contacts (first_name, last_name, email) VALUES"
        " ('Ada', 'Lovelace', 'Ada.Lovelace@Example.com'),"
        " ('Ada', 'Byron', 'ada@byron.example'),"
        " ('Charles', 'Babbage', 'charles@example.com'),"
        " ('Percy', '50% Shelley', NULL)"
    )
    await conn.execute("INSERT INTO organizations (name) VALUES ('Analytical Engines Ltd')")


async def test_find_a_contact_by_email_name_key_or_item(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await people(conn)
    await drain(config)
    items = {i.name: i.id for i in emulator.items(CONTACTS_BOARD)}
    async with served(config) as s, Client(s.url) as client:
        by_email, _ = await client.get("/rows?q=ada.lovelace@example.COM")
        by_name, _ = await client.get("/rows?q=ada+lov")
        by_item, _ = await client.get(f"/rows?q={items['Charles Babbage']}")
        _, two_adas = await client.get("/rows?q=Ada")
        _, by_key = await client.get("/rows?q=1")
        _, literal = await client.get("/rows?q=_da")
        percent, _ = await client.get("/rows?q=percy+50%25")
        _, nothing = await client.get("/rows?q=nobody@example.com")
        _, half_email = await client.get("/rows?q=ada@")
        _, empty = await client.get("/rows")
        long, _ = await client.get("/rows?q=" + "x" * 300)
    # One row found: straight to it.
    assert (by_email.status, by_email.headers["Location"]) == (303, "/row?table=contacts&key=1")
    assert by_name.headers["Location"] == "/row?table=contacts&key=1"
    assert by_item.headers["Location"] == "/row?table=contacts&key=3"
    # Several: listed, with table, key, name, status and item.
    assert "2 rows found for <q>Ada</q>" in two_adas
    assert '<a href="/row?table=contacts&amp;key=1">contacts 1</a>' in two_adas
    assert "Ada Lovelace" in two_adas
    assert "Ada Byron" in two_adas
    assert '<span class="badge s-synced">SYNCED</span>' in two_adas
    assert f"item {items['Ada Lovelace']}" in two_adas
    assert "contacts 1</a>" in by_key
    assert "organizations 1</a>" in by_key
    assert "Analytical Engines Ltd" in by_key
    # LIKE's wildcards are taken literally: '_da' is not 'Ada'; '50%' is the start of a name.
    assert "Nothing found for <q>_da</q> as a key or a name." in literal
    assert percent.headers["Location"] == "/row?table=contacts&key=4"
    assert "Nothing found for <q>nobody@example.com</q> as a key or an email." in nothing
    assert "An email is looked for whole" in half_email
    assert 'name="q"' in empty
    assert long.status == 400


async def test_a_table_too_slow_to_search_is_named_and_the_others_answer(
    conn: asyncpg.Connection, make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "SEARCH_TIMEOUT", "200ms")
    await people(conn)
    config = make_settings()
    # Another session holds contacts so that nothing can read it: the look-up waits.
    async with served(config) as s, Client(s.url) as client, conn.transaction():
        await conn.execute("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE")
        response, page = await client.get("/rows?q=analytical")
    # Organizations answered; contacts is named, so the one row found is listed, not opened.
    assert response.status == 200
    assert "contacts: looking through it by name took longer than 200ms" in page
    assert "1 row found for <q>analytical</q>" in page
    assert "organizations 1</a>" in page
    async with served(config) as s, Client(s.url) as client, conn.transaction():
        await conn.execute("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE")
        response, page = await client.get("/rows?q=ada")
    assert response.status == 200
    assert "contacts: looking through it by name took longer than 200ms" in page
    assert "Nothing found for <q>ada</q>" in page


async def test_search_needs_a_session(make_settings: MakeSettings) -> None:
    async with served(make_settings(), token=TOKEN) as s, Client(s.url) as client:
        response, page = await client.get("/rows?q=ada@example.com")
        assert response.status == 303
        assert URL(response.headers["Location"]).path == "/login"
        assert "ada" not in page
        response, _ = await client.get("/rows?q=ada", headers={"Host": "evil.example"})
        assert response.status == 303  # token mode: any Host, but a session is required
    async with served(make_settings()) as s, Client(s.url) as client:
        response, _ = await client.get("/rows?q=ada", headers={"Host": "rebound.evil.example"})
        assert response.status == 421
