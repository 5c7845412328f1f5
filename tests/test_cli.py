"""The operator commands as a user runs them: `python cli.py status|retry|check` as real
subprocesses (exit codes, one-line errors, nothing secret printed), and their --help."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

import cli
from emulator import Emulator
from listener import settings
from tests.conftest import CONTACTS_BOARD, ORGANIZATIONS_BOARD, ROOT, TOKEN
from tests.helpers import BAD, GOOD, drain

ENV_VARS = (
    "DATABASE_URL",
    "MONDAY_API_KEY",
    "MONDAY_API_VERSION",
    "MONDAY_API_URL",
    "MONDAY_CONTACTS_BOARD_ID",
    "MONDAY_ORGANIZATIONS_BOARD_ID",
    "NPD_SYNC_CONFIG",
)


@dataclass(frozen=True)
class Ran:
    code: int | None
    stdout: str
    stderr: str


async def npd_sync(*args: str, env: dict[str, str], cwd: Path) -> Ran:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "cli.py"),
        *args,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUTF8": "1", **env},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    return Ran(process.returncode, stdout.decode(), stderr.decode())


@pytest.fixture
def env(dsn: str, emulator: Emulator) -> dict[str, str]:
    return {
        "DATABASE_URL": dsn,
        "MONDAY_API_KEY": TOKEN,
        "MONDAY_API_URL": emulator.url,
        "MONDAY_CONTACTS_BOARD_ID": CONTACTS_BOARD,
        "MONDAY_ORGANIZATIONS_BOARD_ID": ORGANIZATIONS_BOARD,
    }


async def with_a_failed_row(conn: asyncpg.Connection, env: dict[str, str]) -> None:
    await conn.execute(GOOD)
    await conn.execute(BAD)
    await drain(settings.load(environ=env))


# --- status ------------------------------------------------------------------------------------


async def test_status_is_informational(
    conn: asyncpg.Connection, env: dict[str, str], tmp_path: Path
) -> None:
    await with_a_failed_row(conn, env)
    ran = await npd_sync("status", env=env, cwd=tmp_path)
    assert (ran.code, ran.stderr) == (0, "")  # a failed row is not a failure of status
    lines = ran.stdout.splitlines()
    assert lines[3].split() == ["contacts", "0", "0", "1", "1", "-"]
    assert "contacts 2  failed after 1 attempt: ColumnValueException: " in ran.stdout
    assert TOKEN not in ran.stdout


async def test_status_json(conn: asyncpg.Connection, env: dict[str, str], tmp_path: Path) -> None:
    await with_a_failed_row(conn, env)
    ran = await npd_sync("status", "--json", env=env, cwd=tmp_path)
    assert ran.code == 0
    data = json.loads(ran.stdout)
    table_counts = [
        (t["table"], t["pending"], t["in_flight"], t["failed"], t["synced"]) for t in data["tables"]
    ]
    assert table_counts == [("contacts", 0, 0, 1, 1), ("organizations", 0, 0, 0, 0)]
    (error,) = data["errors"]
    assert (error["table"], error["id"], error["state"]) == ("contacts", "2", "failed")
    assert data["listeners"] == []
    assert data["monday"]["api_key_set"] is True
    assert TOKEN not in ran.stdout


async def test_status_works_without_the_api_key_and_says_so(
    env: dict[str, str], tmp_path: Path
) -> None:
    ran = await npd_sync("status", env={**env, "MONDAY_API_KEY": ""}, cwd=tmp_path)
    assert ran.code == 0
    assert "MONDAY_API_KEY is not set: changes are recorded and left pending" in ran.stdout


async def test_status_when_not_installed(empty_dsn: str, tmp_path: Path) -> None:
    ran = await npd_sync("status", env={"DATABASE_URL": empty_dsn}, cwd=tmp_path)
    assert (ran.code, ran.stdout) == (1, "")
    assert ran.stderr == (
        "npd-sync: npd-sync is not installed in this database: run `npd-sync install`\n"
    )


async def test_status_without_database_url(tmp_path: Path) -> None:
    ran = await npd_sync("status", env={}, cwd=tmp_path)
    assert ran.code == 2
    assert ran.stderr == "npd-sync: DATABASE_URL is not set: give the PostgreSQL URL to sync from\n"


async def test_status_database_down_hides_the_password(tmp_path: Path) -> None:
    dsn = "postgresql://app:pa55w0rd@127.0.0.1:1/npd"
    ran = await npd_sync("status", env={"DATABASE_URL": dsn}, cwd=tmp_path)
    assert ran.code == 1
    assert ran.stderr.startswith("npd-sync: database error: ")
    assert ran.stderr.count("\n") == 1
    assert "pa55w0rd" not in ran.stderr


# --- retry -------------------------------------------------------------------------------------


async def test_retry(conn: asyncpg.Connection, env: dict[str, str], tmp_path: Path) -> None:
    await with_a_failed_row(conn, env)
    ran = await npd_sync("retry", "--table", "contacts", "--id", "2", env=env, cwd=tmp_path)
    assert (ran.code, ran.stderr) == (0, "")
    assert ran.stdout.splitlines()[0] == "contacts: 1 row back in the queue"
    assert await conn.fetchval("SELECT sync_status FROM contacts WHERE id = 2") == "PENDING"
    ran = await npd_sync("retry", env=env, cwd=tmp_path)
    assert (ran.code, ran.stdout) == (0, "no failed rows\n")


async def test_retry_discard(conn: asyncpg.Connection, env: dict[str, str], tmp_path: Path) -> None:
    await with_a_failed_row(conn, env)
    ran = await npd_sync(
        "retry", "--discard", "--table", "contacts", "--id", "2", env=env, cwd=tmp_path
    )
    assert (ran.code, ran.stderr) == (0, "")
    assert ran.stdout == ("contacts: stopped retrying 1 row (2): out of the queue until new data\n")
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.queue") == 0
    assert await conn.fetchval("SELECT sync_status FROM contacts WHERE id = 2") == "FAILED"
    ran = await npd_sync("retry", "--discard", env=env, cwd=tmp_path)
    assert (ran.code, ran.stdout) == (0, "no failed rows\n")
    ran = await npd_sync("retry", "--discard", "--id", "2", env=env, cwd=tmp_path)
    assert ran.code == 2
    assert ran.stderr.startswith("npd-sync: --id needs --table")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--id", "1"),
            "--id needs --table: several tables are configured (contacts, organizations)",
        ),
        (("--table", "nope"), "unknown table 'nope' (configured: contacts, organizations)"),
        (
            ("--table", "contacts", "--id", "x"),
            "--id 'x' is not a key of contacts (id is integer)",
        ),
    ],
)
async def test_retry_usage_errors_exit_2(
    env: dict[str, str], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    ran = await npd_sync("retry", *args, env=env, cwd=tmp_path)
    assert (ran.code, ran.stdout, ran.stderr) == (2, "", f"npd-sync: {message}\n")


# --- check -------------------------------------------------------------------------------------


async def test_check_healthy(env: dict[str, str], tmp_path: Path) -> None:
    ran = await npd_sync("check", env=env, cwd=tmp_path)
    assert (ran.code, ran.stderr) == (0, "")
    lines = ran.stdout.splitlines()
    assert len(lines) == 13
    assert all(line.startswith("✓ ") for line in lines)
    assert lines[-2] == "✓ inbound: off (NPD_SYNC_PUBLIC_URL is not set): outbound only"
    assert lines[-1].startswith("✓ daily limit: none known: calls are not paced")


async def test_check_bad_token_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    ran = await npd_sync("check", env={**env, "MONDAY_API_KEY": "wrong-secret"}, cwd=tmp_path)
    assert ran.code == 1
    assert "✗ Monday token: refused by " in ran.stdout
    assert "    fix: MONDAY_API_KEY is wrong" in ran.stdout
    assert "wrong-secret" not in ran.stdout + ran.stderr


@pytest.mark.parametrize("action", ["list", "install", "uninstall"])
async def test_webhooks_when_monday_fails_exit_1_in_one_line(
    env: dict[str, str], tmp_path: Path, action: str
) -> None:
    # A Monday error ended in a traceback (errors.Blocked was not mapped to an exit code).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/v2"
    inbound = {**env, "MONDAY_API_URL": closed, "NPD_SYNC_PUBLIC_URL": "https://sync.example.com"}
    if action == "uninstall":  # something to delete
        conn = await asyncpg.connect(env["DATABASE_URL"])
        try:
            await conn.execute(
                "INSERT INTO npd_sync.webhooks (board_id, event, webhook_id)"
                " VALUES ($1, 'create_item', '77')",
                CONTACTS_BOARD,
            )
        finally:
            await conn.close()
    ran = await npd_sync("webhooks", action, env=inbound, cwd=tmp_path)
    assert ran.code == 1
    assert "Traceback" not in ran.stderr
    if action == "uninstall":  # said per webhook, which stays ours
        assert "  create_item          webhook 77             failed: cannot connect" in ran.stdout
    else:
        assert ran.stderr.startswith("npd-sync: Monday: cannot connect to Monday: ")
        assert ran.stderr.count("\n") == 1
    assert TOKEN not in ran.stdout + ran.stderr


async def test_check_warnings_do_not_fail(env: dict[str, str], tmp_path: Path) -> None:
    ran = await npd_sync("check", env={**env, "MONDAY_ORGANIZATIONS_BOARD_ID": ""}, cwd=tmp_path)
    assert ran.code == 0
    assert "⚠ organizations: not synced (MONDAY_ORGANIZATIONS_BOARD_ID is not set)" in ran.stdout


async def test_check_on_an_ascii_terminal(env: dict[str, str], tmp_path: Path) -> None:
    ran = await npd_sync(
        "check", env={**env, "PYTHONUTF8": "0", "PYTHONIOENCODING": "ascii"}, cwd=tmp_path
    )
    assert ran.code == 0
    assert ran.stdout.splitlines()[0].startswith("ok database: reachable")


async def test_check_without_database_url_still_checks_monday(
    env: dict[str, str], tmp_path: Path
) -> None:
    without = {k: v for k, v in env.items() if k != "DATABASE_URL"}
    ran = await npd_sync("check", env=without, cwd=tmp_path)
    assert ran.code == 1
    assert ran.stdout.startswith("✗ database: DATABASE_URL is not set\n")
    assert "✓ Monday token: accepted" in ran.stdout


async def test_check_bad_setting_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    ran = await npd_sync("check", env={**env, "MONDAY_API_VERSION": "2026"}, cwd=tmp_path)
    assert (ran.code, ran.stdout) == (2, "")
    assert ran.stderr == "npd-sync: MONDAY_API_VERSION: must look like 2026-10\n"


@pytest.mark.parametrize(
    ("command", "name", "value"),
    [
        ("status", "DATABASE_URL", "postgresql://u:pa55w0rd@127.0.0.1:notaport/db"),
        ("status", "DATABASE_URL", "postgresql://u:pa55w0rd@[::1/db"),
        ("check", "MONDAY_API_URL", "http://u:pa55w0rd@127.0.0.1:9/v2"),
        ("check", "MONDAY_API_KEY", "pa55w0rd\r\nX-Injected: 1"),
        # listen used to crash-loop on listener.batch_crashed, then exit 0.
        ("listen", "MONDAY_API_URL", "http://u:pa55w0rd@127.0.0.1:9/v2"),
    ],
)
async def test_unusable_urls_and_keys_exit_2_in_one_line_at_start(
    env: dict[str, str], tmp_path: Path, command: str, name: str, value: str
) -> None:
    ran = await npd_sync(command, env={**env, name: value}, cwd=tmp_path)
    assert (ran.code, ran.stdout) == (2, "")
    assert ran.stderr.startswith(f"npd-sync: {name}: ")
    assert ran.stderr.count("\n") == 1
    assert "pa55w0rd" not in ran.stderr


# --- help --------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--metrics-port", "--webhook-port", "--console-port"])
async def test_listen_on_a_port_in_use_names_the_option(
    env: dict[str, str], tmp_path: Path, option: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        inbound = {"NPD_SYNC_PUBLIC_URL": "https://sync.example.com"}
        ran = await npd_sync("listen", option, str(port), env={**env, **inbound}, cwd=tmp_path)
    assert ran.code == 2
    assert ran.stderr.endswith(
        f"npd-sync: {option}: cannot listen on 127.0.0.1:{port}: address already in use\n"
    )


@pytest.mark.parametrize("command", ["status", "retry", "check"])
def test_help_shows_the_environment(command: str) -> None:
    result = CliRunner().invoke(cli.main, [command, "--help"])
    assert result.exit_code == 0
    for name in ENV_VARS:
        assert name in result.output, name


def test_main_help_lists_the_commands() -> None:
    result = CliRunner().invoke(cli.main, ["--help"])
    assert result.exit_code == 0
    for command in ("status", "retry", "check"):
        assert f"  {command} " in result.output


def test_status_help_documents_the_json_keys() -> None:
    output = CliRunner().invoke(cli.main, ["status", "--help"]).output
    assert "--json" in output
    for key in ("in_flight", "oldest_pending_age_seconds", "seen_ago_seconds", "api_key_set"):
        assert key in output


def test_retry_help_names_its_options() -> None:
    output = CliRunner().invoke(cli.main, ["retry", "--help"]).output
    assert "--table TABLE" in output
    assert "--id KEY" in output
    assert "--discard" in output
