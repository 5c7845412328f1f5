"""The worker against a real database and the Monday emulator over real HTTP."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg
import pytest

from emulator import Emulator
from listener import db, settings
from listener.capture import install
from tests.conftest import CONTACTS_BOARD, ORGANIZATIONS_BOARD, MakeSettings
from tests.helpers import ENUM_UUID_SCHEMA, drain, write_config

FULL_CONTACT = (
    "INSERT INTO contacts (first_name, last_name, email, phone, role_title, notes)"
    " VALUES ('Ada', 'Lovelace', 'ada@example.com', '+44 20 7946 0958', 'Countess',"
    " 'First programmer')"
)


async def row(conn: asyncpg.Connection, table: str = "contacts", key: int = 1) -> asyncpg.Record:
    record = await conn.fetchrow(f"SELECT * FROM {table} WHERE id = $1", key)
    assert record is not None
    return record


async def queued(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM npd_sync.queue"))


async def test_creates_item_for_a_full_contact(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute(FULL_CONTACT)
    await drain(make_settings())
    (item,) = emulator.items(CONTACTS_BOARD)
    assert item.name == "Ada Lovelace"
    assert item.values == {
        "email": {"email": "ada@example.com", "text": "ada@example.com"},
        "phone": {"phone": "+442079460958", "countryShortName": "GB"},
        "text": "Countess",
        "long_text": {"text": "First programmer"},
        "npd_id": "1",
    }
    r = await row(conn)
    assert (r["monday_id"], r["sync_status"], r["sync_error"]) == (item.id, "SYNCED", None)
    assert r["last_synced_at"] is not None
    assert await queued(conn) == 0


async def test_minimal_contact_and_organizations(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('Grace')")
    await conn.execute(
        "INSERT INTO organizations (name, notes, address_line1, city, postal_code, country)"
        " VALUES ('Acme', 'Anvils', '1 Road Runner Way', 'Phoenix', '85001', 'US'),"
        " ('Initech', NULL, NULL, NULL, NULL, NULL)"
    )
    await drain(make_settings())
    (contact,) = emulator.items(CONTACTS_BOARD)
    assert (contact.name, contact.values) == ("Grace", {"npd_id": "1"})
    acme, initech = emulator.items(ORGANIZATIONS_BOARD)
    assert acme.name == "Acme"
    assert acme.values == {
        "long_text": {"text": "Anvils"},
        "address": "1 Road Runner Way, Phoenix, 85001, US",
        "npd_id": "1",
    }
    assert (initech.name, initech.values) == ("Initech", {"npd_id": "2"})
    statuses = await conn.fetch("SELECT sync_status FROM organizations")
    assert [s[0] for s in statuses] == ["SYNCED", "SYNCED"]


async def test_updates_the_item_when_the_row_has_one(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    existing = emulator.add_item(CONTACTS_BOARD, "Old name", {"text": "old role"})
    await conn.execute(
        "INSERT INTO contacts (first_name, last_name, monday_id) VALUES ('New', 'Name', $1)",
        existing.id,
    )
    await drain(make_settings())
    (item,) = emulator.items(CONTACTS_BOARD)
    assert item.id == existing.id
    assert item.name == "New Name"
    # Columns the row has no value for are cleared on an update.
    assert item.values == {"npd_id": "1"}
    assert (await row(conn))["sync_status"] == "SYNCED"

    await conn.execute("UPDATE contacts SET role_title = 'Admiral'")
    await drain(make_settings())
    assert emulator.item(existing.id).values["text"] == "Admiral"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("enabled", "direction"),
    [
        (False, "BIDIRECTIONAL"),
        (None, "BIDIRECTIONAL"),
        (True, "MONDAY_TO_NPD"),
        (True, "NONE"),
        (True, None),
    ],
)
async def test_rows_not_to_push_are_skipped_and_untouched(
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    enabled: bool | None,
    direction: str | None,
) -> None:
    await conn.execute(
        "ALTER TABLE contacts ALTER sync_enabled DROP NOT NULL, ALTER sync_direction DROP NOT NULL"
    )
    await conn.execute(
        "INSERT INTO contacts (first_name, sync_enabled, sync_direction) VALUES ('x', $1, $2)",
        enabled,
        direction,
    )
    before = await row(conn)
    await drain(make_settings())
    assert emulator.items() == []
    assert await row(conn) == before
    assert await queued(conn) == 0


async def test_nothing_is_sent_without_an_api_key(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
    await drain(make_settings(MONDAY_API_KEY=""))
    assert emulator.requests == []
    assert await queued(conn) == 1  # recorded and left pending
    assert (await row(conn))["sync_status"] == "PENDING"


async def test_table_without_a_board_stays_pending(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
    await conn.execute("INSERT INTO organizations (name) VALUES ('y')")
    await drain(make_settings(MONDAY_CONTACTS_BOARD_ID=""))
    assert emulator.items(CONTACTS_BOARD) == []
    assert len(emulator.items(ORGANIZATIONS_BOARD)) == 1
    assert await conn.fetchval("SELECT table_id FROM npd_sync.queue") == 1


async def test_row_gone_before_processing_is_not_an_error(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
    await conn.execute("DELETE FROM contacts")
    worker = await drain(make_settings())
    assert emulator.requests == []
    assert await queued(conn) == 0
    assert (worker.stats.failed, worker.stats.retried) == (0, 0)


async def test_delete_archives_the_item(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
    await drain(make_settings())
    (item,) = emulator.items(CONTACTS_BOARD)
    await conn.execute("DELETE FROM contacts")
    await drain(make_settings())
    assert emulator.item(item.id).state == "archived"  # type: ignore[union-attr]
    assert await queued(conn) == 0


async def test_only_items_npd_sync_linked_to_the_row_are_archived(
    conn: asyncpg.Connection,
    app: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await app.execute("INSERT INTO contacts (first_name) VALUES ('mine')")
    await drain(make_settings())
    (mine,) = emulator.items(CONTACTS_BOARD)
    elsewhere = emulator.add_item(ORGANIZATIONS_BOARD, "not npd-sync's")
    # Change records only a role that may write the change log can write (npd-sync's own),
    # naming items npd-sync never linked to their rows: the listener archived them all.
    await conn.execute(
        "INSERT INTO npd_sync.changes (table_id, row_key, archive_id) VALUES"
        " (1, '424242', $1), (1, '424243', $2), (1, '424244', 'abc'),"
        " (1, '424245', '2999999999')",
        elsewhere.id,
        mine.id,
    )
    with caplog.at_level(logging.WARNING, logger="npd_sync.worker"):
        await drain(make_settings())
    assert emulator.item(elsewhere.id).state == "active"  # type: ignore[union-attr]
    assert emulator.item(mine.id).state == "active"  # type: ignore[union-attr]
    refused = {
        (r.key, r.item, r.reason)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() in ("sync.archive_refused", "sync.archives_refused")
        and hasattr(r, "item")
    }
    assert (
        "424242",
        elsewhere.id,
        f"on board {ORGANIZATIONS_BOARD}, not on the table's board",
    ) in refused
    assert ("424243", mine.id, "linked to row 1 of table id 1") in refused
    assert await queued(conn) == 0
    # The row's own delete archives its item.
    await app.execute("DELETE FROM contacts")
    await drain(make_settings())
    assert emulator.item(mine.id).state == "archived"  # type: ignore[union-attr]


async def test_the_item_of_a_row_synced_before_links_were_kept_is_archived_after_a_look(
    conn: asyncpg.Connection,
    app: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
) -> None:
    await app.execute("INSERT INTO contacts (first_name) VALUES ('old')")
    await drain(make_settings())
    (item,) = emulator.items(CONTACTS_BOARD)
    await conn.execute("DELETE FROM npd_sync.links")  # as an older npd-sync left it
    await app.execute("DELETE FROM contacts")
    await drain(make_settings())
    assert emulator.item(item.id).state == "archived"  # type: ignore[union-attr]
    assert any(r.root_fields[0] == "items" for r in emulator.requests)


async def test_api_failure_leaves_the_row_retryable(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
    emulator.set_faults(http_500=1.0)
    # A backoff long enough that the drain never meets the retry (uniform(0, 1) s, the
    # default's first, fell within a few milliseconds now and then: two retries).
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", backoff_base=30)))
    worker = await drain(config)
    assert worker.stats.retried == 1
    r = await row(conn)
    assert r["sync_status"] == "PENDING"
    assert "http=500" in r["sync_error"]
    entry = await conn.fetchrow("SELECT * FROM npd_sync.queue")
    assert (entry["state"], entry["attempts"], entry["lease_until"]) == ("pending", 1, None)

    emulator.set_faults(http_500=0.0)
    await conn.execute("UPDATE npd_sync.queue SET next_attempt_at = now()")
    await drain(make_settings())
    r = await row(conn)
    assert (r["sync_status"], r["sync_error"]) == ("SYNCED", None)
    assert len(emulator.items(CONTACTS_BOARD)) == 1


async def test_permanent_error_fails_one_row_not_its_batch(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute(
        "INSERT INTO contacts (first_name, email) VALUES ('good', 'good@example.com'),"
        " ('bad', 'not an email'), ('also good', NULL)"
    )
    await drain(make_settings())
    statuses = dict(await conn.fetch("SELECT first_name, sync_status FROM contacts"))
    assert statuses == {"good": "SYNCED", "bad": "FAILED", "also good": "SYNCED"}
    error = await conn.fetchval("SELECT sync_error FROM contacts WHERE first_name = 'bad'")
    assert "ColumnValueException" in error
    assert sorted(i.name for i in emulator.items(CONTACTS_BOARD)) == ["also good", "good"]
    # FAILED stays failed until the row changes.
    assert await conn.fetchval("SELECT state FROM npd_sync.queue") == "failed"
    await conn.execute("UPDATE contacts SET email = 'fixed@example.com' WHERE first_name = 'bad'")
    await drain(make_settings())
    assert await conn.fetchval("SELECT sync_status FROM contacts WHERE first_name = 'bad'") == (
        "SYNCED"
    )


async def test_unreadable_phone_fails_without_a_request(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute("INSERT INTO contacts (first_name, phone) VALUES ('x', '0612 345')")
    await drain(make_settings())
    r = await row(conn)
    assert r["sync_status"] == "FAILED"
    assert "phone" in r["sync_error"]
    assert emulator.requests == []


async def test_create_whose_reply_was_lost_is_not_repeated(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
    emulator.set_faults(next_drop=1)  # applied on Monday, connection dropped before the reply
    await drain(make_settings())
    assert len(emulator.items(CONTACTS_BOARD)) == 1
    assert (await row(conn))["sync_status"] == "PENDING"
    assert await conn.fetchval("SELECT uncertain FROM npd_sync.queue")
    await conn.execute("UPDATE npd_sync.queue SET next_attempt_at = now()")
    await drain(make_settings())
    (item,) = emulator.items(CONTACTS_BOARD)  # found by npd_id and adopted, not created again
    assert (await row(conn))["monday_id"] == item.id


async def test_item_deleted_on_monday_is_recreated(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
    await drain(make_settings())
    (item,) = emulator.items(CONTACTS_BOARD)
    emulator.set_item_state(item.id, "deleted")
    await conn.execute("UPDATE contacts SET notes = 'changed'")
    await drain(make_settings())
    (again,) = emulator.items(CONTACTS_BOARD, states=["active"])
    assert again.id != item.id
    assert again.values["long_text"] == {"text": "changed"}
    r = await row(conn)
    assert (r["monday_id"], r["sync_status"]) == (again.id, "SYNCED")


async def test_row_locked_by_the_application_is_written_back_later(
    dsn: str, conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
    app = await asyncpg.connect(dsn)
    try:
        async with app.transaction():
            await app.execute("SELECT * FROM contacts FOR UPDATE")
            await drain(make_settings())  # must not wait for the application's lock
        assert (await row(conn))["sync_status"] == "PENDING"
        entry = await conn.fetchrow("SELECT monday_id, state FROM npd_sync.queue")
        (item,) = emulator.items(CONTACTS_BOARD)
        assert entry["monday_id"] == item.id
    finally:
        await app.close()
    await conn.execute("UPDATE npd_sync.queue SET next_attempt_at = now()")
    await drain(make_settings())
    assert len(emulator.items(CONTACTS_BOARD)) == 1
    r = await row(conn)
    assert (r["monday_id"], r["sync_status"]) == (item.id, "SYNCED")


async def test_enum_uuid_bigint_schema(empty_dsn: str, emulator: Emulator) -> None:
    conn = await db.connect(empty_dsn)
    try:
        await conn.execute(ENUM_UUID_SCHEMA)
        await install.install(conn, settings.load(environ={}).tables)
        app = await asyncpg.connect(empty_dsn)
        await app.execute(
            "INSERT INTO contacts (first_name, sync_enabled, sync_direction, sync_status)"
            " VALUES ('Ada', true, 'NPD_TO_MONDAY', 'PENDING')"
        )
        await app.execute(
            "INSERT INTO organizations (name, sync_enabled, sync_direction)"
            " VALUES ('Acme', true, 'BIDIRECTIONAL')"
        )
        config = settings.load(
            environ={
                "DATABASE_URL": empty_dsn,
                "MONDAY_API_KEY": "test-token",
                "MONDAY_API_URL": emulator.url,
                "MONDAY_CONTACTS_BOARD_ID": CONTACTS_BOARD,
                "MONDAY_ORGANIZATIONS_BOARD_ID": ORGANIZATIONS_BOARD,
            }
        )
        await drain(config)
        contact = await app.fetchrow("SELECT id::text, monday_id, sync_status::text FROM contacts")
        (item,) = emulator.items(CONTACTS_BOARD)
        assert (contact["monday_id"], contact["sync_status"]) == (int(item.id), "SYNCED")
        assert item.values["npd_id"] == contact["id"]
        assert await app.fetchval("SELECT sync_status::text FROM organizations") == "SYNCED"
        await app.close()
    finally:
        await conn.close()


async def test_a_row_changed_back_and_forth_ends_in_its_latest_state(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    await conn.execute("INSERT INTO contacts (first_name, role_title) VALUES ('x', 'A')")
    await drain(make_settings())
    for role in ("B", "A", "B"):  # the same requests again, within Monday's replay window
        await conn.execute("UPDATE contacts SET role_title = $1", role)
        await drain(make_settings())
    (item,) = emulator.items(CONTACTS_BOARD)
    assert item.values["text"] == "B"
    assert not any(r.replayed for r in emulator.requests)


# --- sending less: only what Monday does not hold yet --------------------------------------

ADA = (
    "INSERT INTO contacts (first_name, last_name, email, phone, role_title, sync_direction)"
    " VALUES ('Ada', 'Lovelace', 'ada@example.com', '+44 20 7946 0958', 'Countess',"
    " 'NPD_TO_MONDAY')"
)


async def test_an_update_of_no_mapped_value_sends_nothing(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await conn.execute(ADA)
    await drain(config)
    sent = emulator.counters.mutations
    # An unmapped column, then an ORM rewriting every column with the value it had.
    await conn.execute("UPDATE contacts SET updated_at = now() + interval '1 hour'")
    await conn.execute(
        "UPDATE contacts SET first_name = first_name, last_name = last_name, email = email,"
        " phone = phone, role_title = role_title, notes = notes, updated_at = now()"
    )
    worker = await drain(config)
    assert emulator.counters.mutations == sent
    assert worker.stats.unchanged == 1  # handled, and nothing to send
    assert (await row(conn))["sync_status"] == "SYNCED"


async def test_an_update_sends_only_the_columns_that_changed(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await conn.execute(ADA)
    await drain(config)
    (item,) = emulator.items(CONTACTS_BOARD)
    # Someone changes the role on the board; the database changes the phone, ORM-style.
    emulator.edit_item(item.id, {"text": "set on the board"})
    await conn.execute(
        "UPDATE contacts SET first_name = first_name, last_name = last_name, email = email,"
        " phone = '+44 20 7946 0000', role_title = role_title, notes = notes"
    )
    sent = emulator.counters.mutations
    await drain(config)
    assert emulator.counters.mutations == sent + 1
    after = emulator.item(item.id)
    assert after is not None
    assert after.values["phone"] == {"phone": "+442079460000", "countryShortName": "GB"}
    assert after.values["text"] == "set on the board"  # not sent, so not overwritten
    assert after.name == "Ada Lovelace"


async def test_a_failed_row_set_back_to_what_monday_holds_is_synced_without_a_request(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await conn.execute(ADA)
    await drain(config)
    await conn.execute("UPDATE contacts SET email = 'not an email'")
    await drain(config)
    assert (await row(conn))["sync_status"] == "FAILED"
    sent = emulator.counters.mutations
    await conn.execute("UPDATE contacts SET email = 'ada@example.com'")
    await drain(config)
    assert emulator.counters.mutations == sent
    assert (await row(conn))["sync_status"] == "SYNCED"


async def test_each_row_keeps_its_attempts(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    from listener import attempts

    await conn.execute(FULL_CONTACT)
    await drain(make_settings())
    await conn.execute("UPDATE contacts SET role_title = 'Queen of numbers'")
    emulator.set_faults(http_500=1.0)  # Monday fails the update, and then lets it through
    await drain(make_settings())
    emulator.set_faults(http_500=0.0)
    await conn.execute("UPDATE npd_sync.queue SET next_attempt_at = now()")
    await drain(make_settings())
    found = await attempts.of_row(conn, 1, "1")
    (item,) = emulator.items(CONTACTS_BOARD)
    assert [(a.outcome, a.action, a.item_id) for a in found] == [
        ("synced", "update", item.id), ("retried", "update", item.id), ("synced", "create", item.id)
    ]  # fmt: skip
    assert found[0].sent == {"text": "Queen of numbers"}
    assert found[1].error is not None
    assert found[1].error.http == 500
    assert all(a.request_id for a in found)  # Monday's, for its support
    assert found[2].sent is not None
    assert found[2].sent["email"] == {"email": "ada@example.com", "text": "ada@example.com"}
    await attempts.forget(conn, 1e-9)
    assert await attempts.of_row(conn, 1, "1") == []


async def test_scarce_requests_of_a_minute_wait_for_rows_unless_a_batch_is_full(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    # 15 of 40 requests spent 5 s into the minute: beyond the burst (10) and the share of the
    # 5 s, so the next request waits for its share. Twelve changes, batches of five: the two
    # full batches go (waiting would not make them carry more), the last two rows wait in the
    # queue, unclaimed, for the next request.
    await conn.execute(
        "UPDATE npd_sync.monday_limits SET quota = 40, window_seconds = 60, reported = 25,"
        " in_flight = 0, reset_at = now() + interval '55 s' WHERE name = 'requests'"
    )
    await conn.execute(
        "INSERT INTO contacts (first_name) SELECT 'row ' || g FROM generate_series(1, 12) g"
    )
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", batch_size=5)))
    await drain(config)
    await drain(config)
    assert [r.mutations for r in emulator.requests if r.mutations] == [5, 5]
    left = await conn.fetch("SELECT state, lease_until FROM npd_sync.queue")
    assert [(r["state"], r["lease_until"]) for r in left] == [("pending", None)] * 2
    assert not await conn.fetchval("SELECT count(*) FROM contacts WHERE sync_status = 'FAILED'")
