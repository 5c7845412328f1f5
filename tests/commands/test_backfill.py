"""`npd-sync backfill` against a real database and the emulator."""

from __future__ import annotations

import signal
from pathlib import Path

import asyncpg
import pytest

from emulator import Emulator
from listener.commands import backfill as backfiller
from tests.conftest import CONTACTS_BOARD, MakeSettings
from tests.helpers import (
    assert_mirrored,
    cli_env,
    eventually,
    running,
    settled,
    start_cli,
    write_config,
)

PRE_EXISTING = """
-- Rows written before npd-sync: as a session marked as npd-sync's own, nothing is recorded.
SELECT set_config('npd_sync.origin', secret, false) FROM npd_sync.origin;
INSERT INTO contacts (first_name, last_name, email, sync_enabled, sync_direction)
SELECT 'First' || g, 'Last' || g, 'p' || g || '@example.com', g % 10 <> 0,
       CASE WHEN g % 7 = 0 THEN 'MONDAY_TO_NPD' ELSE 'BIDIRECTIONAL' END
  FROM generate_series(1, {n}) g;
INSERT INTO organizations (name, city) SELECT 'Org ' || g, 'City' FROM generate_series(1, 5) g;
RESET npd_sync.origin;
"""


async def backfill(config, **options: object) -> tuple[bool, list[str]]:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    ok = await backfiller.run(
        config,
        table=options.get("table"),  # type: ignore[arg-type]
        everything=bool(options.get("everything")),
        dry_run=bool(options.get("dry_run")),
        echo=lines.append,
    )
    return ok, lines


async def test_backfill_pushes_rows_that_existed_before(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute(PRE_EXISTING.format(n=120))
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.changes") == 0
    config = make_settings()
    ok, lines = await backfill(config)
    assert ok
    assert lines[0] == "contacts: 92 queued, organizations: 5 queued"
    assert lines[-1] == "done: 97 synced, 0 failed, 0 left pending"
    await assert_mirrored(conn, emulator, config)
    # Nothing left to do: a second run queues nothing and sends nothing.
    sent = len(emulator.requests)
    ok, lines = await backfill(config)
    assert lines[0] == "contacts: 0 queued, organizations: 0 queued"
    assert len(emulator.requests) == sent


async def test_backfill_adopts_items_from_an_earlier_import(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute(PRE_EXISTING.format(n=6))
    imported = {key: emulator.add_item(CONTACTS_BOARD, "old", {"npd_id": key}) for key in "123"}
    ok, _ = await backfill(make_settings(), table="contacts")
    assert ok
    items = emulator.items(CONTACTS_BOARD)
    assert len(items) == 6  # one item per row: no twins for the three imported ones
    for key, item in imported.items():
        row = await conn.fetchrow(
            "SELECT monday_id, first_name FROM contacts WHERE id = $1", int(key)
        )
        assert row["monday_id"] == item.id
        assert emulator.item(item.id).name == f"First{key} Last{key}"  # type: ignore[union-attr]
    assert emulator.items("1000000002") == []  # --table contacts


async def test_all_repushes_synced_rows(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute(PRE_EXISTING.format(n=3))
    config = make_settings()
    await backfill(config)
    (item, *_) = emulator.items(CONTACTS_BOARD)
    emulator.set_item_state(item.id, "active")
    await backfill(config)  # SYNCED rows are left alone
    touched = len(emulator.requests)
    ok, lines = await backfill(config, everything=True)
    assert ok
    assert lines[0] == "contacts: 3 queued, organizations: 5 queued"
    assert len(emulator.requests) > touched
    await assert_mirrored(conn, emulator, config)


async def test_dry_run_shows_what_would_be_pushed(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute(PRE_EXISTING.format(n=4))
    ok, lines = await backfill(make_settings(), dry_run=True)
    assert ok
    assert lines[0] == "contacts: 4 rows to push"
    assert lines[1].startswith('  1: create (or adopt) {"name": "First1 Last1", "email": {')
    assert "organizations: 5 rows to push" in lines
    assert emulator.requests == []
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.queue") == 0


async def test_unknown_table_is_a_usage_error(make_settings: MakeSettings) -> None:
    from listener.settings import ConfigError

    with pytest.raises(ConfigError, match="unknown table 'people'"):
        await backfill(make_settings(), table="people")


async def test_interrupted_backfill_rerun_creates_no_duplicates(
    dsn: str,
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    await conn.execute(PRE_EXISTING.format(n=300))
    env = cli_env(dsn, emulator, config=write_config(tmp_path / "t.toml", batch_size=10))
    emulator.set_faults(latency=0.05)
    first = await start_cli("backfill", env=env, cwd=tmp_path)
    await eventually(lambda: _count(emulator), lambda n: n >= 30, timeout=30)
    first.send_signal(signal.SIGINT)  # Ctrl-C, in the middle of it
    await first.communicate()
    assert first.returncode != 0
    done_before = await conn.fetchval("SELECT count(*) FROM contacts WHERE sync_status = 'SYNCED'")
    assert 0 < done_before < 240

    emulator.set_faults(latency=0.0)
    second = await start_cli("backfill", env=env, cwd=tmp_path)
    out, err = await second.communicate()
    assert second.returncode == 0, err.decode()
    assert out.decode().splitlines()[-1].startswith("done:")
    await assert_mirrored(conn, emulator, make_settings())


async def _count(emulator: Emulator) -> int:
    return len(emulator.items())


async def test_backfill_beside_a_running_listener(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    await conn.execute(PRE_EXISTING.format(n=200))
    config = make_settings(
        NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", batch_size=10, poll_interval=0.2))
    )
    async with running(config) as listener:
        ok, _ = await backfill(config)
        await conn.execute("UPDATE contacts SET notes = 'while backfilling' WHERE id % 3 = 0")
        await settled(conn)
    assert ok
    assert listener.worker is not None
    await assert_mirrored(conn, emulator, config)
