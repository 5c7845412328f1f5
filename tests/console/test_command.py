"""`npd-sync console` as an operator runs it: a real subprocess that says where it is, serves,
and stops on SIGTERM; refuses to start exposed without a token; `listen --console-port`."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
from pathlib import Path

import aiohttp
from click.testing import CliRunner

import cli
from emulator import Emulator
from tests.console.helpers import TOKEN
from tests.helpers import cli_env, start_cli


async def test_console_serves_until_sigterm(dsn: str, emulator: Emulator, tmp_path: Path) -> None:
    process = await start_cli("console", "--port", "0", env=cli_env(dsn, emulator), cwd=tmp_path)
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        found = re.fullmatch(r"npd-sync console at (http://127\.0\.0\.1:\d+/)\n", line)
        assert found, line
        async with aiohttp.ClientSession() as session, session.get(found[1]) as response:
            assert response.status == 200
            assert "contacts" in await response.text()
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
    assert code == 0


async def test_exposed_without_a_token_it_refuses_to_start(
    dsn: str, emulator: Emulator, tmp_path: Path
) -> None:
    for args, env, message in [
        (("console", "--host", "0.0.0.0"), {}, "NPD_SYNC_CONSOLE_TOKEN is not set: the console"),
        (
            ("console", "--host", "0.0.0.0"),
            {"NPD_SYNC_CONSOLE_TOKEN": "short"},
            "NPD_SYNC_CONSOLE_TOKEN: must be at least 16 characters",
        ),
        (
            ("listen", "--console-port", "1", "--console-host", "::"),
            {},
            "NPD_SYNC_CONSOLE_TOKEN is not set",
        ),
        (("console", "--item-url", "https://x/{nope}"), {}, "--item-url: the only placeholders"),
    ]:
        process = await start_cli(*args, env={**cli_env(dsn, emulator), **env}, cwd=tmp_path)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 2, (args, stderr)
        lines = stderr.decode().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"npd-sync: {message}"), lines
        assert stdout == b""


async def test_a_token_in_dotenv_is_read(dsn: str, emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"NPD_SYNC_CONSOLE_TOKEN={TOKEN}\n")
    process = await start_cli(
        "console", "--host", "0.0.0.0", "--port", "0", env=cli_env(dsn, emulator), cwd=tmp_path
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("npd-sync console at http://0.0.0.0:"), line
        port = line.rsplit(":", 1)[1].strip("/\n")
        url = f"http://127.0.0.1:{port}/"
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, allow_redirects=False) as response,
        ):
            assert response.status == 303  # to the login page
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0


def test_help() -> None:
    main = CliRunner().invoke(cli.main, ["--help"]).output
    assert "  console " in main
    output = CliRunner().invoke(cli.main, ["console", "--help"]).output
    for word in ("--host", "--port", "--item-url", "--secure-cookie", "NPD_SYNC_CONSOLE_TOKEN"):
        assert word in output
    listen = CliRunner().invoke(cli.main, ["listen", "--help"]).output
    assert "--console-port" in listen
    assert "--console-host" in listen


async def test_a_port_in_use_is_said_in_one_line(
    dsn: str, emulator: Emulator, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        process = await start_cli(
            "console", "--port", port, env=cli_env(dsn, emulator), cwd=tmp_path
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert stderr.decode() == (
        f"npd-sync: --host/--port: cannot listen on 127.0.0.1:{port}: address already in use\n"
    )
