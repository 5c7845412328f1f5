"""The rate-limit governor: a budget and a pause shared by every listener through PostgreSQL,
corrected by what Monday reports."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import zlib
from collections.abc import AsyncIterator, Mapping

import asyncpg
import pytest
from pydantic import SecretStr

from emulator import Emulator
from listener import db
from listener.monday import api, cost, errors, governor
from listener.monday.cost import Kind
from tests.conftest import MakeSettings
from tests.fake_monday import API_KEY, URL, VERSION, mocked, sent
from tests.helpers import drain, eventually

LIMITS = governor.Limits(complexity_per_minute=30_000, requests_per_minute=1_000)


def updates(n: int) -> list[api.Op]:
    return [api.Update(str(i), str(i), {"text": "x"}) for i in range(n)]


def creates(n: int) -> list[api.Op]:
    return [api.Create(str(i), "x", {}) for i in range(n)]


UPDATES = updates(100)
WAITED = "npd_sync_rate_limit_wait_seconds_total"


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
    learnt = {Kind(k): v for k, v in (costs or {"update": 10_000}).items()}
    g.model.costs.update(learnt)
    g.model.confirmed.update(learnt)
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
    """The ledger's rows, under the names of the figures they hold."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT c.reported - c.in_flight AS complexity_remaining,
                      c.quota AS complexity_limit, c.window_seconds AS complexity_window,
                      c.in_flight AS complexity_in_flight, c.reset_at AS complexity_reset_at,
                      c.updated_at, r.reported - r.in_flight AS requests_remaining,
                      m.paused_until, m.pause_reason
                 FROM npd_sync.monday_limits c, npd_sync.monday_limits r, npd_sync.monday m
                WHERE c.name = 'complexity' AND r.name = 'requests'"""
        )
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
    costs = dict(cost.FIRST_GUESS)
    cost.learn(costs, [Kind.CREATE, Kind.CREATE], 20_002)
    assert costs[Kind.CREATE] == 10_001
    cost.learn(costs, [Kind.UPDATE], 5_000)
    assert costs[Kind.UPDATE] == 5_000
    # A mixed request scales the kinds in it alike; the next one of a kind settles it.
    cost.learn(costs, [Kind.CREATE, Kind.UPDATE], 30_002)
    assert (costs[Kind.CREATE], costs[Kind.UPDATE]) == (20_002, 10_000)
    # One kind not known yet in a mixed request: it gets what the known ones leave.
    known = {Kind.CREATE}
    cost.learn(costs, [Kind.CREATE, Kind.ARCHIVE, Kind.ARCHIVE], 20_002 + 2 * 7_000, known)
    assert (costs[Kind.CREATE], costs[Kind.ARCHIVE]) == (20_002, 7_000)
    assert known == {Kind.CREATE, Kind.ARCHIVE}


async def test_listeners_share_one_budget(pools: list[asyncpg.Pool]) -> None:
    one, two = (meter(p) for p in pools)
    for g in (one, two, one):  # 10,000 points each: 30,000 is three, whoever sends them
        async with g.reserve(updates(1)) as grant:
            assert len(grant.ops) == 1
    with pytest.raises(errors.RateLimited) as refused:
        async with one.reserve(updates(1)):
            pass
    assert refused.value.code == governor.BUDGET_SPENT
    assert refused.value.retry_after is not None
    assert 50 < refused.value.retry_after <= 61  # the start of the next window


async def test_a_request_gets_what_the_budget_holds(pools: list[asyncpg.Pool]) -> None:
    g = meter(pools[0])
    async with g.reserve(UPDATES, board="7") as grant:
        assert len(grant.ops) == 3  # of the 100 asked, the 30,000 points hold three
        assert grant.ops == UPDATES[:3]
    with pytest.raises(errors.RateLimited):
        async with g.reserve(UPDATES, board="7"):
            pass


async def test_the_budget_of_a_minute_is_not_the_cap_on_one_query(
    pools: list[asyncpg.Pool],
) -> None:
    # 10M a minute, 5M at most in one request: two full requests a minute, not one.
    g = meter(pools[0], governor.Limits(10_000_000, 1_000))
    g.model.cap = g.model.max_operations = 1_000
    for _ in range(2):
        async with g.reserve(updates(1_000), board="7") as grant:
            assert len(grant.ops) == 500
    with pytest.raises(errors.RateLimited):
        async with g.reserve(updates(1), board="7"):
            pass


async def test_monday_figures_replace_the_plans(pools: list[asyncpg.Pool]) -> None:
    # The plan says 10M a minute; Monday's replies say far more is left: Monday is right.
    g = meter(pools[0], governor.Limits(10_000_000, 1_000))
    left = 10**12
    for _ in range(5):  # 25M: more than the plan's minute, no wait
        async with g.reserve(updates(500), board="7") as grant:
            assert len(grant.ops) == 500
            await grant.settle(reply(5_000_000, left, operations=500))
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
    async with g.reserve(updates(2), board="7") as grant:
        assert len(grant.ops) == 2
        await grant.settle(reply(8_000, 30_000, reset=30, headers=headers, operations=2))
    assert g.model.costs[Kind.UPDATE] == 4_000  # what Monday charged, per update
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
        async with one.reserve(updates(1), board="7") as grant:  # 10,000 reserved: 20,000 left
            await reserved.wait()
            # One's request cost 4,000; Monday has not charged two's yet (26,000 left).
            await grant.settle(reply(4_000, 30_000))
        answered.set()

    async def second() -> None:
        # Another 10,000, in flight: 10,000 left.
        async with two.reserve(updates(1), board="8") as grant:
            reserved.set()
            await answered.wait()
            assert (await state(pools[0]))["complexity_remaining"] == 16_000
            await grant.settle(reply(4_000, 26_000))

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
    g: governor.Governor, ops: list[api.Op], refusal: errors.MondayError
) -> tuple[int, errors.MondayError | None]:
    """Send `ops`, have Monday refuse them: (how many were granted, what the governor says
    to do with them)."""
    async with g.reserve(ops, board="7") as grant:
        return len(grant.ops), await grant.settle(refusal)


async def test_a_refused_batch_is_sent_again_in_pieces(pools: list[asyncpg.Pool]) -> None:
    g = governor.Governor(pools[0], governor.Limits(10_000_000, 1_000), max_wait=0.2)
    g.model.cap = g.model.max_operations = 100
    # The plan's 10M holds 100 creates by the first guess; Monday's budget is 30,000.
    refusal = exhausted(left=30_000, limit=30_000, reset=60, window=60)
    granted, then = await refused_by_monday(g, creates(100), refusal)
    assert (granted, then) == (100, None)  # try again now, in smaller requests
    assert g.model.cap == 50
    row = await state(pools[0])
    assert (row["complexity_remaining"], row["complexity_in_flight"]) == (30_000, 0)
    # Nothing of the window is spent: one create goes, though the guess (30,001) says no.
    async with g.reserve(creates(100), board="7") as grant:
        assert len(grant.ops) == 1
        await grant.settle(reply(10_000, 30_000))
    async with g.reserve(creates(100), board="7") as grant:
        assert len(grant.ops) == 2  # 10,000 each, learnt


async def test_a_request_over_the_cap_on_one_query_is_split(pools: list[asyncpg.Pool]) -> None:
    g = governor.Governor(pools[0], governor.Limits(10_000_000, 1_000), max_wait=0.2)
    g.model.cap = g.model.max_operations = 100
    too_big = errors.Transient(
        "Query has complexity of 5000100, which exceeds max complexity of 5000000",
        code=errors.TOO_COMPLEX,
        budget=errors.too_complex(
            "Query has complexity of 5000100, which exceeds max complexity of 5000000"
        ),
    )
    granted, then = await refused_by_monday(g, creates(100), too_big)
    assert (granted, then) == (100, None)
    assert g.model.costs[Kind.CREATE] == 50_001  # learnt from the message
    async with g.reserve(creates(100), board="7") as grant:
        assert len(grant.ops) == 50  # within the cap and halved: 99 would fit the cap
        assert (await state(pools[0]))["complexity_in_flight"] == 50 * 50_001


async def test_one_operation_bigger_than_a_window_fails_alone(pools: list[asyncpg.Pool]) -> None:
    g = meter(pools[0])
    granted, then = await refused_by_monday(
        g, updates(1), exhausted(left=30_000, limit=30_000, reset=60)
    )
    assert granted == 1
    assert isinstance(then, errors.Permanent)
    assert "more than the account's whole budget of 30,000" in str(then)


async def test_a_refusal_when_little_is_left_waits_for_the_window(
    pools: list[asyncpg.Pool],
) -> None:
    g = meter(pools[0])
    refusal = exhausted(left=5_000, limit=30_000, reset=20)
    granted, then = await refused_by_monday(g, updates(2), refusal)
    assert (granted, then) == (2, refusal)
    row = await state(pools[0])
    assert row["complexity_remaining"] == 5_000
    assert 18 < (row["complexity_reset_at"] - row["updated_at"]).total_seconds() <= 20


async def test_what_is_spent_is_counted_per_minute(pools: list[asyncpg.Pool]) -> None:
    g = meter(pools[0])
    async with g.reserve(updates(1), board="7") as grant:
        g.synced(3)
        await grant.settle(reply(6_000, 30_000))
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
        async with two.reserve(["me"], kind=Kind.QUERY):
            pass


async def test_one_request_at_a_time_per_board(pools: list[asyncpg.Pool]) -> None:
    roomy = governor.Limits(10_000_000, 1_000)
    one, two = (governor.Governor(p, roomy, max_wait=5) for p in pools)
    order: list[str] = []
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with one.reserve(updates(1), board="42"):
            order.append("one in")
            first_in.set()
            await release.wait()
            order.append("one out")

    async def second() -> None:
        await first_in.wait()
        async with two.reserve(updates(1), board="42"):
            order.append("two in")

    async def other_board() -> None:
        await first_in.wait()
        async with two.reserve(updates(1), board="43"):
            order.append("other board")
        release.set()

    await asyncio.wait_for(asyncio.gather(first(), second(), other_board()), 10)
    assert order == ["one in", "other board", "one out", "two in"]


async def test_no_connection_is_held_while_a_request_is_in_flight(dsn: str) -> None:
    # A pool of one: while a board is held and a share of the budget reserved, the request's
    # time on the wire leaves the connection to others (the write-backs, the leases).
    pool = await db.create_pool(dsn, size=1)
    try:
        g = governor.Governor(pool, governor.Limits(10_000_000, 1_000), max_wait=1)
        async with g.reserve(updates(1), board="7") as grant:
            async with pool.acquire(timeout=2) as conn:
                assert await conn.fetchval("SELECT count(*) FROM npd_sync.board_leases") == 1
            await grant.settle(reply(30_001, 10_000_000))
        async with pool.acquire(timeout=2) as conn:
            assert await conn.fetchval("SELECT count(*) FROM npd_sync.board_leases") == 0
    finally:
        await pool.close()


async def test_an_unsettled_grant_gives_back_its_board_and_counts_as_spent(
    pools: list[asyncpg.Pool],
) -> None:
    g = meter(pools[0])

    async def cancelled() -> None:
        async with g.reserve(updates(2), board="7") as grant:
            assert len(grant.ops) == 2
            raise asyncio.CancelledError  # as when the listener stops mid-request

    with pytest.raises(asyncio.CancelledError):
        await cancelled()
    row = await state(pools[0])
    # Nothing in flight, the 20,000 points taken as spent (nobody knows what Monday charged).
    assert (row["complexity_in_flight"], row["complexity_remaining"]) == (0, 10_000)
    async with pools[0].acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM npd_sync.board_leases") == 0
        minute = await conn.fetchrow("SELECT requests, points FROM npd_sync.monday_minutes")
    assert (minute["requests"], minute["points"]) == (1, 0)


async def test_mondays_larger_budget_wins_over_the_plans_before_the_first_reply(
    pools: list[asyncpg.Pool],
) -> None:
    # Requests reserved before any reply (several listeners' first ones) book against the
    # plan's 10M at the first guess of 30,001 a create: 334 creates (the last one on the rule
    # that a guess takes what is left). The next request waits for a reply, which says the
    # account has 10^9 a minute, and goes: nobody pauses for the plan's minute.
    g = governor.Governor(pools[0], governor.Limits(10_000_000, 100_000), max_wait=5)
    policy = {"RateLimit-Policy": '"complexityMinute";q=1000000000;w=60'}
    async with contextlib.AsyncExitStack() as stack:
        grants = [
            await stack.enter_async_context(g.reserve(creates(100), board=str(i))) for i in range(5)
        ]
        assert [len(x.ops) for x in grants] == [100, 100, 100, 33, 1]

        async def sixth() -> int:
            async with g.reserve(creates(100)) as grant:  # no board: only the budget waits
                return len(grant.ops)

        def waited() -> float:
            return g.metrics.registry.get_sample_value(WAITED) or 0.0

        assert waited() == 0.0
        waiting = asyncio.create_task(sixth())
        await eventually(lambda: asyncio.sleep(0, waited()))
        assert not waiting.done()
        await grants[0].settle(reply(3_000_100, 10**9, headers=policy, operations=100))
        assert await asyncio.wait_for(waiting, 5) == 100
    row = await state(pools[0])
    assert row["complexity_limit"] == 10**9
    assert row["paused_until"] is None


async def test_mondays_smaller_budget_wins_over_the_plans(pools: list[asyncpg.Pool]) -> None:
    # The plan says 10M; Monday says the account has 1M a minute: the next window holds 1M.
    g = meter(pools[0], governor.Limits(10_000_000, 1_000), update=100_000)
    policy = {"RateLimit-Policy": '"complexityMinute";q=1000000;w=60'}
    async with g.reserve(updates(1), board="7") as grant:
        await grant.settle(reply(100_000, 1_000_000, headers=policy))
    async with pools[0].acquire() as conn:  # the window ends
        await conn.execute("UPDATE npd_sync.monday_limits SET reset_at = now()")
    async with g.reserve(updates(100), board="7") as grant:
        assert len(grant.ops) == 10
    assert (await state(pools[0]))["complexity_limit"] == 1_000_000


async def test_monday_states_the_requests_a_minute_too(pools: list[asyncpg.Pool]) -> None:
    # The plan's 1,000 requests a minute is a guess; Monday says 5 are left of 5,000.
    g = meter(pools[0], governor.Limits(10_000_000, 1_000))
    headers = {
        "RateLimit": '"minuteRate";r=5;t=20',
        "RateLimit-Policy": '"minuteRate";q=5000;w=60',
    }
    async with g.reserve(updates(1), board="7") as grant:
        await grant.settle(reply(10_000, 10_000_000, headers=headers))
    assert (await state(pools[0]))["requests_remaining"] == 5
    for _ in range(5):
        async with g.reserve(updates(1), board="7"):
            pass
    with pytest.raises(errors.RateLimited) as refused:
        async with g.reserve(updates(1), board="7"):
            pass
    assert refused.value.code == governor.REQUESTS_SPENT  # not the complexity budget
    async with pools[0].acquire() as conn:
        quota = await conn.fetchval(
            "SELECT quota FROM npd_sync.monday_limits WHERE name = 'requests'"
        )
    assert quota == 5_000


async def test_scarce_requests_of_a_minute_go_evenly(pools: list[asyncpg.Pool]) -> None:
    # Monday says the account has 20 requests a minute: the first 10 go at once (the burst),
    # shared by the listeners; the next waits for the window's even share (10 over 60 s), and
    # the engine, which asks before it claims, lets the rows gather meanwhile.
    limits = governor.Limits(10_000_000, 1_000)
    one, two = (meter(p, limits) for p in pools)
    for n, g in enumerate([one, two] * 5):
        headers = {
            "RateLimit": f'"minuteRate";r={19 - n};t=60',
            "RateLimit-Policy": '"minuteRate";q=20;w=60',
        }
        assert await g.next_request_in() == 0
        async with g.reserve(updates(1), board="7") as grant:
            await grant.settle(reply(10_000, 10_000_000, headers=headers))
    wait = await one.next_request_in()
    assert 5 < wait <= 6
    assert await two.next_request_in() == pytest.approx(wait, abs=0.5)
    assert await one.next_request_in(full=True) == 0  # a full request goes: 10 are left
    async with pools[0].acquire() as conn:  # the window ends: a new one, at once
        await conn.execute("UPDATE npd_sync.monday_limits SET reset_at = now()")
    assert await one.next_request_in() == 0
    row = await state(pools[0])
    assert row["paused_until"] is None


async def test_plentiful_requests_of_a_minute_wait_for_nothing(pools: list[asyncpg.Pool]) -> None:
    g = meter(pools[0], governor.Limits(10_000_000, 1_000))
    for _ in range(100):
        assert await g.next_request_in() == 0
        async with g.reserve(updates(1)) as grant:
            await grant.settle(reply(10_000, 10_000_000))


OLD_BOARD_LOCK = 7237734  # the advisory lock class that once held a board


async def test_a_role_with_only_connect_cannot_hold_a_board(
    dsn: str, connect_only: str, pools: list[asyncpg.Pool]
) -> None:
    outsider = await asyncpg.connect(dsn, user=connect_only)
    try:
        # The lock that once held the board: anyone could take it, for ever.
        key = zlib.crc32(b"7") & 0x7FFFFFFF
        assert await outsider.fetchval("SELECT pg_try_advisory_lock($1, $2)", OLD_BOARD_LOCK, key)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await outsider.execute(
                "INSERT INTO npd_sync.board_leases VALUES ('7', 'me', 1, now() + interval '1 day')"
            )
        g = governor.Governor(pools[0], governor.Limits(10_000_000, 1_000), max_wait=1)
        async with g.reserve(updates(1), board="7") as grant:
            assert len(grant.ops) == 1
    finally:
        await outsider.close()


async def test_a_lease_runs_out_or_ends_with_its_holders_session(
    dsn: str, pools: list[asyncpg.Pool]
) -> None:
    roomy = governor.Limits(10_000_000, 1_000)
    other = governor.Governor(pools[1], roomy, max_wait=0.2)
    # A listener holds board 42 through one of its sessions, as long as a request may last.
    holder = await db.connect(dsn)
    await holder.execute(
        "INSERT INTO npd_sync.board_leases"
        " VALUES ('42', 'one', pg_backend_pid(), now() + interval '1 hour')"
    )
    with pytest.raises(errors.RateLimited) as busy:
        async with other.reserve(updates(1), board="42"):
            pass
    assert busy.value.code == governor.BOARD_BUSY
    # It is killed: its session ends, and the board is free (as soon as the server sees it).
    holder.terminate()
    patient = governor.Governor(pools[1], roomy, max_wait=10)
    async with patient.reserve(updates(1), board="42") as grant:
        assert len(grant.ops) == 1
    # A lease whose holder is still connected but has run out is free too.
    async with pools[0].acquire() as conn:
        await conn.execute(
            "INSERT INTO npd_sync.board_leases VALUES ('43', 'two', pg_backend_pid(), now())"
        )
    async with other.reserve(updates(1), board="43") as grant:
        assert len(grant.ops) == 1


async def test_finding_the_boards_of_items_is_not_booked_as_an_update(
    app: asyncpg.Connection,
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
) -> None:
    # An archive of an item npd-sync has no link for first asks Monday which board the item
    # is on (a cheap query of ids): what that costs is not what an update costs.
    await app.execute("INSERT INTO contacts (first_name) VALUES ('old')")
    await drain(make_settings())
    await conn.execute("DELETE FROM npd_sync.links")  # as an older npd-sync left it
    await app.execute("DELETE FROM contacts")
    w = await drain(make_settings())
    located = [r for r in emulator.requests if r.root_fields[0] == "items"]
    assert len(located) == 1
    model = w.governor.model
    assert model.costs[Kind.LOCATE] == located[0].complexity
    assert Kind.UPDATE not in model.confirmed
    assert model.estimate([Kind.UPDATE]) >= model.estimate([Kind.ARCHIVE])


# --- the day's calls (issue 17) ------------------------------------------------------------


def platform_api(limit: int | None, usage: int, day: dt.date) -> dict[str, object]:
    """Monday's answer to api.DAILY_QUERY."""
    return {
        "data": {
            "platform_api": {
                "daily_limit": {"base": limit, "total": limit},
                "daily_analytics": {
                    "last_updated": dt.datetime.now(dt.UTC).isoformat(),
                    "by_day": [{"day": str(day - dt.timedelta(days=1)), "usage": 999},
                               {"day": str(day), "usage": usage}],
                },
            },
            "complexity": {"query": 10, "before": 10_000_000, "after": 9_999_990,
                           "reset_in_x_seconds": 60},
        }
    }  # fmt: skip


async def day(pool: asyncpg.Pool) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM npd_sync.monday_day")
    assert row is not None
    return row


async def test_without_a_daily_limit_nothing_is_paced(pools: list[asyncpg.Pool]) -> None:
    g = governor.Governor(pools[0], governor.Limits(10_000_000, 1_000), max_wait=1)
    for _ in range(30):
        async with g.reserve(updates(1)) as grant:
            await grant.settle(reply(30_001, 10_000_000))
    assert await g.next_call_in() == 0
    assert (await day(pools[0]))["own_calls"] == 30  # counted all the same


async def test_a_configured_limit_lets_a_burst_go_then_paces(pools: list[asyncpg.Pool]) -> None:
    limits = governor.Limits(10_000_000, 1_000, daily_calls=1_000)
    one, two = (governor.Governor(p, limits, max_wait=1) for p in pools)
    for g in [one, two] * 5:  # the burst (10 calls), shared by the listeners
        assert await g.next_call_in() == 0
        async with g.reserve(updates(1)) as grant:
            await grant.settle(reply(30_001, 10_000_000))
    wait = await one.next_call_in()
    # The next call waits for the even share: about 1,000 calls over the rest of the day.
    until = governor.until_midnight_utc()
    assert wait == pytest.approx(until / 990, rel=0.05)
    assert await two.next_call_in() == pytest.approx(wait, abs=0.5)
    assert (await day(pools[0]))["own_calls"] == 10


async def test_with_the_day_far_from_spent_a_listener_looks_at_the_bucket_seldom(
    pools: list[asyncpg.Pool],
) -> None:
    # A look at the day's bucket is a committed write to one shared row: with 10,000 calls a
    # day (a burst of 100), the calls after a look go without one, up to half the tokens; near
    # the day's end every call looks.
    g = governor.Governor(pools[0], governor.Limits(10_000_000, 1_000, daily_calls=10_000))
    assert await g.next_call_in() == 0
    looked = (await day(pools[0]))["tokens_at"]
    for _ in range(20):
        assert await g.next_call_in() == 0
        async with g.reserve(updates(1)) as grant:
            await grant.settle(reply(30_001, 10_000_000))
    assert (await day(pools[0]))["tokens_at"] == looked
    async with pools[0].acquire() as conn:  # 150 calls left: fewer than two bursts
        await conn.execute("UPDATE npd_sync.monday_day SET own_calls = 9850")
    g = governor.Governor(pools[0], governor.Limits(10_000_000, 1_000, daily_calls=10_000))
    seen = set()
    for _ in range(3):
        assert await g.next_call_in() == 0
        seen.add((await day(pools[0]))["tokens_at"])
        async with g.reserve(updates(1)) as grant:
            await grant.settle(reply(30_001, 10_000_000))
    assert len(seen) == 3


async def test_a_refused_call_counts_a_tenth(pools: list[asyncpg.Pool]) -> None:
    g = meter(pools[0])
    async with g.reserve(updates(1)) as grant:
        await grant.settle(errors.RateLimited("slow", code="RATE_LIMIT_EXCEEDED", status=429))
    async with g.reserve(updates(1)) as grant:
        await grant.settle(errors.Transient("oops", status=500))
    assert (await day(pools[0]))["own_calls"] == pytest.approx(1.1)


async def test_mondays_daily_limit_and_usage_win(
    pools: list[asyncpg.Pool], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Configured 25,000 a day; Monday says 1,000, of which other apps spent 995 today: what
    # is left is 5 calls, less than a burst, shared over the rest of the day.
    g = governor.Governor(pools[0], governor.Limits(10_000_000, 1_000, daily_calls=25_000))
    today = dt.datetime.now(dt.UTC).date()
    with mocked(monkeypatch) as http:
        http.post(URL, payload=platform_api(1_000, 995, today))
        async with api.Client(url=URL, api_key=SecretStr(API_KEY), version=VERSION) as client:
            found = await g.learn_day(client)
    assert found is not None
    assert (found.limit, found.usage[today]) == (1_000, 995)
    [request] = sent(http)
    assert request.body == {"query": api.DAILY_QUERY, "variables": {}}
    row = await day(pools[0])
    assert (row["daily_limit"], row["account_used"], row["own_calls"]) == (1_000, 995, 1)
    # Monday's figure was of this minute: the call that asked counts as npd-sync's own, after.
    assert row["others_used"] == 995
    assert await g.next_call_in() == 0  # a full bucket: one call
    async with g.reserve(updates(1)) as grant:
        await grant.settle(reply(30_001, 10_000_000))
    for _ in range(3):
        async with g.reserve(updates(1)) as grant:
            await grant.settle(reply(30_001, 10_000_000))
    # 1,000 spent of 1,000: nothing left until midnight.
    assert await g.next_call_in() == pytest.approx(governor.until_midnight_utc(), abs=5)


async def test_where_monday_does_not_tell_the_day_the_configured_limit_holds(
    pools: list[asyncpg.Pool], monkeypatch: pytest.MonkeyPatch
) -> None:
    g = governor.Governor(pools[0], governor.Limits(10_000_000, 1_000, daily_calls=1_000))
    denied = {
        "data": {"platform_api": None},
        "errors": [{"message": "no", "path": ["platform_api"],
                    "extensions": {"code": "missingRequiredPermissions"}}],
    }  # fmt: skip
    with mocked(monkeypatch) as http:
        http.post(URL, payload=denied)
        async with api.Client(url=URL, api_key=SecretStr(API_KEY), version=VERSION) as client:
            assert await g.learn_day(client) is None
    assert (await day(pools[0]))["daily_limit"] is None
    assert await g.next_call_in() == 0  # the configured 1,000: a burst of 10 to start with


async def test_one_listener_asks_monday_for_the_day_and_seldom(pools: list[asyncpg.Pool]) -> None:
    one, two = (governor.Governor(p, governor.Limits(10_000_000, 1_000)) for p in pools)
    async with pools[0].acquire() as conn:  # nine calls today: nobody asks yet
        await conn.execute("UPDATE npd_sync.monday_day SET own_calls = 9")
    assert not await one.day_due()
    async with pools[0].acquire() as conn:  # the tenth
        await conn.execute("UPDATE npd_sync.monday_day SET own_calls = 10")
    assert await one.day_due()
    assert not await two.day_due()  # the other's turn was taken
    assert not await one.day_due()
    async with pools[0].acquire() as conn:  # half an hour later
        await conn.execute("UPDATE npd_sync.monday_day SET learnt_at = now() - interval '31 min'")
    assert await two.day_due()
