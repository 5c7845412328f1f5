"""Helpers shared by the tests: run the real worker to completion, poll with a deadline."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import asyncpg

from emulator import Emulator
from listener import daemon, db, mapping, rows
from listener.engine import worker
from listener.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

T = TypeVar("T")


async def drain(config: Settings, *, listener_id: str = "test") -> worker.Worker:
    """Run the worker until nothing is due; returns it for its stats."""
    pool = await db.create_pool(config.require_database())
    try:
        async with pool.acquire() as conn:
            tables = await rows.load_tables(conn, config)
        async with worker.open_worker(config, pool, tables, listener_id) as w:
            await w.drain()
            return w
    finally:
        await pool.close()


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool] = bool,
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
) -> T:
    """Poll `probe` until `check` holds for its result, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)


async def assert_mirrored(
    conn: asyncpg.Connection,
    emulator: Emulator,
    config: Settings,
    *,
    failed: frozenset[str] = frozenset(),
) -> None:
    """Every syncable row is SYNCED with exactly one active item whose name and values are the
    row's current state; nothing is left in the queue but the `failed` contacts keys."""
    for table in config.tables:
        assert table.board_id is not None
        rows = await conn.fetch(f"SELECT * FROM {table.table}")
        items = emulator.items(table.board_id, states=["active"])
        per_key = collections.Counter(str(i.values.get("npd_id")) for i in items)
        duplicated = [key for key, count in per_key.items() if count > 1]
        assert not duplicated, f"{table.table}: several items for npd_id {duplicated}"
        by_key = {str(i.values.get("npd_id")): i for i in items}
        for row in rows:
            key = str(row[table.key_column])
            values = {k: (None if v is None else str(v)) for k, v in dict(row).items()}
            if table.table == "contacts" and key in failed:
                assert row["sync_status"] == "FAILED", (key, row["sync_status"])
                continue
            if not mapping.is_syncable(row["sync_enabled"], row["sync_direction"]):
                assert key not in by_key, f"{table.table} {key} is not syncable but has an item"
                continue
            assert row["sync_status"] == "SYNCED", (table.table, key, row["sync_status"])
            item = by_key.get(key)
            assert item is not None, f"{table.table} {key} has no item"
            assert row["monday_id"] == item.id, (table.table, key)
            assert item.name == mapping.item_name(values, table, key)
            expected = mapping.column_values(values, table, key)
            assert item.values == {k: v for k, v in expected.items() if v is not None}, key
        keys = {str(r[table.key_column]) for r in rows}
        assert set(by_key) <= keys, f"{table.table}: items for rows that are gone"
    left = await conn.fetch("SELECT table_id, row_key, state FROM npd_sync.queue")
    assert all(r["state"] == "failed" and r["row_key"] in failed for r in left), left
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.changes") == 0


def write_config(path: Path, **tuning: float | str) -> Path:
    """A mapping file with only a [tuning] section."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in tuning.items()]
    path.write_text("[tuning]\n" + "\n".join(lines) + "\n")
    return path


def cli_env(
    dsn: str,
    emulator: Emulator,
    *,
    config: Path | None = None,
    token: str = "test-token",
    **env: str,
) -> dict[str, str]:
    """The environment of an `npd-sync` subprocess against the test database and emulator."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": dsn,
        "MONDAY_API_KEY": token,
        "MONDAY_API_URL": emulator.url,
        "MONDAY_CONTACTS_BOARD_ID": "1000000001",
        "MONDAY_ORGANIZATIONS_BOARD_ID": "1000000002",
        **({"NPD_SYNC_CONFIG": str(config)} if config else {}),
        **env,
    }


async def start_cli(*args: str, env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    """`npd-sync <args>` as a subprocess (JSON logs), its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "cli.py"), "--log-format", "json", *args,
        env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def start_listener(
    dsn: str, emulator: Emulator, workdir: Path, *, config: Path | None = None, **env: str
) -> asyncio.subprocess.Process:
    """`npd-sync listen` as a subprocess, logging JSON to its stderr."""
    return await start_cli("listen", env=cli_env(dsn, emulator, config=config, **env), cwd=workdir)


async def no_pending(conn: asyncpg.Connection) -> bool:
    """Nothing recorded and not ingested, nothing pending in the queue."""
    return bool(
        await conn.fetchval(
            "SELECT NOT EXISTS (SELECT FROM npd_sync.changes)"
            " AND NOT EXISTS (SELECT FROM npd_sync.queue WHERE state = 'pending')"
        )
    )


async def settled(conn: asyncpg.Connection, timeout: float = 60) -> None:
    """Wait until every change has been handled."""
    await eventually(lambda: no_pending(conn), timeout=timeout, interval=0.1)


# A sample schema with enum statuses, uuid and identity keys, bigint monday_id.
ENUM_UUID_SCHEMA = """
CREATE TYPE direction AS ENUM ('BIDIRECTIONAL', 'NPD_TO_MONDAY', 'MONDAY_TO_NPD', 'NONE');
CREATE TYPE status AS ENUM ('PENDING', 'SYNCED', 'FAILED');
CREATE TABLE contacts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    first_name text, last_name text, email text, phone text, role_title text, notes text,
    sync_enabled boolean, sync_direction direction, monday_id bigint, sync_status status
);
CREATE TABLE organizations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text, notes text, address_line1 text, address_line2 text, city text, state text,
    postal_code text, country text,
    sync_enabled boolean, sync_direction direction, monday_id bigint, sync_status status
);
"""

# A contact Monday accepts, and one it refuses (an invalid email).
GOOD = "INSERT INTO contacts (first_name, email) VALUES ('good', 'good@example.com')"
BAD = "INSERT INTO contacts (first_name, email) VALUES ('bad', 'not an email')"


@asynccontextmanager
async def running(config: Settings) -> AsyncIterator[daemon.Daemon]:
    listener = daemon.Daemon(config)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(_first(listener.ready.wait(), task), 10)
        yield listener
    finally:
        listener.request_stop()
        await asyncio.wait_for(task, 20)


async def _first(waiting: object, task: asyncio.Task[None]) -> None:
    ready = asyncio.ensure_future(waiting)  # type: ignore[arg-type]
    done, _ = await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()  # raise why the daemon stopped
