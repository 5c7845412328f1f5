"""The durable queue: arrivals folded into one entry a row, claiming with leases, completing
with fencing, and each transition of an entry's life."""

from __future__ import annotations

import asyncio

import asyncpg

from listener import db, fault, rows, sql
from listener.engine import queue, source
from listener.engine.queue import Arrival, Completion, Outcome
from tests.conftest import MakeSettings

BOOM = fault.Fault("monday", "boom", "INTERNAL_SERVER_ERROR", 500, "req-1")

CONTACTS = 1


async def entries(conn: asyncpg.Connection) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch("SELECT * FROM npd_sync.queue ORDER BY row_key")
    return {r["row_key"]: r for r in rows}


async def claim(conn: asyncpg.Connection, who: str = "a", limit: int = 100, lease: float = 60):
    return await queue.claim(conn, [1, 2], limit=limit, listener_id=who, lease_seconds=lease)


async def test_ingest_folds_changes_of_one_row(conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO contacts (first_name, monday_id) VALUES ('a', '10')")
    for i in range(5):
        await conn.execute("UPDATE contacts SET notes = $1", str(i))
    assert (await source.ingest(conn, 1000)).records == 6
    queued = await entries(conn)
    assert list(queued) == ["1"]
    assert queued["1"]["version"] == 1
    await conn.execute("DELETE FROM contacts")
    await source.ingest(conn)
    queued = await entries(conn)
    assert queued["1"]["version"] == 2
    assert queued["1"]["archive_ids"] == ["10"]
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.changes") == 0


async def test_two_claimers_never_share_an_entry(dsn: str, conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO contacts (first_name) SELECT 'x' FROM generate_series(1, 300)")
    await source.ingest(conn)
    others = [await db.connect(dsn) for _ in range(3)]
    try:
        claimed = await asyncio.gather(
            *(claim(c, who=f"l{i}", limit=120) for i, c in enumerate(others))
        )
    finally:
        for c in others:
            await c.close()
    keys = [e.key for batch in claimed for e in batch]
    assert len(keys) == 300
    assert len(set(keys)) == 300
    assert await claim(conn, who="late") == []


async def test_expired_lease_is_taken_over(conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
    await source.ingest(conn)
    (first,) = await claim(conn, who="crashed", lease=60)
    assert not first.interrupted
    assert await claim(conn, who="b") == []
    await conn.execute("UPDATE npd_sync.queue SET lease_until = now() - interval '1 second'")
    (again,) = await claim(conn, who="b")
    assert again.claims == 2
    assert again.interrupted  # the first holder never said what happened
    # The crashed holder's late completion is fenced off.
    assert await queue.complete(conn, "crashed", [Completion(first, Outcome.DONE)]) == 0
    assert await queue.complete(conn, "b", [Completion(again, Outcome.DONE)]) == 1
    assert await entries(conn) == {}


async def test_a_wait_does_not_look_like_an_interruption(conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
    await source.ingest(conn)
    for _ in range(3):  # Monday's budget was spent, three times
        (entry,) = await claim(conn, who="a")
        assert not entry.interrupted  # so no lookup of an item that cannot exist
        waited = Completion(entry, Outcome.WAIT, fault.ours("budget spent"))
        await queue.complete(conn, "a", [waited])


async def test_complete_outcomes(conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO contacts (first_name) SELECT 'x' FROM generate_series(1, 5)")
    await source.ingest(conn)
    e = {x.key: x for x in await claim(conn)}
    # Row 2 changes while it is being pushed.
    await conn.execute("UPDATE contacts SET notes = 'newer' WHERE id = 2")
    await source.ingest(conn)
    done = await queue.complete(
        conn,
        "a",
        [
            Completion(e["1"], Outcome.DONE, monday_id="101"),
            Completion(e["2"], Outcome.DONE, monday_id="102"),
            Completion(e["3"], Outcome.RETRY, BOOM, delay=30, uncertain=True),
            Completion(e["4"], Outcome.FAILED, fault.ours("bad email")),
            Completion(e["5"], Outcome.WAIT, fault.ours("rate limited"), delay=5),
        ],
    )
    assert done == 5
    q = await entries(conn)
    assert "1" not in q
    # Pushed again, now knowing its item.
    assert (q["2"]["state"], q["2"]["monday_id"], q["2"]["lease_until"]) == ("pending", "102", None)
    assert q["2"]["next_attempt_at"] <= await conn.fetchval("SELECT now()")
    assert (q["3"]["attempts"], q["3"]["uncertain"]) == (1, True)
    assert fault.from_json(q["3"]["last_error"]) == BOOM
    assert await conn.fetchval(
        "SELECT next_attempt_at > now() + interval '25 seconds' FROM npd_sync.queue"
        " WHERE row_key = '3'"
    )
    assert (q["4"]["state"], q["4"]["attempts"]) == ("failed", 1)
    assert (q["5"]["state"], q["5"]["attempts"]) == ("pending", 0)
    # Nothing due now but row 2.
    assert [x.key for x in await claim(conn)] == ["2"]


async def test_new_change_revives_a_failed_entry(conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
    await source.ingest(conn)
    (entry,) = await claim(conn)
    await queue.complete(conn, "a", [Completion(entry, Outcome.FAILED, fault.ours("bad email"))])
    assert await claim(conn) == []
    await conn.execute("UPDATE contacts SET email = 'fixed@example.com'")
    await source.ingest(conn)
    (revived,) = await claim(conn)
    assert revived.attempts == 0


async def test_pending_work_and_lease_renewal(conn: asyncpg.Connection) -> None:
    assert await queue.pending_work(conn, [1, 2]) == (False, None)
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
    changes, due = await queue.pending_work(conn, [1, 2])
    assert changes
    assert due is None
    await source.ingest(conn)
    changes, due = await queue.pending_work(conn, [1, 2])
    assert not changes
    assert due is not None
    assert due <= 0
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('y')")
    await source.ingest(conn)
    first, second = await claim(conn, lease=5)
    # Only the entries named are renewed: a lease the batch left behind must run out.
    await queue.renew(conn, "a", [first], 300)
    renewed = await conn.fetch(
        "SELECT row_key, lease_until > now() + interval '200 seconds' AS long FROM npd_sync.queue"
        " ORDER BY row_key"
    )
    assert [tuple(r) for r in renewed] == [(first.key, True), (second.key, False)]
    await queue.renew(conn, "someone else", [second], 300)  # not theirs: no effect
    await queue.release(conn, "a")
    assert [x.key for x in await claim(conn, who="b")] == ["1", "2"]


async def test_an_error_holding_nul_is_recorded_without_it(
    conn: asyncpg.Connection, make_settings: MakeSettings
) -> None:
    # PostgreSQL text cannot hold NUL: one such message from Monday failed the whole batch.
    await conn.execute("INSERT INTO contacts (first_name) VALUES ('x')")
    await source.ingest(conn)
    (entry,) = await claim(conn)
    (table,) = [t for t in await rows.load_tables(conn, make_settings()) if t.id == CONTACTS]
    written = await rows.write_back(conn, table, [rows.WriteBack("1", None, "FAILED", "a\x00b")])
    assert written == {"1"}
    failed = Completion(entry, Outcome.FAILED, fault.Fault("monday", "bad\x00value", "C\x00ODE"))
    assert await queue.complete(conn, "a", [failed]) == 1
    stored = fault.from_json(await conn.fetchval("SELECT last_error FROM npd_sync.queue"))
    assert stored == fault.Fault("monday", "badvalue", "CODE")
    assert await conn.fetchval("SELECT sync_error FROM contacts") == "ab"


async def entry_of(conn: asyncpg.Connection, key: str) -> asyncpg.Record:
    found = await entries(conn)
    return found[key]


async def test_arrivals_merge_their_flags_into_one_entry(conn: asyncpg.Connection) -> None:
    await queue.arrive(conn, [Arrival(CONTACTS, "1", archive_ids=("10",))])
    await queue.arrive(conn, [Arrival(CONTACTS, "1", archive_ids=("11",), pull=True)])
    await queue.arrive(conn, [Arrival(CONTACTS, "1", uncertain=True)])
    e = await entry_of(conn, "1")
    assert (e["version"], e["pull"], e["uncertain"]) == (3, True, True)
    assert sorted(e["archive_ids"]) == ["10", "11"]
    # A later arrival never clears a flag an earlier one set.
    await queue.arrive(conn, [Arrival(CONTACTS, "1")])
    e = await entry_of(conn, "1")
    assert (e["version"], e["pull"], e["uncertain"]) == (4, True, True)


async def test_an_arrival_keeps_a_retry_waiting_unless_urgent(conn: asyncpg.Connection) -> None:
    await queue.arrive(conn, [Arrival(CONTACTS, "1")])
    (entry,) = await claim(conn)
    await queue.complete(conn, "a", [Completion(entry, Outcome.RETRY, BOOM, delay=300)])
    await queue.arrive(conn, [Arrival(CONTACTS, "1", pull=True)])
    assert await claim(conn) == []  # new data waits for the backoff Monday's failure set
    await queue.arrive(conn, [Arrival(CONTACTS, "1", pull=True)], urgent=True)
    (again,) = await claim(conn)  # an operator's action (a resolved conflict) does not wait
    assert again.attempts == 1  # and is not a fresh start: the entry did not fail


async def test_every_arrival_revives_a_failed_entry(conn: asyncpg.Connection) -> None:
    # The one rule, whatever brings the new data: a captured change, a backfill, an edit on
    # the board, a resolve.
    for arrival in (
        Arrival(CONTACTS, "1"),
        Arrival(CONTACTS, "1", uncertain=True),
        Arrival(CONTACTS, "1", pull=True),
    ):
        await queue.arrive(conn, [arrival])
        (entry,) = await claim(conn)
        await queue.complete(
            conn, "a", [Completion(entry, Outcome.FAILED, fault.ours("bad email"))]
        )
        assert await claim(conn) == []
        await queue.arrive(conn, [arrival])
        (revived,) = await claim(conn)
        assert (revived.attempts, revived.claims) == (0, 1)
        await queue.complete(conn, "a", [Completion(revived, Outcome.DONE)])


async def test_retry_puts_failed_entries_back(conn: asyncpg.Connection) -> None:
    await queue.arrive(conn, [Arrival(CONTACTS, "1"), Arrival(CONTACTS, "2")])
    one, two = await claim(conn)
    await queue.complete(
        conn,
        "a",
        [Completion(one, Outcome.FAILED, fault.ours("bad")), Completion(two, Outcome.RETRY, BOOM)],
    )
    assert await queue.retry(conn, CONTACTS, ["2"]) == []  # not failed: left alone
    assert await queue.retry(conn, CONTACTS, None) == ["1"]
    e = await entry_of(conn, "1")
    assert (e["state"], e["attempts"], e["version"]) == ("pending", 0, 2)
    assert fault.from_json(e["last_error"]) == fault.ours("bad")


async def test_discard_takes_failed_entries_out_and_new_data_brings_them_back(
    conn: asyncpg.Connection,
) -> None:
    await queue.arrive(conn, [Arrival(CONTACTS, k) for k in ("1", "2", "3")])
    one, two, three = await claim(conn)
    await queue.complete(
        conn,
        "a",
        [
            Completion(one, Outcome.FAILED, fault.ours("bad")),
            Completion(two, Outcome.FAILED, fault.ours("bad")),
            Completion(three, Outcome.RETRY, BOOM),
        ],
    )
    assert await queue.discard(conn, CONTACTS, ["3"]) == []  # pending (a retry waits): stays
    assert await queue.discard(conn, 2, None) == []  # another table's
    assert await queue.discard(conn, CONTACTS, ["2"]) == ["2"]
    assert sorted(await entries(conn)) == ["1", "3"]
    assert await queue.discard(conn, CONTACTS, None) == ["1"]
    assert sorted(await entries(conn)) == ["3"]
    # The row waits for new data, which queues it as any row's.
    await queue.arrive(conn, [Arrival(CONTACTS, "2")])
    e = await entry_of(conn, "2")
    assert (e["state"], e["attempts"], e["last_error"]) == ("pending", 0, None)


async def test_lease_renewal_uses_the_queue_s_key(conn: asyncpg.Connection) -> None:
    # It runs every lease_seconds / 3 for every batch in flight: it must not scan the queue.
    await conn.execute("SET enable_seqscan = off")
    plan = await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql.query("renew"), "a", 60.0, [1], ["1"])
    assert "Seq Scan" not in str(plan)
