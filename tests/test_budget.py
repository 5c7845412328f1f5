"""Monday's complexity budget as the real ceiling, against the emulator charging like Monday:
a budget too tight for a batch never livelocks, with two listeners sharing it; the whole budget
of a window is used, not the cap on one query; Monday's figures beat the plan's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import asyncpg
import pytest

from emulator import AccountLimits, Emulator
from emulator.records import RequestRecord
from listener import db, rows
from listener.commands import status
from listener.engine import queue
from listener.monday import daily
from listener.operations import report
from listener.settings import Settings
from tests.conftest import MakeSettings
from tests.helpers import assert_mirrored, eventually, running, write_config

EXHAUSTED = "COMPLEXITY_BUDGET_EXHAUSTED"
FAST = {"poll_interval": 0.5, "backoff_base": 0.05, "backoff_cap": 0.3, "lease_seconds": 5}


async def status_report(config: Settings) -> report.Report:
    conn = await db.connect(config.require_database())
    try:
        version = await conn.fetchval("SELECT max(version) FROM npd_sync.migrations")
        return await report.collect(conn, config, version)
    finally:
        await conn.close()


def charged(records: list[RequestRecord]) -> list[RequestRecord]:
    return [r for r in records if r.status == 200 and not r.error_codes and r.complexity]


async def all_synced(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT bool_and(sync_status = 'SYNCED') AND NOT EXISTS (SELECT FROM npd_sync.queue)"
            " FROM contacts"
        )
    )


@pytest.mark.parametrize("backfilled", [5, 0], ids=["with lookups", "creates only"])
async def test_a_budget_tighter_than_a_batch_never_livelocks(
    dsn: str,
    conn: asyncpg.Connection,
    emulator: Emulator,
    make_settings: MakeSettings,
    tmp_path: Path,
    backfilled: int,
) -> None:
    # The account: 30,000 points a window, 10,000 a create, lookups of 11,011 (a page
    # of 500 items). The listeners think they have a Pro plan's 10M: Monday says otherwise.
    window = 2.0
    emulator.set_limits(
        AccountLimits(
            complexity_per_minute=30_000, complexity_window_seconds=window,
            mutation_cost=9_999, requests_per_minute=None, concurrency=None, daily_calls=None,
        )
    )  # fmt: skip
    # Rows that were there before the triggers, queued by a backfill (each looked up first),
    # and rows the application writes now.
    quiet = await db.connect(dsn)  # npd-sync's own connections are not captured
    try:
        await quiet.execute(
            "INSERT INTO contacts (first_name) SELECT 'old ' || g FROM generate_series(1, $1) g",
            backfilled,
        )
    finally:
        await quiet.close()
    await conn.execute(
        "INSERT INTO contacts (first_name) SELECT 'new ' || g FROM generate_series(1, 8) g"
    )
    config = make_settings(
        NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", max_rate_wait=0.5, **FAST))
    )
    pool = await db.create_pool(dsn)
    try:
        async with pool.acquire() as c:
            (table,) = [t for t in await rows.load_tables(c, config) if t.name == "contacts"]
            old = await c.fetch("SELECT id::text FROM contacts WHERE first_name LIKE 'old%'")
            await queue.arrive(c, [queue.Arrival(table.id, r["id"], uncertain=True) for r in old])
    finally:
        await pool.close()
    async with running(config), running(config):
        await eventually(lambda: all_synced(conn), timeout=90, interval=0.1)
    await assert_mirrored(conn, emulator, config)
    records = emulator.requests
    first = min(r.at - r.seconds for r in charged(records))
    refused = [r for r in records if EXHAUSTED in r.error_codes]
    # Learning what Monday allows may cost a refusal or two at the start, never later.
    assert all(r.at < first + window for r in refused), [r.at - first for r in refused]
    lookups = [r for r in charged(records) if "items_page_by_column_values" in r.root_fields]
    assert len(lookups) == (1 if backfilled else 0)  # found nothing: no need to look again


async def test_a_window_holds_more_than_the_cap_on_one_query(
    conn: asyncpg.Connection, emulator: Emulator, make_settings: MakeSettings, tmp_path: Path
) -> None:
    # Monday's figures: 10M points a minute, 5M at most in one request; 100,000 a create. A
    # hundred creates fit in one minute, fifty in one request. Reading the cap on one request as
    # the budget of a minute would leave fifty rows for the next minute.
    emulator.set_limits(
        AccountLimits(
            mutation_cost=99_999, requests_per_minute=None, concurrency=None, daily_calls=None
        )
    )
    await conn.execute(
        "INSERT INTO contacts (first_name) SELECT 'row ' || g FROM generate_series(1, 100) g"
    )
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", **FAST)))
    async with running(config):
        # Well within the minute: no wait for a second window.
        await eventually(lambda: all_synced(conn), timeout=20, interval=0.1)
    assert [w.used for w in emulator.complexity_windows()] == [10_000_000]
    assert max(r.mutations for r in charged(emulator.requests)) <= 50
    await assert_mirrored(conn, emulator, config)


async def test_mondays_figures_beat_the_plans(
    conn: asyncpg.Connection, emulator: Emulator, make_settings: MakeSettings, tmp_path: Path
) -> None:
    # The plan says 10M a minute; Monday reports about 2 * 10^9 left (no limit here): it is
    # right, and 30M of creates go through in the first minute, without a pause.
    emulator.set_limits(
        AccountLimits(
            complexity_per_minute=None, max_query_complexity=None, requests_per_minute=None,
            concurrency=None, daily_calls=None, ip_requests=None, mutation_cost=99_999,
        )
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO contacts (first_name) SELECT 'row ' || g FROM generate_series(1, 300) g"
    )
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", **FAST)))
    async with running(config):
        await eventually(lambda: all_synced(conn), timeout=30, interval=0.1)
    assert await conn.fetchval("SELECT paused_until FROM npd_sync.monday") is None
    assert sum(r.complexity for r in charged(emulator.requests)) == 300 * 100_000


async def test_a_budget_monday_states_far_above_the_plans_pauses_nobody(
    conn: asyncpg.Connection, emulator: Emulator, make_settings: MakeSettings, tmp_path: Path
) -> None:
    # Monday states 10^9 points a minute (RateLimit-Policy, complexity.before); the plan says
    # 10M. Two listeners, two boards, answers taking a moment: their first requests are all
    # reserved before any reply, against the plan's 10M at the first guess of 30,001 a create.
    # The replies' figures win: nobody waits for the plan's minute to end.
    emulator.set_limits(
        AccountLimits(
            complexity_per_minute=10**9, requests_per_minute=None, concurrency=None,
            daily_calls=None, ip_requests=None,
        )
    )  # fmt: skip
    emulator.set_faults(latency=0.3)
    await conn.execute(
        "INSERT INTO contacts (first_name) SELECT 'row ' || g FROM generate_series(1, 600) g"
    )
    await conn.execute(
        "INSERT INTO organizations (name) SELECT 'org ' || g FROM generate_series(1, 600) g"
    )
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", **FAST)))
    async with running(config), running(config):
        await eventually(lambda: all_synced(conn), timeout=40, interval=0.1)
    assert await conn.fetchval("SELECT paused_until FROM npd_sync.monday") is None
    assert not [r for r in emulator.requests if EXHAUSTED in r.error_codes]


async def test_a_day_short_of_calls_shows_as_latency_never_as_a_failed_row(
    conn: asyncpg.Connection, emulator: Emulator, make_settings: MakeSettings, tmp_path: Path
) -> None:
    # An account of 20 calls a day, which only Monday knows (platform_api): the first burst of
    # ten changes goes at once, a call each; then a listener asks Monday for the day's figures,
    # and the changes after wait for the day's even share, pending, never FAILED, and go
    # together when it comes.
    emulator.set_limits(dataclasses.replace(AccountLimits.unlimited(), daily_calls=20))
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", **FAST)))
    async with running(config):
        for n in range(1, 11):
            await conn.execute("INSERT INTO contacts (first_name) VALUES ($1)", f"row {n}")
            await eventually(
                lambda n=n: conn.fetchval(  # type: ignore[misc]
                    "SELECT count(*) = $1 FROM contacts WHERE sync_status = 'SYNCED'", n
                ),
                timeout=10,
            )
        await eventually(lambda: conn.fetchval("SELECT daily_limit FROM npd_sync.monday_day"))
        await conn.execute(
            "INSERT INTO contacts (first_name) SELECT 'late ' || g FROM generate_series(1, 30) g"
        )
        # The listener waits for the day's pace (nine calls left for the rest of the day).
        await eventually(
            lambda: conn.fetchval("SELECT count(*) FROM npd_sync.queue WHERE state = 'pending'"),
            lambda n: n == 30,
        )
        r = await status_report(config)
        assert r.monday.day is not None
        assert r.monday.day.limit == daily.Limit(20, "monday")
        assert r.monday.day.used == 11
    assert [r.root_fields[0] for r in emulator.requests if not r.mutations] == ["platform_api"]
    assert len([r for r in emulator.requests if r.mutations]) == 10
    assert not await conn.fetchval("SELECT count(*) FROM contacts WHERE sync_status = 'FAILED'")
    assert await conn.fetchval("SELECT count(*) FROM contacts WHERE sync_status = 'PENDING'") == 30
    # Half a day later the even share has come in: the thirty go together, in one call.
    await conn.execute("UPDATE npd_sync.monday_day SET tokens_at = tokens_at - interval '12 h'")
    async with running(config):
        await eventually(lambda: all_synced(conn), timeout=20, interval=0.1)
    assert len([r for r in emulator.requests if r.mutations]) == 11
    assert not [r for r in emulator.requests if r.error_codes]  # nothing refused, no daily limit


TAKEN_IN = (
    "SELECT count(*) = $1 FROM npd_sync.queue q RIGHT JOIN contacts c ON q.row_key = c.id::text"
    " WHERE c.sync_status = 'SYNCED' OR q.state = 'pending'"
)


async def taken_in(conn: asyncpg.Connection, rows: int) -> bool:
    """Whether the listener took in `rows` changes: each synced, or waiting in the queue."""
    return bool(await conn.fetchval(TAKEN_IN, rows))


async def test_with_four_calls_left_no_more_than_four_are_spent(
    conn: asyncpg.Connection, emulator: Emulator, make_settings: MakeSettings, tmp_path: Path
) -> None:
    # A 1,000-call account whose other apps spent 996 calls today: npd-sync spends what is
    # left, no more, fails no row, and `status` names the daily limit and when it resets.
    emulator.set_limits(dataclasses.replace(AccountLimits.unlimited(), daily_calls=1_000))
    emulator.set_daily_calls_used(996)
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", **FAST)))
    async with running(config):
        for n in range(1, 9):  # eight changes, one at a time: eight calls if nothing held back
            await conn.execute("INSERT INTO contacts (first_name) VALUES ($1)", f"row {n}")
            await eventually(lambda n=n: taken_in(conn, n), timeout=10)  # type: ignore[misc]
        r = await status_report(config)
    spent = [r for r in emulator.requests if not r.error_codes]
    assert len(spent) <= 4
    assert emulator.daily_calls_used <= 1_000.1  # at most one call refused, a tenth
    assert not await conn.fetchval("SELECT count(*) FROM contacts WHERE sync_status = 'FAILED'")
    lines = "\n".join(status.render(r))
    assert "DAILY_LIMIT" in lines or "calls today:" in lines
    assert "reset" in lines or "paused until" in lines


async def test_scarce_requests_of_a_minute_carry_more_rows_and_none_is_refused(
    conn: asyncpg.Connection, emulator: Emulator, make_settings: MakeSettings, tmp_path: Path
) -> None:
    # An account of 40 requests a minute, which only Monday states (RateLimit-Policy); thirty
    # changes, one at a time, each taken in before the next: the first go at once, a request
    # each (the burst), then the requests go evenly over the minute and the rows that came
    # meanwhile go together. Nobody waits for the next minute, nothing is refused or FAILED.
    emulator.set_limits(dataclasses.replace(AccountLimits.unlimited(), requests_per_minute=40))
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", **FAST)))
    changes = 30
    async with running(config):
        for n in range(1, changes + 1):
            await conn.execute("INSERT INTO contacts (first_name) VALUES ($1)", f"row {n}")
            await eventually(lambda n=n: taken_in(conn, n), timeout=10)  # type: ignore[misc]
        await eventually(lambda: all_synced(conn), timeout=30, interval=0.1)
    pushes = [r for r in emulator.requests if r.mutations]
    assert len(pushes) < changes
    assert max(r.mutations for r in pushes) > 1  # a paced request carried several rows
    assert not [r for r in emulator.requests if r.error_codes]  # nothing refused
    assert await conn.fetchval("SELECT paused_until FROM npd_sync.monday") is None
    assert not await conn.fetchval("SELECT count(*) FROM contacts WHERE sync_status = 'FAILED'")
