"""The listener daemon in-process: wake-ups, draining on start, several listeners at once."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from emulator import Emulator
from listener import daemon, settings
from tests.conftest import CONTACTS_BOARD, MakeSettings
from tests.helpers import eventually, running


def tuned(make_settings: MakeSettings, tmp_path: Path, **tuning: float) -> settings.Settings:
    """Settings with a [tuning] section; a long poll interval proves wake-ups come from NOTIFY."""
    values = {"poll_interval": 600, "backoff_base": 0.05, "backoff_cap": 0.2, **tuning}
    path = tmp_path / "npd-sync.toml"
    path.write_text("[tuning]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    return make_settings(NPD_SYNC_CONFIG=str(path))


def status_of(conn: asyncpg.Connection) -> Callable[[], object]:
    async def probe() -> dict[str, str]:
        return dict(await conn.fetch("SELECT id::text, sync_status FROM contacts"))

    return probe


async def test_change_made_while_no_listener_ran_is_synced_on_start(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('early')")
    async with running(tuned(make_settings, tmp_path)):
        await eventually(status_of(conn), lambda s: s == {"1": "SYNCED"})
    assert [i.name for i in emulator.items(CONTACTS_BOARD)] == ["early"]


async def test_a_listener_that_just_started_is_not_reported_unhealthy(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    # The next heartbeat is 10 s away: the first must already be written once connected.
    async with running(tuned(make_settings, tmp_path)):
        beat = await eventually(lambda: conn.fetchrow("SELECT problem FROM npd_sync.listeners"))
        assert beat["problem"] is None


async def test_idle_listener_wakes_on_commit(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    async with running(tuned(make_settings, tmp_path)) as listener:
        # Poll interval is 600 s: only a NOTIFY can wake the listener in time. Asleep, not only
        # waiting: a wake-up still pending (the LISTEN connection's first) ends the wait at
        # once, and a write then may be seen without its NOTIFY.
        for n in range(1, 4):
            await eventually(lambda: _value(listener.waker.asleep), timeout=5)
            await conn.execute("INSERT INTO contacts (first_name) VALUES ($1)", f"c{n}")
            await eventually(status_of(conn), lambda s, n=n: list(s.values()) == ["SYNCED"] * n)
        # Idle again before the next write: else it may see the write without a NOTIFY.
        await eventually(lambda: _value(listener.waker.asleep), timeout=5)
        await conn.execute("UPDATE contacts SET notes = 'bulk'")
        await eventually(
            lambda: _notes(emulator), lambda notes: notes == [{"text": "bulk"}] * 3, timeout=5
        )
        assert listener.waker.notifications >= 4


async def _value(value: bool) -> bool:
    return value


async def _notes(emulator: Emulator) -> list[object]:
    return [i.values.get("long_text") for i in emulator.items(CONTACTS_BOARD)]


async def test_listener_rides_out_a_monday_outage(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    emulator.set_faults(http_500=1.0)
    async with running(tuned(make_settings, tmp_path, poll_interval=0.2)):
        await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
        await eventually(
            lambda: conn.fetchval("SELECT attempts FROM npd_sync.queue"),
            lambda attempts: attempts is not None and attempts >= 2,
        )
        assert await conn.fetchval("SELECT sync_status FROM contacts") == "PENDING"
        emulator.set_faults(http_500=0.0)
        await eventually(status_of(conn), lambda s: s == {"1": "SYNCED"})
    assert len(emulator.items(CONTACTS_BOARD)) == 1


async def test_two_listeners_share_the_queue_without_double_handling(
    dsn: str, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = tuned(make_settings, tmp_path, batch_size=20, poll_interval=0.5)
    async with running(config) as one, running(config) as two:

        async def writer(n: int) -> None:
            conn = await asyncpg.connect(dsn)
            try:
                for i in range(40):
                    await conn.execute(
                        "INSERT INTO contacts (first_name, last_name) VALUES ($1, $2)",
                        f"w{n}",
                        str(i),
                    )
                    if i % 4 == 0:  # and keep editing rows the listeners are working on
                        await conn.execute(
                            "UPDATE contacts SET notes = $1 WHERE id % 7 = $2", f"n{i}", n
                        )
            finally:
                await conn.close()

        await asyncio.gather(*(writer(n) for n in range(4)))
        check = await asyncpg.connect(dsn)
        try:
            await eventually(
                lambda: check.fetchval("SELECT count(*) FROM npd_sync.queue"),
                lambda n: n == 0,
                timeout=30,
            )
            rows = await check.fetch("SELECT id::text, first_name, notes, monday_id FROM contacts")
        finally:
            await check.close()
        handled = [listener.worker.stats.synced for listener in (one, two)]  # type: ignore[union-attr]

    items = emulator.items(CONTACTS_BOARD)
    per_key = collections.Counter(i.values["npd_id"] for i in items)
    assert len(rows) == 160
    assert min(handled) > 0, handled  # both took part
    assert all(count == 1 for count in per_key.values()), per_key.most_common(3)
    by_key = {i.values["npd_id"]: i for i in items}
    for r in rows:
        item = by_key[r["id"]]
        assert item.id == r["monday_id"]
        assert item.values.get("long_text") == ({"text": r["notes"]} if r["notes"] else None)


async def test_idle_listener_takes_over_a_lease_when_it_runs_out(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    from listener.engine import queue, source

    await conn.execute("INSERT INTO contacts (first_name) VALUES ('held by the dead')")
    await source.ingest(conn)
    (held,) = await queue.claim(conn, [1], limit=1, listener_id="dead", lease_seconds=2)
    async with running(tuned(make_settings, tmp_path)):  # poll interval 600 s
        # Nothing wakes the listener but the end of the lease it knows about.
        await eventually(status_of(conn), lambda s: s == {"1": "SYNCED"}, timeout=10)
    assert held.claims == 1


async def test_a_side_task_that_ends_stops_the_listener_visibly(
    make_settings: MakeSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The heartbeat's loop ending (a bug) must not go unnoticed behind a healthy-looking
    # listener: it is logged, the listener stops, and `listen` exits 1 (SideTaskFailed).
    crash = asyncio.Event()

    async def heartbeat(self: daemon.Daemon, pool: object) -> None:
        await crash.wait()
        raise RuntimeError("heartbeat bug")

    async def every(self: daemon.Daemon, seconds: float, job: object, pool: object) -> None:
        if getattr(job, "__name__", "") == "_heartbeat":
            await heartbeat(self, pool)
            return
        await asyncio.Event().wait()

    monkeypatch.setattr(daemon.Daemon, "_every", every)
    listener = daemon.Daemon(tuned(make_settings, tmp_path))
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.ready.wait(), 10)
    crash.set()
    with pytest.raises(daemon.SideTaskFailed, match="heartbeat"):
        await asyncio.wait_for(task, 20)
    crashed = [r for r in caplog.records if r.getMessage() == "listener.side_task_crashed"]
    assert [r.__dict__["task"] for r in crashed] == ["heartbeat"]
    assert "heartbeat bug" in crashed[0].__dict__["error"]


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("https://api.monday.com/v2", False),
        ("http://127.0.0.1:8080/v2", False),
        ("http://monday-proxy.internal/v2", True),
    ],
)
def test_the_listener_says_which_api_it_talks_to_and_warns_on_plain_http(
    caplog: pytest.LogCaptureFixture, url: str, warned: bool
) -> None:
    config = settings.load(
        environ={"DATABASE_URL": "postgresql://h/db", "MONDAY_API_KEY": "k", "MONDAY_API_URL": url}
    )
    with caplog.at_level(logging.INFO, logger="npd_sync.daemon"):
        daemon.Daemon(config)._announce([], has_client=True)
    (started,) = [r for r in caplog.records if r.getMessage() == "listener.started"]
    assert started.api_url == url  # type: ignore[attr-defined]
    insecure = [r for r in caplog.records if r.getMessage() == "listener.insecure_api_url"]
    assert bool(insecure) == warned
