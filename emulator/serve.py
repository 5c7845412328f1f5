"""`npd-sync emulator`: run the emulator until SIGTERM/SIGINT or cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from emulator.limits import AccountLimits
from emulator.server import DEFAULT_TOKEN, Emulator
from listener import mapping


@dataclass(frozen=True, slots=True)
class EmulatorOptions:
    """What the CLI command can set."""

    host: str = "127.0.0.1"
    port: int = 8080
    token: str = DEFAULT_TOKEN
    state_file: Path | None = None
    plan: str = "pro"  # standard, pro, enterprise or unlimited
    tables: tuple[mapping.TableMapping, ...] | None = None  # None: the default mapping
    signing_secret: str | None = None  # sign webhook deliveries (an app token's webhooks)
    webhook_retry_interval: float = 60.0
    webhook_retry_for: float = 1800.0


async def serve(options: EmulatorOptions, *, out: TextIO | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or until cancelled), then save the state file.

    Prints one line on start with the URL, the token and the board ids.
    """
    emulator = Emulator(
        options.token,
        tables=options.tables,
        limits=AccountLimits.plan(options.plan),
        state_file=options.state_file,
        host=options.host,
        port=options.port,
        signing_secret=options.signing_secret,
        webhook_retry_interval=options.webhook_retry_interval,
        webhook_retry_for=options.webhook_retry_for,
    )
    url = await emulator.start()
    try:
        boards = ", ".join(f"{b.name}={b.id}" for b in emulator.boards())
        # The emulator's own token is printed on purpose: clients need it to connect.
        print(
            f"Monday emulator at {url} (token {options.token}; boards {boards})",
            file=out or sys.stdout,
            flush=True,
        )
        await _until_signalled()
    finally:
        await emulator.stop()


async def _until_signalled() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Only the main thread may install handlers; elsewhere cancellation stops us.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
