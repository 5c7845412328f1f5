"""`npd-sync listen` as a real subprocess against the emulator over real HTTP."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg

from emulator import Emulator
from tests.conftest import CONTACTS_BOARD, ORGANIZATIONS_BOARD, TOKEN
from tests.helpers import eventually, start_listener


async def test_listen_subprocess_syncs_and_stops_cleanly(
    dsn: str, conn: asyncpg.Connection, emulator: Emulator, tmp_path: Path
) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('before start')")
    config = tmp_path / "npd-sync.toml"
    config.write_text("[tuning]\npoll_interval = 600\n")
    process = await start_listener(dsn, emulator, tmp_path, config=config)
    try:
        await eventually(
            lambda: conn.fetchval("SELECT count(*) FROM contacts WHERE sync_status = 'SYNCED'"),
            lambda n: n == 1,
            timeout=20,
        )
        # Idle now, with a 600 s poll interval: only the NOTIFY path can be this quick.
        await conn.execute(
            "INSERT INTO contacts (first_name, last_name, email) VALUES ('Ada', 'Lovelace',"
            " 'ada@example.com')"
        )
        await conn.execute("INSERT INTO organizations (name) VALUES ('Acme')")
        await eventually(
            lambda: conn.fetchval(
                "SELECT (SELECT count(*) FROM contacts WHERE sync_status = 'SYNCED')"
                " + (SELECT count(*) FROM organizations WHERE sync_status = 'SYNCED')"
            ),
            lambda n: n == 3,
            timeout=10,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    assert sorted(i.name for i in emulator.items(CONTACTS_BOARD)) == [
        "Ada Lovelace",
        "before start",
    ]
    assert [i.name for i in emulator.items(ORGANIZATIONS_BOARD)] == ["Acme"]
    log = stderr.decode()
    assert '"event": "listener.started"' in log
    assert '"event": "listener.stopped"' in log
    assert TOKEN not in log + stdout.decode()
    # Leaving cleanly: nothing leased, no heartbeat left behind.
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.listeners") == 0


async def test_listen_refuses_an_uninstalled_database(
    empty_dsn: str, emulator: Emulator, tmp_path: Path
) -> None:
    process = await start_listener(empty_dsn, emulator, tmp_path)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1
    assert stderr.decode() == (
        "npd-sync: npd-sync is not installed in this database: run `npd-sync install`\n"
    )


async def test_listen_with_a_bad_setting_exits_2(
    dsn: str, emulator: Emulator, tmp_path: Path
) -> None:
    process = await start_listener(dsn, emulator, tmp_path, MONDAY_CONTACTS_BOARD_ID="board-one")
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert stderr.decode() == (
        "npd-sync: MONDAY_CONTACTS_BOARD_ID: must be a numeric Monday board id\n"
    )
