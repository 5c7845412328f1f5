"""`npd-sync install` / `uninstall` against a real database."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import subprocess
import sys

import asyncpg
import pytest

from listener import db, settings, sql
from listener.capture import install
from tests.conftest import ROOT, SAMPLE_SCHEMA
from tests.helpers import ENUM_UUID_SCHEMA

DEFAULT_TABLES = settings.load(environ={}).tables


async def schema_objects(conn: asyncpg.Connection) -> list[str]:
    """Everything install creates: npd_sync's tables, functions, sequences, the triggers."""
    rows = await conn.fetch(
        """
        SELECT 'rel ' || c.relname || ' ' || c.relkind::text FROM pg_class c
         WHERE c.relnamespace = 'npd_sync'::regnamespace
        UNION ALL
        SELECT 'fn ' || p.proname FROM pg_proc p WHERE p.pronamespace = 'npd_sync'::regnamespace
        UNION ALL
        SELECT 'trg ' || t.tgrelid::regclass || ' ' || t.tgname || ' ' || pg_get_triggerdef(t.oid)
          FROM pg_trigger t WHERE t.tgname LIKE 'npd_sync%'
        ORDER BY 1
        """
    )
    # Each install has its own secret, and the triggers its digest.
    return [re.sub(r"'\\+x[0-9a-f]{64}'", "'<mark>'", r[0]) for r in rows]


async def test_install_then_again_is_a_no_op(empty_dsn: str) -> None:
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        first = await install.install(conn, DEFAULT_TABLES)
        assert [s.description for s in first.steps] == [
            "create schema npd_sync",
            *(f"apply migration {m.version:03d} {m.name}" for m in sql.migrations()),
            "create the secret that keeps npd-sync's own writes out of the capture",
            "attach capture to contacts (table id 1)",
            "attach capture to organizations (table id 2)",
        ]
        before = await schema_objects(conn)
        second = await install.install(conn, DEFAULT_TABLES)
        assert second.steps == []
        assert second.notes == ["contacts: capture up to date", "organizations: capture up to date"]
        assert await schema_objects(conn) == before
        count = await conn.fetchval("SELECT count(*) FROM npd_sync.migrations")
        assert count == len(sql.migrations())
    finally:
        await conn.close()


async def columns(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || coalesce("
        "column_default, '') FROM information_schema.columns WHERE table_schema = 'npd_sync'"
        " ORDER BY 1"
    )
    return [r[0] for r in rows]


async def test_upgrade_from_each_version_equals_a_fresh_install(
    empty_dsn: str, pg_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = sql.migrations()
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        await install.install(conn, DEFAULT_TABLES)
        fresh = (await schema_objects(conn), await columns(conn))
        for version in range(1, len(every)):
            await install.uninstall(conn)
            monkeypatch.setattr(sql, "migrations", lambda v=version: every[:v])
            await install.install(conn, DEFAULT_TABLES)  # an older release
            monkeypatch.undo()
            plan = await install.install(conn, DEFAULT_TABLES)  # this release
            assert [s.description for s in plan.steps][: len(every) - version] == [
                f"apply migration {m.version:03d} {m.name}" for m in every[version:]
            ]
            assert (await schema_objects(conn), await columns(conn)) == fresh
    finally:
        await conn.close()


# What versions before 8 stored as an entry's last error, and what it reads as now.
OLD_ERRORS = [
    (
        "invalid value code=ColumnValueException http=200 request_id=abc-1",
        {"source": "monday", "message": "invalid value", "code": "ColumnValueException",
         "http": 200, "request_id": "abc-1"},
    ),
    (
        "gave up after 3 attempts: HTTP 500 without data http=500 request_id=r-2",
        {"source": "monday", "message": "gave up after 3 attempts: HTTP 500 without data",
         "code": None, "http": 500, "request_id": "r-2"},
    ),
    (
        "invalid email code=ColumnValueException; write-back refused: check constraint",
        {"source": "monday", "message": "invalid email; write-back refused: check constraint",
         "code": "ColumnValueException", "http": None, "request_id": None},
    ),
    (
        'gave up after 3 attempts: write-back refused: violates check constraint "c"',
        {"source": "database", "http": None, "request_id": None, "code": None,
         "message": 'gave up after 3 attempts: write-back refused: violates check constraint "c"'},
    ),
    (
        "board busy with another listener code=BOARD_BUSY",
        {"source": "npd-sync", "message": "board busy with another listener",
         "code": "BOARD_BUSY", "http": None, "request_id": None},
    ),
    (
        "the key does not fit the table's key column: invalid input syntax for type integer",
        {"source": "npd-sync", "code": None, "http": None, "request_id": None,
         "message": "the key does not fit the table's key column: invalid input syntax for "
         "type integer"},
    ),
]  # fmt: skip


async def test_an_upgrade_reads_the_stored_errors_into_their_parts(
    empty_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = sql.migrations()
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        monkeypatch.setattr(sql, "migrations", lambda: every[:7])
        await install.install(conn, DEFAULT_TABLES)  # the release before structured errors
        monkeypatch.undo()
        stored = [text for text, _ in OLD_ERRORS] + [None]
        await conn.execute(
            "INSERT INTO npd_sync.queue (table_id, row_key, changed_at, next_attempt_at,"
            " last_error) SELECT 1, n::text, now(), now(), e FROM unnest($1::text[])"
            " WITH ORDINALITY AS s(e, n)",
            stored,
        )
        await conn.execute(
            "INSERT INTO npd_sync.inbox (board_id, item_id, changed_at, last_error)"
            " VALUES ('1', '2', now(), 'cannot insert a row for item 2: null value in column')"
        )
        await install.install(conn, DEFAULT_TABLES)
        found = await conn.fetch(
            "SELECT last_error::text FROM npd_sync.queue ORDER BY row_key::int"
        )
        assert [None if r[0] is None else json.loads(r[0]) for r in found] == [
            *(parts for _, parts in OLD_ERRORS),
            None,
        ]
        inbox = json.loads(await conn.fetchval("SELECT last_error::text FROM npd_sync.inbox"))
        assert inbox == {
            "source": "database", "message": "cannot insert a row for item 2: null value in column",
            "code": None, "http": None, "request_id": None,
        }  # fmt: skip
        # What is written from now on is a fault, or nothing.
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE npd_sync.queue SET last_error = '\"boom\"'")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute('UPDATE npd_sync.inbox SET last_error = \'{"message": "x"}\'')
    finally:
        await conn.close()


async def test_dry_run_changes_nothing(empty_dsn: str) -> None:
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        plan = await install.install(conn, DEFAULT_TABLES, dry_run=True)
        assert any("CREATE TRIGGER npd_sync_insert" in s.sql for s in plan.steps)
        assert await conn.fetchval("SELECT to_regnamespace('npd_sync')") is None
    finally:
        await conn.close()


async def test_missing_columns_are_named_and_nothing_is_installed(empty_dsn: str) -> None:
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        await conn.execute("ALTER TABLE contacts DROP COLUMN sync_direction, DROP COLUMN monday_id")
        with pytest.raises(install.InstallError) as caught:
            await install.install(conn, DEFAULT_TABLES)
        assert str(caught.value) == "contacts: missing required columns: sync_direction, monday_id"
        assert await conn.fetchval("SELECT to_regnamespace('npd_sync')") is None
    finally:
        await conn.close()


async def test_the_alter_table_install_prints_adds_what_is_missing(empty_dsn: str) -> None:
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        await conn.execute('ALTER TABLE contacts RENAME TO "Contacts 2"')
        await conn.execute(
            'ALTER TABLE "Contacts 2" DROP COLUMN sync_direction, DROP COLUMN monday_id,'
            " DROP COLUMN sync_error"
        )
        await conn.execute("INSERT INTO \"Contacts 2\" (first_name) VALUES ('before')")
        tables = [dataclasses.replace(DEFAULT_TABLES[0], table="Contacts 2"), DEFAULT_TABLES[1]]
        with pytest.raises(install.InstallError) as caught:
            await install.install(conn, tables)
        [fix] = caught.value.fixes
        assert fix == (
            "-- Contacts 2: the sync columns it lacks (sync_direction, monday_id, sync_error)\n"
            'ALTER TABLE "Contacts 2"\n'
            "    ADD COLUMN \"sync_direction\" text NOT NULL DEFAULT 'BIDIRECTIONAL',\n"
            '    ADD COLUMN "monday_id" text,\n'
            '    ADD COLUMN "sync_error" text;'
        )
        await conn.execute(fix)
        plan = await install.install(conn, tables)
        assert any(step.kind == "attach" for step in plan.steps)
        # The row already there is one to sync, both ways.
        row = await conn.fetchrow('SELECT sync_enabled, sync_direction FROM "Contacts 2"')
        assert tuple(row) == (True, "BIDIRECTIONAL")
    finally:
        await conn.close()


async def test_optional_sync_columns_missing_are_a_note_with_their_alter_table(
    empty_dsn: str,
) -> None:
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        await conn.execute("ALTER TABLE organizations DROP sync_error, DROP last_synced_at")
        plan = await install.install(conn, DEFAULT_TABLES)
        assert plan.notes == [
            "organizations: no sync_error, last_synced_at (optional: npd-sync writes them when"
            " present); to add them:\nALTER TABLE organizations\n"
            '    ADD COLUMN "sync_error" text,\n    ADD COLUMN "last_synced_at" timestamptz;'
        ]
    finally:
        await conn.close()


async def test_wrong_column_types_are_named(empty_dsn: str) -> None:
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        await conn.execute(
            "ALTER TABLE organizations ALTER COLUMN monday_id TYPE integer USING NULL,"
            " ALTER COLUMN sync_enabled TYPE text"
        )
        with pytest.raises(install.InstallError) as caught:
            await install.install(conn, DEFAULT_TABLES)
        assert str(caught.value).splitlines() == [
            "organizations: sync_enabled is text; expected boolean",
            "organizations: monday_id is integer; expected text or bigint",
        ]
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "change",
    [
        "ALTER TABLE contacts DROP CONSTRAINT contacts_pkey",  # no key at all
        # unique but NULL allowed: a NULL key failed the application's INSERT
        "ALTER TABLE contacts DROP CONSTRAINT contacts_pkey, ADD UNIQUE (id),"
        " ALTER COLUMN id DROP NOT NULL",
        # NOT NULL, unique only in part
        "ALTER TABLE contacts DROP CONSTRAINT contacts_pkey;"
        " CREATE UNIQUE INDEX contacts_some ON contacts (id) WHERE id > 10",
        # unique only with another column: two rows of one id became one item
        "ALTER TABLE contacts DROP CONSTRAINT contacts_pkey, ADD UNIQUE (id, email)",
    ],
)
async def test_a_key_that_is_not_a_primary_key_or_unique_and_not_null_is_refused(
    empty_dsn: str, change: str
) -> None:
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        await conn.execute(change)
        with pytest.raises(install.InstallError) as caught:
            await install.install(conn, DEFAULT_TABLES)
        assert str(caught.value) == (
            "contacts: key column id must be the primary key, or unique and NOT NULL"
        )
        assert await conn.fetchval("SELECT to_regnamespace('npd_sync')") is None
    finally:
        await conn.close()


async def test_a_key_unique_and_not_null_is_enough(empty_dsn: str) -> None:
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        await conn.execute(
            "ALTER TABLE contacts DROP CONSTRAINT contacts_pkey, ADD UNIQUE (id);"
            " ALTER TABLE contacts DROP CONSTRAINT contacts_organization_id_fkey;"
            " ALTER TABLE organizations DROP CONSTRAINT organizations_pkey;"
            " CREATE UNIQUE INDEX organizations_id ON organizations (id) INCLUDE (name)"
        )
        await install.install(conn, DEFAULT_TABLES)
    finally:
        await conn.close()


async def test_a_key_column_named_with_the_dollar_quote_tag_installs_and_captures(
    empty_dsn: str,
) -> None:
    # "$fn$" in the key's name ended the trigger functions' dollar quote.
    conn = await db.connect(empty_dsn)
    app = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        await conn.execute('ALTER TABLE contacts RENAME COLUMN id TO "id$fn$"')
        tables = (dataclasses.replace(DEFAULT_TABLES[0], key_column="id$fn$"), DEFAULT_TABLES[1])
        await install.install(conn, tables)
        await app.execute("INSERT INTO contacts (first_name, monday_id) VALUES ('Ada', '7')")
        await app.execute("TRUNCATE contacts")
        rows = await app.fetch("SELECT row_key, archive_id FROM npd_sync.changes ORDER BY 2")
        assert [tuple(r) for r in rows] == [("1", "7"), ("1", None)]
    finally:
        await app.close()
        await conn.close()


async def test_missing_table_is_skipped_unless_it_has_a_board(empty_dsn: str) -> None:
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        await conn.execute("DROP TABLE organizations CASCADE")  # and contacts' foreign key
        plan = await install.install(conn, DEFAULT_TABLES)
        assert "organizations: no such table, skipped (no board configured)" in plan.notes
        with_board = settings.load(environ={"MONDAY_ORGANIZATIONS_BOARD_ID": "42"}).tables
        with pytest.raises(install.InstallError, match="organizations: table not found"):
            await install.install(conn, with_board)
    finally:
        await conn.close()


async def test_new_column_updates_capture_and_uninstall_keeps_rows(empty_dsn: str) -> None:
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        await install.install(conn, DEFAULT_TABLES)
        await conn.execute("ALTER TABLE contacts ADD COLUMN title text")
        plan = await install.install(conn, DEFAULT_TABLES)
        assert [s.description for s in plan.steps] == ["update capture on contacts (table id 1)"]
        trigger = await conn.fetchval(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'npd_sync_update'"
            " AND tgrelid = 'contacts'::regclass"
        )
        assert "title" in trigger

        await conn.execute("INSERT INTO contacts (first_name) VALUES ('kept')")
        done = await install.uninstall(conn)
        assert done == [
            "contacts: capture removed",
            "organizations: capture removed",
            "schema npd_sync dropped",
        ]
        assert await conn.fetchval("SELECT first_name FROM contacts") == "kept"
        assert await conn.fetchval("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'npd%'") == 0
        assert await install.uninstall(conn) == []
    finally:
        await conn.close()


async def test_uninstall_names_the_webhooks_it_leaves_on_monday(empty_dsn: str) -> None:
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        await install.install(conn, DEFAULT_TABLES)
        await conn.execute(
            "INSERT INTO npd_sync.webhooks (board_id, event, webhook_id)"
            " VALUES ('1', 'change_name', '301'), ('1', 'create_item', '302')"
        )
        done = await install.uninstall(conn)
        assert done[-1].startswith("left on Monday: webhooks 301, 302, whose deliveries are now")
    finally:
        await conn.close()


async def test_concurrent_installs_do_the_work_once(empty_dsn: str) -> None:
    setup = await db.connect(empty_dsn)
    await setup.execute(SAMPLE_SCHEMA)
    await setup.close()
    conns = [await db.connect(empty_dsn) for _ in range(3)]
    try:
        plans = await asyncio.gather(*(install.install(c, DEFAULT_TABLES) for c in conns))
        # create schema, every migration, the origin secret, two tables attached: once
        work = 1 + len(sql.migrations()) + 1 + 2
        assert sorted(len(p.steps) for p in plans) == [0, 0, work]
    finally:
        for c in conns:
            await c.close()


async def test_enum_and_uuid_schema_installs(empty_dsn: str) -> None:
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(ENUM_UUID_SCHEMA)
        plan = await install.install(conn, DEFAULT_TABLES)
        assert [s.kind for s in plan.steps].count("attach") == 2
    finally:
        await conn.close()


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=60,
    )


def test_cli_without_database_url_exits_2_in_one_line() -> None:
    result = run_cli("install", env={})
    assert result.returncode == 2
    assert result.stderr == (
        "npd-sync: DATABASE_URL is not set: give the PostgreSQL URL to sync from\n"
    )


async def test_cli_install_reports_missing_columns_and_exits_1(empty_dsn: str) -> None:
    conn = await db.connect(empty_dsn)
    await conn.execute(SAMPLE_SCHEMA)
    await conn.execute("ALTER TABLE contacts DROP COLUMN sync_status")
    await conn.close()
    result = await asyncio.to_thread(run_cli, "install", env={"DATABASE_URL": empty_dsn})
    assert result.returncode == 1
    assert result.stderr == (
        "npd-sync: contacts: missing required columns: sync_status\n"
        "npd-sync: run this as the tables' owner, then install again:\n"
        "-- contacts: the sync columns it lacks (sync_status)\n"
        "ALTER TABLE contacts\n"
        "    ADD COLUMN \"sync_status\" text NOT NULL DEFAULT 'PENDING';\n"
    )


async def test_cli_install_twice(empty_dsn: str) -> None:
    conn = await db.connect(empty_dsn)
    await conn.execute(SAMPLE_SCHEMA)
    await conn.close()
    first = await asyncio.to_thread(run_cli, "install", env={"DATABASE_URL": empty_dsn})
    assert first.returncode == 0, first.stderr
    assert "done: attach capture to contacts (table id 1)" in first.stdout
    second = await asyncio.to_thread(run_cli, "install", env={"DATABASE_URL": empty_dsn})
    assert second.returncode == 0
    assert second.stdout.endswith("nothing to do: npd-sync is installed and up to date\n")


async def test_install_restores_dropped_or_disabled_triggers(empty_dsn: str) -> None:
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(SAMPLE_SCHEMA)
        await install.install(conn, DEFAULT_TABLES)
        await conn.execute("ALTER TABLE contacts DISABLE TRIGGER npd_sync_update")
        await conn.execute("DROP TRIGGER npd_sync_delete ON organizations")
        plan = await install.install(conn, DEFAULT_TABLES)
        assert [s.description for s in plan.steps] == [
            "restore capture (triggers dropped or disabled) on contacts (table id 1)",
            "restore capture (triggers dropped or disabled) on organizations (table id 2)",
        ]
        assert await install.install(conn, DEFAULT_TABLES) == install.Plan(
            notes=["contacts: capture up to date", "organizations: capture up to date"]
        )
    finally:
        await conn.close()


async def beat(conn: asyncpg.Connection, id_: str, host: str, pid: int, ago: float) -> None:
    """A listener's heartbeat row, as seen `ago` seconds ago."""
    await conn.execute(
        "INSERT INTO npd_sync.listeners (id, hostname, pid, version, seen_at)"
        " VALUES ($1, $2, $3, 'test', now() - make_interval(secs => $4))",
        id_, host, pid, ago,
    )  # fmt: skip


async def test_uninstall_refuses_while_listeners_run_unless_forced(dsn: str) -> None:
    # The schema went from under running listeners, which restarted and failed in a loop.
    conn = await db.connect(dsn)
    try:
        await beat(conn, "a", "web-1", 4242, 3)
        await beat(conn, "b", "web-2", 77, 5)
        await beat(conn, "gone", "web-3", 1, 3600)  # a listener killed an hour ago
        with pytest.raises(install.InstallError) as caught:
            await install.uninstall(conn, alive_within=30)
        assert str(caught.value) == (
            "2 listeners are running (web-1 pid 4242, web-2 pid 77): stop them first "
            "(under systemd: systemctl stop npd-sync), or uninstall --force"
        )
        assert await conn.fetchval("SELECT to_regnamespace('npd_sync') IS NOT NULL")
        assert await conn.fetchval("SELECT count(*) FROM pg_trigger WHERE tgname ~ '^npd_sync'")
        done = await install.uninstall(conn, alive_within=None)  # --force
        assert "schema npd_sync dropped" in done
    finally:
        await conn.close()


async def test_uninstall_goes_ahead_when_every_heartbeat_is_stale(dsn: str) -> None:
    conn = await db.connect(dsn)
    try:
        await beat(conn, "gone", "web-3", 1, 31)
        assert "schema npd_sync dropped" in await install.uninstall(conn, alive_within=30)
    finally:
        await conn.close()


async def test_cli_uninstall_while_a_listener_runs_exits_1_and_force_drops(dsn: str) -> None:
    conn = await db.connect(dsn)
    try:
        await beat(conn, "a", "web-1", 4242, 0)
    finally:
        await conn.close()
    refused = await asyncio.to_thread(run_cli, "uninstall", env={"DATABASE_URL": dsn})
    assert refused.returncode == 1
    assert refused.stderr == (
        "npd-sync: 1 listener is running (web-1 pid 4242): stop it first "
        "(under systemd: systemctl stop npd-sync), or uninstall --force\n"
    )
    forced = await asyncio.to_thread(run_cli, "uninstall", "--force", env={"DATABASE_URL": dsn})
    assert forced.returncode == 0, forced.stderr
    assert "schema npd_sync dropped" in forced.stdout
