"""The triggers: what an application write records in npd_sync.changes, and when it NOTIFYs."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from listener import db, settings, sql
from listener.capture import install, notify
from tests.helpers import ENUM_UUID_SCHEMA, eventually


async def changes(conn: asyncpg.Connection) -> list[tuple[int, str, str | None]]:
    rows = await conn.fetch("SELECT table_id, row_key, archive_id FROM npd_sync.changes")
    return sorted(((r["table_id"], r["row_key"], r["archive_id"]) for r in rows), key=str)


async def test_insert_update_delete_are_recorded(conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('Ada'), ('Alan')")
    await conn.execute("INSERT INTO organizations (name) VALUES ('Acme')")
    assert await changes(conn) == [(1, "1", None), (1, "2", None), (2, "1", None)]
    await conn.execute("DELETE FROM npd_sync.changes")

    await conn.execute("UPDATE contacts SET last_name = 'Lovelace' WHERE id = 1")
    await conn.execute("UPDATE contacts SET monday_id = '777' WHERE id = 2")
    await conn.execute("DELETE FROM contacts WHERE id = 2")
    assert await changes(conn) == [(1, "1", None), (1, "2", "777")]


async def test_bookkeeping_only_updates_record_nothing(conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('Ada')")
    await conn.execute("DELETE FROM npd_sync.changes")
    await conn.execute(
        "UPDATE contacts SET monday_id = '1', sync_status = 'SYNCED', sync_error = NULL,"
        " last_synced_at = now()"
    )
    await conn.execute("UPDATE contacts SET sync_status = 'FAILED', sync_error = 'x'")
    assert await changes(conn) == []
    # The same write with one data column in it is a change.
    await conn.execute("UPDATE contacts SET sync_status = 'PENDING', notes = 'n'")
    assert await changes(conn) == [(1, "1", None)]


async def test_writes_of_the_listener_itself_record_nothing(dsn: str) -> None:
    listener_conn = await db.connect(dsn)
    try:
        await listener_conn.execute("INSERT INTO contacts (first_name) VALUES ('Ada')")
        await listener_conn.execute("UPDATE contacts SET notes = 'n'")
        await listener_conn.execute("DELETE FROM contacts")
        assert await changes(listener_conn) == []
    finally:
        await listener_conn.close()


async def test_key_change_is_a_delete_and_an_insert(conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO contacts (id, first_name, monday_id) VALUES (5, 'Ada', '55')")
    await conn.execute("DELETE FROM npd_sync.changes")
    await conn.execute("UPDATE contacts SET id = 6 WHERE id = 5")
    assert await changes(conn) == [(1, "5", "55"), (1, "6", None)]
    await conn.execute("DELETE FROM npd_sync.changes")
    await conn.execute("UPDATE contacts SET id = id")  # no change of key
    assert await changes(conn) == []


async def test_truncate_records_rows_that_have_items(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "INSERT INTO contacts (first_name, monday_id) VALUES ('a', '11'), ('b', NULL), ('c', '13')"
    )
    await conn.execute("DELETE FROM npd_sync.changes")
    await conn.execute("ALTER TABLE contacts RENAME TO people")  # survives a rename
    await conn.execute("TRUNCATE people")
    assert await changes(conn) == [(1, "1", "11"), (1, "3", "13")]


async def test_a_role_that_may_truncate_but_not_read_can_truncate(
    dsn: str, conn: asyncpg.Connection, app_role: str
) -> None:
    await conn.execute(
        "INSERT INTO contacts (first_name, monday_id) VALUES ('a', '11'), ('b', NULL)"
    )
    await conn.execute("DELETE FROM npd_sync.changes")
    await conn.execute(f"REVOKE SELECT ON contacts FROM {app_role}")
    app = await asyncpg.connect(dsn, user=app_role)
    try:
        # The capture read the table as the application's role, and failed its TRUNCATE.
        await app.execute("TRUNCATE contacts")
    finally:
        await app.close()
    assert await changes(conn) == [(1, "1", "11")]


async def test_a_role_without_rights_on_npd_sync_cannot_write_the_change_log(
    conn: asyncpg.Connection, app: asyncpg.Connection
) -> None:
    # The change log took any record from anyone: a forged archive_id archived any item.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app.execute(
            "INSERT INTO npd_sync.changes (table_id, row_key, archive_id)"
            " VALUES (1, '424242', '2000000002')"
        )
    for statement in (
        "SELECT last_value FROM npd_sync.waiting",
        "SELECT * FROM npd_sync.queue",
        "SELECT * FROM npd_sync.origin",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.fetch(statement)
    # Its writes to the synced tables are recorded as ever.
    await app.execute("INSERT INTO contacts (first_name) VALUES ('from the app role')")
    assert await changes(conn) == [(1, "1", None)]
    # Nothing of npd-sync's grants anything to PUBLIC (grantee 0).
    public = await conn.fetch(
        """
        SELECT 'schema' FROM pg_namespace n, aclexplode(n.nspacl) a
         WHERE n.nspname = 'npd_sync' AND a.grantee = 0
        UNION ALL
        SELECT c.relname::text FROM pg_class c, aclexplode(c.relacl) a
         WHERE c.relnamespace = 'npd_sync'::regnamespace AND a.grantee = 0
        UNION ALL
        SELECT p.proname::text FROM pg_proc p,
               aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
         WHERE p.pronamespace = 'npd_sync'::regnamespace AND a.grantee = 0
        """
    )
    assert public == []


async def test_a_callers_search_path_cannot_run_its_own_code_in_the_capture(
    dsn: str, conn: asyncpg.Connection, app_role: str
) -> None:
    # The capture runs as the role that installed it: an operator or type of the caller's,
    # found through its search_path, would run with those rights.
    await conn.execute(f"CREATE SCHEMA trap AUTHORIZATION {app_role}")
    app = await asyncpg.connect(dsn, user=app_role)
    waiter = await db.connect(dsn)
    try:
        await app.execute(
            """
            CREATE FUNCTION trap.caught(bigint, integer) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'trap ran as %', current_user; END $$;
            CREATE FUNCTION trap.caught(double precision, numeric) RETURNS boolean
                LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'trap ran as %', current_user; END $$;
            CREATE FUNCTION trap.caught(integer, integer) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'trap ran as %', current_user; END $$;
            CREATE OPERATOR trap.> (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = trap.caught);
            CREATE OPERATOR trap.< (
                LEFTARG = double precision, RIGHTARG = numeric, FUNCTION = trap.caught);
            CREATE OPERATOR trap.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = trap.caught);
            SET search_path = trap, public, pg_catalog;
            """
        )
        # A listener waits (so that writers evaluate every condition of the wake check), and
        # another session holds its lock.
        await waiter.execute("SELECT pg_advisory_lock($1, $2)", *notify.WAKE_LOCK)
        await waiter.execute(sql.query("arm"))
        await app.execute("INSERT INTO contacts (first_name, monday_id) VALUES ('a', '1')")
        await app.execute("UPDATE contacts SET id = 2, notes = 'n'")
        await app.execute("DELETE FROM contacts")
        await app.execute("TRUNCATE contacts")
    finally:
        await waiter.close()
        await app.close()
    assert len(await changes(conn)) == 5


async def test_only_npd_syncs_own_sessions_are_left_out_of_the_capture(
    dsn: str, conn: asyncpg.Connection, app: asyncpg.Connection
) -> None:
    # Any session could set the marker npd-sync used and hide its writes from the capture.
    for guess in ("listener", "npd-sync", ""):
        await app.execute("SELECT set_config('npd_sync.origin', $1, false)", guess)
        await app.execute("INSERT INTO contacts (first_name) VALUES ($1)", guess)
    assert len(await changes(conn)) == 3
    await conn.execute("DELETE FROM npd_sync.changes")
    own = await db.connect(dsn)
    pool = await db.create_pool(dsn, size=2)
    try:
        await own.execute("INSERT INTO contacts (first_name) VALUES ('npd-sync')")
        async with pool.acquire() as pooled:
            await pooled.execute("DELETE FROM contacts")
    finally:
        await pool.close()
        await own.close()
    assert await changes(conn) == []


async def test_rolled_back_writes_record_nothing(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        await conn.execute("INSERT INTO contacts (first_name) VALUES ('kept')")
        with pytest.raises(asyncpg.UniqueViolationError):
            async with conn.transaction():  # a savepoint
                await conn.execute(
                    "INSERT INTO contacts (id, first_name) VALUES (50, 'x'), (50, 'y')"
                )
    assert await changes(conn) == [(1, "1", None)]


class Notifications:
    """A LISTEN connection that counts what arrives."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_: object) -> None:
        self.count += 1


async def test_notify_only_while_a_listener_waits(dsn: str, conn: asyncpg.Connection) -> None:
    waker = await db.connect(dsn)
    seen = Notifications()
    await waker.add_listener(notify.CHANNEL, seen)
    try:
        await conn.execute("INSERT INTO contacts (first_name) VALUES ('nobody waits')")
        # Nobody waits: no NOTIFY. Prove the connection delivers by notifying by hand.
        await conn.execute(f"NOTIFY {notify.CHANNEL}")
        await eventually(lambda: _value(seen.count), lambda n: n == 1)

        # A listener waits: it holds the lock and the flag is set.
        await waker.execute("SELECT pg_advisory_lock($1, $2)", *notify.WAKE_LOCK)
        await waker.execute("SELECT setval('npd_sync.waiting', 1)")
        await conn.execute("INSERT INTO contacts (first_name) VALUES ('one')")
        await eventually(lambda: _value(seen.count), lambda n: n == 2)

        # A bulk statement (and a multi-statement transaction) sends one NOTIFY, not one a row.
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO contacts (first_name) SELECT 'bulk' FROM generate_series(1, 500)"
            )
            await conn.execute("UPDATE contacts SET notes = 'n'")
        await conn.execute(f"NOTIFY {notify.CHANNEL}, 'marker'")
        await eventually(lambda: _value(seen.count), lambda n: n >= 4)
        assert seen.count == 4  # the bulk transaction's one, then the marker

        # The flag was left set by a listener that died (its lock went with it): no NOTIFY.
        await waker.execute("SELECT pg_advisory_unlock($1, $2)", *notify.WAKE_LOCK)
        await conn.execute("INSERT INTO contacts (first_name) VALUES ('two')")
        await conn.execute(f"NOTIFY {notify.CHANNEL}, 'marker'")
        await eventually(lambda: _value(seen.count), lambda n: n >= 5)
        assert seen.count == 5
    finally:
        await waker.close()


async def _value(value: int) -> int:
    return value


async def test_application_role_without_grants_on_npd_sync(
    dsn: str, conn: asyncpg.Connection
) -> None:
    role = f"npd_app_{uuid.uuid4().hex[:8]}"
    await conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        await conn.execute(f"GRANT ALL ON contacts, contacts_id_seq TO {role}")
        app = await asyncpg.connect(dsn, user=role)
        try:
            await app.execute("INSERT INTO contacts (first_name) VALUES ('from the app role')")
            await app.execute("UPDATE contacts SET notes = 'n'")
            await app.execute("DELETE FROM contacts")
            # The role can append to the log, but cannot read it or the queue.
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.fetch("SELECT * FROM npd_sync.changes")
        finally:
            await app.close()
        assert len(await changes(conn)) == 3
    finally:
        await conn.execute(f"DROP OWNED BY {role}")
        await conn.execute(f"DROP ROLE {role}")


async def test_enum_and_uuid_keys_are_recorded(empty_dsn: str) -> None:
    conn = await db.connect(empty_dsn)
    app = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute(ENUM_UUID_SCHEMA)
        await install.install(conn, settings.load(environ={}).tables)
        key = await app.fetchval(
            "INSERT INTO contacts (first_name, sync_status) VALUES ('Ada', 'PENDING') RETURNING id"
        )
        await app.execute("UPDATE contacts SET monday_id = 99, sync_status = 'SYNCED'")
        await app.execute("DELETE FROM contacts")
        assert await changes(app) == [(1, str(key), "99"), (1, str(key), None)]
    finally:
        await app.close()
        await conn.close()


async def test_concurrent_writers_all_recorded(dsn: str) -> None:
    async def writer(n: int) -> None:
        c = await asyncpg.connect(dsn)
        try:
            for i in range(50):
                await c.execute("INSERT INTO contacts (first_name) VALUES ($1)", f"w{n}-{i}")
        finally:
            await c.close()

    await asyncio.gather(*(writer(n) for n in range(4)))
    check = await asyncpg.connect(dsn)
    try:
        assert await check.fetchval("SELECT count(DISTINCT row_key) FROM npd_sync.changes") == 200
    finally:
        await check.close()
