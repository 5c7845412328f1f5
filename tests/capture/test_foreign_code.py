"""Column types that would run another role's code in npd-sync's own sessions (issue 19,
part 3): a domain's CHECK runs wherever a value is cast to it, with the session's rights and
its settings, the origin secret among them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from listener import catalog, db, rows, settings
from listener.capture import install
from listener.commands import check, requeue
from listener.operations import conflicts, keys
from tests.conftest import MakeSettings

TABLES = settings.load(environ={}).tables

# What the application's role puts in its own schema: a domain whose CHECK copies the
# session's mark to a table the role can read.
TRAP = """
CREATE TABLE loot.taken (secret text);
GRANT INSERT ON loot.taken TO PUBLIC;
CREATE FUNCTION loot.steal(integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO loot.taken VALUES (current_setting('npd_sync.origin', true));
    RETURN true;
END $$;
CREATE DOMAIN loot.key AS integer CHECK (loot.steal(VALUE));
"""


@pytest.fixture
async def loot(dsn: str, conn: asyncpg.Connection, app_role: str) -> AsyncIterator[str]:
    """The application's role builds the trap in a schema of its own; dropped first after the
    test (the application's tables may use its types)."""
    await conn.execute(f"CREATE SCHEMA loot AUTHORIZATION {app_role}")
    try:
        app = await asyncpg.connect(dsn, user=app_role)
        try:
            await app.execute(TRAP)
        finally:
            await app.close()
        yield app_role
    finally:
        await conn.execute("DROP SCHEMA loot CASCADE")


async def test_a_key_domain_of_the_applications_role_cannot_steal_the_origin_secret(
    dsn: str, conn: asyncpg.Connection, loot: str, make_settings: MakeSettings
) -> None:
    # The table's owner takes the application's type for the key (a migration, say).
    await conn.execute("DROP TRIGGER npd_sync_rekey ON contacts")
    await conn.execute("ALTER TABLE contacts ALTER COLUMN id TYPE loot.key")
    await conn.execute("INSERT INTO contacts (first_name, sync_status) VALUES ('a', 'FAILED')")
    await conn.execute("TRUNCATE loot.taken, npd_sync.changes")
    # An operator retries the failed row: the key was cast to loot.key in npd-sync's session,
    # whose CHECK copied the mark; with it, the application's writes skipped the capture.
    ok, out = await retry(make_settings(), ids=("1",))
    app = await asyncpg.connect(dsn, user=loot)
    try:
        taken = "SELECT DISTINCT secret FROM loot.taken WHERE secret IS NOT NULL"
        for secret in await app.fetch(taken):
            await app.execute("SELECT set_config('npd_sync.origin', $1, false)", secret[0])
        await app.execute("INSERT INTO contacts (first_name) VALUES ('seen')")
    finally:
        await app.close()
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.changes") == 1
    assert await conn.fetch("SELECT secret FROM loot.taken WHERE secret IS NOT NULL") == []
    assert not ok
    assert out == [
        "contacts: cannot retry: key column id is loot.key, which would run code of role "
        f"{loot} in npd-sync's sessions (the domain loot.key)"
    ]


def refusal(role: str) -> str:
    return (
        "key column id is loot.key, which would run code of role "
        f"{role} in npd-sync's sessions (the domain loot.key)"
    )


@pytest.fixture
async def taken(conn: asyncpg.Connection, loot: str) -> AsyncIterator[str]:
    """contacts keyed by the application's domain; what npd-sync then does leaks nothing."""
    await conn.execute("DROP TRIGGER npd_sync_rekey ON contacts")
    await conn.execute("ALTER TABLE contacts ALTER COLUMN id TYPE loot.key")
    await conn.execute("INSERT INTO contacts (first_name, sync_status) VALUES ('a', 'FAILED')")
    await conn.execute("TRUNCATE loot.taken")
    yield loot
    assert await conn.fetch("SELECT secret FROM loot.taken WHERE secret IS NOT NULL") == []


async def test_install_refuses_a_key_type_that_runs_another_roles_code(
    dsn: str, taken: str
) -> None:
    own = await db.connect(dsn)
    try:
        with pytest.raises(install.InstallError) as caught:
            await install.install(own, TABLES)
    finally:
        await own.close()
    assert str(caught.value) == f"contacts: {refusal(taken)}"


async def test_check_refuses_a_key_type_that_runs_another_roles_code(
    taken: str, make_settings: MakeSettings
) -> None:
    results: list[check.Result] = []
    assert not await check.checks(make_settings(), results.append)
    failed = [(r.subject, r.message, r.hint) for r in results if r.mark == "fail"]
    assert failed[0][:2] == ("contacts", refusal(taken))
    assert "OWNER TO" in str(failed[0][2])


async def test_listen_and_conflicts_resolve_refuse_it_too(
    dsn: str, taken: str, make_settings: MakeSettings
) -> None:
    own = await db.connect(dsn)
    try:
        with pytest.raises(install.NotInstalled) as caught:
            await rows.load_tables(own, make_settings())
        assert str(caught.value) == f"contacts: {refusal(taken)}"
        with pytest.raises(keys.UsageError) as refused:
            await conflicts.settle(own, TABLES[0], "1", None, "npd")
        assert str(refused.value) == f"contacts: {refusal(taken)}"
    finally:
        await own.close()


async def test_a_domain_of_npd_syncs_role_with_built_in_checks_installs(dsn: str) -> None:
    own = await db.connect(dsn)
    try:
        await own.execute(
            """
            CREATE DOMAIN contact_key AS integer CHECK (VALUE > 0);
            CREATE DOMAIN state AS text CHECK (VALUE IN ('PENDING', 'SYNCED', 'FAILED'));
            DROP TRIGGER npd_sync_rekey ON contacts;
            DROP TRIGGER npd_sync_update ON contacts;
            ALTER TABLE contacts ALTER COLUMN id TYPE contact_key,
                ALTER COLUMN sync_status TYPE state;
            """
        )
        plan = await install.install(own, TABLES)
        assert [s.kind for s in plan.steps] == ["restore"]
    finally:
        await own.close()


async def retry(config: settings.Settings, ids: tuple[str, ...]) -> tuple[bool, list[str]]:
    out: list[str] = []
    ok = await requeue.run(config, table="contacts", ids=ids, echo=out.append)
    return ok, out


# Each column's type, and what npd-sync says of it (None: nothing of another role's runs).
KINDS = [
    ("plain", "integer", None),
    ("theirs", "loot.key", "the domain loot.key"),
    ("theirs_array", "loot.key[]", "the domain loot.key"),
    ("checked_by_them", "ours_checked_by_them", "the function loot.steal(integer)"),
    ("over_theirs", "ours_over_theirs", "the domain loot.key"),
    ("defaulted_by_them", "ours_defaulted_by_them", "the function loot.steal(integer)"),
    ("ours", "ours_checked", None),
    ("ours_array", "ours_checked[]", None),
    ("compared_by_them", "ours_compared", "the operator loot.===(ours_compared,ours_compared)"),
    ("their_enum", "loot.state", None),
    ("their_enum_cast", "loot.cast_state", "the cast from loot.cast_state to text"),
]


async def test_what_each_type_runs_is_read_from_the_catalog(
    dsn: str, conn: asyncpg.Connection, loot: str
) -> None:
    await conn.execute(
        """
        CREATE FUNCTION positive(integer) RETURNS boolean LANGUAGE sql AS 'SELECT $1 > 0';
        CREATE DOMAIN ours_checked AS integer CHECK (VALUE > 0) CHECK (positive(VALUE));
        CREATE DOMAIN ours_checked_by_them AS integer CHECK (VALUE > 0 AND loot.steal(VALUE));
        CREATE DOMAIN ours_over_theirs AS loot.key;
        CREATE DOMAIN ours_defaulted_by_them AS integer DEFAULT (loot.steal(1))::integer;
        CREATE DOMAIN ours_compared AS integer;
        """
    )
    app = await asyncpg.connect(dsn, user=loot)
    try:
        # An enum of the application's is harmless; its casts and operators are not.
        await app.execute(
            """
            CREATE TYPE loot.state AS ENUM ('PENDING', 'SYNCED', 'FAILED');
            CREATE TYPE loot.cast_state AS ENUM ('PENDING', 'SYNCED', 'FAILED');
            CREATE FUNCTION loot.said(loot.cast_state) RETURNS text LANGUAGE sql
                AS 'SELECT loot.steal(1)::text';
            CREATE CAST (loot.cast_state AS text) WITH FUNCTION loot.said(loot.cast_state);
            CREATE FUNCTION loot.same(ours_compared, ours_compared) RETURNS boolean
                LANGUAGE sql AS 'SELECT loot.steal(1)';
            CREATE OPERATOR loot.=== (
                LEFTARG = ours_compared, RIGHTARG = ours_compared, FUNCTION = loot.same);
            """
        )
    finally:
        await app.close()
    columns = ", ".join(f"{name} {type_}" for name, type_, _ in KINDS)
    await conn.execute(f"CREATE TABLE kinds ({columns})")
    own = await db.connect(dsn)
    try:
        info = await catalog.describe(own, "kinds")
    finally:
        await own.close()
    assert info is not None
    found = {
        name: None if c.foreign is None else (c.foreign.role, c.foreign.what)
        for name, c in info.columns.items()
    }
    assert found == {name: None if what is None else (loot, what) for name, _, what in KINDS}
