"""Inbound end to end: real listeners with their receivers, `npd-sync webhooks install`, and
the emulator delivering webhooks over real HTTP as Monday does (challenge, retries, faults).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from emulator import AccountLimits, Emulator, Faults
from emulator.resolvers import GoneWebhook
from listener import daemon, settings
from listener.commands import check, pull
from listener.commands import webhooks as webhook_commands
from tests.conftest import CONTACTS_BOARD, TOKEN
from tests.helpers import eventually, no_pending

ADA = (
    "INSERT INTO contacts (first_name, last_name, email, phone, role_title)"
    " VALUES ('Ada', 'Lovelace', 'ada@example.com', '+44 20 7946 0958', 'Countess')"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def monday() -> AsyncIterator[Emulator]:
    """The emulator, retrying failed deliveries every 50 ms for 20 s."""
    async with Emulator(
        token=TOKEN, limits=AccountLimits.unlimited(), webhook_retry_interval=0.05,
        webhook_retry_for=20.0,
    ) as emu:  # fmt: skip
        yield emu


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def config(dsn: str, monday: Emulator, port: int, tmp_path: Path) -> settings.Settings:
    path = tmp_path / "tuning.toml"
    path.write_text("[tuning]\npoll_interval = 600\nreconcile_interval = 0\n")
    return settings.load(
        environ={
            "DATABASE_URL": dsn,
            "MONDAY_API_KEY": TOKEN,
            "MONDAY_API_URL": monday.url,
            "MONDAY_CONTACTS_BOARD_ID": CONTACTS_BOARD,
            "MONDAY_ORGANIZATIONS_BOARD_ID": "1000000002",
            "NPD_SYNC_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "NPD_SYNC_CONFIG": str(path),
        }
    )


@asynccontextmanager
async def listening(
    config: settings.Settings, webhook_port: int | None = None
) -> AsyncIterator[daemon.Daemon]:
    listener = daemon.Daemon(config, webhook_port=webhook_port)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.ready.wait(), 10)
        yield listener
    finally:
        listener.request_stop()
        await asyncio.wait_for(task, 20)


async def install(config: settings.Settings) -> list[str]:
    out: list[str] = []
    assert await webhook_commands.run(config, action="install", echo=out.append), out
    return out


async def quiet(conn: asyncpg.Connection, monday: Emulator) -> None:
    """Nothing left to deliver, nothing left to do: rounds of waiting until one changes
    nothing (a push makes deliveries, a delivery makes work)."""
    inbox_empty = "SELECT NOT EXISTS (SELECT FROM npd_sync.inbox)"
    async with asyncio.timeout(30):
        while True:
            before = (len(monday.deliveries), monday.counters.mutations)
            await monday.settle_webhooks()
            await eventually(lambda: no_pending(conn), timeout=30)
            await eventually(lambda: conn.fetchval(inbox_empty), timeout=30)
            await monday.settle_webhooks()
            if (len(monday.deliveries), monday.counters.mutations) == before:
                return


async def test_install_registers_every_event_once_and_check_sees_them(
    conn: asyncpg.Connection, monday: Emulator, config: settings.Settings, port: int
) -> None:
    async with listening(config, port):
        out = await install(config)
        assert out[0] == f"url: http://127.0.0.1:{port}/monday/webhook/[redacted]"
        assert sum("created" in line for line in out) == 12  # 6 events, 2 boards
        again = await install(config)
        assert sum("present" in line for line in again) == 12  # idempotent
    hooks = monday.webhooks(CONTACTS_BOARD)
    assert sorted(h.event for h in hooks) == sorted(
        ["change_column_value", "change_name", "create_item", "item_archived", "item_deleted",
         "item_restored"]
    )  # fmt: skip
    secret = await conn.fetchval("SELECT secret FROM npd_sync.receiver")
    assert all(h.url == f"http://127.0.0.1:{port}/monday/webhook/{secret}" for h in hooks)
    assert all(secret not in line for line in out + again)
    results: list[check.Result] = []
    assert await check.checks(config, results.append)
    assert ("contacts", "the 6 webhooks are on board 1000000001") in [
        (r.subject, r.message) for r in results
    ]
    # Someone deletes one in Monday's UI: check says so, install puts it back.
    monday.delete_webhook(hooks[0].id)
    results.clear()
    assert not await check.checks(config, results.append)
    [failure] = [r for r in results if r.mark == "fail"]
    assert failure.message.startswith("webhooks missing on board 1000000001")
    async with listening(config, port):
        assert sum("created" in line for line in await install(config)) == 1


async def test_uninstall_removes_them_even_when_one_is_gone_already(
    conn: asyncpg.Connection, monday: Emulator, config: settings.Settings, port: int
) -> None:
    async with listening(config, port):
        await install(config)
    monday.delete_webhook(monday.webhooks(CONTACTS_BOARD)[0].id)  # by someone, in the UI
    out: list[str] = []
    assert await webhook_commands.run(config, action="uninstall", echo=out.append), out
    assert sum(line.endswith(" removed") for line in out) == 12
    assert monday.webhooks() == []
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.webhooks") == 0
    # The secret is forgotten with them: the old URL is refused from now on.
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.receiver") == 0


@pytest.mark.parametrize("answer", ["not_found", "internal_error", "null"])
async def test_uninstall_reads_the_board_whatever_monday_answers_for_a_gone_id(
    conn: asyncpg.Connection, monday: Emulator, config: settings.Settings, port: int,
    answer: GoneWebhook,
) -> None:  # fmt: skip
    # What delete_webhook answers for an id already gone is undocumented: a 500 kept the
    # secret and said "failed" for a webhook that is not there.
    monday.gone_webhook = answer
    async with listening(config, port):
        await install(config)
    gone = monday.webhooks(CONTACTS_BOARD)[0].id
    monday.delete_webhook(gone)  # by someone, in the UI
    before = len(monday.requests)
    out: list[str] = []
    assert await webhook_commands.run(config, action="uninstall", echo=out.append), out
    assert sum(line.endswith(" removed") for line in out) == 12
    assert monday.webhooks() == []
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.receiver") == 0
    deletes = [r for r in monday.requests[before:] if "delete_webhook" in r.root_fields]
    assert len(deletes) == 11  # the gone one is not asked for again


async def test_a_delete_that_did_not_happen_is_a_failure_and_the_secret_is_kept(
    conn: asyncpg.Connection, monday: Emulator, config: settings.Settings, port: int
) -> None:
    async with listening(config, port):
        await install(config)
    monday.set_faults(Faults(next_http_500=1, applies_to="mutations"))
    out: list[str] = []
    assert not await webhook_commands.run(config, action="uninstall", echo=out.append)
    assert sum(line.endswith(" removed") for line in out) == 11
    assert sum(" failed" in line for line in out) == 1
    assert len(monday.webhooks()) == 1
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.receiver") == 1
    assert await webhook_commands.run(config, action="uninstall", echo=out.append)
    assert monday.webhooks() == []
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.receiver") == 0


SIGNING = "app-signing-secret-" + "y" * 32


@pytest.fixture
def signing_config(config: settings.Settings) -> settings.Settings:
    """The same, with MONDAY_SIGNING_SECRET: deliveries need a JWT signed with it."""
    return config.model_copy(update={"signing_secret": SecretStr(SIGNING)})


async def test_with_a_signing_secret_an_apps_webhooks_install_and_deliver(
    conn: asyncpg.Connection, config: settings.Settings, signing_config: settings.Settings,
    port: int,
) -> None:  # fmt: skip
    # Monday never signs the challenge: the receiver refused it, and no webhook was made.
    async with Emulator(
        token=TOKEN, limits=AccountLimits.unlimited(), signing_secret=SIGNING,
        webhook_retry_interval=0.05, webhook_retry_for=20.0,
    ) as app_monday:  # fmt: skip
        wired = signing_config.model_copy(update={"api_url": app_monday.url})
        async with listening(wired, port):
            out = await install(wired)
            assert sum("created" in line for line in out) == 12
            await conn.execute(ADA)
            await quiet(conn, app_monday)
            (item,) = app_monday.items(CONTACTS_BOARD)
            app_monday.edit_item(item.id, {"text": "Queen"})
            await eventually(
                lambda: conn.fetchval("SELECT role_title FROM contacts"), lambda t: t == "Queen"
            )
        results: list[check.Result] = []
        assert await check.checks(wired, results.append), [r.message for r in results]


async def test_with_a_signing_secret_a_personal_tokens_webhooks_are_named_by_install_and_check(
    monday: Emulator, signing_config: settings.Settings, port: int
) -> None:
    # Webhooks made with a personal token carry no Authorization header: every delivery would
    # be refused, retried for 30 minutes and lost, and nothing said so.
    async with listening(signing_config, port):
        out: list[str] = []
        assert not await webhook_commands.run(signing_config, action="install", echo=out.append)
    assert sum("created" in line for line in out) == 12
    assert out[-1] == (
        "MONDAY_SIGNING_SECRET is set, but Monday lists 12 webhooks as made by no app of the "
        "API token (a personal token's): their deliveries carry no JWT, and the receiver "
        "refuses every one: unset MONDAY_SIGNING_SECRET (the URL's secret still guards the "
        "receiver), or make the webhooks with an app's OAuth token"
    )
    listed: list[str] = []
    assert not await webhook_commands.run(signing_config, action="list", echo=listed.append)
    assert listed[-1] == out[-1]
    results: list[check.Result] = []
    assert not await check.checks(signing_config, results.append)
    failed = [(r.subject, r.message) for r in results if r.mark == "fail"]
    assert failed == [
        (
            table,
            "MONDAY_SIGNING_SECRET is set, but Monday lists 6 webhooks on board "
            f"{board} as made by no app of the API token (a personal token's): their "
            "deliveries carry no JWT, and the receiver refuses every one",
        )
        for table, board in (("contacts", CONTACTS_BOARD), ("organizations", "1000000002"))
    ]


async def test_install_without_a_receiver_says_what_to_do(
    monday: Emulator, config: settings.Settings
) -> None:
    out: list[str] = []
    assert not await webhook_commands.run(config, action="install", echo=out.append)
    assert "Monday could not reach the receiver" in out[2]
    assert monday.webhooks(CONTACTS_BOARD) == []


async def test_board_edits_arrive_and_nothing_echoes(
    conn: asyncpg.Connection, monday: Emulator, config: settings.Settings, port: int
) -> None:
    async with listening(config, port):
        await install(config)
        await conn.execute(ADA)
        await quiet(conn, monday)
        (item,) = monday.items(CONTACTS_BOARD)
        mutations = monday.counters.mutations
        # Our own push came back as webhooks (the token's user): read, found equal, dropped.
        assert any(d.item_id == item.id for d in monday.deliveries)
        monday.edit_item(item.id, {"phone": {"phone": "020 7946 0000", "countryShortName": "GB"}})
        await eventually(
            lambda: conn.fetchval("SELECT phone FROM contacts"), lambda p: p == "+442079460000"
        )
        await quiet(conn, monday)
        assert monday.counters.mutations == mutations  # no ping-pong
        # The token's own user editing by hand is a real edit, not an echo.
        monday.edit_item(item.id, {"text": "Duchess"}, user_id=Emulator.API_USER_ID)
        await eventually(
            lambda: conn.fetchval("SELECT role_title FROM contacts"), lambda v: v == "Duchess"
        )
        await quiet(conn, monday)
        assert monday.counters.mutations == mutations


async def test_two_listeners_no_ping_pong(
    conn: asyncpg.Connection, monday: Emulator, config: settings.Settings, port: int
) -> None:
    async with listening(config, port), listening(config):
        await install(config)
        for i in range(20):
            await conn.execute(
                "INSERT INTO contacts (first_name, email) VALUES ($1, $2)", f"P{i}", f"p{i}@x.org"
            )
        await quiet(conn, monday)
        items = monday.items(CONTACTS_BOARD)
        for item in items[:10]:
            monday.edit_item(item.id, {"text": f"edited {item.id}"})
        await conn.execute("UPDATE contacts SET notes = 'from the app' WHERE id > 10")
        await quiet(conn, monday)
        settled = monday.counters.mutations
        # Every item read again and compared: nothing to send, nothing to write.
        out: list[str] = []
        assert await pull.run(config, table=None, full=True, dry_run=False, echo=out.append)
        assert out[-1] == "done: 0 rows updated and 0 inserted from Monday, 0 conflicts, 0 failed"
        await quiet(conn, monday)
        assert monday.counters.mutations == settled
    rows = {r["monday_id"]: r for r in await conn.fetch("SELECT * FROM contacts")}
    for item in monday.items(CONTACTS_BOARD):
        assert rows[item.id]["role_title"] == item.values.get("text")
        assert rows[item.id]["notes"] == (item.values.get("long_text") or {}).get("text")


async def test_repeated_and_reordered_deliveries_apply_once(
    conn: asyncpg.Connection, monday: Emulator, config: settings.Settings, port: int
) -> None:
    async with listening(config, port):
        await install(config)
        await conn.execute(ADA)
        await quiet(conn, monday)
        (item,) = monday.items(CONTACTS_BOARD)
        monday.set_webhook_faults(duplicate=1.0, seed=1)
        monday.edit_item(item.id, {"text": "first"})
        monday.set_webhook_faults(delay=1.0, delay_seconds=0.1, seed=2)
        monday.edit_item(item.id, {"text": "second"})
        monday.edit_item(item.id, {"text": "third"})
        await quiet(conn, monday)
        assert await conn.fetchval("SELECT role_title FROM contacts") == "third"
        uuids = [d.trigger_uuid for d in monday.deliveries if d.status == 200]
        stored = await conn.fetchval("SELECT count(*) FROM npd_sync.events")
        assert stored == len(set(uuids)) < len(uuids)  # each delivery stored once


async def test_the_receiver_down_then_mondays_retries(
    conn: asyncpg.Connection, monday: Emulator, config: settings.Settings, port: int
) -> None:
    async with listening(config, port):
        await install(config)
        await conn.execute(ADA)
        await quiet(conn, monday)
    (item,) = monday.items(CONTACTS_BOARD)
    monday.edit_item(item.id, {"text": "while nobody listened"})
    await eventually(lambda: _failed_attempts(monday), lambda n: n >= 2)  # refused, retried
    async with listening(config, port):
        await eventually(
            lambda: conn.fetchval("SELECT role_title FROM contacts"),
            lambda v: v == "while nobody listened",
        )


async def _failed_attempts(monday: Emulator) -> int:
    return sum(1 for d in monday.deliveries if d.status != 200)


async def test_dropped_deliveries_are_caught_by_the_timer(
    conn: asyncpg.Connection, monday: Emulator, config: settings.Settings, port: int, tmp_path: Path
) -> None:
    fast = tmp_path / "fast.toml"
    fast.write_text("[tuning]\npoll_interval = 0.2\nreconcile_interval = 1\n")
    timed = config.model_copy(update={"tuning": settings.load(
        environ={"NPD_SYNC_CONFIG": str(fast)}).tuning})  # fmt: skip
    async with listening(timed, port):
        await install(timed)
        await conn.execute(ADA)
        await quiet(conn, monday)
        (item,) = monday.items(CONTACTS_BOARD)
        monday.set_webhook_faults(drop=1.0)
        monday.edit_item(item.id, {"text": "never delivered"})
        await eventually(
            lambda: conn.fetchval("SELECT role_title FROM contacts"),
            lambda v: v == "never delivered",
            timeout=20,
        )
    assert any(d.fault == "drop" for d in monday.deliveries)
