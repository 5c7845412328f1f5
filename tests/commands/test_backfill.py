"""`npd-sync backfill` against a real database and the emulator."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
import signal
from pathlib import Path

import asyncpg
import pytest

from emulator import AccountLimits, Emulator
from listener.commands import backfill as backfiller
from listener.monday import daily, governor
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
    assert lines[0] == (
        "contacts: 92 rows to push (92 to create, 0 to update); "
        "organizations: 5 rows to push (5 to create, 0 to update)"
    )
    # A lookup and a create request a table; the emulator's account has no daily limit.
    assert lines[1] == (
        "about 4 calls to Monday (100 rows a request); no daily limit known "
        "([tuning] daily_calls or plan): not paced"
    )
    assert lines[2] == "contacts: 92 queued, organizations: 5 queued"
    assert lines[-1] == "done: 97 synced, 0 failed, 0 left pending"
    await assert_mirrored(conn, emulator, config)
    # Nothing left to do: a second run queues nothing and sends nothing.
    sent = len(emulator.requests)
    ok, lines = await backfill(config)
    assert lines[1].startswith("about 0 calls to Monday")
    assert lines[2] == "contacts: 0 queued, organizations: 0 queued"
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
    assert lines[2] == "contacts: 3 queued, organizations: 5 queued"
    assert len(emulator.requests) > touched
    await assert_mirrored(conn, emulator, config)


async def test_dry_run_shows_what_would_be_pushed(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute(PRE_EXISTING.format(n=4))
    ok, lines = await backfill(make_settings(), dry_run=True)
    assert ok
    assert lines[0] == "contacts: 4 rows to push (4 to create, 0 to update)"
    assert lines[1].startswith('  1: create (or adopt) {"name": "First1 Last1", "email": {')
    assert "organizations: 5 rows to push (5 to create, 0 to update)" in lines
    assert lines[-1].startswith("about 4 calls to Monday")
    assert emulator.requests == []
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.queue") == 0


async def test_the_estimate_counts_against_mondays_daily_limit(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute(PRE_EXISTING.format(n=4))
    emulator.set_limits(dataclasses.replace(AccountLimits.unlimited(), daily_calls=1_000))
    emulator.set_daily_calls_used(100)
    ok, lines = await backfill(make_settings())
    assert ok
    # Monday is asked for the day's figures first (one call): its limit holds.
    assert lines[1] == (
        "about 4 calls to Monday (100 rows a request); 899 of 1,000 calls left today (monday): "
        "within the day's burst, not slowed by the pace"
    )


async def test_dry_run_says_when_the_calls_span_days(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    await conn.execute(PRE_EXISTING.format(n=4))
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", daily_calls=3)))
    ok, lines = await backfill(config, dry_run=True)
    assert ok
    assert lines[-1].startswith(
        "about 4 calls to Monday (100 rows a request); 3 of 3 calls left today (daily_calls): "
        "more than today's, so it spans 2 days at the day's pace, going on after 00:00 UTC; "
        "done about "
    )
    assert emulator.requests == []  # a dry run asks Monday nothing


NOON = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("backlog", "batch", "requests"),
    [
        (backfiller.Backlog("t", 0, 0), 100, 0),
        (backfiller.Backlog("t", 250, 0), 100, 6),  # 3 lookups, 3 creates
        (backfiller.Backlog("t", 250, 0, lookups=False), 100, 3),
        (backfiller.Backlog("t", 50, 60), 100, 3),  # one lookup, two mutation requests
        (backfiller.Backlog("t", 0, 500, reads=500), 500, 6),  # reads: 100 items a page
    ],
)
def test_requests_follow_the_engines_batches(
    backlog: backfiller.Backlog, batch: int, requests: int
) -> None:
    assert backfiller.requests(backlog, batch) == requests


def test_the_estimate_without_a_database() -> None:
    backlogs = [backfiller.Backlog("contacts", 9_000, 1_000), backfiller.Backlog("orgs", 500, 0)]
    # 100 + 90 + 5 + 5 = 200 requests; 400 of a Standard day's 1,000 left at noon.
    found = backfiller.estimate(backlogs, 100, daily.Limit(1_000, "plan"), 600, NOON)
    assert found.calls == 200
    assert backfiller.estimate_lines(found) == [
        "contacts: 10,000 rows to push (9,000 to create, 1,000 to update); "
        "orgs: 500 rows to push (500 to create, 0 to update)",
        "about 200 calls to Monday (100 rows a request); 400 of 1,000 calls left today (plan): "
        "about 5h 42m at the day's pace",  # (200 - the burst of 10) at 400 over 12 h
    ]
    unpaced = backfiller.estimate(backlogs, 100, None, 600, NOON)
    assert unpaced.span is None
    assert backfiller.calls_line(unpaced).endswith("not paced")


def test_progress_off_a_terminal_is_a_plain_log_line(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    progress = backfiller.Progress(200, stream)
    day = governor.DayView(daily.Limit(1_000, "monday"), 120, 100, None, 30, None, NOON)
    with caplog.at_level(logging.INFO, logger="npd_sync.backfill"):
        progress.show(50, day)
    progress.close()
    assert stream.getvalue() == ""  # no bar drawn into a log
    (record,) = caplog.records
    line = record.progress  # type: ignore[attr-defined]
    assert line.startswith("50/200 rows [")
    assert line.endswith("calls today 120/1,000]")
    assert not any(c in line for c in "\r\x1b")  # no control characters
    assert (record.calls_today, record.calls_limit) == (120, 1_000)  # type: ignore[attr-defined]


def test_progress_on_a_terminal_is_a_tqdm_bar() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = backfiller.Progress(200, stream)
    progress.show(200, governor.DayView(None, 7, 7, None, 7, None, NOON))
    progress.close()
    out = stream.getvalue()
    assert "200/200" in out
    assert "calls today 7 (not paced)" in out


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
