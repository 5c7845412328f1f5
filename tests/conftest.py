"""Shared fixtures: a real PostgreSQL (ours, if none is reachable), a template database with
the sample schema and npd-sync installed, cloned for each test, and the Monday emulator.

NPD_SYNC_TEST_DATABASE_URL names the server to use; unset, the local default is tried, then
a throwaway cluster is started. A developer's DATABASE_URL is never used by the tests.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from devtools import pgcluster
from emulator import AccountLimits, Emulator
from listener import db, settings
from listener.capture import install

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SCHEMA = (ROOT / "devtools" / "sample_schema.sql").read_text()
TOKEN = "test-token"
CONTACTS_BOARD = "1000000001"
ORGANIZATIONS_BOARD = "1000000002"
_counter = itertools.count()


def with_db(dsn: str, name: str) -> str:
    """The same server, another database."""
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Tests build their settings explicitly; nothing leaks in from the developer's shell or
    # from a .env in the working directory.
    for name in list(os.environ):
        if name == "DATABASE_URL" or name.startswith(("MONDAY_", "NPD_SYNC_CONFIG")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """DSN of the server's `postgres` database."""
    dsn, cluster = pgcluster.ensure_server(
        os.environ.get("NPD_SYNC_TEST_DATABASE_URL"), settings=pgcluster.FAST_SETTINGS
    )
    yield dsn
    if cluster is not None:
        cluster.destroy()


async def _admin(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> Iterator[str]:
    """A database with the sample schema and npd-sync installed, to clone tests from."""
    name = f"npd_test_template_{os.getpid()}"

    async def build() -> None:
        await _admin(pg_server, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
        conn = await db.connect(with_db(pg_server, name))
        try:
            await conn.execute(SAMPLE_SCHEMA)
            await install.install(conn, settings.load(environ={}).tables)
        finally:
            await conn.close()

    asyncio.run(build())
    yield name
    asyncio.run(_admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
async def dsn(pg_server: str, template_db: str) -> AsyncIterator[str]:
    """A fresh database cloned from the template, dropped after the test."""
    name = f"npd_test_{os.getpid()}_{next(_counter)}"
    await _admin(pg_server, f"CREATE DATABASE {name} TEMPLATE {template_db}")
    yield with_db(pg_server, name)
    await _admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def empty_dsn(pg_server: str) -> AsyncIterator[str]:
    """A fresh, empty database (for schema variants and install tests)."""
    name = f"npd_test_{os.getpid()}_{next(_counter)}"
    await _admin(pg_server, f"CREATE DATABASE {name}")
    yield with_db(pg_server, name)
    await _admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def conn(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection, as the application would have (its writes are captured)."""
    connection = await asyncpg.connect(dsn)
    yield connection
    await connection.close()


@pytest.fixture
async def app_role(conn: asyncpg.Connection) -> AsyncIterator[str]:
    """A login role with the grants an application has: its tables and their sequences,
    nothing on npd_sync. Roles are cluster-wide and other test runs share the server: the name
    is unique, and the role is dropped after the test."""
    role = f"npd_app_{os.getpid()}_{next(_counter)}"
    await conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        await conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON contacts, organizations TO {role}"
        )
        await conn.execute(
            f"GRANT USAGE ON SEQUENCE contacts_id_seq, organizations_id_seq TO {role}"
        )
        yield role
    finally:
        # Its sessions first (of this database only), then its grants, then the role.
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE usename = $1 AND datname = current_database()",
            role,
        )
        await conn.execute(f"DROP OWNED BY {role}")
        await conn.execute(f"DROP ROLE {role}")


@pytest.fixture
async def connect_only(conn: asyncpg.Connection) -> AsyncIterator[str]:
    """A login role with nothing but CONNECT (which every role has through PUBLIC): anyone
    who can log in. Unique, and dropped after the test with its sessions of this database."""
    role = f"npd_nobody_{os.getpid()}_{next(_counter)}"
    await conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        yield role
    finally:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE usename = $1 AND datname = current_database()",
            role,
        )
        await conn.execute(f"DROP ROLE {role}")


@pytest.fixture
async def app(dsn: str, app_role: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the application's role (`app_role`)."""
    connection = await asyncpg.connect(dsn, user=app_role)
    yield connection
    await connection.close()


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """The Monday emulator over real HTTP, limits off."""
    async with Emulator(token=TOKEN, limits=AccountLimits.unlimited()) as emu:
        yield emu


MakeSettings = Callable[..., settings.Settings]


@pytest.fixture
def make_settings(dsn: str, emulator: Emulator) -> MakeSettings:
    """Settings for the test database and the emulator; keyword arguments override the env."""

    def make(**env: str) -> settings.Settings:
        base = {
            "DATABASE_URL": dsn,
            "MONDAY_API_KEY": TOKEN,
            "MONDAY_API_URL": emulator.url,
            "MONDAY_CONTACTS_BOARD_ID": CONTACTS_BOARD,
            "MONDAY_ORGANIZATIONS_BOARD_ID": ORGANIZATIONS_BOARD,
        }
        base.update(env)
        return settings.load(environ={k: v for k, v in base.items() if v is not None})

    return make
