"""`npd-sync check` against a real database and the emulator over real HTTP: a healthy setup
passes, and each thing that can be wrong is caught with a hint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from emulator import AccountLimits, Emulator
from listener import db, settings, sql
from listener.capture import install
from listener.commands import check
from listener.monday import daily
from tests.conftest import CONTACTS_BOARD, ORGANIZATIONS_BOARD, SAMPLE_SCHEMA, TOKEN, MakeSettings
from tests.inbound.helpers import PUBLIC_URL


async def run(config: settings.Settings) -> tuple[bool, list[check.Result]]:
    results: list[check.Result] = []
    ok = await check.checks(config, results.append)
    return ok, results


def failures(results: list[check.Result]) -> list[tuple[str, str]]:
    return [(r.subject, r.message) for r in results if r.mark == "fail"]


def warnings(results: list[check.Result]) -> list[tuple[str, str]]:
    return [(r.subject, r.message) for r in results if r.mark == "warn"]


def text(results: list[check.Result]) -> str:
    return "\n".join(line for r in results for line in check.format_result(r))


async def test_a_healthy_setup_passes(make_settings: MakeSettings) -> None:
    ok, results = await run(make_settings())
    assert ok, text(results)
    assert all(r.mark == "ok" for r in results), text(results)
    assert [(r.subject, r.message.split(" (")[0]) for r in results] == [
        ("database", "reachable"),
        ("contacts", "table contacts has the sync columns and the 6 mapped ones"),
        ("organizations", "table organizations has the sync columns and the 8 mapped ones"),
        ("npd-sync", f"schema installed, version {len(sql.migrations())}"),
        ("contacts", "capture installed and current"),
        ("organizations", "capture installed and current"),
        ("MONDAY_API_KEY", "set"),
        ("Monday token", "accepted by " + make_settings().api_url),
        ("Monday API version", "2026-10"),
        ("contacts", f"board {CONTACTS_BOARD}"),
        ("organizations", f"board {ORGANIZATIONS_BOARD}"),
        ("inbound", "off"),
        ("daily limit", "none known: calls are not paced over the day"),
    ]
    assert text(results).splitlines()[0].startswith("✓ database: reachable (")


async def test_the_daily_limit_monday_states_and_what_reconciliation_costs_within_it(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    async with Emulator(token=TOKEN, limits=AccountLimits.standard()) as standard:
        config = make_settings(MONDAY_API_URL=standard.url, NPD_SYNC_PUBLIC_URL=PUBLIC_URL)
        # (The webhooks are not installed: a failure, not what this test is about.)
        _, results = await run(config)
        assert text(results).splitlines()[-2:] == [
            "✓ daily limit: 1,000 calls a day (Monday's figure)",
            # Issue 17: every 600 s, 2 boards at 1 call a pass: 288 a day, 29% of the day.
            "✓ reconciliation: every 3,456 s over 2 boards: 50 calls a day (5.0% of 1,000); "
            "every 600 s (reconcile_interval) would cost 288 (28.8%), over reconcile_share (5%)",
        ]
        # What the passes cost, once learnt: a full read of the contacts' board takes 20 pages.
        await conn.execute(
            "INSERT INTO npd_sync.boards (board_id, last_pull_at, pass_calls, full_calls)"
            " VALUES ($1, now(), 1, 20)",
            CONTACTS_BOARD,
        )
        _, results = await run(config)
        assert results[-1].message.startswith("every 5,574 s over 2 boards: 50 calls a day")
        # Monday does not tell it now: what the listeners last learnt of it holds.
        standard.set_limits(replace(standard.limits, platform_api_readable=False))
        await conn.execute("UPDATE npd_sync.monday_day SET daily_limit = 25000")
        _, results = await run(config)
        assert results[-2].message == "25,000 calls a day (Monday's figure)"
        assert results[-1].message == "every 600 s over 2 boards: 307 calls a day (1.2% of 25,000)"


@pytest.mark.parametrize(
    ("chosen", "shown"),
    [
        (daily.Limit(10_000, "monday"), "10,000 calls a day (Monday's figure)"),
        (daily.Limit(2_000, "daily_calls"), "2,000 calls a day ([tuning] daily_calls)"),
        (daily.Limit(200, "plan"), "200 calls a day (the free plan's)"),
    ],
)
def test_the_daily_limit_and_its_source(chosen: daily.Limit, shown: str) -> None:
    assert check.daily_limit(chosen, "free").message == shown


async def test_the_plans_daily_limit_when_monday_does_not_say(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    path = tmp_path / "tuning.toml"
    path.write_text('[tuning]\nplan = "standard"\n')
    _, results = await run(make_settings(NPD_SYNC_CONFIG=str(path)))
    assert (
        text(results).splitlines()[-1] == "✓ daily limit: 1,000 calls a day (the standard plan's)"
    )


@pytest.mark.parametrize(
    ("tuning", "chosen", "shown"),
    [
        ({}, None, "every 600 s over 1 board: 144 calls a day (no daily limit known)"),
        ({}, 10_000, "every 600 s over 1 board: 144 calls a day (1.4% of 10,000)"),
        (
            {"reconcile_share": 0.2},
            1_000,
            "every 600 s over 1 board: 144 calls a day (14.4% of 1,000)",
        ),
        (
            {"reconcile_interval": 60},
            10_000,
            "every 173 s over 1 board: 500 calls a day (5.0% of 10,000); every 60 s "
            "(reconcile_interval) would cost 1,440 (14.4%), over reconcile_share (5%)",
        ),
        ({"reconcile_interval": 0}, 1_000, "off (reconcile_interval = 0): only `npd-sync pull` "
         "catches edits whose webhooks were lost"),
    ],
)  # fmt: skip
def test_what_reconciliation_costs_a_day(
    tuning: dict[str, float], chosen: int | None, shown: str
) -> None:
    limit = daily.Limit(chosen, "monday") if chosen else None
    result = check.reconciliation(settings.Tuning(**tuning), limit, [daily.PassCost()])
    assert result.message == shown


async def test_a_missing_column_in_the_table(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    # (The capture's UPDATE OF trigger holds on to role_title.)
    await conn.execute("DROP TRIGGER npd_sync_update ON contacts")
    await conn.execute("ALTER TABLE contacts DROP COLUMN role_title, DROP COLUMN sync_status")
    ok, results = await run(make_settings())
    assert not ok
    assert failures(results) == [
        ("contacts", "missing required columns: sync_status"),
        ("contacts", "missing mapped columns: role_title"),
    ]
    hints = [r.hint for r in results if r.mark == "fail"]
    assert hints[0] == "add sync_status text (or an enum with PENDING, SYNCED, FAILED)"
    assert hints[1] is not None
    assert "NPD_SYNC_CONFIG" in hints[1]


async def test_a_wrongly_typed_column_in_the_table(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    await conn.execute("DROP TRIGGER npd_sync_update ON organizations")
    await conn.execute("ALTER TABLE organizations ALTER sync_enabled TYPE text")
    ok, results = await run(make_settings())
    assert not ok
    assert failures(results) == [("organizations", "sync_enabled is text; expected boolean")]


async def test_a_key_that_is_not_unique_and_not_null(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    await conn.execute("ALTER TABLE contacts DROP CONSTRAINT contacts_pkey")
    ok, results = await run(make_settings())
    assert not ok
    assert failures(results) == [
        ("contacts", "key column id must be the primary key, or unique and NOT NULL")
    ]
    assert 'ALTER TABLE ... ADD PRIMARY KEY ("id")' in text(results)


async def test_a_mapped_column_missing_on_the_board(
    make_settings: MakeSettings, emulator: Emulator
) -> None:
    emulator.remove_column(CONTACTS_BOARD, "phone")
    emulator.add_column(CONTACTS_BOARD, "phone_mk1", "phone", title="Phone number")
    ok, results = await run(make_settings())
    assert not ok
    assert failures(results) == [
        ("contacts", f"column 'phone' (phone) not on board {CONTACTS_BOARD} (contacts)")
    ]
    (hint,) = [r.hint for r in results if r.mark == "fail"]
    assert hint is not None
    assert "phone columns on the board: phone_mk1 (Phone number)" in hint
    # The other board is fine, and says so.
    assert ("ok", "organizations") in [(r.mark, r.subject) for r in results]


async def test_a_column_of_another_type_on_the_board(
    make_settings: MakeSettings, emulator: Emulator
) -> None:
    emulator.remove_column(ORGANIZATIONS_BOARD, "long_text")
    emulator.add_column(ORGANIZATIONS_BOARD, "long_text", "text")
    ok, results = await run(make_settings())
    assert not ok
    assert failures(results) == [
        (
            "organizations",
            f"column 'long_text' on board {ORGANIZATIONS_BOARD} (organizations) is text;"
            " the mapping writes long_text",
        )
    ]


async def test_a_board_that_does_not_exist(make_settings: MakeSettings) -> None:
    ok, results = await run(make_settings(MONDAY_CONTACTS_BOARD_ID="1234"))
    assert not ok
    assert failures(results) == [("contacts", "board 1234 not found")]
    (failure,) = [r for r in results if r.mark == "fail"]
    assert "MONDAY_CONTACTS_BOARD_ID" in (failure.hint or "")


async def test_a_bad_token(make_settings: MakeSettings) -> None:
    ok, results = await run(make_settings(MONDAY_API_KEY="not-the-token"))
    assert not ok
    (failure,) = [r for r in results if r.mark == "fail"]
    assert failure.subject == "Monday token"
    assert failure.message.startswith("refused by http://")
    assert "code=UNAUTHORIZED http=401" in failure.message
    assert failure.hint is not None
    assert "MONDAY_API_KEY" in failure.hint
    assert "not-the-token" not in text(results)


async def test_no_api_key(make_settings: MakeSettings) -> None:
    ok, results = await run(make_settings(MONDAY_API_KEY=""))
    assert not ok
    assert failures(results) == [
        ("MONDAY_API_KEY", "not set: nothing is sent to Monday, changes stay pending")
    ]


async def test_monday_unreachable(make_settings: MakeSettings) -> None:
    ok, results = await run(make_settings(MONDAY_API_URL="http://127.0.0.1:1/v2"))
    assert not ok
    (failure,) = [r for r in results if r.mark == "fail"]
    assert failure.message.startswith("no usable answer from http://127.0.0.1:1/v2: ")
    assert "MONDAY_API_URL" in (failure.hint or "")


async def test_a_version_served_instead_of_the_one_asked_for_is_a_warning(
    make_settings: MakeSettings,
) -> None:
    ok, results = await run(make_settings(MONDAY_API_VERSION="2024-10"))
    assert ok
    assert warnings(results) == [
        ("Monday API version", "2024-10 requested but 2026-07 served (2024-10 is deprecated or"
         " unknown)"),
    ]  # fmt: skip
    ok, results = await run(make_settings(MONDAY_API_VERSION="2027-01"))
    assert ok
    assert warnings(results) == [
        ("Monday API version", "2027-01 is a release candidate: it may change without notice")
    ]


async def test_a_version_monday_refuses_is_a_failure(
    make_settings: MakeSettings, emulator: Emulator
) -> None:
    # Our settings refuse a malformed version before anything is sent; Monday may still refuse
    # one that looks right to us.
    config = make_settings().model_copy(update={"api_version": "2026"})
    ok, results = await run(config)
    assert not ok
    (failure,) = [r for r in results if r.mark == "fail"]
    assert failure.subject == "Monday API version"
    assert "InvalidVersionException" in failure.message
    assert "MONDAY_API_VERSION" in (failure.hint or "")


async def test_no_npd_id_column_on_the_board(
    make_settings: MakeSettings, emulator: Emulator
) -> None:
    # The listener writes every row's key into npd_id: without the column each push fails.
    emulator.remove_column(ORGANIZATIONS_BOARD, "npd_id")
    ok, results = await run(make_settings())
    assert not ok
    (failure,) = [r for r in results if r.mark == "fail"]
    assert failure.subject == "organizations"
    assert "no column 'npd_id'" in failure.message
    assert "duplicate protection is off" in failure.message


async def test_npd_id_turned_off_is_a_warning(make_settings: MakeSettings, tmp_path: Path) -> None:
    config_file = tmp_path / "m.toml"
    config_file.write_text(
        "[tables.contacts]\n"
        f'board_id = "{CONTACTS_BOARD}"\nname = "{{first_name}}"\nnpd_id_column = ""\n'
    )
    ok, results = await run(make_settings(NPD_SYNC_CONFIG=str(config_file)))
    assert ok, text(results)
    assert warnings(results) == [
        ("organizations", "capture still attached, but the table is not configured"),
        ("contacts", "duplicate protection is off (npd_id_column is not set)"),
    ]


async def test_a_table_without_a_board_is_a_warning(make_settings: MakeSettings) -> None:
    ok, results = await run(make_settings(MONDAY_ORGANIZATIONS_BOARD_ID=""))
    assert ok
    assert warnings(results) == [
        ("organizations", "not synced (MONDAY_ORGANIZATIONS_BOARD_ID is not set)")
    ]


async def test_triggers_not_installed(empty_dsn: str, emulator: Emulator) -> None:
    conn = await db.connect(empty_dsn)
    await conn.execute(SAMPLE_SCHEMA)
    await conn.close()
    config = settings.load(
        environ={
            "DATABASE_URL": empty_dsn,
            "MONDAY_API_KEY": TOKEN,
            "MONDAY_API_URL": emulator.url,
            "MONDAY_CONTACTS_BOARD_ID": CONTACTS_BOARD,
            "MONDAY_ORGANIZATIONS_BOARD_ID": ORGANIZATIONS_BOARD,
        }
    )
    ok, results = await run(config)
    assert not ok
    assert failures(results) == [("npd-sync", "not installed in this database")]
    assert [r.hint for r in results if r.mark == "fail"] == ["run `npd-sync install`"]

    # Installed, but one table only (as before a table was added to the mapping).
    conn = await db.connect(empty_dsn)
    await install.install(conn, config.tables[:1])
    await conn.close()
    ok, results = await run(config)
    assert failures(results) == [
        ("organizations", "capture not installed: changes are not recorded")
    ]


async def test_capture_out_of_date_names_the_new_columns(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    await conn.execute("ALTER TABLE contacts ADD COLUMN linkedin text, ADD COLUMN fax text")
    ok, results = await run(make_settings())
    assert not ok
    assert failures(results) == [
        (
            "contacts",
            "capture out of date; changes to columns added since install are not recorded:"
            " linkedin, fax",
        )
    ]


async def test_an_old_schema_needs_install(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    await conn.execute("DELETE FROM npd_sync.migrations WHERE version = 2")
    ok, results = await run(make_settings())
    assert not ok
    assert failures(results)[0] == (
        "npd-sync",
        "schema out of date: migration 002 status not applied",
    )


async def test_disabled_or_dropped_triggers(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    await conn.execute("ALTER TABLE contacts DISABLE TRIGGER npd_sync_update")
    await conn.execute("DROP TRIGGER npd_sync_delete ON organizations")
    ok, results = await run(make_settings())
    assert not ok
    assert failures(results) == [
        ("contacts", "trigger npd_sync_update disabled: changes are not recorded"),
        ("organizations", "trigger npd_sync_delete missing: changes are not recorded"),
    ]
    enable, reattach = [r.hint for r in results if r.mark == "fail"]
    assert enable == 'ALTER TABLE contacts ENABLE TRIGGER "npd_sync_update"'
    assert reattach == "run `npd-sync install`"
    # Following the hints fixes it: install puts back what was dropped.
    await conn.execute(enable)
    admin = await db.connect(make_settings().require_database())
    await install.install(admin, make_settings().tables)
    await admin.close()
    ok, results = await run(make_settings())
    assert ok, text(results)


async def test_an_unreachable_database_never_shows_its_password(
    make_settings: MakeSettings,
) -> None:
    config = make_settings(DATABASE_URL="postgresql://app:pa55w0rd@127.0.0.1:1/npd")
    ok, results = await run(config)
    assert not ok
    (db_failure, *_) = [r for r in results if r.mark == "fail"]
    assert db_failure.subject == "database"
    assert db_failure.message.startswith("cannot connect to app@127.0.0.1:1/npd: ")
    assert "pa55w0rd" not in text(results)
    # Monday is checked all the same.
    assert ("ok", "Monday token") in [(r.mark, r.subject) for r in results]


async def test_no_database_url(make_settings: MakeSettings) -> None:
    config = make_settings().model_copy(update={"database_url": None})
    ok, results = await run(config)
    assert not ok
    assert failures(results)[0] == ("database", "DATABASE_URL is not set")


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://u:secret@db.example.com:6432/app", "u@db.example.com:6432/app"),
        ("postgresql://db.example.com/app?password=secret", "db.example.com/app"),
        ("postgres:///app", "local socket/app"),
        ("postgresql://u:p@h:notaport/x", "the DATABASE_URL database"),
    ],
)
def test_safe_dsn(dsn: str, shown: str) -> None:
    assert check.safe_dsn(dsn) == shown


def test_format_result() -> None:
    fail = check.Result("fail", "contacts", "broken", "fix it")
    assert check.format_result(fail) == ["✗ contacts: broken", "    fix: fix it"]
    warn = check.Result("warn", "x", "hmm", "maybe")
    assert check.format_result(warn, unicode=False) == ["WARN x: hmm", "    hint: maybe"]
    assert check.format_result(check.Result("ok", "x", "fine", "ignored")) == ["✓ x: fine"]
