"""The rate-limit governor: a budget and a pause shared by every listener through PostgreSQL,
corrected by what Monday reports."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Mapping

import asyncpg
import pytest

from listener import db
from listener.monday import api, errors, governor

LIMITS = governor.Limits(complexity_per_minute=30_000, requests_per_minute=1_000)
UPDATES = ["update"] * 100


@pytest.fixture
async def pools(dsn: str) -> AsyncIterator[list[asyncpg.Pool]]:
    """Two pools: two listener processes, as far as the database can tell."""
    made = [await db.create_pool(dsn), await db.create_pool(dsn)]
    yield made
    for pool in made:
        await pool.close()


def meter(
    pool: asyncpg.Pool, limits: governor.Limits = LIMITS, **costs: float
) -> governor.Governor:
    """A governor that knows what an operation costs (as if a reply had told it)."""
    g = governor.Governor(pool, limits, max_wait=0.2)
    g.costs.update(costs or {"update": 10_000})
    g.confirmed.update(costs or {"update": 10_000})
    return g


def reply(
    query: int,
    before: int,
    *,
    reset: int = 60,
    headers: Mapping[str, str] | None = None,
    operations: int = 1,
) -> api.Reply:
    data = {f"o{i}": {"id": str(i)} for i in range(operations)}
    return api.Reply(
        data={**data, "complexity": {}},
        field_errors={},
        request_id=None,
        complexity=api.Complexity(
            query=query, before=before, after=before - query, reset_in_x_seconds=reset
        ),
        headers=headers or {},
    )


async def state(pool: asyncpg.Pool) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM npd_sync.monday")
    assert row is not None
    return row


@pytest.mark.parametrize(
    ("error", "seconds"),
    [
        (errors.RateLimited("x", code="COMPLEXITY_BUDGET_EXHAUSTED", retry_after=12), 12),
        (errors.RateLimited("x", code="RATE_LIMIT_EXCEEDED", status=429), 60),
        (errors.Blocked("x", code="USER_UNAUTHORIZED"), 60),
        (errors.Blocked("x", code="DAILY_LIMIT_EXCEEDED", retry_after=3600), 3600),
        (errors.Transient("x", status=500), 0),
        (errors.Permanent("x", code="ColumnValueException"), 0),
        # One listener waiting for another's board is nobody else's business.
        (errors.RateLimited("x", code=governor.BOARD_BUSY, retry_after=1), 0),
    ],
)
def test_what_pauses_everything(error: errors.MondayError, seconds: float) -> None:
    assert governor.pause_for(error) == seconds


def test_daily_limit_without_a_hint_waits_for_midnight_utc() -> None:
    late = dt.datetime(2026, 11, 28, 23, 0, tzinfo=dt.UTC)
    assert governor.until_midnight_utc(late) == 3600
    error = errors.Blocked("x", code="DAILY_LIMIT_EXCEEDED")
    assert 0 < governor.pause_for(error) <= 86400


def test_costs_are_learnt_per_kind() -> None:
    costs = dict(governor.FIRST_GUESS)
    governor.learn(costs, ["create", "create"], 20_002)
    assert costs["create"] == 10_001
    governor.learn(costs, ["update"], 5_000)
    assert costs["update"] == 5_000
    # A mixed request scales the kinds in it alike; the next one of a kind settles it.
    governor.learn(costs, ["create", "update"], 30_002)
    assert (costs["create"], costs["update"]) == (20_002, 10_000)
    # One kind not known yet in a mixed request: it gets what the known ones leave.
    known = {"create"}
    governor.learn(costs, ["create", "archive", "archive"], 20_002 + 2 * 7_000, known)
    assert (costs["create"], costs["archive"]) == (20_002, 7_000)
    assert known == {"create", "archive"}


async def test_listeners_share_one_budget(pools: list[asyncpg.Pool]) -> None:
    one, two = (meter(p) for p in pools)
    for g in (one, two, one):  # 10,000 points each: 30,000 is three, whoever sends them
        async with g.request(None, ["update"]) as granted:
            assert granted == 1
    with pytest.raises(errors.RateLimited) as refused:
        async with one.request(None, ["update"]):
            pass
    assert refused.value.code == governor.BUDGET_SPENT
    assert refused.value.retry_after is not None
    assert 50 < refused.value.retry_after <= 61  # the start of the next window


async def test_a_request_gets_what_the_budget_holds(pools: list[asyncpg.Pool]) -> None:
    g = meter(pools[0])
    async with g.request("7", UPDATES) as granted:
        assert granted == 3  # of the 100 asked, the 30,000 points hold three
    with pytest.raises(errors.RateLimited):
        async with g.request("7", UPDATES):
            pass


async def test_the_budget_of_a_minute_is_not_the_cap_on_one_query(
    pools: list[asyncpg.Pool],
) -> None:
    # 10M a minute, 5M at most in one request: two full requests a minute, not one.
    g = meter(pools[0], governor.Limits(10_000_000, 1_000))
    g.cap = g.max_operations = 1_000
    for _ in range(2):
        async with g.request("7", ["update"] * 1_000) as granted:
            assert granted == 500
    with pytest.raises(errors.RateLimited):
        async with g.request("7", ["update"]):
            pass


async def test_monday_figures_replace_the_plans(pools: list[asyncpg.Pool]) -> None:
    # The plan says 10M a minute; Monday's replies say far more is left: Monday is right.
    g = meter(pools[0], governor.Limits(10_000_000, 1_000))
    left = 10**12
    for _ in range(5):  # 25M: more than the plan's minute, no wait
        async with g.request("7", ["update"] * 500) as granted:
            assert granted == 500
            await g.observe(reply(5_000_000, left, operations=500))
            left -= 5_000_000
    row = await state(pools[0])
    assert row["complexity_remaining"] == left
    assert row["complexity_limit"] == 10**12  # the budget a window, from the first reply


async def test_what_a_reply_says_corrects_the_shared_budget(pools: list[asyncpg.Pool]) -> None:
    g = meter(pools[0])
    headers = {
        "RateLimit": '"minuteRate";r=5;t=20, "complexityMinute";r=22000;t=30',
        "RateLimit-Policy": '"minuteRate";q=1000;w=60, "complexityMinute";q=30000;w=60',
    }
    async with g.request("7", ["update", "update"]) as granted:
        assert granted == 2
        await g.observe(reply(8_000, 30_000, reset=30, headers=headers, operations=2))
    assert g.costs["update"] == 4_000  # what Monday charged, per update
    row = await state(pools[0])
    assert (row["complexity_remaining"], row["requests_remaining"]) == (22_000, 5)
    assert (row["complexity_limit"], row["complexity_window"]) == (30_000, 60)
    # The request opened Monday's window: it ends a window after the reply, to the second.
    assert (row["complexity_reset_at"] - row["updated_at"]).total_seconds() == 60


async def test_a_reservation_comes_back_as_what_monday_charged(
    pools: list[asyncpg.Pool],
) -> None:
    one, two = meter(pools[0]), meter(pools[1])
    reserved = asyncio.Event()
    answered = asyncio.Event()

    async def first() -> None:
        async with one.request("7", ["update"]):  # 10,000 reserved: 20,000 left
            await reserved.wait()
            # One's request cost 4,000; Monday has not charged two's yet (26,000 left).
            await one.observe(reply(4_000, 30_000))
        answered.set()

    async def second() -> None:
        async with two.request("8", ["update"]):  # another 10,000, in flight: 10,000 left
            reserved.set()
            await answered.wait()
            assert (await state(pools[0]))["complexity_remaining"] == 16_000
            await two.observe(reply(4_000, 26_000))

    await asyncio.wait_for(asyncio.gather(first(), second()), 10)
    assert (await state(pools[0]))["complexity_remaining"] == 22_000


def exhausted(**budget: float) -> errors.RateLimited:
    """Monday's refusal for complexity, with what it says of the budget."""
    return errors.RateLimited(
        "Complexity budget exhausted",
        code="COMPLEXITY_BUDGET_EXHAUSTED",
        retry_after=budget.get("reset"),
        budget=errors.Budget(**budget),
    )


async def refused_by_monday(
    g: governor.Governor, kinds: list[str], refusal: errors.MondayError
) -> tuple[int, errors.MondayError | None]:
    """Send `kinds`, have Monday refuse them: (how many were granted, what the governor says
    to do with them)."""
    granted = 0
    with pytest.raises(errors.MondayError) as raised:
        async with g.request("7", kinds) as granted:
            raise refusal
    return granted, g.refused(raised.value, kinds[:granted])


async def test_a_refused_batch_is_sent_again_in_pieces(pools: list[asyncpg.Pool]) -> None:
    g = governor.Governor(pools[0], governor.Limits(10_000_000, 1_000), max_wait=0.2)
    g.cap = g.max_operations = 100
    # The plan's 10M holds 100 creates by the first guess; Monday's budget is 30,000.
    refusal = exhausted(left=30_000, limit=30_000, reset=60, window=60)
    granted, then = await refused_by_monday(g, ["create"] * 100, refusal)
    assert (granted, then) == (100, None)  # try again now, in smaller requests
    assert g.cap == 50
    row = await state(pools[0])
    assert (row["complexity_remaining"], row["complexity_in_flight"]) == (30_000, 0)
    # Nothing of the window is spent: one create goes, though the guess (30,001) says no.
    async with g.request("7", ["create"] * 100) as granted:
        assert granted == 1
        await g.observe(reply(10_000, 30_000))
    async with g.request("7", ["create"] * 100) as granted:
        assert granted == 2  # 10,000 each, learnt


async def test_a_request_over_the_cap_on_one_query_is_split(pools: list[asyncpg.Pool]) -> None:
    g = governor.Governor(pools[0], governor.Limits(10_000_000, 1_000), max_wait=0.2)
    g.cap = g.max_operations = 100
    too_big = errors.Transient(
        "Query has complexity of 5000100, which exceeds max complexity of 5000000",
        code=errors.TOO_COMPLEX,
        budget=errors.too_complex(
            "Query has complexity of 5000100, which exceeds max complexity of 5000000"
        ),
    )
    granted, then = await refused_by_monday(g, ["create"] * 100, too_big)
    assert (granted, then) == (100, None)
    assert g.costs["create"] == 50_001  # learnt from the message
    async with g.request("7", ["create"] * 100) as granted:
        assert granted == 50  # within the cap and halved: 99 would fit the cap
    assert (await state(pools[0]))["complexity_in_flight"] == 50 * 50_001


async def test_one_operation_bigger_than_a_window_fails_alone(pools: list[asyncpg.Pool]) -> None:
    g = meter(pools[0])
    granted, then = await refused_by_monday(
        g, ["update"], exhausted(left=30_000, limit=30_000, reset=60)
    )
    assert granted == 1
    assert isinstance(then, errors.Permanent)
    assert "more than the account's whole budget of 30,000" in str(then)


async def test_a_refusal_when_little_is_left_waits_for_the_window(
    pools: list[asyncpg.Pool],
) -> None:
    g = meter(pools[0])
    refusal = exhausted(left=5_000, limit=30_000, reset=20)
    granted, then = await refused_by_monday(g, ["update"] * 2, refusal)
    assert (granted, then) == (2, refusal)
    row = await state(pools[0])
    assert row["complexity_remaining"] == 5_000
    assert 18 < (row["complexity_reset_at"] - row["updated_at"]).total_seconds() <= 20


async def test_what_is_spent_is_counted_per_minute(pools: list[asyncpg.Pool]) -> None:
    g = meter(pools[0])
    async with g.request("7", ["update"]):
        g.synced(3)
        await g.observe(reply(6_000, 30_000))
    g.synced(2)
    await g.flush()
    async with pools[0].acquire() as conn:
        minutes = await conn.fetch("SELECT * FROM npd_sync.monday_minutes")
        # Status reads complete minutes only: move these into the past.
        await conn.execute(
            "UPDATE npd_sync.monday_minutes SET minute = minute - interval '1 minute'"
        )
        use = await governor.budget_use(conn)
    assert sum(m["points"] for m in minutes) == 6_000
    assert sum(m["rows_synced"] for m in minutes) == 5
    assert sum(m["requests"] for m in minutes) == 1
    assert use.points_per_row == 1_200
    assert use.points_per_minute == 6_000


async def test_a_pause_holds_every_listener(pools: list[asyncpg.Pool]) -> None:
    one, two = (meter(p) for p in pools)
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
