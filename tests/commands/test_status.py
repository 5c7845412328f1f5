"""`npd-sync status` against a real database, with the worker and the emulator making the
rows pending, failed and synced."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from emulator import Emulator
from listener import db, fault, settings, sql, text
from listener.capture import install
from listener.commands import status
from listener.monday import daily
from listener.operations import report
from listener.settings import Settings
from tests.conftest import TOKEN, MakeSettings
from tests.helpers import BAD, GOOD, drain, write_config
from tests.inbound.helpers import deliver, inbound, synced_ada

BOOM = fault.Fault("monday", "boom", "ColumnValueException", 200, "r-1")

# --- counting --------------------------------------------------------------------------------


async def read_report(config: Settings) -> report.Report:
    conn = await db.connect(config.require_database())
    try:
        version = await install.installed_version(conn)
        assert version is not None
        return await report.collect(conn, config, version)
    finally:
        await conn.close()


def counts(r: report.Report, table: str = "contacts") -> tuple[int, int, int, int | None]:
    (t,) = [t for t in r.tables if t.table == table]
    return t.pending, t.in_flight, t.failed, t.synced


async def test_counts_rows_in_each_state(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    config = make_settings()
    await conn.execute(GOOD)
    await conn.execute(GOOD)
    await conn.execute(BAD)
    await drain(config)  # two synced, one failed (Monday refuses the email)
    assert counts(await read_report(config)) == (0, 0, 1, 2)

    # Ingested but not sent: no API key.
    await conn.execute(GOOD)
    await drain(make_settings(MONDAY_API_KEY=""))
    # Recorded by the trigger only, not ingested by any listener yet.
    await conn.execute(GOOD)
    await conn.execute("UPDATE contacts SET notes = 'twice' WHERE first_name = 'good' AND id = 5")
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.changes") == 2
    assert counts(await read_report(config)) == (2, 0, 1, 2)

    # A listener holds one entry: leased, so in flight.
    await conn.execute(
        "UPDATE npd_sync.queue SET lease_until = now() + interval '5 minutes', leased_by = 'x'"
        " WHERE row_key = '4'"
    )
    assert counts(await read_report(config)) == (1, 1, 1, 2)

    # Its lease runs out (the listener died): pending again.
    await conn.execute("UPDATE npd_sync.queue SET lease_until = now() - interval '1 second'")
    assert counts(await read_report(config)) == (2, 0, 1, 2)
    assert counts(await read_report(config), "organizations") == (0, 0, 0, 0)


async def test_a_failed_row_changed_again_counts_as_pending(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    config = make_settings()
    await conn.execute(BAD)
    await drain(config)
    assert counts(await read_report(config)) == (0, 0, 1, 0)
    await conn.execute("UPDATE contacts SET email = 'fixed@example.com'")  # not ingested yet
    assert counts(await read_report(config)) == (1, 0, 0, 0)


async def test_oldest_pending_is_the_oldest_waiting_change(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    config = make_settings()
    assert [t.oldest_pending_age for t in (await read_report(config)).tables] == [None, None]
    await conn.execute(GOOD)
    await drain(make_settings(MONDAY_API_KEY=""))  # queued, pending
    await conn.execute("UPDATE npd_sync.queue SET changed_at = now() - interval '1 hour'")
    await conn.execute(GOOD)  # a newer change record
    (contacts, _) = (await read_report(config)).tables
    assert contacts.oldest_pending_age is not None
    assert 3600 <= contacts.oldest_pending_age < 3700
    # Only change records: their time counts.
    await conn.execute("DELETE FROM npd_sync.queue")
    await conn.execute("UPDATE npd_sync.changes SET changed_at = now() - interval '2 hours'")
    (contacts, _) = (await read_report(config)).tables
    assert contacts.oldest_pending_age is not None
    assert 7200 <= contacts.oldest_pending_age < 7300


async def test_last_errors_name_table_and_row_newest_first(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    config = make_settings()
    for i in range(7):
        await conn.execute(
            "INSERT INTO contacts (first_name, email) VALUES ($1, 'not an email')", f"n{i}"
        )
    await drain(config)
    await conn.execute(
        "UPDATE npd_sync.queue SET last_error_at = now() - make_interval(mins => row_key::int)"
    )
    r = await read_report(config)
    assert [(e.table, e.id, e.state, e.attempts) for e in r.errors] == [
        ("contacts", str(i), "failed", 1) for i in range(1, 6)
    ]
    assert (r.errors[0].error.source, r.errors[0].error.code) == ("monday", "ColumnValueException")
    line = next(x for x in status.render(r) if " contacts 1 " in x)
    assert "failed after 1 attempt: ColumnValueException: " in line
    assert len(line) < 200  # one line, the message cut


async def test_listeners_alive_or_gone(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    config = make_settings()
    assert (await read_report(config)).listeners == ()
    text = "\n".join(status.render(await read_report(config)))
    assert "listeners: none alive" in text
    await conn.execute(
        "INSERT INTO npd_sync.listeners (id, hostname, pid, version) VALUES"
        " ('a', 'host-a', 11, '0.1.0')"
    )
    await conn.execute(
        "INSERT INTO npd_sync.listeners (id, hostname, pid, version, started_at, seen_at)"
        " VALUES ('b', 'host-b', 22, '0.1.0', now() - interval '2 hours', now() - interval '31 s')"
    )
    r = await read_report(config)
    assert [(li.host, li.pid, li.alive) for li in r.listeners] == [
        ("host-b", 22, False),
        ("host-a", 11, True),
    ]
    text = "\n".join(status.render(r))
    assert "listeners: 1 alive" in text
    assert "host-b pid 22 v0.1.0" in text
    assert "gone (last seen 31s ago)" in text


async def test_monday_state_and_missing_key(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    await conn.execute(
        "UPDATE npd_sync.monday SET paused_until = now() + interval '1 hour',"
        " pause_reason = 'DAILY_LIMIT_EXCEEDED'"
    )
    await conn.execute(
        "UPDATE npd_sync.monday_limits SET reported = 1234567, in_flight = 0"
        " WHERE name = 'complexity'"
    )
    r = await read_report(make_settings(MONDAY_API_KEY=""))
    assert r.monday.paused
    assert r.monday.pause_reason == "DAILY_LIMIT_EXCEEDED"
    assert r.monday.complexity_remaining == 1234567
    assert not r.monday.api_key_set
    text = "\n".join(status.render(r))
    assert "monday: paused until " in text
    assert ": DAILY_LIMIT_EXCEEDED;" in text
    assert "complexity remaining 1,234,567" in text
    assert "MONDAY_API_KEY is not set" in text


async def test_the_budget_spent_and_the_points_per_synced_row(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    r = await read_report(make_settings())
    assert "  budget: not reported by Monday yet; nothing spent in the past hour" in status.render(
        r
    )
    # Monday reported a budget of 10M a minute; the listeners spent 9M in each of three
    # minutes, syncing 300 rows in each, and one request was refused.
    await conn.execute(
        "UPDATE npd_sync.monday_limits SET quota = 10000000, window_seconds = 60"
        " WHERE name = 'complexity'"
    )
    await conn.execute(
        "INSERT INTO npd_sync.monday_minutes (minute, points, requests, refused, rows_synced)"
        " SELECT date_trunc('minute', now()) - make_interval(mins => g), 9000000, 30,"
        " (g = 1)::int, 300 FROM generate_series(1, 3) g"
    )
    r = await read_report(make_settings())
    assert (
        "  budget: 10,000,000 points a minute; spent 9,000,000 a minute (90.0%) over the last"
        " 3 busy minutes, 1 request refused; 30,000 points per synced row"
    ) in status.render(r)
    monday = status.to_json(r)["monday"]
    assert (monday["complexity_limit"], monday["complexity_window_seconds"]) == (10_000_000, 60)
    assert monday["budget_per_minute"] == 10_000_000
    assert monday["budget_used_per_minute"] == 9_000_000
    assert monday["budget_used_share"] == 0.9
    assert monday["points_per_synced_row"] == 30_000


async def test_a_table_without_a_board_says_so(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    r = await read_report(make_settings(MONDAY_ORGANIZATIONS_BOARD_ID=""))
    (organizations,) = [t for t in r.tables if t.table == "organizations"]
    assert organizations.board_id is None
    assert organizations.notes == (
        "no board: not synced (MONDAY_ORGANIZATIONS_BOARD_ID is not set)",
    )


async def test_the_api_key_never_appears(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    config = make_settings()
    await conn.execute(BAD)
    await drain(config)
    # As if a proxy had echoed the request into an error that was stored.
    echoed = fault.Fault("monday", f"bad gateway {TOKEN}", f"x{TOKEN}", 502, f"r {TOKEN}")
    await conn.execute("UPDATE npd_sync.queue SET last_error = $1", echoed.to_json())
    await conn.execute("UPDATE npd_sync.monday SET pause_reason = $1", f"x {TOKEN}")
    r = await read_report(config)
    lines = status.render(r)
    assert TOKEN not in "\n".join(lines) + str(status.to_json(r))
    assert "[redacted]" in r.errors[0].error.message
    assert "[redacted]" in f"{r.errors[0].error.code} {r.errors[0].error.request_id}"


async def test_status_command_prints_text_and_json(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    config = make_settings()
    await conn.execute(BAD)
    await drain(config)
    out: list[str] = []
    await status.run(config, as_json=False, echo=out.append)
    assert out[0].startswith("npd-sync status at ")
    header = out[2].split()
    assert header[:4] == ["table", "pending", "in", "flight"]
    assert out[3].split() == ["contacts", "0", "0", "1", "0", "-"]
    out.clear()
    await status.run(config, as_json=True, echo=out.append)
    (text,) = out
    assert '"failed": 1' in text


def test_the_inbound_lines() -> None:
    now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    r = report.Report(
        now=now, schema_version=7, tables=(), errors=(), listeners=(),
        monday=report.MondayStatus(True, False, None, None, None, None, None),
        inbound=report.InboundStatus(True, "https://x.example", 12, now, 4.2, 1, 3.0, 1, 1),
        rejected=(), rejected_count=0,
    )  # fmt: skip
    text = status.render(r)
    assert (
        "inbound: on; last webhook 4s ago; 1 item waiting (oldest 3s); 1 open conflict in 1 row"
    ) in text
    assert "  see them with `npd-sync conflicts`" in text
    assert "  reconciles every" not in text  # the timer off
    widened = dataclasses.replace(r.inbound, reconcile_every=3_456.0)
    assert "  reconciles every 57m 36s" in status.render(dataclasses.replace(r, inbound=widened))
    off = dataclasses.replace(r.inbound, enabled=False, open_conflicts=2)
    text = status.render(dataclasses.replace(r, inbound=off))
    assert "inbound: off (NPD_SYNC_PUBLIC_URL is not set); 2 open conflicts in 1 row" in text


def test_json_keys_are_stable() -> None:
    now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    r = report.Report(
        now=now,
        schema_version=2,
        tables=(report.TableStatus("contacts", "1", True, 3, 1, 2, 9, now, 12.3456),),
        errors=(report.ErrorStatus("contacts", "7", "failed", 1, now, BOOM),),
        listeners=(
            report.ListenerStatus("h:1:x", "h", 1, "0.1.0", now, now + timedelta(1), 0.5, True),
        ),
        monday=report.MondayStatus(True, False, None, None, 5, None, now),
        inbound=report.InboundStatus(True, "https://x.example", 6, now, 1.5, 2, 3.0, 1),
        rejected=(report.RejectedStatus("#7", "424242", now, "no captured table has id 7"),),
        rejected_count=3,
    )
    data = status.to_json(r)
    assert list(data) == [
        "now", "schema_version", "tables", "errors", "rejected", "listeners", "monday",
        "inbound",
    ]  # fmt: skip
    assert data["now"] == "2026-11-28T10:00:00Z"
    assert data["tables"] == [
        {
            "table": "contacts",
            "board_id": "1",
            "capture_installed": True,
            "pending": 3,
            "in_flight": 1,
            "failed": 2,
            "synced": 9,
            "oldest_pending_at": "2026-11-28T10:00:00Z",
            "oldest_pending_age_seconds": 12.346,
            "conflicts": 0,
            "notes": [],
            "conflict_rows": 0,
            "unlinked": 0,
        }
    ]
    assert data["errors"] == [
        {
            "table": "contacts",
            "id": "7",
            "state": "failed",
            "attempts": 1,
            "at": "2026-11-28T10:00:00Z",
            "error": "boom code=ColumnValueException http=200 request_id=r-1",
            "code": "ColumnValueException",
            "request_id": "r-1",
            "source": "monday",
        }
    ]
    assert data["rejected"] == {
        "count": 3,
        "latest": [
            {
                "table": "#7",
                "id": "424242",
                "at": "2026-11-28T10:00:00Z",
                "reason": "no captured table has id 7",
            }
        ],
    }
    assert list(data["listeners"][0]) == [
        "id", "host", "pid", "version", "started_at", "seen_at", "seen_ago_seconds", "alive",
        "problem",
    ]  # fmt: skip
    assert list(data["monday"]) == [
        "api_key_set", "paused", "paused_until", "pause_reason", "complexity_remaining",
        "complexity_reset_at", "updated_at", "complexity_limit", "complexity_window_seconds",
        "budget_per_minute", "budget_used_per_minute", "budget_used_share",
        "points_per_synced_row",
    ]  # fmt: skip
    # Every key is documented in the --help epilog.
    documented = set(re.findall(r"\w+", status.JSON_KEYS))
    keys = set(data) | set(data["tables"][0]) | set(data["errors"][0])
    keys |= set(data["listeners"][0]) | set(data["monday"]) | set(data["inbound"])
    keys |= set(data["rejected"]) | set(data["rejected"]["latest"][0])
    assert keys <= documented


async def test_not_installed_is_one_error(empty_dsn: str) -> None:
    config = settings.load(environ={"DATABASE_URL": empty_dsn})
    with pytest.raises(install.NotInstalled, match="run `npd-sync install`"):
        await status.run(config, as_json=False, echo=print)


async def test_an_old_schema_asks_for_install(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    latest = len(sql.migrations())
    await conn.execute("DELETE FROM npd_sync.migrations WHERE version = $1", latest)
    with pytest.raises(
        install.NotInstalled, match=f"at version {latest - 1}, this npd-sync needs {latest}"
    ):
        await status.run(make_settings(), as_json=False, echo=print)


# --- formatting --------------------------------------------------------------------------------


def test_headline_puts_the_code_first() -> None:
    stored = fault.Fault("monday", "invalid value", "ColumnValueException", 200, "abc-1")
    assert fault.headline(stored) == "ColumnValueException: invalid value"
    given_up = fault.ours("gave up after 3 attempts: boom")
    assert fault.headline(given_up) == "gave up after 3 attempts: boom"


# --- counts that say what they count ---------------------------------------------------------


async def test_a_row_unlinked_from_an_item_archived_on_the_board_is_not_counted_as_synced(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('Bob')")
    await drain(config)
    emulator.set_item_state(item, "archived")
    await deliver(config, item, "archive_pulse")
    await drain(config)
    assert await conn.fetchval("SELECT sync_status FROM contacts WHERE id = 1") == "SYNCED"
    r = await read_report(config)
    contacts = r.tables[0]
    assert (contacts.synced, contacts.unlinked) == (1, 1)
    text = status.render(r)
    assert text[3].split() == ["contacts", "0", "0", "0", "1", "-"]
    assert (
        "  contacts: 1 row unlinked: its item was archived or deleted on Monday (not counted as"
        " synced; pushed again, as a new item, when it changes)"
    ) in text
    data = status.to_json(r)["tables"][0]
    assert (data["synced"], data["unlinked"]) == (1, 1)
    # Restored on the board: linked and synced again.
    emulator.set_item_state(item, "active")
    await deliver(config, item, "restore_pulse")
    await drain(config)
    contacts = (await read_report(config)).tables[0]
    assert (contacts.synced, contacts.unlinked) == (2, 0)
    assert not any("unlinked" in line for line in status.render(await read_report(config)))


async def test_open_conflicts_are_counted_with_the_rows_they_are_in(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    # Contact 1 with two fields in conflict, contact 2 with one.
    await conn.execute(
        "INSERT INTO npd_sync.conflicts (table_id, row_key, column_id, policy)"
        " VALUES (1, '1', 'text', 'manual'), (1, '1', 'email', 'manual'),"
        " (1, '2', 'text', 'manual')"
    )
    r = await read_report(make_settings())
    contacts = r.tables[0]
    assert (contacts.conflicts, contacts.conflict_rows) == (3, 2)
    assert (r.inbound.open_conflicts, r.inbound.open_conflict_rows) == (3, 2)
    text = status.render(r)
    assert "  contacts: 3 open conflicts in 2 rows" in text
    assert "inbound: off (NPD_SYNC_PUBLIC_URL is not set); 3 open conflicts in 2 rows" in text
    data = status.to_json(r)
    assert (data["tables"][0]["conflicts"], data["tables"][0]["conflict_rows"]) == (3, 2)
    assert (data["inbound"]["open_conflicts"], data["inbound"]["open_conflict_rows"]) == (3, 2)


async def test_the_reconcile_interval_widened_within_the_days_share(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    # Two boards never reconciled on a 1,000-call day: 1 call a pass each, 5% is 50 a day.
    await conn.execute("UPDATE npd_sync.monday_day SET daily_limit = 1000")
    r = await read_report(make_settings(NPD_SYNC_PUBLIC_URL="https://sync.example.com"))
    # Its 50 calls go evenly over the rest of the day, 2 a pass.
    midnight = daily.until_midnight(await conn.fetchval("SELECT now()"))
    every = r.inbound.reconcile_every
    assert every == pytest.approx(max(600, midnight * 2 / 50), abs=1)
    assert status.to_json(r)["inbound"]["reconcile_every_seconds"] == round(every, 3)
    assert f"  reconciles every {text.age(every)}" in status.render(r)
    assert (await read_report(make_settings())).inbound.reconcile_every is None  # inbound off


async def test_the_days_calls(
    conn: asyncpg.Connection, make_settings: MakeSettings, tmp_path: Path
) -> None:
    # No daily limit known: said so, and the calls are counted all the same.
    await conn.execute("UPDATE npd_sync.monday_day SET own_calls = 120")
    r = await read_report(make_settings())
    assert "  calls today: no daily limit known (set [tuning] daily_calls or plan)" in "\n".join(
        status.render(r)
    )
    # 1,000 a day configured; other apps spent 30 today; npd-sync 120 of which 100 in the past
    # hour: at 100 an hour, the 850 left last 8.5 hours, past midnight or not.
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", daily_calls=1000)))
    await conn.execute("UPDATE npd_sync.monday_day SET others_used = 30")
    await conn.execute(
        "INSERT INTO npd_sync.monday_minutes (minute, requests)"
        " VALUES (date_trunc('minute', now()) - interval '10 minutes', 100)"
    )
    r = await read_report(config)
    assert r.monday.day is not None
    line = next(x for x in status.render(r) if "calls today" in x)
    assert line.startswith(
        "  calls today: 150 of 1,000 (daily_calls), npd-sync's own 120; 100 in the past hour; "
    )
    assert line.endswith(f"reset at {(r.monday.day.resets):%Y-%m-%d} 00:00:00Z")
    data = status.to_json(r)["monday"]
    assert (data["daily_limit"], data["daily_limit_source"]) == (1_000, "daily_calls")
    assert (data["daily_calls_used"], data["daily_calls_own"]) == (150, 120)
    assert data["daily_calls_past_hour"] == 100
    runs_out = r.monday.day.runs_out
    if runs_out is None:  # after 15:30 UTC the 850 calls outlast the day
        assert "they last the day" in line
        assert data["daily_calls_run_out_at"] is None
    else:
        assert data["daily_calls_run_out_at"] == runs_out.isoformat().replace("+00:00", "Z")
    documented = set(re.findall(r"\w+", status.JSON_KEYS))
    assert set(data) <= documented
