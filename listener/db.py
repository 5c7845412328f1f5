"""Connections to the application's database.

Every connection npd-sync opens (`connect`, `create_pool`) is marked as npd-sync's own, and the
capture triggers skip marked sessions: nothing npd-sync writes is ever captured as a change.
The mark is the setting `npd_sync.origin` holding the secret kept in the table `npd_sync.origin`
(no grant to anyone); the triggers hold its SHA-256 and compare. Any session may set the
setting, but only one that can read the secret hides its writes. The mark is set server-side,
so the secret never travels; `RESET ALL` or `DISCARD ALL` would drop it, and npd-sync sends
neither. Timestamps are read in UTC because that is what Monday's date columns hold.
"""

from __future__ import annotations

import hashlib
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from listener import sql

SERVER_SETTINGS = {"TimeZone": "UTC"}

# A connection of our own or one borrowed from the pool.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# Errors that mean "the database is unreachable or went away": retry, don't crash. asyncpg
# raises InternalClientError when a connection broke in the middle of an operation.
ERRORS = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    TimeoutError,
)
# ... and those that also mean "not now" when connecting: starting up, out of connections.
UNAVAILABLE = (*ERRORS, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)

# SQLSTATE classes of errors about the server's state rather than a statement's rows:
# connection, transaction state (a read-only server), rollback (deadlock), resources, object
# state (a lock not available), operator intervention (shutdown, cancel), system, internal.
SERVER_STATE_CLASSES = frozenset({"08", "25", "40", "53", "55", "57", "58", "F0", "XX"})


def about_the_rows(exc: asyncpg.PostgresError) -> bool:
    """Whether a statement's error may come from the rows it touched (a value, a constraint,
    an application trigger) rather than from the server's state: worth splitting a batch for."""
    return (exc.sqlstate or "")[:2] not in SERVER_STATE_CLASSES


def _settings(application_name: str) -> dict[str, str]:
    return {**SERVER_SETTINGS, "application_name": application_name}


async def connect(
    dsn: str, *, application_name: str = "npd-sync", **kwargs: Any
) -> asyncpg.Connection:
    """One connection of our own (the LISTEN connection, the CLI commands), marked."""
    conn: asyncpg.Connection = await asyncpg.connect(
        dsn, server_settings=_settings(application_name), **kwargs
    )
    try:
        await mark(conn)
    except BaseException:
        conn.terminate()
        raise
    return conn


async def mark(conn: Conn) -> None:
    """Mark the session as npd-sync's own (see the module's docstring); a no-op where npd-sync
    is not installed yet, or for a role that may not read the secret."""
    await conn.execute(sql.query("mark_session"))


async def origin_secret(conn: Conn) -> str | None:
    """The secret npd-sync's sessions are marked with, or None when there is none yet."""
    if not await conn.fetchval("SELECT pg_catalog.to_regclass('npd_sync.origin') IS NOT NULL"):
        return None
    secret = await conn.fetchval(sql.query("origin_secret"))
    return None if secret is None else str(secret)


def origin_digest(secret: str) -> bytes:
    """What the capture triggers compare a session's mark with."""
    return hashlib.sha256(secret.encode()).digest()


async def create_pool(
    dsn: str, *, application_name: str = "npd-sync listen", size: int = 6
) -> asyncpg.Pool:
    """The pool for queue work and write-backs."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        server_settings=_settings(application_name),
        # Statements are per-table and few; a bounded cache is plenty.
        statement_cache_size=256,
        init=mark,
        reset=_keep_session,
    )
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query (a round trip per release): pooled connections carry no
    session state of ours. No SET outside a transaction, no LISTEN; the one session lock
    (a board's, in listener.monday.governor) is released explicitly, or its connection closed."""
