"""A small webhook receiver over real HTTP, for the emulator's webhook tests."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass
class Received:
    """One POST the receiver got: its JSON body and headers."""

    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def event(self) -> dict[str, Any]:
        return dict(self.body["event"])


class Receiver:
    """Answers challenges, records events, and answers what it is told to.

    `statuses` are the answers to the next events (then 200); `echo` False answers the
    challenge with another value; `gate`, when given, holds each answer (not the
    recording) until it is set.
    """

    def __init__(self) -> None:
        self.challenges: list[Received] = []
        self.received: list[Received] = []
        self.statuses: deque[int] = deque()
        self.echo = True
        self.gate: asyncio.Event | None = None
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._tick = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def events(self) -> list[dict[str, Any]]:
        return [r.event for r in self.received]

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.url

    async def stop(self) -> None:
        """Stop listening: the URL then refuses connections (until `start` again)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds, checked after each request (wrap in a timeout)."""
        while not predicate():
            await self._tick.wait()

    async def _hook(self, request: web.Request) -> web.Response:
        got = Received(json.loads(await request.read()), dict(request.headers))
        if "challenge" in got.body:
            self.challenges.append(got)
            self._notify()
            answer = got.body["challenge"] if self.echo else "something else"
            return web.json_response({"challenge": answer})
        self.received.append(got)
        self._notify()
        if self.gate is not None:
            await self.gate.wait()
        status = self.statuses.popleft() if self.statuses else 200
        return web.json_response({"ok": status == 200}, status=status)

    def _notify(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()
