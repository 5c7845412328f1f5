"""The engine's turn against a real database and the emulator over real HTTP: items created on
the board get their share of a busy queue, an item of another board never becomes a row, and a
row counts once however many times it is looked at."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg

from emulator import Emulator
from listener import db, rows
from listener.commands import pull
from listener.engine import worker
from listener.inbound import inbox
from tests.conftest import CONTACTS_BOARD, ORGANIZATIONS_BOARD, MakeSettings
from tests.helpers import drain, write_config
from tests.inbound.helpers import PUBLIC_URL, contact, deliver, inbound, synced_ada


async def created_on_board(config_dsn: str, board: str, item_id: str) -> None:
    """A create_item delivery for `board` naming `item_id`, stored as the receiver stores it."""
    conn = await db.connect(config_dsn)
    try:
        event = inbox.Event(uuid.uuid4().hex, board, item_id, "create_pulse")
        await inbox.store(conn, [event], [CONTACTS_BOARD, ORGANIZATIONS_BOARD])
    finally:
        await conn.close()


async def test_items_created_on_the_board_get_a_share_of_a_busy_queue(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    # A backlog of 200 rows, 10 a batch: the queue stays busy for 20 turns.
    tuning = write_config(tmp_path / "tuning.toml", batch_size=10)
    config = make_settings(NPD_SYNC_PUBLIC_URL=PUBLIC_URL, NPD_SYNC_CONFIG=str(tuning))
    await conn.execute(
        "INSERT INTO contacts (first_name) SELECT 'row ' || i FROM generate_series(1, 200) i"
    )
    made = emulator.add_item(CONTACTS_BOARD, "Made on the board", {"text": "Boss"})
    await created_on_board(config.require_database(), CONTACTS_BOARD, made.id)
    pool = await db.create_pool(config.require_database())
    try:
        async with pool.acquire() as c:
            tables = await rows.load_tables(c, config)
        async with worker.open_worker(config, pool, tables, "busy") as w:
            for _ in range(2):
                assert await w.run_once() > 0
    finally:
        await pool.close()
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM contacts WHERE first_name = 'Made' AND monday_id = $1", made.id
        )
        == 1
    )
    # ... while the backlog is still there: it did not wait for the queue to empty.
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.queue") >= 150


async def test_a_create_event_naming_another_board_s_item_makes_no_row(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path)
    foreign = emulator.add_item(ORGANIZATIONS_BOARD, "Acme", {})
    await created_on_board(config.require_database(), CONTACTS_BOARD, foreign.id)
    await drain(config)
    assert await conn.fetchval("SELECT count(*) FROM contacts") == 0
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.inbox") == 0  # looked at, done


async def test_a_push_and_its_echo_count_as_one_synced_row(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")  # created: one sync
    await deliver(config, item, "create_pulse")  # Monday tells us of our own create
    echo = await drain(config)
    assert (echo.stats.synced, echo.stats.unchanged) == (0, 1)
    assert echo.tally.take_history().synced == 0
    sample = echo.metrics.registry.get_sample_value
    labels = {"table": "contacts", "outcome": "synced"}
    assert sample("npd_sync_changes_total", labels) is None


async def test_a_pull_that_changes_nothing_leaves_the_row_alone(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path)
    await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    lines: list[str] = []
    assert await pull.run(config, table="contacts", full=False, dry_run=False, echo=lines.append)
    # Our own push shows in the board's activity log: the next pull looks at the item, and
    # finds it holds what the row holds.
    await conn.execute("UPDATE contacts SET role_title = 'Duchess'")
    await drain(config)
    before = await contact(conn)
    assert await pull.run(config, table="contacts", full=False, dry_run=False, echo=lines.append)
    assert "contacts: read the activity log in 1 request; 1 item to look at" in lines
    assert lines[-1].startswith("done: 0 rows updated")
    after = await contact(conn)
    assert after["last_synced_at"] == before["last_synced_at"]
    assert dict(after) == dict(before)
