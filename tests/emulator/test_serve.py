"""`serve`, behind `npd-sync emulator`: one line on start, stops on SIGTERM or cancel."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import signal
from pathlib import Path

import aiohttp
import jwt
import pytest

from emulator import EmulatorOptions, serve

from .receiver import Receiver

LINE = re.compile(
    r"^Monday emulator at (http://127\.0\.0\.1:\d+/v2) \(token (\S+); "
    r"boards contacts=1000000001, organizations=1000000002\)\n$"
)


async def started(out: io.StringIO) -> str:
    async with asyncio.timeout(5):
        while not out.getvalue():
            await asyncio.sleep(0.01)
    match = LINE.match(out.getvalue())
    assert match, out.getvalue()
    return match.group(1)


async def create(url: str, token: str) -> int:
    query = 'mutation { create_item(board_id: 1000000001, item_name: "Ada") { id } }'
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"query": query}, headers={"Authorization": token}) as response,
    ):
        return response.status


async def test_serve_until_cancelled_then_save(tmp_path: Path) -> None:
    state = tmp_path / "monday.json"
    out = io.StringIO()
    options = EmulatorOptions(port=0, token="secret-ish", state_file=state)
    task = asyncio.create_task(serve(options, out=out))
    url = await started(out)
    assert "token secret-ish;" in out.getvalue()
    assert await create(url, "secret-ish") == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [i["name"] for i in json.loads(state.read_text())["items"]] == ["Ada"]
    with pytest.raises(aiohttp.ClientConnectionError):
        await create(url, "secret-ish")


async def test_serve_stops_on_sigterm() -> None:
    out = io.StringIO()
    task = asyncio.create_task(serve(EmulatorOptions(port=0, plan="unlimited"), out=out))
    url = await started(out)
    os.kill(os.getpid(), signal.SIGTERM)
    async with asyncio.timeout(5):
        await task  # returns normally
    with pytest.raises(aiohttp.ClientConnectionError):
        await create(url, "emulator-token")


async def test_serve_passes_the_webhook_options_on() -> None:
    secret = "0123456789abcdef0123456789abcdef"
    receiver = Receiver()
    await receiver.start()
    out = io.StringIO()
    options = EmulatorOptions(
        port=0, signing_secret=secret, webhook_retry_interval=0.01, webhook_retry_for=5
    )
    task = asyncio.create_task(serve(options, out=out))
    try:
        url = await started(out)
        base = url.removesuffix("/v2")
        query = (
            "mutation ($u: String!) { create_webhook(board_id: 1000000001, url: $u,"
            " event: create_item) { id } }"
        )
        async with aiohttp.ClientSession() as session:
            async with session.post(
                url,
                json={"query": query, "variables": {"u": receiver.url}},
                headers={"Authorization": "emulator-token"},
            ) as response:
                assert "errors" not in await response.json()
            receiver.statuses.append(500)  # retried after 10 ms, not after a minute
            async with session.post(f"{base}/control/boards/1000000001/items", json={"name": "A"}):
                pass
        async with asyncio.timeout(10):
            await receiver.wait_for(lambda: len(receiver.received) == 2)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await receiver.stop()
    token = receiver.received[1].headers["Authorization"]
    assert jwt.decode(token, secret, algorithms=["HS256"], audience=receiver.url)
