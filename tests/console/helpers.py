"""The console under test: served for real on a free loopback port, against the test database;
a client that keeps cookies as a browser does; rows made to fail, or to conflict, by the
emulator."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import asyncpg

from emulator import Emulator
from listener import console, settings
from tests.conftest import CONTACTS_BOARD
from tests.helpers import drain
from tests.inbound.helpers import synced_ada

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
TOKEN = "a console token of some length"


@asynccontextmanager
async def served(config: settings.Settings, **options: Any) -> AsyncIterator[console.Served]:
    """The console on a free port of 127.0.0.1."""
    running = await console.serve(config, console.Options(port=0, **options).checked())
    try:
        yield running
    finally:
        await running.cleanup()


class Client:
    """An HTTP client with a cookie jar, that does not follow redirects unless asked."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.session.close()

    async def get(self, path: str, **kwargs: Any) -> tuple[aiohttp.ClientResponse, str]:
        kwargs.setdefault("allow_redirects", False)
        async with self.session.get(self.base + path, **kwargs) as response:
            text = await response.text()
        if found := CSRF.search(text):
            self.csrf = found[1]
        return response, text

    async def post(
        self, path: str, data: Any = None, *, csrf: bool = True, **kwargs: Any
    ) -> tuple[aiohttp.ClientResponse, str]:
        kwargs.setdefault("allow_redirects", False)
        if csrf and isinstance(data, list):
            data = [("csrf", self.csrf), *data]
        async with self.session.post(self.base + path, data=data, **kwargs) as response:
            return response, await response.text()


async def make_failed(
    conn: asyncpg.Connection, config: settings.Settings, emulator: Emulator
) -> None:
    """Contacts 1 and 2 FAILED (the board lost its email column), 3 SYNCED; the board is fixed
    afterwards, so that a retry syncs them."""
    emulator.remove_column(CONTACTS_BOARD, "email")
    await conn.execute(
        "INSERT INTO contacts (first_name, email) VALUES ('Ada', 'ada@example.com'),"
        " ('Bob', 'bob@example.com'), ('Cy', NULL)"
    )
    await drain(config)
    emulator.add_column(CONTACTS_BOARD, "email", "email")


async def statuses(conn: asyncpg.Connection) -> dict[int, str]:
    return dict(await conn.fetch("SELECT id, sync_status FROM contacts ORDER BY id"))


async def states(conn: asyncpg.Connection) -> dict[str, str]:
    return dict(await conn.fetch("SELECT row_key, state FROM npd_sync.queue WHERE table_id = 1"))


async def make_conflicts(
    conn: asyncpg.Connection, config: settings.Settings, emulator: Emulator
) -> str:
    """Contact 1 (Ada) synced, then its role_title and email changed both in the database and
    on the board (`config` with inbound on): two open conflicts. Returns the item's id."""
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    email = "ada@board.example"
    emulator.edit_item(item, {"text": "Duchess", "email": {"email": email, "text": email}})
    await conn.execute(
        "UPDATE contacts SET role_title = 'Admiral', email = 'ada@db.example' WHERE id = 1"
    )
    await drain(config)
    return item
