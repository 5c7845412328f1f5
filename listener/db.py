"""Connections to the application's database.

Every connection npd-sync opens marks itself with `npd_sync.origin = listener`, which the
capture triggers skip: nothing the listener writes is ever captured as a change. Timestamps are
read in UTC because that is what Monday's date columns hold.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

SERVER_SETTINGS = {"npd_sync.origin": "listener", "TimeZone": "UTC"}

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


def _settings(application_name: str) -> dict[str, str]:
    return {**SERVER_SETTINGS, "application_name": application_name}


async def connect(
    dsn: str, *, application_name: str = "npd-sync", **kwargs: Any
) -> asyncpg.Connection:
    """One connection of our own (the LISTEN connection, the CLI commands)."""
    return await asyncpg.connect(dsn, server_settings=_settings(application_name), **kwargs)


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
        reset=_keep_session,
    )
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query (a round trip per release): pooled connections carry no
    session state of ours. No SET outside a transaction, no LISTEN; the one session lock
    (a board's, in listener.monday.governor) is released explicitly, or its connection closed."""
