"""Helpers shared by the tests: run the real worker to completion, poll with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from listener import db, monday, worker
from listener.settings import Settings

T = TypeVar("T")


async def drain(config: Settings, *, listener_id: str = "test") -> worker.Worker:
    """Run the worker until nothing is due; returns it for its stats."""
    pool = await db.create_pool(config.require_database())
    try:
        async with pool.acquire() as conn:
            tables = await worker.load_tables(conn, config)
        client = None
        if config.api_key is not None:
            client = monday.Client(
                url=config.api_url, api_key=config.api_key, version=config.api_version
            )
            await client.__aenter__()
        try:
            w = worker.Worker(config, pool, client, tables, listener_id)
            while await w.run_once():
                pass
            return w
        finally:
            if client is not None:
                await client.close()
    finally:
        await pool.close()


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool] = bool,
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
) -> T:
    """Poll `probe` until `check` holds for its result, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)
