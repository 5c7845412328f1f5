"""Monday's daily call limit: the count (every token, 0.1 for refusals), the refusal, the reset
at 00:00 UTC, platform_api with its late analytics, a compressed day, the control endpoints."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import aiohttp
import pytest

from emulator import DEFAULT_LIMITS, AccountLimits, Emulator, ManualClock, ScaledClock
from emulator.clock import DAY, to_midnight, utc_day
from emulator.daily import DailyCalls, day_name
from emulator.limits import limits_from_json

from .helpers import CONTACTS, TABLES, TOKEN, Api

ME = "query { me { id } }"
PLATFORM = (
    "query { platform_api { daily_limit { base total }"
    " daily_analytics { last_updated by_day { day usage } } } }"
)
CREATE = 'mutation ($b: ID!) { create_item(board_id: $b, item_name: "x") { id } }'
START = 1_800_000_000.0  # 2027-01-15T08:00:00Z, the ManualClock's start


def standard(**changes: object) -> AccountLimits:
    return dataclasses.replace(AccountLimits.standard(), **changes)  # type: ignore[arg-type]


async def platform(api: Api, token: str = TOKEN) -> dict[str, object]:
    reply = await api.post(PLATFORM, token=token)
    assert reply.errors == [], reply.body
    return dict(reply.data["platform_api"])


def test_plan_figures_per_day_and_per_minute() -> None:
    plans = ("free", "standard", "pro", "enterprise")
    figures = {
        name: (AccountLimits.plan(name).daily_calls, AccountLimits.plan(name).requests_per_minute)
        for name in plans
    }
    assert figures == {
        "free": (200, 1_000),
        "standard": (1_000, 1_000),
        "pro": (10_000, 2_500),
        "enterprise": (25_000, 5_000),
    }


async def test_an_emulator_has_no_daily_limit_unless_asked(clock: ManualClock) -> None:
    assert dataclasses.replace(AccountLimits.pro(), daily_calls=None) == DEFAULT_LIMITS
    async with Emulator(TOKEN, clock=clock) as emu, aiohttp.ClientSession() as session:
        api = Api(session, emu)
        assert emu.limits.daily_calls is None
        for _ in range(3):
            assert (await api.post(ME)).status == 200
        assert emu.daily_calls_used == 3  # counted all the same
        assert (await platform(api))["daily_limit"] == {"base": None, "total": None}


async def test_every_token_of_the_account_counts_against_one_limit(api: Api, emu: Emulator) -> None:
    emu.set_limits(standard(daily_calls=3))
    await api.post(ME)
    await api.post(ME, token="other-token")
    await api.post(ME)
    reply = await api.post(ME, token="other-token")
    assert reply.error()["extensions"]["code"] == "DAILY_LIMIT_EXCEEDED"
    assert (await api.post(ME, token="wrong")).status == 401  # no account: not counted
    assert emu.daily_calls_used == pytest.approx(3.1)


async def test_the_refusal_is_monday_s_and_costs_a_tenth(
    api: Api, emu: Emulator, clock: ManualClock
) -> None:
    emu.set_limits(standard(daily_calls=1))
    assert (await api.post(CREATE, {"b": CONTACTS})).errors == []
    refusals = [await api.post(CREATE, {"b": CONTACTS}) for _ in range(3)]
    to_reset = int(DAY - START % DAY)  # 16 hours from 08:00 UTC
    for reply in refusals:
        assert reply.status == 429
        assert reply.body == {
            "errors": [
                {
                    "message": "Daily limit exceeded",
                    "extensions": {
                        "code": "DAILY_LIMIT_EXCEEDED",
                        "status_code": 429,
                        "retry_in_seconds": to_reset,
                    },
                }
            ],
            "extensions": {"request_id": reply.headers["X-Request-Id"]},
        }
        assert reply.headers["Retry-After"] == str(to_reset)
        assert reply.headers["RateLimit-Policy"]  # on every response
    assert len(emu.items()) == 1  # refused calls do nothing
    assert [r.calls for r in emu.requests] == [1, 0.1, 0.1, 0.1]
    assert emu.daily_calls_used == pytest.approx(1.3)


async def test_ten_refused_calls_make_a_whole_one(api: Api, emu: Emulator) -> None:
    emu.set_limits(standard(daily_calls=11, complexity_per_minute=1))
    emu.set_daily_calls_used(10)  # 10 + ten times (1 - 0.9) is 10.999999999999996 in floats
    for _ in range(10):
        assert (await api.post(CREATE, {"b": CONTACTS})).codes == ["COMPLEXITY_BUDGET_EXHAUSTED"]
    assert (await api.post(ME)).error()["extensions"]["code"] == "DAILY_LIMIT_EXCEEDED"


async def test_the_day_ends_at_midnight_utc_on_the_emulator_s_clock(
    api: Api, emu: Emulator, clock: ManualClock
) -> None:
    emu.set_limits(standard(daily_calls=2))
    clock.advance(to_midnight(clock.now) - 1)  # 23:59:59
    await api.post(ME)
    await api.post(ME)
    assert (await api.post(ME)).error()["extensions"]["retry_in_seconds"] == 1
    clock.advance(1)
    assert (await api.post(ME)).status == 200
    assert emu.daily_calls_used == 1


async def test_tenths_for_complexity_only_rate_limited_and_injected_429_calls(
    api: Api, emu: Emulator
) -> None:
    emu.set_limits(standard(complexity_per_minute=40_000))
    await api.post("query { complexity { before } }")  # on its own: 0.1
    await api.post(CREATE, {"b": CONTACTS})  # 1
    await api.post(CREATE, {"b": CONTACTS})  # over the budget: 0.1
    emu.set_faults(next_http_429=1)
    await api.post(ME)  # refused for a rate limit: 0.1
    assert [r.calls for r in emu.requests] == [0.1, 1, 0.1, 0.1]
    assert emu.daily_calls_used == pytest.approx(1.3)


async def test_high_complexity_queries_count_more_when_configured(api: Api, emu: Emulator) -> None:
    emu.set_limits(standard(calls_per_complexity=50_000))
    batch = " ".join(f'c{i}: create_item(board_id: $b, item_name: "x") {{ id }}' for i in range(4))
    await api.post(f"mutation ($b: ID!) {{ {batch} }}", {"b": CONTACTS})  # 120,004 points
    await api.post(ME)
    assert [r.calls for r in emu.requests] == [3, 1]


async def test_platform_api_answers_the_limit_and_the_usage(
    api: Api, emu: Emulator, clock: ManualClock
) -> None:
    emu.set_limits(standard(daily_calls_extra=500, usage_refresh_seconds=0))
    await api.post(ME)
    answer = await platform(api)
    assert answer == {
        "daily_limit": {"base": 1_000, "total": 1_500},
        "daily_analytics": {
            "last_updated": "2027-01-15T08:00:00Z",
            "by_day": [{"day": "2027-01-15", "usage": 2}],  # this very call included
        },
    }


async def test_usage_is_refreshed_only_every_few_minutes(
    api: Api, emu: Emulator, clock: ManualClock
) -> None:
    emu.set_limits(standard(usage_refresh_seconds=300))  # 08:00:00 is a refresh time
    for _ in range(3):
        await api.post(ME)
    analytics = (await platform(api))["daily_analytics"]
    assert analytics == {"last_updated": "2027-01-15T08:00:00Z", "by_day": []}
    clock.advance(299)
    assert (await platform(api))["daily_analytics"] == analytics
    clock.advance(1)  # 08:05: the count as it was then (5 calls), not this 6th one
    assert (await platform(api))["daily_analytics"] == {
        "last_updated": "2027-01-15T08:05:00Z",
        "by_day": [{"day": "2027-01-15", "usage": 5}],
    }
    assert emu.daily_calls_used == 6


async def test_after_midnight_the_analytics_still_show_yesterday_until_they_refresh(
    api: Api, emu: Emulator, clock: ManualClock
) -> None:
    emu.set_limits(standard(usage_refresh_seconds=600))
    clock.advance(to_midnight(clock.now) - 300)  # 23:55
    await api.post(ME)
    clock.advance(330)  # 00:00:30
    analytics = (await platform(api))["daily_analytics"]
    assert analytics == {
        "last_updated": "2027-01-16T00:00:00Z",
        "by_day": [{"day": "2027-01-15", "usage": 1}],
    }
    assert emu.daily_calls_used == 1  # the new day's count is live: this call


async def test_a_token_that_may_not_read_platform_api_gets_user_unauthorized(
    api: Api, emu: Emulator
) -> None:
    emu.set_limits(standard(platform_api_readable=False))
    reply = await api.post(PLATFORM)
    assert reply.status == 200
    assert reply.data == {"platform_api": None}
    error = reply.error()
    assert error["message"] == "User unauthorized to perform action"
    assert error["path"] == ["platform_api"]
    assert error["extensions"] == {
        "code": "USER_UNAUTHORIZED",
        "status_code": 403,
        "error_data": {},
    }


async def test_a_1000_call_account_with_4_calls_left(api: Api, emu: Emulator) -> None:
    emu.set_limits(AccountLimits.standard())
    emu.set_daily_calls_used(996)
    usage = (await platform(api))["daily_analytics"]
    assert usage["by_day"] == [{"day": "2027-01-15", "usage": 996}]  # type: ignore[index]
    for _ in range(3):
        assert (await api.post(ME)).status == 200
    assert (await api.post(ME)).status == 429  # the platform_api call was the 4th
    assert emu.daily_calls_used == pytest.approx(1000.1)


async def test_usage_set_unreported_waits_for_the_next_refresh(
    api: Api, emu: Emulator, clock: ManualClock
) -> None:
    emu.set_limits(standard(usage_refresh_seconds=600))
    emu.set_daily_calls_used(500, reported=False)
    assert (await platform(api))["daily_analytics"]["by_day"] == []  # type: ignore[index]
    clock.advance(600)
    by_day = (await platform(api))["daily_analytics"]["by_day"]  # type: ignore[index]
    assert by_day == [{"day": "2027-01-15", "usage": 501}]


async def test_control_daily_reads_and_sets_the_count(api: Api, emu: Emulator) -> None:
    status, body = await api.control("POST", "daily", {"left": 4})
    assert status == 400
    assert "daily_calls" in body["error"]  # no limit to leave 4 of
    status, _ = await api.control("POST", "limits", {"plan": "standard"})
    assert status == 200
    status, body = await api.control("POST", "daily", {"left": 4})
    assert status == 200
    assert (body["used"], body["limit"], body["left"]) == (996, 1_000, 4)
    assert body["day"] == "2027-01-15"
    assert body["resets_in_seconds"] == 16 * 3600
    assert body["reported"]["by_day"] == [{"day": "2027-01-15", "usage": 996}]
    await api.post(ME)
    status, body = await api.control("GET", "daily")
    assert (body["used"], body["left"]) == (997, 3)
    for bad in ({}, {"used": -1}, {"used": 1, "left": 1}, {"used": "x"}, {"used": 1, "x": 2}):
        status, body = await api.control("POST", "daily", bad)
        assert status == 400, bad
    assert emu.daily_calls_used == 997


async def test_new_limit_settings_over_the_control_endpoint(api: Api, emu: Emulator) -> None:
    status, body = await api.control(
        "POST",
        "limits",
        {"plan": "free", "usage_refresh_seconds": 60, "platform_api_readable": False},
    )
    assert status == 200
    assert body["limits"]["daily_calls"] == 200
    assert (emu.limits.usage_refresh_seconds, emu.limits.platform_api_readable) == (60, False)
    with pytest.raises(ValueError, match="true or false"):
        limits_from_json({"platform_api_readable": 1})
    assert limits_from_json({"calls_per_complexity": None}).calls_per_complexity is None


def test_a_scaled_clock_runs_a_day_in_minutes() -> None:
    real = [100.0]
    clock = ScaledClock(144, start=START, monotonic=lambda: real[0])
    assert clock() == START
    real[0] += 600  # ten real minutes
    assert clock() == START + DAY
    clock.advance(3600)
    assert clock() == START + DAY + 3600
    assert clock.real_seconds(DAY) == 600
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(0)


@pytest.fixture
async def fast() -> AsyncIterator[tuple[Emulator, Api, list[float]]]:
    real = [0.0]
    clock = ScaledClock(144, start=START, monotonic=lambda: real[0])
    async with (
        Emulator(TOKEN, tables=TABLES, clock=clock, limits=standard(daily_calls=2)) as emu,
        aiohttp.ClientSession() as session,
    ):
        yield emu, Api(session, emu), real


async def test_a_compressed_day_resets_after_its_minutes(
    fast: tuple[Emulator, Api, list[float]],
) -> None:
    emu, api, real = fast
    await api.post(ME)
    await api.post(ME)
    refused = await api.post(ME)
    assert refused.error()["extensions"]["retry_in_seconds"] == 16 * 3600  # emulated seconds
    real[0] += 16 * 3600 / 144  # 400 real seconds
    assert (await api.post(ME)).status == 200
    assert emu.daily_calls_used == 1


def test_days_are_utc_days() -> None:
    assert day_name(utc_day(START)) == "2027-01-15"
    assert to_midnight(START) == 16 * 3600
    counts = DailyCalls(lambda: START)
    counts.count(1, 0)
    counts.count(-0.9, 0)
    counts.count(-0.9, 0)  # never below nothing
    assert counts.today() == 0
