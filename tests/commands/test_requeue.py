"""`npd-sync retry` against a real database; the worker and the emulator over real HTTP make
rows fail and, after the retry, sync them (or fail them again)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg
import pytest

from emulator import Emulator
from listener import db, settings
from listener.capture import install
from listener.commands import requeue
from tests.conftest import CONTACTS_BOARD, ORGANIZATIONS_BOARD, ROOT, TOKEN, MakeSettings
from tests.helpers import ENUM_UUID_SCHEMA, drain, eventually


async def statuses(conn: asyncpg.Connection, table: str = "contacts") -> dict[str, str]:
    rows = await conn.fetch(f"SELECT first_name AS n, sync_status::text AS s FROM {table}")
    return {r["n"]: r["s"] for r in rows}


async def entries(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT table_id, row_key, state, attempts, next_attempt_at <= now() AS due,"
        " lease_until, leased_by, last_error FROM npd_sync.queue ORDER BY table_id, row_key"
    )


async def run_retry(
    config: settings.Settings, table: str | None = None, ids: tuple[str, ...] = ()
) -> tuple[bool, list[str]]:
    """Run the command; its output without the closing note about listeners."""
    out: list[str] = []
    ok = await requeue.run(config, table=table, ids=ids, echo=out.append)
    return ok, [line for line in out if line != NO_LISTENER]


NO_LISTENER = "no listener is running: they are synced when `npd-sync listen` runs"


async def test_failed_rows_are_synced_after_the_cause_is_fixed_and_a_retry(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    # The board lacks the email column: every contact with an email fails permanently.
    emulator.remove_column(CONTACTS_BOARD, "email")
    await conn.execute(
        "INSERT INTO contacts (first_name, email) VALUES ('a', 'a@example.com'),"
        " ('b', 'b@example.com'), ('c', NULL)"
    )
    await drain(config)
    assert await statuses(conn) == {"a": "FAILED", "b": "FAILED", "c": "SYNCED"}
    assert [e["state"] for e in await entries(conn)] == ["failed", "failed"]

    emulator.add_column(CONTACTS_BOARD, "email", "email")
    await drain(config)  # fixing the board alone changes nothing: failed rows wait
    assert await statuses(conn) == {"a": "FAILED", "b": "FAILED", "c": "SYNCED"}

    ok, out = await run_retry(config)
    assert ok
    assert out == ["contacts: 2 rows back in the queue"]
    assert await statuses(conn) == {"a": "PENDING", "b": "PENDING", "c": "SYNCED"}
    for e in await entries(conn):
        assert (e["state"], e["attempts"], e["due"], e["lease_until"], e["leased_by"]) == (
            "pending", 0, True, None, None,
        )  # fmt: skip
        assert "InvalidColumnIdException" in e["last_error"]  # kept for the record
    # The retry's own writes are not captured as changes.
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.changes") == 0

    await drain(config)
    assert await statuses(conn) == {"a": "SYNCED", "b": "SYNCED", "c": "SYNCED"}
    assert await entries(conn) == []
    items = emulator.items(CONTACTS_BOARD)
    assert sorted(i.name for i in items) == ["a", "b", "c"]  # one item each, no duplicates
    ok, out = await run_retry(config)
    assert (ok, out) == (True, ["no failed rows"])


async def test_a_retry_is_a_new_push_not_a_replay_of_the_failed_one(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    # The same create again with the same Idempotency-Key would get Monday's cached answer:
    # the old failure, for 30 minutes.
    config = make_settings()
    emulator.remove_column(CONTACTS_BOARD, "email")
    await conn.execute("INSERT INTO contacts (first_name, email) VALUES ('a', 'a@example.com')")
    await drain(config)
    assert await statuses(conn) == {"a": "FAILED"}
    emulator.add_column(CONTACTS_BOARD, "email", "email")
    _, out = await run_retry(config)
    assert out == ["contacts: 1 row back in the queue"]
    await drain(config)
    assert [r.replayed for r in emulator.requests if r.mutations] == [False, False]
    assert await statuses(conn) == {"a": "SYNCED"}
    assert [i.name for i in emulator.items(CONTACTS_BOARD)] == ["a"]


async def test_a_retried_row_that_still_cannot_sync_fails_again(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await conn.execute("INSERT INTO contacts (first_name, email) VALUES ('bad', 'not an email')")
    await drain(config)
    assert await statuses(conn) == {"bad": "FAILED"}
    _, out = await run_retry(config)
    assert out == ["contacts: 1 row back in the queue"]
    assert await statuses(conn) == {"bad": "PENDING"}
    worker = await drain(config)
    assert worker.stats.failed == 1
    assert await statuses(conn) == {"bad": "FAILED"}
    (entry,) = await entries(conn)
    assert (entry["state"], entry["attempts"]) == ("failed", 1)
    assert emulator.items(CONTACTS_BOARD) == []


async def fail_everything(conn: asyncpg.Connection, config: settings.Settings) -> None:
    """Two failed contacts (ids 1, 2) and one failed organization (id 1)."""
    await conn.execute(
        "INSERT INTO contacts (first_name, email) VALUES ('x', 'bad x'), ('y', 'bad y')"
    )
    await conn.execute("INSERT INTO organizations (name) VALUES ('o')")
    await drain(config)
    # Organizations fail on their own: make the entry failed as the worker would.
    await conn.execute(
        "INSERT INTO npd_sync.queue (table_id, row_key, changed_at, next_attempt_at, state,"
        " attempts, last_error) VALUES (2, '1', now(), now(), 'failed', 3,"
        ' \'{"source": "monday", "message": "boom"}\')'
        " ON CONFLICT DO NOTHING"
    )
    async with db_conn(config) as c:
        await c.execute("UPDATE organizations SET sync_status = 'FAILED'")
    assert [(e["table_id"], e["row_key"], e["state"]) for e in await entries(conn)] == [
        (1, "1", "failed"),
        (1, "2", "failed"),
        (2, "1", "failed"),
    ]


class db_conn:
    """A connection marked as the listener's (its writes are not captured)."""

    def __init__(self, config: settings.Settings) -> None:
        self.dsn = config.require_database()

    async def __aenter__(self) -> asyncpg.Connection:
        self.conn = await db.connect(self.dsn)
        return self.conn

    async def __aexit__(self, *_: object) -> None:
        await self.conn.close()


async def test_table_filter(conn: asyncpg.Connection, make_settings: MakeSettings) -> None:
    config = make_settings()
    await fail_everything(conn, config)
    ok, out = await run_retry(config, table="organizations")
    assert (ok, out) == (True, ["organizations: 1 row back in the queue"])
    assert [(e["table_id"], e["row_key"], e["state"]) for e in await entries(conn)] == [
        (1, "1", "failed"),
        (1, "2", "failed"),
        (2, "1", "pending"),
    ]
    assert await statuses(conn) == {"x": "FAILED", "y": "FAILED"}
    names = await conn.fetch("SELECT sync_status FROM organizations")
    assert [r[0] for r in names] == ["PENDING"]


async def test_id_filter(conn: asyncpg.Connection, make_settings: MakeSettings) -> None:
    config = make_settings()
    await fail_everything(conn, config)
    ok, out = await run_retry(config, table="contacts", ids=("02", "7"))
    assert ok
    assert out == [
        "contacts: 1 row back in the queue",
        "contacts: not failed, left as they are: 7",
    ]
    assert [(e["row_key"], e["state"]) for e in await entries(conn)] == [
        ("1", "failed"),
        ("2", "pending"),  # '02' is key 2
        ("1", "failed"),
    ]
    assert await statuses(conn) == {"x": "FAILED", "y": "PENDING"}


async def test_id_without_table_needs_one_table(
    conn: asyncpg.Connection, make_settings: MakeSettings, tmp_path: Path
) -> None:
    with pytest.raises(requeue.UsageError, match=r"--id needs --table: several tables .*contacts"):
        await run_retry(make_settings(), ids=("1",))
    config_file = tmp_path / "one.toml"
    config_file.write_text(
        '[tables.contacts]\nname = "{first_name}"\n'
        '[tables.contacts.columns.email]\ntype = "email"\nsource = "email"\n'
    )
    config = make_settings(NPD_SYNC_CONFIG=str(config_file))
    assert [t.table for t in config.tables] == ["contacts"]
    await conn.execute("INSERT INTO contacts (first_name, email) VALUES ('x', 'bad')")
    await drain(config)
    assert await statuses(conn) == {"x": "FAILED"}
    ok, out = await run_retry(config, ids=("1",))
    assert (ok, out) == (True, ["contacts: 1 row back in the queue"])


async def test_discard_stops_retrying_until_new_data(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await fail_everything(conn, config)
    out: list[str] = []
    ok = await requeue.run(config, table="contacts", ids=("02", "7"), echo=out.append, discard=True)
    assert ok
    assert out == [
        "contacts: stopped retrying 1 row (2): out of the queue until new data",
        "contacts: not failed, left as they are: 7",
    ]
    assert [(e["table_id"], e["row_key"]) for e in await entries(conn)] == [(1, "1"), (2, "1")]
    # The row is left as it is: its data never reached Monday.
    assert await statuses(conn) == {"x": "FAILED", "y": "FAILED"}
    # Nothing retries it: a listener that runs leaves it alone.
    await drain(config)
    assert [e["row_key"] for e in await entries(conn) if e["table_id"] == 1] == ["1"]
    # New data queues it again, as any row's.
    await conn.execute("UPDATE contacts SET email = 'y@example.com' WHERE id = 2")
    await drain(config)
    assert await statuses(conn) == {"x": "FAILED", "y": "SYNCED"}
    out.clear()
    assert await requeue.run(config, table=None, ids=(), echo=out.append, discard=True)
    assert out == [
        "contacts: stopped retrying 1 row (1): out of the queue until new data",
        "organizations: stopped retrying 1 row (1): out of the queue until new data",
    ]
    assert await entries(conn) == []


async def test_unknown_table_and_bad_ids_are_usage_errors(make_settings: MakeSettings) -> None:
    config = make_settings()
    with pytest.raises(settings.ConfigError, match="unknown table 'nope'"):
        await run_retry(config, table="nope")
    with pytest.raises(requeue.UsageError, match=r"--id 'abc' is not a key of contacts \(id is"):
        await run_retry(config, table="contacts", ids=("abc",))


async def test_failed_rows_the_queue_lost_are_queued(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await conn.execute(
        "INSERT INTO contacts (first_name, sync_enabled) VALUES ('lost', true), ('off', false)"
    )
    await drain(config)
    # As after an uninstall and install: rows marked FAILED, nothing in the queue.
    await conn.execute("DELETE FROM npd_sync.queue")
    async with db_conn(config) as c:
        await c.execute("UPDATE contacts SET sync_status = 'FAILED', monday_id = NULL")
    emulator.reset()
    _, out = await run_retry(config)
    # 'off' is not a row to push: left alone.
    assert out == ["contacts: 1 row back in the queue"]
    assert await statuses(conn) == {"lost": "PENDING", "off": "FAILED"}
    await drain(config)
    assert await statuses(conn) == {"lost": "SYNCED", "off": "FAILED"}
    assert [i.name for i in emulator.items(CONTACTS_BOARD)] == ["lost"]


async def test_a_row_the_application_holds_locked_is_not_waited_for(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    config = make_settings()
    await conn.execute("INSERT INTO contacts (first_name, email) VALUES ('x', 'bad')")
    await drain(config)
    async with conn.transaction():
        await conn.execute("SELECT 1 FROM contacts FOR UPDATE")
        _, out = await asyncio.wait_for(run_retry(config), 30)
    assert out == ["contacts: 1 row back in the queue"]
    (entry,) = await entries(conn)
    assert entry["state"] == "pending"
    # The status is written by the listener when it pushes the row.
    assert await statuses(conn) == {"x": "FAILED"}


async def test_enum_status_and_uuid_keys(empty_dsn: str, emulator: Emulator) -> None:
    admin = await db.connect(empty_dsn)
    try:
        await admin.execute(ENUM_UUID_SCHEMA)
        await install.install(admin, settings.load(environ={}).tables)
    finally:
        await admin.close()
    config = settings.load(
        environ={
            "DATABASE_URL": empty_dsn,
            "MONDAY_API_KEY": "test-token",
            "MONDAY_API_URL": emulator.url,
            "MONDAY_CONTACTS_BOARD_ID": CONTACTS_BOARD,
            "MONDAY_ORGANIZATIONS_BOARD_ID": ORGANIZATIONS_BOARD,
        }
    )
    app = await asyncpg.connect(empty_dsn)
    try:
        key = await app.fetchval(
            "INSERT INTO contacts (first_name, email, sync_enabled, sync_direction)"
            " VALUES ('x', 'bad', true, 'BIDIRECTIONAL') RETURNING id::text"
        )
        await drain(config)
        assert await app.fetchval("SELECT sync_status FROM contacts") == "FAILED"
        _, out = await run_retry(config, table="contacts", ids=(key.upper(),))
        assert out == ["contacts: 1 row back in the queue"]
        assert await app.fetchval("SELECT sync_status FROM contacts") == "PENDING"
        assert await app.fetchval("SELECT pg_typeof(sync_status)::text FROM contacts") == "status"
    finally:
        await app.close()


async def test_not_installed(empty_dsn: str) -> None:
    config = settings.load(environ={"DATABASE_URL": empty_dsn})
    with pytest.raises(install.NotInstalled):
        await run_retry(config)


async def test_says_when_no_listener_will_pick_the_rows_up(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    config = make_settings()
    await conn.execute("INSERT INTO contacts (first_name, email) VALUES ('x', 'bad')")
    await drain(config)
    out: list[str] = []
    assert await requeue.run(config, table=None, ids=(), echo=out.append)
    assert out == ["contacts: 1 row back in the queue", NO_LISTENER]

    await conn.execute("UPDATE npd_sync.queue SET state = 'failed'")
    await conn.execute(
        "INSERT INTO npd_sync.listeners (id, hostname, pid, version) VALUES ('l', 'h', 1, 'v')"
    )
    out.clear()
    assert await requeue.run(config, table=None, ids=(), echo=out.append)
    assert out == ["contacts: 1 row back in the queue"]

    await conn.execute("UPDATE npd_sync.queue SET state = 'failed'")
    out.clear()
    assert await requeue.run(make_settings(MONDAY_API_KEY=""), table=None, ids=(), echo=out.append)
    assert out == [
        "contacts: 1 row back in the queue",
        "MONDAY_API_KEY is not set: they stay pending until it is",
    ]


async def test_a_running_listener_syncs_retried_rows_at_once(
    conn: asyncpg.Connection, dsn: str, emulator: Emulator, tmp_path: Path
) -> None:
    # The listener polls every 600 s: only the retry's wake-up can make this quick.
    config_file = tmp_path / "npd-sync.toml"
    config_file.write_text("[tuning]\npoll_interval = 600\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": dsn,
        "MONDAY_API_KEY": TOKEN,
        "MONDAY_API_URL": emulator.url,
        "MONDAY_CONTACTS_BOARD_ID": CONTACTS_BOARD,
        "MONDAY_ORGANIZATIONS_BOARD_ID": ORGANIZATIONS_BOARD,
        "NPD_SYNC_CONFIG": str(config_file),
    }
    config = settings.load(environ={k: v for k, v in env.items() if k != "PATH"})
    emulator.remove_column(CONTACTS_BOARD, "email")
    await conn.execute("INSERT INTO contacts (first_name, email) VALUES ('a', 'a@example.com')")
    await drain(config)
    assert await statuses(conn) == {"a": "FAILED"}
    emulator.add_column(CONTACTS_BOARD, "email", "email")
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "cli.py"), "--log-format", "json", "listen",
        env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        # Started and idle: its heartbeat is in, and the failed row is still failed.
        await eventually(
            lambda: conn.fetchval("SELECT count(*) FROM npd_sync.listeners"), timeout=20
        )
        assert await statuses(conn) == {"a": "FAILED"}
        ok, out = await run_retry(config)
        assert (ok, out) == (True, ["contacts: 1 row back in the queue"])
        await eventually(lambda: statuses(conn), lambda s: s == {"a": "SYNCED"}, timeout=10)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
