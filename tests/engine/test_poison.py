"""A record or row that cannot be handled costs that record or row only: it is set aside with
its reason and everything else flows. Each case once stopped all syncing."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import asyncpg
import pytest

import emulator as emulator_package
from emulator import AccountLimits, Emulator
from listener import fault
from listener.capture import install
from listener.commands import status
from listener.engine import decide, queue
from listener.operations import report as reporting
from tests.conftest import CONTACTS_BOARD, TOKEN, MakeSettings
from tests.helpers import BAD, GOOD, drain, write_config


async def sync_status(conn: asyncpg.Connection, first_name: str) -> str:
    return str(
        await conn.fetchval("SELECT sync_status FROM contacts WHERE first_name = $1", first_name)
    )


async def test_a_key_that_does_not_fit_the_key_column_fails_alone(
    conn: asyncpg.Connection,
    app: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
) -> None:
    # Only a role that may write the change log (npd-sync's own) can write such a record.
    await conn.execute("INSERT INTO npd_sync.changes (table_id, row_key) VALUES (1, 'not-an-int')")
    await app.execute(GOOD)
    config = make_settings()
    worker = await drain(config)
    assert await sync_status(conn, "good") == "SYNCED"
    bad = await conn.fetchrow("SELECT * FROM npd_sync.queue WHERE row_key = 'not-an-int'")
    assert (bad["state"], bad["attempts"]) == ("failed", 1)
    error = fault.from_json(bad["last_error"])
    assert error is not None
    assert error.source == "npd-sync"
    assert "invalid input syntax for type integer" in error.message
    assert worker.stats.failed == 1
    report = await reporting.collect(conn, config, await install.require_current(conn))
    assert report.tables[0].failed == 1
    assert report.errors[0].id == "not-an-int"
    # Not retried: the next drain has nothing to do, and later changes flow.
    await app.execute("INSERT INTO contacts (first_name) VALUES ('later')")
    await drain(config)
    assert await sync_status(conn, "later") == "SYNCED"
    assert await conn.fetchval("SELECT state FROM npd_sync.queue") == "failed"


async def test_change_records_that_can_never_be_synced_are_set_aside_at_ingest(
    conn: asyncpg.Connection,
    app: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    long_key = secrets.token_urlsafe(3000)  # 4,000 bytes that do not compress
    await conn.execute(
        "INSERT INTO npd_sync.changes (table_id, row_key) VALUES (1, $1), (99, '424242')",
        long_key,
    )
    await app.execute(GOOD)
    config = make_settings()
    with caplog.at_level(logging.ERROR, logger="npd_sync.worker"):
        worker = await drain(config)
    assert await sync_status(conn, "good") == "SYNCED"
    assert worker.stats.rejected == 2
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.changes") == 0
    rejected = await conn.fetch("SELECT * FROM npd_sync.rejected ORDER BY table_id")
    assert [(r["table_id"], r["row_key"], r["reason"]) for r in rejected] == [
        (1, long_key[:200], f"key of 4000 bytes (at most {queue.KEY_MAX_BYTES})"),
        (99, "424242", "no captured table has id 99"),
    ]
    logged = [r for r in caplog.records if r.getMessage() == "sync.change_rejected"]
    assert len(logged) == 2
    report = await reporting.collect(conn, config, await install.require_current(conn))
    assert report.rejected_count == 2
    text = "\n".join(status.render(report))
    assert "rejected change records (never valid, not retried): 2" in text
    assert "#99 424242: no captured table has id 99" in text


async def test_a_write_back_the_application_refuses_costs_that_row_only(
    conn: asyncpg.Connection,
    app: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
) -> None:
    # Any constraint or trigger of the application can refuse what npd-sync writes back: here,
    # the FAILED of a row Monday refuses (an invalid email).
    await conn.execute("ALTER TABLE contacts ADD CHECK (sync_status <> 'FAILED')")
    await app.execute(BAD)
    await app.execute(GOOD)
    config = make_settings()
    await drain(config)
    assert await sync_status(conn, "good") == "SYNCED"
    assert await sync_status(conn, "bad") == "PENDING"  # what the application allows
    entry = await conn.fetchrow("SELECT * FROM npd_sync.queue")
    assert entry["state"] == "failed"
    error = fault.from_json(entry["last_error"])
    assert error is not None
    assert (error.source, error.code) == ("monday", "ColumnValueException")
    assert "; write-back refused: " in error.message
    assert "check constraint" in error.message
    assert len(emulator.requests) == 1  # was: 17 requests in 9 s, and nothing else synced
    await app.execute("INSERT INTO contacts (first_name) VALUES ('later')")
    await drain(config)
    assert await sync_status(conn, "later") == "SYNCED"
    assert len(emulator.requests) == 2


async def test_a_refused_write_back_of_synced_is_retried_then_failed_keeping_the_item(
    conn: asyncpg.Connection,
    app: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(decide, "backoff", lambda *_, **__: 60.0)  # retried only when told
    await conn.execute(
        """
        CREATE FUNCTION stubborn() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.first_name = 'stubborn' AND NEW.sync_status = 'SYNCED' THEN
                RAISE EXCEPTION 'stubborn rows are never SYNCED';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER stubborn BEFORE UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION stubborn();
        """
    )
    await app.execute("INSERT INTO contacts (first_name) VALUES ('stubborn'), ('good')")
    tuning = write_config(tmp_path / "t.toml", max_attempts=2)
    config = make_settings(NPD_SYNC_CONFIG=str(tuning))
    await drain(config)
    assert await sync_status(conn, "good") == "SYNCED"
    (_, item) = sorted(emulator.items(CONTACTS_BOARD), key=lambda i: i.name)
    assert item.name == "stubborn"
    entry = await conn.fetchrow("SELECT * FROM npd_sync.queue")
    assert (entry["state"], entry["attempts"], entry["monday_id"]) == ("pending", 1, item.id)
    error = fault.from_json(entry["last_error"])
    assert error is not None
    assert error.source == "database"
    assert error.message == "write-back refused: stubborn rows are never SYNCED"
    assert error.code == "P0001"  # the application's trigger raised it

    await conn.execute("UPDATE npd_sync.queue SET next_attempt_at = now()")
    requests = len(emulator.requests)
    await drain(config)
    entry = await conn.fetchrow("SELECT * FROM npd_sync.queue")
    assert (entry["state"], entry["attempts"], entry["monday_id"]) == ("failed", 2, item.id)
    error = fault.from_json(entry["last_error"])
    assert error is not None
    assert error.message.startswith("gave up after 2 attempts: write-back refused")
    assert len(emulator.requests) == requests  # Monday held the values already
    assert len(emulator.items(CONTACTS_BOARD)) == 2  # and no second item, then or later
    await app.execute("UPDATE contacts SET notes = 'n' WHERE first_name = 'stubborn'")
    await drain(config)
    assert len(emulator.items(CONTACTS_BOARD)) == 2


async def test_a_request_monday_refuses_whole_is_split_until_the_row_at_fault_fails_alone(
    conn: asyncpg.Connection,
    app: asyncpg.Connection,
    make_settings: MakeSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One row's value makes the request too large for Monday (HTTP 413): the request fails
    # whole, with an error that says nothing of which row.
    monkeypatch.setattr(emulator_package.server, "MAX_BODY_BYTES", 20_000)
    async with Emulator(token=TOKEN, limits=AccountLimits.unlimited()) as small:
        await app.execute(
            "INSERT INTO contacts (first_name, role_title) VALUES"
            " ('a', 'x'), ('b', repeat('y', 30000)), ('c', 'z'), ('d', NULL)"
        )
        await drain(make_settings(MONDAY_API_URL=small.url))
        statuses = dict(await conn.fetch("SELECT first_name, sync_status FROM contacts"))
        assert statuses == {"a": "SYNCED", "b": "FAILED", "c": "SYNCED", "d": "SYNCED"}
        assert "http=413" in await conn.fetchval(
            "SELECT sync_error FROM contacts WHERE first_name = 'b'"
        )
        assert sorted(i.name for i in small.items(CONTACTS_BOARD)) == ["a", "c", "d"]
