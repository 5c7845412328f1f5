"""Fixtures: an in-process emulator on a free port, a manual clock, and an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from emulator import Emulator, ManualClock

from .helpers import TABLES, TOKEN, Api


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def emu(clock: ManualClock) -> AsyncIterator[Emulator]:
    async with Emulator(TOKEN, tables=TABLES, clock=clock, extra_tokens=("other-token",)) as e:
        yield e


@pytest.fixture
async def api(emu: Emulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, emu)
