"""`listen --metrics-port`: Prometheus /metrics and /healthz."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from emulator import AccountLimits, Emulator
from listener import cli, daemon
from listener.commands import status
from listener.operations import report as reporting
from tests.conftest import MakeSettings
from tests.helpers import eventually, write_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_metrics_and_health(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", poll_interval=1)))
    port = free_port()
    listener = daemon.Daemon(config, metrics_port=port, metrics_host="127.0.0.1")
    task = asyncio.create_task(listener.run())
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.wait_for(listener.ready.wait(), 10)
        await conn.execute("INSERT INTO contacts (first_name) VALUES ('a'), ('b')")
        await conn.execute("INSERT INTO contacts (first_name, email) VALUES ('c', 'broken')")
        await eventually(
            lambda: get(base + "/metrics"),
            lambda r: (
                'npd_sync_changes_total{outcome="synced",table="contacts"} 2.0' in r[1]
                and 'npd_sync_changes_total{outcome="failed",table="contacts"} 1.0' in r[1]
                and "npd_sync_listen_connected 1.0" in r[1]
                and 'npd_sync_queue_depth{state="failed",table="contacts"} 1.0' in r[1]
            ),
            timeout=15,
        )
        _, text = await get(base + "/metrics")
        assert "npd_sync_commit_to_monday_seconds_count 2.0" in text
        assert 'npd_sync_monday_requests_total{code="",status="200"}' in text
        assert "npd_sync_rate_limit_wait_seconds_total" in text
        assert await get(base + "/healthz") == (200, "ok\n")

        listener.last_cycle = time.monotonic() - 3600  # as if the drain loop were stuck
        status, body = await get(base + "/healthz")
        assert status == 503
        assert body.startswith("queue not moving for")
    finally:
        listener.request_stop()
        await asyncio.wait_for(task, 20)


async def test_health_fails_while_the_listen_connection_is_down(
    make_settings: MakeSettings, emulator: Emulator
) -> None:
    listener = daemon.Daemon(make_settings(), metrics_port=free_port())
    assert listener.healthy() == (False, "LISTEN connection down")  # not connected yet
    listener.waker.connected.set()
    assert listener.healthy() == (True, "ok")


async def test_metrics_show_the_budget_and_what_it_is_spent_on(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    emulator.set_limits(AccountLimits(complexity_per_minute=1_000_000))
    # Minutes already past, as the listeners recorded them: 600,000 points, 20 rows each.
    await conn.execute(
        "INSERT INTO npd_sync.monday_minutes (minute, points, requests, rows_synced)"
        " SELECT date_trunc('minute', now()) - make_interval(mins => g), 600000, 20, 20"
        " FROM generate_series(1, 2) g"
    )
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", poll_interval=1)))
    port = free_port()
    listener = daemon.Daemon(config, metrics_port=port, metrics_host="127.0.0.1")
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.ready.wait(), 10)
        await conn.execute("INSERT INTO contacts (first_name) VALUES ('a'), ('b')")
        _, text = await eventually(
            lambda: get(f"http://127.0.0.1:{port}/metrics"),
            lambda r: (
                "npd_sync_monday_complexity_points_total 60002.0" in r[1]  # two creates
                and "npd_sync_monday_budget_points_per_minute 1e+06" in r[1]
            ),
            timeout=15,
        )
        values = dict(line.split(" ") for line in text.splitlines() if line.startswith("npd_sync_"))
        # 600,000 a minute and 30,000 a row; if a minute ended meanwhile, the listener's own
        # (60,002 points, its 2 rows maybe counted in the next one) counts too.
        used = float(values["npd_sync_monday_budget_used_points_per_minute"])
        assert 420_000 <= used <= 600_000
        assert 30_000 <= float(values["npd_sync_points_per_synced_row"]) <= 31_501
    finally:
        listener.request_stop()
        await asyncio.wait_for(task, 20)


async def test_a_queue_that_stops_moving_says_so_in_health_metrics_and_status(
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(daemon, "GAUGES", 0.1)
    monkeypatch.setattr(daemon, "HEARTBEAT", 0.2)
    config = make_settings(NPD_SYNC_CONFIG=str(write_config(tmp_path / "t.toml", poll_interval=1)))
    port = free_port()
    listener = daemon.Daemon(config, metrics_port=port, stall_after=1.0)
    task = asyncio.create_task(listener.run())
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.wait_for(listener.ready.wait(), 10)
        # Monday asks every listener to pause; changes keep coming, and wait.
        await conn.execute(
            "UPDATE npd_sync.monday SET paused_until = now() + interval '1 hour',"
            " pause_reason = 'DAILY_LIMIT_EXCEEDED'"
        )
        await conn.execute("INSERT INTO contacts (first_name) VALUES ('waits')")
        # The loop goes round and the LISTEN connection is up: health said 200.
        _, body = await eventually(lambda: get(base + "/healthz"), lambda r: r[0] == 503)
        assert body.startswith("queue stalled: the oldest change waits for ")
        assert "Monday asked every listener to pause (" in body
        _, text = await eventually(
            lambda: get(base + "/metrics"), lambda r: "npd_sync_stalled 1.0" in r[1]
        )
        assert "npd_sync_oldest_pending_seconds" in text
        report = await eventually(
            lambda: reporting.collect(conn, config, 4), lambda r: bool(r.listeners[0].problem)
        )
        text = "\n".join(status.render(report))
        assert "listeners: 1 alive, 1 of them unhealthy" in text
        assert "unhealthy: queue stalled: the oldest change waits for" in text

        # The pause ends (the entry was put off until then).
        await conn.execute("UPDATE npd_sync.monday SET paused_until = NULL")
        await conn.execute("UPDATE npd_sync.queue SET next_attempt_at = now()")
        await eventually(lambda: get(base + "/healthz"), lambda r: r == (200, "ok\n"))
        assert await conn.fetchval("SELECT sync_status FROM contacts") == "SYNCED"
        await eventually(
            lambda: reporting.collect(conn, config, 4), lambda r: r.listeners[0].problem is None
        )
    finally:
        listener.request_stop()
        await asyncio.wait_for(task, 20)


async def test_metrics_are_served_on_loopback_unless_told_otherwise(
    make_settings: MakeSettings, emulator: Emulator
) -> None:
    port = free_port()
    listener = daemon.Daemon(make_settings(), metrics_port=port)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.ready.wait(), 10)
        assert listener.metrics_runner is not None
        assert [a[:2] for a in listener.metrics_runner.addresses] == [("127.0.0.1", port)]
    finally:
        listener.request_stop()
        await asyncio.wait_for(task, 20)
    (option,) = [p for p in cli.listen.params if p.name == "metrics_host"]
    assert option.default == "127.0.0.1"
