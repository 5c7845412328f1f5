"""Monday's rate limits: complexity budget, per-query cap, minute, concurrency, IP, daily."""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp
import pytest

from emulator import AccountLimits, Emulator, ManualClock
from emulator.limits import DAY, RateLimiter, Rejection

from .helpers import CONTACTS, LOOKUP, Api

CREATE = 'mutation ($b: ID!) { create_item(board_id: $b, item_name: "x") { id } }'
ME = "query { me { id } }"
COMPLEXITY = "{ complexity { before query after reset_in_x_seconds } me { id } }"


def batch(n: int) -> str:
    fields = " ".join(
        f'c{i}: create_item(board_id: $b, item_name: "n{i}") {{ id }}' for i in range(n)
    )
    return f"mutation ($b: ID!) {{ {fields} }}"


def test_plan_presets() -> None:
    assert AccountLimits() == AccountLimits.pro()
    figures = {
        name: (p.requests_per_minute, p.concurrency, p.daily_calls, p.complexity_per_minute)
        for name, p in [
            ("standard", AccountLimits.standard()),
            ("pro", AccountLimits.pro()),
            ("enterprise", AccountLimits.enterprise()),
        ]
    }
    assert figures == {
        "standard": (1_000, 40, 1_000, 10_000_000),
        "pro": (2_500, 100, 10_000, 10_000_000),
        "enterprise": (5_000, 250, 25_000, 10_000_000),
    }
    assert AccountLimits.pro().max_query_complexity == 5_000_000
    assert AccountLimits.plan("enterprise") == AccountLimits.enterprise()
    with pytest.raises(ValueError, match="unknown plan"):
        AccountLimits.plan("gold")


async def test_every_response_carries_rate_limit_headers(api: Api) -> None:
    reply = await api.post(ME)
    assert reply.headers["RateLimit-Policy"] == (
        '"minuteRate";q=2500;w=60, "concurrency";q=100;qu="concurrent-requests", '
        '"complexityMinute";q=10000000;w=60;qu="content-bytes"'
    )
    assert reply.headers["RateLimit"] == (
        '"minuteRate";r=2499;t=60, "concurrency";r=99, "complexityMinute";r=9999989;t=60'
    )
    reply = await api.post(CREATE, {"b": CONTACTS})
    assert reply.headers["RateLimit"] == (
        '"minuteRate";r=2498;t=60, "concurrency";r=99, "complexityMinute";r=9969988;t=60'
    )
    assert (await api.post(ME, token="wrong")).headers["RateLimit-Policy"]


async def test_complexity_field_reports_the_real_accounting(api: Api, clock: ManualClock) -> None:
    first = (await api.post(COMPLEXITY)).data["complexity"]
    assert first == {
        "before": 10_000_000,
        "query": 11,  # me: an object (10) and its id (1); the complexity field is free
        "after": 9_999_989,
        "reset_in_x_seconds": 60,
    }
    clock.advance(15)
    reply = await api.post(
        "mutation ($b: ID!) { complexity { before query after reset_in_x_seconds }"
        ' create_item(board_id: $b, item_name: "x") { id } }',
        {"b": CONTACTS},
    )
    assert reply.data["complexity"] == {
        "before": 9_999_989,
        "query": 30_001,  # a mutation 30,000, its id 1: Monday's own figure
        "after": 9_969_988,
        "reset_in_x_seconds": 45,
    }
    clock.advance(45)  # the window ends 60 s after its first call
    assert (await api.post(COMPLEXITY)).data["complexity"]["before"] == 10_000_000


async def test_complexity_budget_exhausted(api: Api, emu: Emulator, clock: ManualClock) -> None:
    emu.set_limits(AccountLimits(complexity_per_minute=75_000))
    for _ in range(2):
        assert (await api.post(CREATE, {"b": CONTACTS})).errors == []
    clock.advance(20)
    reply = await api.post(CREATE, {"b": CONTACTS})
    assert reply.status == 200
    assert reply.body == {
        "errors": [
            {
                "message": "Complexity budget exhausted",
                "extensions": {"code": "COMPLEXITY_BUDGET_EXHAUSTED", "retry_in_seconds": 40},
            }
        ],
        "extensions": {"request_id": reply.headers["X-Request-Id"]},
    }
    assert reply.headers["Retry-After"] == "40"
    assert len(emu.items()) == 2
    clock.advance(40)
    assert (await api.post(CREATE, {"b": CONTACTS})).errors == []


async def test_complexity_error_of_2025_04_has_the_old_extras(api: Api, emu: Emulator) -> None:
    emu.set_limits(AccountLimits(complexity_per_minute=5_000))
    reply = await api.post(CREATE, {"b": CONTACTS}, version="2025-04")
    assert reply.error()["extensions"] == {
        "code": "COMPLEXITY_BUDGET_EXHAUSTED",
        "retry_in_seconds": 60,
        "status_code": 429,
        "complexity": 30_001,
        "complexity_budget_left": 5_000,
        "complexity_budget_limit": 5_000,
    }


async def test_500_aliased_mutations_fit_the_per_query_cap_501_do_not(
    api: Api, emu: Emulator
) -> None:
    emu.set_limits(dataclasses.replace(emu.limits, mutation_cost=9_999))  # 10,000 with the id
    reply = await api.post(batch(500), {"b": CONTACTS})
    assert reply.errors == []
    assert len(emu.items()) == 500
    reply = await api.post(batch(501), {"b": CONTACTS})
    assert reply.status == 200
    assert reply.error()["extensions"] == {"code": "maxComplexityExceeded"}
    assert "5010000" in reply.error()["message"]
    assert len(emu.items()) == 500
    assert emu.requests[-1].complexity == 5_010_000


async def test_per_minute_request_limit(api: Api, emu: Emulator, clock: ManualClock) -> None:
    emu.set_limits(AccountLimits(requests_per_minute=2))
    await api.post(ME)
    clock.advance(10)
    await api.post(ME)
    reply = await api.post(ME)
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "50"
    assert reply.error()["extensions"] == {
        "code": "RATE_LIMIT_EXCEEDED",
        "status_code": 429,
        "retry_in_seconds": 50,
    }
    assert reply.error()["message"] == "Rate Limit Exceeded"
    assert '"minuteRate";r=0;t=50' in reply.headers["RateLimit"]
    clock.advance(50)
    assert (await api.post(ME)).status == 200


async def test_concurrency_limit(api: Api, emu: Emulator) -> None:
    emu.set_limits(AccountLimits(concurrency=1))
    emu.set_faults(next_hang=1)
    held = asyncio.create_task(api.post(ME))
    async with asyncio.timeout(5):
        await emu.wait_for(lambda: emu.hung == 1)
    reply = await api.post(ME)
    assert reply.status == 429
    assert reply.error()["extensions"] == {
        "code": "maxConcurrencyExceeded",
        "status_code": 429,
        "retry_in_seconds": 1,
    }
    assert '"concurrency";r=0' in reply.headers["RateLimit"]
    emu.release_hung()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await held
    assert (await api.post(ME)).status == 200


async def test_ip_limit(api: Api, emu: Emulator, clock: ManualClock) -> None:
    emu.set_limits(AccountLimits(ip_requests=2, ip_window_seconds=10))
    await api.post(ME)
    await api.post(ME, token="wrong")  # counted before the token is checked
    reply = await api.post(ME)
    assert reply.status == 429
    assert reply.error()["extensions"]["code"] == "IP_RATE_LIMIT_EXCEEDED"
    assert reply.headers["Retry-After"] == "10"
    clock.advance(10)
    assert (await api.post(ME)).status == 200


async def test_daily_limit_resets_at_midnight_utc(
    api: Api, emu: Emulator, clock: ManualClock
) -> None:
    emu.set_limits(AccountLimits(daily_calls=2))
    await api.post(ME)
    await api.post(ME)
    reply = await api.post(ME)
    to_midnight = int(DAY - clock.now % DAY)
    assert reply.status == 429
    assert reply.error()["extensions"] == {
        "code": "DAILY_LIMIT_EXCEEDED",
        "status_code": 429,
        "retry_in_seconds": to_midnight,
    }
    clock.advance(to_midnight)
    assert (await api.post(ME)).status == 200


def test_daily_calls_count_as_monday_says(clock: ManualClock) -> None:
    limiter = RateLimiter(AccountLimits(requests_per_minute=2, complexity_per_minute=5), clock)
    assert limiter.admit() is None
    assert limiter.charge(0, complexity_only=True) is not None  # complexity-only: 0.1
    limiter.release()
    assert limiter.admit() is None
    assert isinstance(limiter.charge(10), Rejection)  # refused by the budget: 0.1
    limiter.release()
    assert limiter.admit() is not None  # refused by the minute limit: 0.1
    assert limiter.usage()["daily_calls"] == 0.3


async def test_limits_can_be_switched_off(api: Api, emu: Emulator) -> None:
    emu.set_limits(AccountLimits.unlimited())
    reply = await api.post(COMPLEXITY)
    assert "RateLimit" not in reply.headers
    assert "RateLimit-Policy" not in reply.headers
    assert reply.data["complexity"]["query"] == 11
    assert (await api.post(batch(600), {"b": CONTACTS})).errors == []


async def test_costs_are_configurable(api: Api, emu: Emulator) -> None:
    costs = {**emu.limits.costs, "create_item": 7, "me": 1}
    emu.set_limits(dataclasses.replace(emu.limits, costs=costs))
    reply = await api.post(
        'mutation ($b: ID!) { a: create_item(board_id: $b, item_name: "x") { id }'
        ' b: create_item(board_id: $b, item_name: "y") { id } complexity { query } }',
        {"b": CONTACTS},
    )
    assert reply.data["complexity"] == {"query": 16}  # (7 + 1 for the id) twice


async def test_limits_over_the_control_endpoint(api: Api, emu: Emulator) -> None:
    status, body = await api.control(
        "POST", "limits", {"plan": "standard", "concurrency": 5, "costs": {"me": 3}}
    )
    assert status == 200
    assert body["limits"]["concurrency"] == 5
    assert body["limits"]["requests_per_minute"] == 1_000
    assert emu.limits.cost("me") == 3
    assert emu.limits.cost("create_item") == 30_000
    for bad in ({"plan": "gold"}, {"concurrency": "many"}, {"speed": 1}):
        status, body = await api.control("POST", "limits", bad)
        assert status == 400
        assert body["error"]
    assert emu.limits.concurrency == 5


async def test_failed_calls_count_for_the_minute(api: Api, emu: Emulator) -> None:
    emu.set_limits(AccountLimits(requests_per_minute=2))
    await api.post("query { nope }")
    await api.post(CREATE, {"b": "42"})
    assert (await api.post(ME)).status == 429


async def test_a_query_costs_what_it_may_return(api: Api, emu: Emulator) -> None:
    # Monday weighs each field (an object 10, a scalar 1) by how many may come back: the ids
    # asked for, else the limit, else a page of 25.
    items = "query ($ids: [ID!]) { items(ids: $ids) { id name column_values { id text } } }"
    reply = await api.post(items, {"ids": [str(i) for i in range(100)]})
    assert emu.requests[-1].complexity == 100 * (10 + 1 + 1 + 25 * (10 + 1 + 1))
    assert reply.errors == []
    picked = 'query { items(ids: [1, 2]) { id column_values(ids: ["text", "email"]) { text } } }'
    await api.post(picked)
    assert emu.requests[-1].complexity == 2 * (10 + 1 + 2 * (10 + 1))
    # The listener's npd_id lookup: a page of 500 items, one column each.
    await api.post(LOOKUP, {"b": CONTACTS, "c": "npd_id", "v": ["1", "2"]})
    assert emu.requests[-1].complexity == 10 + 1 + 500 * (10 + 1 + 1 + 1 * (10 + 1 + 1))


async def test_weights_are_configurable(api: Api, emu: Emulator) -> None:
    status, _ = await api.control(
        "POST",
        "limits",
        {"mutation_cost": 999, "object_cost": 2, "scalar_cost": 0, "list_default": 3},
    )
    assert status == 200
    await api.post(CREATE, {"b": CONTACTS})
    assert emu.requests[-1].complexity == 999
    await api.post("query { items(ids: [1]) { id column_values { text } } }")
    assert emu.requests[-1].complexity == 1 * (2 + 0 + 3 * 2)


async def test_a_shorter_window_is_reported_and_kept(
    api: Api, emu: Emulator, clock: ManualClock
) -> None:
    emu.set_limits(AccountLimits(complexity_per_minute=100_000, complexity_window_seconds=6))
    reply = await api.post(CREATE, {"b": CONTACTS})
    assert '"complexityMinute";q=100000;w=6;' in reply.headers["RateLimit-Policy"]
    assert '"complexityMinute";r=69999;t=6' in reply.headers["RateLimit"]
    clock.advance(2)
    await api.post(CREATE, {"b": CONTACTS})
    clock.advance(4)  # 6 s after the window's first call: a new window
    reply = await api.post(COMPLEXITY)
    assert reply.data["complexity"]["before"] == 100_000
    assert [(w.start - clock.now, w.used) for w in emu.complexity_windows()] == [
        (-6, 60_002),
        (0, 11),
    ]
