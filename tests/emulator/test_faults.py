"""Injected faults: latency, 500, 429, dropped answers, hangs; seeded and countable."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from emulator import Emulator, Faults
from emulator.faults import FaultPlan

from .helpers import CONTACTS, Api, values

CREATE = (
    'mutation ($b: ID!, $v: JSON) { create_item(board_id: $b, item_name: "x",'
    " column_values: $v) { id } }"
)
VARS = {"b": CONTACTS, "v": values(npd_id="1")}
ME = "query { me { id } }"


async def test_latency_is_added_before_answering(api: Api, emu: Emulator) -> None:
    emu.set_faults(latency=0.05)
    started = time.perf_counter()
    reply = await api.post(ME)
    assert reply.status == 200
    assert time.perf_counter() - started >= 0.05
    assert emu.requests[-1].seconds >= 0.05


async def test_latency_delays_error_answers_too(api: Api, emu: Emulator) -> None:
    emu.set_faults(latency=0.05)
    started = time.perf_counter()
    assert (await api.post(ME, token="wrong")).status == 401
    assert time.perf_counter() - started >= 0.05


async def test_next_http_500s_change_nothing(api: Api, emu: Emulator) -> None:
    emu.set_faults(next_http_500=2)
    for _ in range(2):
        reply = await api.post(CREATE, VARS)
        assert reply.status == 500
        assert reply.error()["extensions"] == {
            "code": "INTERNAL_SERVER_ERROR",
            "status_code": 500,
        }
        assert reply.body["extensions"]["request_id"]
    assert emu.items() == []
    assert (await api.post(CREATE, VARS)).status == 200
    assert emu.faults.next_http_500 == 0
    assert emu.counters.faults == {"http_500": 2}
    assert emu.counters.errors["INTERNAL_SERVER_ERROR"] == 2


async def test_injected_429_tells_when_to_retry(api: Api, emu: Emulator) -> None:
    emu.set_faults(next_http_429=1, retry_in_seconds=7)
    reply = await api.post(CREATE, VARS)
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "7"
    assert reply.error()["extensions"] == {
        "code": "RATE_LIMIT_EXCEEDED",
        "status_code": 429,
        "retry_in_seconds": 7,
    }
    assert emu.items() == []


async def test_drop_applies_then_closes_without_answer(api: Api, emu: Emulator) -> None:
    emu.set_faults(next_drop=1)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.post(CREATE, VARS)
    assert [i.values for i in emu.items()] == [{"npd_id": "1"}]
    record = emu.requests[-1]
    assert (record.fault, record.status, record.mutations) == ("drop", None, 1)
    assert (await api.post(ME)).status == 200  # the next request is answered


async def test_hang_never_answers_until_the_client_gives_up(api: Api, emu: Emulator) -> None:
    emu.set_faults(next_hang=1)
    with pytest.raises(asyncio.TimeoutError):
        await api.post(CREATE, VARS, timeout=0.2)
    async with asyncio.timeout(5):
        await emu.wait_for(lambda: emu.hung == 0 and emu.in_flight == 0)
    assert emu.items() == []
    assert (emu.requests[-1].fault, emu.requests[-1].status) == ("hang", None)


async def test_released_hangs_close_the_connection(api: Api, emu: Emulator) -> None:
    emu.set_faults(next_hang=2)
    held = [asyncio.create_task(api.post(ME)) for _ in range(2)]
    async with asyncio.timeout(5):
        await emu.wait_for(lambda: emu.hung == 2)
    assert emu.release_hung() == 2
    for task in held:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await task


async def test_shares_always_and_never(api: Api, emu: Emulator) -> None:
    emu.set_faults(Faults(http_500=1.0))
    assert [(await api.post(ME)).status for _ in range(3)] == [500, 500, 500]
    emu.set_faults(Faults(http_500=0.0))
    assert [(await api.post(ME)).status for _ in range(3)] == [200, 200, 200]


def test_a_seed_makes_shares_reproducible() -> None:
    faults = Faults(http_500=0.2, http_429=0.2, drop=0.2, seed=42)
    runs = []
    for _ in range(2):
        plan = FaultPlan(faults)
        runs.append([plan.decide(is_mutation=True) for _ in range(200)])
    assert runs[0] == runs[1]
    counts = {kind: runs[0].count(kind) for kind in ("http_500", "http_429", "drop", None)}
    assert all(count > 10 for count in counts.values()), counts
    other = FaultPlan(Faults(http_500=0.2, http_429=0.2, drop=0.2, seed=43))
    assert [other.decide(is_mutation=True) for _ in range(200)] != runs[0]


async def test_seeded_shares_over_http(api: Api, emu: Emulator) -> None:
    statuses = []
    for _ in range(2):
        emu.set_faults(Faults(http_500=0.5, seed=3))
        statuses.append([(await api.post(ME)).status for _ in range(12)])
    assert statuses[0] == statuses[1]
    assert {200, 500} == set(statuses[0])


async def test_faults_can_target_mutations_only(api: Api, emu: Emulator) -> None:
    emu.set_faults(next_http_500=1, applies_to="mutations")
    assert (await api.post(ME)).status == 200
    assert (await api.post(CREATE, VARS)).status == 500
    assert (await api.post(CREATE, VARS)).status == 200


def test_fault_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(drop=1.5)
    with pytest.raises(ValueError, match="next_hang"):
        Faults(next_hang=-1)
    with pytest.raises(ValueError, match="applies_to"):
        Faults(applies_to="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown fault settings: boom"):
        Faults.from_json({"boom": 1})


async def test_faults_over_the_control_endpoint(api: Api, emu: Emulator) -> None:
    status, body = await api.control("POST", "faults", {"next_http_500": 1, "latency": 0.0})
    assert status == 200
    assert body["faults"]["next_http_500"] == 1
    assert (await api.post(ME)).status == 500
    _, state = await api.control("GET", "state")
    assert state["faults"]["next_http_500"] == 0
    assert state["counters"]["faults"] == {"http_500": 1}
    for bad in ({"http_500": 2}, {"nope": 1}, [1]):
        status, body = await api.control("POST", "faults", bad)
        assert status == 400
        assert body["error"]
    emu.set_faults(next_hang=1)
    held = asyncio.create_task(api.post(ME))
    async with asyncio.timeout(5):
        await emu.wait_for(lambda: emu.hung == 1)
    assert await api.control("POST", "release") == (200, {"released": 1})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await held


async def test_faults_given_at_construction() -> None:
    async with (
        Emulator("t", faults=Faults(next_http_500=1)) as emu,
        aiohttp.ClientSession() as session,
    ):
        payload = {"query": ME}
        async with session.post(emu.url, json=payload, headers={"Authorization": "t"}) as r:
            assert r.status == 500
        async with session.post(emu.url, json=payload, headers={"Authorization": "t"}) as r:
            assert r.status == 200
