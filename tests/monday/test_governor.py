"""The rate-limit governor: a budget and a pause shared by every listener through PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest

from listener import db
from listener.monday import api, errors, governor

LIMITS = governor.Limits(complexity_per_minute=30_000, requests_per_minute=1_000)


@pytest.fixture
async def pools(dsn: str) -> AsyncIterator[list[asyncpg.Pool]]:
    """Two pools: two listener processes, as far as the database can tell."""
    made = [await db.create_pool(dsn), await db.create_pool(dsn)]
    yield made
    for pool in made:
        await pool.close()


@pytest.mark.parametrize(
    ("error", "seconds"),
    [
        (errors.RateLimited("x", code="COMPLEXITY_BUDGET_EXHAUSTED", retry_after=12), 12),
        (errors.RateLimited("x", code="RATE_LIMIT_EXCEEDED", status=429), 60),
        (errors.Blocked("x", code="USER_UNAUTHORIZED"), 60),
        (errors.Blocked("x", code="DAILY_LIMIT_EXCEEDED", retry_after=3600), 3600),
        (errors.Transient("x", status=500), 0),
        (errors.Permanent("x", code="ColumnValueException"), 0),
    ],
)
def test_what_pauses_everything(error: errors.MondayError, seconds: float) -> None:
    assert governor.pause_for(error) == seconds


def test_daily_limit_without_a_hint_waits_for_midnight_utc() -> None:
    late = dt.datetime(2026, 11, 28, 23, 0, tzinfo=dt.UTC)
    assert governor.until_midnight_utc(late) == 3600
    error = errors.Blocked("x", code="DAILY_LIMIT_EXCEEDED")
    assert 0 < governor.pause_for(error) <= 86400


async def test_listeners_share_one_budget(pools: list[asyncpg.Pool]) -> None:
    one, two = (governor.Governor(p, LIMITS, max_wait=0.2) for p in pools)
    for g in (one, two, one):  # 10,000 points each: 30,000 is three, whoever sends them
        async with g.request(None, 1) as granted:
            assert granted == 1
    with pytest.raises(errors.RateLimited) as refused:
        async with one.request(None, 1):
            pass
    assert refused.value.retry_after is not None
    assert 50 < refused.value.retry_after <= 60  # the start of the next minute


async def test_a_request_gets_what_the_budget_holds(pools: list[asyncpg.Pool]) -> None:
    g = governor.Governor(pools[0], LIMITS, max_wait=0.2)
    async with g.request("7", 100) as granted:
        assert granted == 3  # of the 100 asked, the 30,000 points hold three
    with pytest.raises(errors.RateLimited):
        async with g.request("7", 100):
            pass


async def test_monday_figures_replace_the_estimate(pools: list[asyncpg.Pool]) -> None:
    g = governor.Governor(pools[0], LIMITS, max_wait=0.2)
    reply = api.Reply(
        data={"o0": {"id": "1"}, "o1": {"id": "2"}, "complexity": {}},
        field_errors={},
        request_id=None,
        complexity=api.Complexity(query=2_000, before=9_000, after=7_000, reset_in_x_seconds=30),
        headers={"RateLimit": '"minuteRate";r=5;t=20, "complexityMinute";r=7000;t=30'},
    )
    await g.observe(reply)
    assert 3_000 < g.op_cost < 10_000  # learning towards 1,000 a mutation
    async with pools[0].acquire() as conn:
        state = await conn.fetchrow("SELECT * FROM npd_sync.monday")
    assert (state["complexity_remaining"], state["requests_remaining"]) == (7_000, 5)


async def test_a_pause_holds_every_listener(pools: list[asyncpg.Pool]) -> None:
    one, two = (governor.Governor(p, LIMITS, max_wait=0.2) for p in pools)
    assert await two.paused_for() == 0
    await one.pause(errors.RateLimited("slow down", code="RATE_LIMIT_EXCEEDED", retry_after=30))
    two._paused_checked = 0.0  # skip the one-second cache
    assert 25 < await two.paused_for() <= 30
    with pytest.raises(errors.RateLimited, match="RATE_LIMIT_EXCEEDED"):
        async with two.request(None, 1):
            pass


async def test_one_request_at_a_time_per_board(pools: list[asyncpg.Pool]) -> None:
    roomy = governor.Limits(10_000_000, 1_000)
    one, two = (governor.Governor(p, roomy, max_wait=5) for p in pools)
    order: list[str] = []
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with one.request("42", 1):
            order.append("one in")
            first_in.set()
            await release.wait()
            order.append("one out")

    async def second() -> None:
        await first_in.wait()
        async with two.request("42", 1):
            order.append("two in")

    async def other_board() -> None:
        await first_in.wait()
        async with two.request("43", 1):
            order.append("other board")
        release.set()

    await asyncio.wait_for(asyncio.gather(first(), second(), other_board()), 10)
    assert order == ["one in", "other board", "one out", "two in"]
