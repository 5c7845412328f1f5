"""Install's lock: any role may take an advisory lock, so install waits for it only a while,
then says who holds it (issue 19, part 2)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from listener import db
from listener.capture import install
from tests.capture.test_install import DEFAULT_TABLES


async def test_a_role_with_only_connect_cannot_make_install_hang(
    dsn: str, connect_only: str
) -> None:
    outsider = await asyncpg.connect(
        dsn, user=connect_only, server_settings={"application_name": "squatter"}
    )
    conn = await db.connect(dsn, application_name="npd-sync install")
    try:
        await outsider.execute("SELECT pg_advisory_lock($1)", install.INSTALL_LOCK)
        pid = await outsider.fetchval("SELECT pg_backend_pid()")
        with pytest.raises(install.InstallError) as held:
            await install.install(conn, DEFAULT_TABLES, wait=0.5)
        assert f"pid {pid}, user {connect_only}, application 'squatter'" in str(held.value)
        with pytest.raises(install.InstallError, match=f"pid {pid}"):
            await install.uninstall(conn, wait=0.5)
        # Once it lets go, install goes on as ever.
        await outsider.execute("SELECT pg_advisory_unlock_all()")
        await install.install(conn, DEFAULT_TABLES, wait=0.5)
    finally:
        await outsider.close()
        await conn.close()


async def test_install_waits_for_an_install_that_ends(dsn: str) -> None:
    first = await db.connect(dsn)
    second = await db.connect(dsn)
    try:
        tx = first.transaction()
        await tx.start()
        await install.lock(first)
        waiting = asyncio.create_task(install.install(second, DEFAULT_TABLES, wait=30))
        await tx.rollback()  # the other install ends
        await asyncio.wait_for(waiting, 30)
    finally:
        await first.close()
        await second.close()
