"""The guarantees (docs/guarantees.md) under real failures: killed listeners, restarted
PostgreSQL, a terminated LISTEN connection, Monday failing in every way it does, several
listeners at once, poison rows. Each test ends by checking the whole mirror
(tests.helpers.assert_mirrored).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from devtools import pgcluster
from emulator import AccountLimits, Emulator, Faults
from listener import db, settings
from listener.capture import install
from listener.monday import governor
from tests.conftest import SAMPLE_SCHEMA, TOKEN, MakeSettings
from tests.helpers import (
    assert_mirrored,
    drain,
    eventually,
    running,
    settled,
    start_listener,
    write_config,
)

FAST = {"poll_interval": 0.5, "backoff_base": 0.05, "backoff_cap": 0.3, "lease_seconds": 3}


async def write_contacts(dsn: str, count: int, *, seed: int, updates: int = 0) -> None:
    """One application writer: inserts, then edits random rows (the same rows as others)."""
    rng = random.Random(seed)
    conn = await asyncpg.connect(dsn)
    try:
        for i in range(count):
            await conn.execute(
                "INSERT INTO contacts (first_name, last_name, email, role_title)"
                " VALUES ($1, $2, $3, $4)",
                f"W{seed}",
                f"#{i}",
                f"w{seed}.{i}@example.com",
                "first",
            )
        top = await conn.fetchval("SELECT max(id) FROM contacts")
        for i in range(updates):
            await conn.execute(
                "UPDATE contacts SET role_title = $1, notes = $2 WHERE id = $3",
                f"r{seed}-{i}",
                f"edited by {seed}",
                rng.randint(1, top),
            )
    finally:
        await conn.close()


async def test_kill_9_mid_batch_loses_and_duplicates_nothing(
    dsn: str,
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "tuning.toml", batch_size=10, **FAST)
    await write_contacts(dsn, 60, seed=1)
    emulator.set_faults(latency=0.3)  # so that the kill lands while a request is in flight
    first = await start_listener(dsn, emulator, tmp_path, config=config)
    try:
        await eventually(lambda: _value(emulator.in_flight), lambda n: n > 0, timeout=20)
        os.kill(first.pid, signal.SIGKILL)
    finally:
        await first.wait()
    assert first.returncode == -signal.SIGKILL
    assert await conn.fetchval("SELECT count(*) FROM contacts WHERE sync_status = 'SYNCED'") < 60

    await write_contacts(dsn, 10, seed=2, updates=20)  # committed while no listener runs
    emulator.set_faults(latency=0.0)
    second = await start_listener(dsn, emulator, tmp_path, config=config)
    try:
        await settled(conn)
    finally:
        second.send_signal(signal.SIGTERM)
        await second.communicate()
    assert second.returncode == 0
    await assert_mirrored(conn, emulator, make_settings())


async def _value(value: int) -> int:
    return value


@pytest.fixture
async def own_cluster(tmp_path: Path) -> AsyncIterator[pgcluster.Cluster]:
    """A throwaway PostgreSQL this test may restart (never the shared one), with the sample
    schema and npd-sync installed in its `postgres` database."""
    cluster = pgcluster.Cluster()
    await asyncio.to_thread(cluster.start)
    try:
        conn = await db.connect(cluster.dsn())
        await conn.execute(SAMPLE_SCHEMA)
        await install.install(conn, settings.load(environ={}).tables)
        await conn.close()
        yield cluster
    finally:
        await asyncio.to_thread(cluster.destroy)


async def test_postgres_restart_under_a_running_listener(
    own_cluster: pgcluster.Cluster, emulator: Emulator, tmp_path: Path
) -> None:
    dsn = own_cluster.dsn()
    config = write_config(tmp_path / "tuning.toml", poll_interval=600, **{
        k: v for k, v in FAST.items() if k != "poll_interval"
    })  # fmt: skip
    env = {
        "DATABASE_URL": dsn,
        "MONDAY_API_KEY": TOKEN,
        "MONDAY_API_URL": emulator.url,
        "MONDAY_CONTACTS_BOARD_ID": "1000000001",
        "MONDAY_ORGANIZATIONS_BOARD_ID": "1000000002",
        "NPD_SYNC_CONFIG": str(config),
    }
    config_settings = settings.load(environ=env)
    async with running(config_settings) as listener:
        await write_contacts(dsn, 20, seed=1)
        await asyncio.to_thread(own_cluster.restart)  # under the listener's feet
        await write_contacts(dsn, 20, seed=2, updates=10)
        check = await asyncpg.connect(dsn)
        try:
            await settled(check)
            await assert_mirrored(check, emulator, config_settings)
        finally:
            await check.close()
        assert listener.waker.reconnects >= 1


async def test_terminated_listen_connection_costs_no_change(
    dsn: str,
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    config = make_settings(
        NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", poll_interval=600))
    )
    async with running(config) as listener:
        await eventually(lambda: _value(listener.waker.asleep), timeout=5)
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'npd-sync listen (notify)'"
            # Other npd-sync listeners may run on this server, for other databases.
            " AND datname = current_database()"
        )
        assert killed == 1
        await conn.execute("INSERT INTO contacts (first_name) VALUES ('after the loss')")
        # Poll interval is 600 s: only the reconnect's drain or a NOTIFY can sync this.
        await eventually(
            lambda: conn.fetchval("SELECT sync_status FROM contacts"), lambda s: s == "SYNCED"
        )
        assert listener.waker.reconnects == 1
    await assert_mirrored(conn, emulator, config)


@pytest.mark.parametrize(
    "faults",
    [
        {"http_500": 0.4},
        {"http_429": 0.4, "retry_in_seconds": 1},
        {"drop": 0.3},
        {"next_hang": 3},
    ],
    ids=["500s", "429s", "applied-then-dropped", "past-the-timeout"],
)
async def test_monday_failures_lose_and_duplicate_nothing(
    dsn: str,
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
    faults: dict[str, float],
) -> None:
    tuning = write_config(
        tmp_path / "t.toml", batch_size=7, request_timeout=1.0, max_attempts=50, **FAST
    )
    config = make_settings(NPD_SYNC_CONFIG=str(tuning))
    emulator.set_faults(seed=7, **faults)
    async with running(config):
        await asyncio.gather(*(write_contacts(dsn, 15, seed=s, updates=15) for s in range(3)))
        await eventually(lambda: _value(emulator.counters.faults), lambda f: sum(f.values()) > 0)
        emulator.set_faults(Faults(seed=7))  # heal, so that it can settle
        await settled(conn)
    await assert_mirrored(conn, emulator, config)


@pytest.mark.parametrize("listeners", [2, 3])
async def test_several_listeners_and_concurrent_writers(
    dsn: str,
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
    listeners: int,
) -> None:
    config = make_settings(
        NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", batch_size=5, **FAST))
    )
    emulator.set_faults(latency=0.01)
    async with contextlib.AsyncExitStack() as stack:
        daemons = [await stack.enter_async_context(running(config)) for _ in range(listeners)]
        await asyncio.gather(*(write_contacts(dsn, 25, seed=s, updates=40) for s in range(4)))
        await settled(conn)
    assert sum(1 for d in daemons if d.worker and d.worker.stats.synced) >= 2
    await assert_mirrored(conn, emulator, config)
    # Each row was created once: no two listeners pushed the same row's create.
    creates = sum(r.root_fields.count("create_item") for r in emulator.requests)
    assert creates == 100


async def test_poison_rows_never_block_the_rows_behind_them(
    dsn: str,
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", **FAST)))
    async with running(config):
        await write_contacts(dsn, 10, seed=1)
        bad = await conn.fetch(
            "INSERT INTO contacts (first_name, email) VALUES ('bad email', 'not-an-email'),"
            " ('bad phone', NULL) RETURNING id::text"
        )
        await conn.execute("UPDATE contacts SET phone = '+1 555' WHERE first_name = 'bad phone'")
        long_name = "N" * 300
        await conn.execute("INSERT INTO contacts (first_name) VALUES ($1)", long_name)
        await write_contacts(dsn, 10, seed=2)
        await settled(conn)
    failed = frozenset(r[0] for r in bad)
    await assert_mirrored(conn, emulator, config, failed=failed)
    errors = dict(
        await conn.fetch("SELECT first_name, sync_error FROM contacts WHERE sync_error IS NOT NULL")
    )
    assert "ColumnValueException" in errors["bad email"]
    assert "phone" in errors["bad phone"]
    # A 300-character name is cut to Monday's 255, with an ellipsis, and synced.
    (item,) = [i for i in emulator.items("1000000001") if i.name.startswith("NNN")]
    assert len(item.name) == 255
    assert item.name.endswith("…")


async def test_rate_limits_are_paced_not_hit(
    dsn: str, conn: asyncpg.Connection, make_settings: MakeSettings, tmp_path: Path
) -> None:
    # 25,000 points a minute; a create costs 10,000: two requests of one create fit, the third
    # must wait for the next minute, without Monday having to refuse anything.
    limits = AccountLimits(
        complexity_per_minute=25_000, requests_per_minute=None, concurrency=None, daily_calls=None,
        mutation_cost=9_999,  # and 1 for the id it returns
    )  # fmt: skip
    async with Emulator(token=TOKEN, limits=limits) as emulator:
        tuning = write_config(
            tmp_path / "t.toml",
            batch_size=1,
            complexity_per_minute=25_000,
            max_rate_wait=0.5,
            **FAST,
        )
        config = make_settings(MONDAY_API_URL=emulator.url, NPD_SYNC_CONFIG=str(tuning))
        await conn.execute(
            "INSERT INTO contacts (first_name) SELECT 'x' FROM generate_series(1, 4)"
        )
        async with running(config):
            await eventually(
                lambda: conn.fetchval("SELECT paused_until > now() FROM npd_sync.monday"),
                timeout=10,
            )
        assert len(emulator.items("1000000001")) == 2
        refused = [r for r in emulator.requests if r.status != 200 or r.error_codes]
        assert refused == []
        assert await conn.fetchval("SELECT count(*) FROM npd_sync.queue") == 2


async def test_listener_waits_for_a_database_that_is_down(
    own_cluster: pgcluster.Cluster, emulator: Emulator, tmp_path: Path
) -> None:
    dsn = own_cluster.dsn()
    await write_contacts(dsn, 5, seed=1)
    await asyncio.to_thread(own_cluster.stop)
    process = await start_listener(dsn, emulator, tmp_path)
    try:
        assert process.stderr is not None
        line = await asyncio.wait_for(process.stderr.readline(), 20)
        assert b'"event": "listener.database_error"' in line  # it says so, and keeps trying
        await asyncio.to_thread(own_cluster.start)
        check = await asyncpg.connect(dsn)
        try:
            await settled(check)
            await assert_mirrored(check, emulator, settings.load(environ={
                "MONDAY_CONTACTS_BOARD_ID": "1000000001",
                "MONDAY_ORGANIZATIONS_BOARD_ID": "1000000002",
            }))  # fmt: skip
        finally:
            await check.close()
    finally:
        process.send_signal(signal.SIGTERM)
        await process.communicate()
    assert process.returncode == 0


async def test_daily_limit_pauses_instead_of_burning_attempts(
    conn: asyncpg.Connection, make_settings: MakeSettings, tmp_path: Path
) -> None:
    limits = dataclasses.replace(AccountLimits.unlimited(), daily_calls=2)
    async with Emulator(token=TOKEN, limits=limits) as emulator:
        tuning = write_config(tmp_path / "t.toml", batch_size=1, **FAST)
        config = make_settings(MONDAY_API_URL=emulator.url, NPD_SYNC_CONFIG=str(tuning))
        await conn.execute(
            "INSERT INTO contacts (first_name) SELECT 'x' FROM generate_series(1, 5)"
        )
        async with running(config):
            await eventually(
                lambda: conn.fetchval("SELECT pause_reason FROM npd_sync.monday"),
                lambda reason: reason == "DAILY_LIMIT_EXCEEDED",
            )
        paused = await conn.fetchval(
            "SELECT extract(epoch FROM paused_until - now()) FROM npd_sync.monday"
        )
        # Until midnight UTC, not a retry in a few seconds.
        assert paused > governor.until_midnight_utc() - 30
        assert len(emulator.items("1000000001")) == 2
        rows = await conn.fetch("SELECT state, attempts FROM npd_sync.queue")
        assert [tuple(r) for r in rows] == [("pending", 0)] * 3
        statuses = {r[0] for r in await conn.fetch("SELECT sync_status FROM contacts")}
        assert "FAILED" not in statuses


async def test_a_burst_of_changes_becomes_one_push_of_the_latest_state(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute("INSERT INTO contacts (first_name, role_title) VALUES ('x', 'v0')")
    for n in range(1, 11):
        await conn.execute("UPDATE contacts SET role_title = $1", f"v{n}")
    await drain(make_settings())
    (request,) = emulator.requests
    assert request.root_fields.count("create_item") == 1
    assert request.mutations == 1
    (item,) = emulator.items("1000000001")
    assert item.values["text"] == "v10"


async def test_a_change_made_during_its_push_is_pushed_again(
    dsn: str,
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", **FAST)))
    emulator.set_faults(latency=0.5)
    async with running(config):
        await conn.execute("INSERT INTO contacts (first_name, role_title) VALUES ('x', 'first')")
        await eventually(lambda: _value(emulator.in_flight), lambda n: n > 0)
        await conn.execute("UPDATE contacts SET role_title = 'second'")  # while it is pushed
        await settled(conn)
    (item,) = emulator.items("1000000001")
    assert item.values["text"] == "second"
    fields = [f for r in emulator.requests for f in r.root_fields if f != "complexity"]
    assert fields == ["create_item", "change_multiple_column_values"]
    await assert_mirrored(conn, emulator, config)
