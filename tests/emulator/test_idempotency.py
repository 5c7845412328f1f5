"""Idempotency-Key: replay for 30 minutes, 409 while the first is running, scoped by token."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from emulator import Emulator, ManualClock

from .helpers import CONTACTS, Api, values

CREATE = (
    'mutation ($b: ID!, $v: JSON) { create_item(board_id: $b, item_name: "x",'
    " column_values: $v) { id } }"
)
VARS = {"b": CONTACTS, "v": values(npd_id="1")}


async def test_a_retry_with_the_same_key_is_replayed(api: Api, emu: Emulator) -> None:
    first = await api.post(CREATE, VARS, key="k1")
    again = await api.post(CREATE, VARS, key="k1")
    assert "Idempotency-Replayed" not in first.headers
    assert again.headers["Idempotency-Replayed"] == "true"
    assert again.status == first.status == 200
    assert again.body == first.body  # request_id included: it is the cached response
    assert len(emu.items()) == 1
    assert emu.counters.replays == 1
    assert emu.counters.mutations == 1
    assert [r.replayed for r in emu.requests] == [False, True]
    assert [r.idempotency_key for r in emu.requests] == ["k1", "k1"]


async def test_another_key_or_no_key_runs_again(api: Api, emu: Emulator) -> None:
    await api.post(CREATE, VARS, key="k1")
    await api.post(CREATE, VARS, key="k2")
    await api.post(CREATE, VARS)
    await api.post(CREATE, VARS)
    assert len(emu.items()) == 4


async def test_keys_are_scoped_by_token(api: Api, emu: Emulator) -> None:
    await api.post(CREATE, VARS, key="k1")
    other = await api.post(CREATE, VARS, key="k1", token="other-token")
    assert "Idempotency-Replayed" not in other.headers
    assert len(emu.items()) == 2


async def test_error_answers_are_replayed_too(api: Api, emu: Emulator) -> None:
    bad = {"b": CONTACTS, "v": values(email="not an object")}
    first = await api.post(CREATE, bad, key="k1")
    again = await api.post(CREATE, bad, key="k1")
    assert first.codes == again.codes == ["ColumnValueException"]
    assert again.headers["Idempotency-Replayed"] == "true"


async def test_queries_are_not_cached(api: Api) -> None:
    await api.post("query { me { id } }", key="q")
    again = await api.post("query { me { id } }", key="q")
    assert "Idempotency-Replayed" not in again.headers


async def test_responses_expire_after_30_minutes(
    api: Api, emu: Emulator, clock: ManualClock
) -> None:
    await api.post(CREATE, VARS, key="k1")
    clock.advance(30 * 60 - 1)
    assert (await api.post(CREATE, VARS, key="k1")).headers.get("Idempotency-Replayed") == "true"
    clock.advance(1)
    assert "Idempotency-Replayed" not in (await api.post(CREATE, VARS, key="k1")).headers
    assert len(emu.items()) == 2


async def test_responses_over_1_mb_are_not_cached(api: Api, emu: Emulator) -> None:
    big = (
        'mutation ($b: ID!, $v: JSON) { create_item(board_id: $b, item_name: "x",'
        ' column_values: $v) { column_values(ids: ["text"]) { value } } }'
    )
    variables = {"b": CONTACTS, "v": values(text="x" * 1_000_001)}
    await api.post(big, variables, key="big")
    again = await api.post(big, variables, key="big")
    assert "Idempotency-Replayed" not in again.headers
    assert len(emu.items()) == 2


async def test_a_duplicate_while_the_first_runs_gets_409(api: Api, emu: Emulator) -> None:
    emu.set_faults(next_hang=1)
    first = asyncio.create_task(api.post(CREATE, VARS, key="k1"))
    async with asyncio.timeout(5):
        await emu.wait_for(lambda: emu.hung == 1)
    duplicate = await api.post(CREATE, VARS, key="k1")
    assert duplicate.status == 409
    assert duplicate.headers["Retry-After"] == "1"
    assert duplicate.error()["extensions"] == {
        "code": "IDEMPOTENCY_CONFLICT",
        "status_code": 409,
        "retry_in_seconds": 1,
    }
    emu.release_hung()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await first
    # The hung request did nothing, so its key is free again.
    retry = await api.post(CREATE, VARS, key="k1")
    assert retry.status == 200
    assert "Idempotency-Replayed" not in retry.headers
    assert len(emu.items()) == 1


async def test_a_dropped_answer_is_replayed_on_retry(api: Api, emu: Emulator) -> None:
    emu.set_faults(next_drop=1)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.post(CREATE, VARS, key="k1")
    assert len(emu.items()) == 1  # applied, although the client never heard
    retry = await api.post(CREATE, VARS, key="k1")
    assert retry.headers["Idempotency-Replayed"] == "true"
    assert retry.data == {"create_item": {"id": emu.items()[0].id}}
    assert len(emu.items()) == 1
