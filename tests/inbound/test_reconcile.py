"""Reconciliation's timer within its share of the day (issue 17), and the overlap on the activity
log: a real PostgreSQL and the emulator over real HTTP."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from emulator import Emulator
from listener.commands import pull
from listener.inbound import reconcile
from listener.monday import daily
from tests.conftest import CONTACTS_BOARD, MakeSettings
from tests.helpers import drain
from tests.inbound.helpers import contact, inbound, synced_ada

PASSED = (
    "INSERT INTO npd_sync.boards (board_id, watermark, last_pull_at, pass_calls, full_calls)"
    " SELECT b, now(), now() - make_interval(secs => $2), $3, $4 FROM unnest($1::text[]) AS b"
)


async def until_midnight(conn: asyncpg.Connection) -> float:
    return daily.until_midnight(await conn.fetchval("SELECT now()"))


async def test_on_a_1000_call_day_the_interval_widens_with_the_boards(
    conn: asyncpg.Connection,
) -> None:
    boards = ["1", "2", "3"]
    # Never reconciled: every board is due, and each pass is taken to cost 1 call; the 50 calls
    # of 5% go evenly over the rest of the day, 3 a pass.
    assert await reconcile.due(conn, boards, 600, share=0.05, calls=1_000) == boards
    every = await reconcile.every(conn, boards, 600, 0.05, 1_000)
    assert every == pytest.approx(max(600, await until_midnight(conn) * 3 / 50), abs=1)
    # Passed half an hour ago: due every 600 s without a limit, not within 5% of 1,000 calls
    # (unless midnight is under half an hour away: then 50 calls spread over it are).
    await conn.execute(PASSED, boards, 1_800, 1, 1)
    assert await reconcile.due(conn, boards, 600, share=0.05, calls=None) == boards
    if await until_midnight(conn) > 1_800 * 50 / 3 + 60:
        assert await reconcile.due(conn, boards, 600, share=0.05, calls=1_000) == []
    assert await reconcile.due(conn, boards, 600, share=0.05, calls=10_000) == boards
    # One board's activity log took 3 pages last time: every board waits longer.
    await conn.execute("UPDATE npd_sync.boards SET pass_calls = 3 WHERE board_id = '1'")
    widened = await reconcile.every(conn, boards, 600, 0.05, 1_000)
    assert widened == pytest.approx(max(600, await until_midnight(conn) * 5 / 50), abs=1)
    # Today's passes spent 45 of the 50: what is left goes 5 calls a pass, once more today.
    await conn.execute(
        "UPDATE npd_sync.boards SET day = (now() AT TIME ZONE 'UTC')::date, day_calls = 15"
    )
    assert await reconcile.every(conn, boards, 600, 0.05, 1_000) == pytest.approx(
        max(600, await until_midnight(conn)), abs=1
    )
    await conn.execute("UPDATE npd_sync.boards SET day_calls = 16")  # no room for a pass
    assert await reconcile.every(conn, boards, 600, 0.05, 1_000) == daily.DAY
    # Calls of another day do not count.
    await conn.execute("UPDATE npd_sync.boards SET day = day - 1")
    assert await reconcile.every(conn, boards, 600, 0.05, 1_000) == pytest.approx(widened, abs=1)


async def test_a_pass_remembers_what_it_cost(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path)
    for i in range(501):
        emulator.add_item(CONTACTS_BOARD, f"Person {i}")
    out: list[str] = []
    assert await pull.run(config, table="contacts", full=True, dry_run=True, echo=out.append)
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.boards") == 0  # a dry run: nothing
    assert await pull.run(config, table="contacts", full=True, dry_run=False, echo=out.append)
    cost = "SELECT pass_calls, full_calls, day_calls FROM npd_sync.boards WHERE board_id = $1"
    assert tuple(await conn.fetchrow(cost, CONTACTS_BOARD)) == (None, 2, 2)  # 2 pages of 500
    # The activity log since: the 501 items made rows, npd-sync wrote their npd_id (2 pages).
    out.clear()
    assert await pull.run(config, table="contacts", full=False, dry_run=True, echo=out.append)
    assert out[0].startswith("contacts: read the activity log in 2 requests;")
    assert await pull.run(config, table="contacts", full=False, dry_run=False, echo=out.append)
    assert tuple(await conn.fetchrow(cost, CONTACTS_BOARD)) == (2, 2, 4)  # 4 calls today


async def test_entries_read_again_in_the_overlap_are_not_applied_twice(
    conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator, tmp_path: Path
) -> None:
    config = inbound(make_settings, tmp_path)
    item = await synced_ada(conn, config, emulator, "BIDIRECTIONAL")
    out: list[str] = []
    assert await pull.run(config, table="contacts", full=True, dry_run=False, echo=out.append)
    emulator.edit_item(item, {"text": "Duchess"})  # and no delivery
    assert await pull.run(config, table="contacts", full=False, dry_run=False, echo=out.append)
    assert (await contact(conn))["role_title"] == "Duchess"
    # The row changes again and is pushed; the next pass, within the overlap, reads the
    # board's "Duchess" entry again: the item as it is now is what counts.
    await conn.execute("UPDATE contacts SET role_title = 'Baroness' WHERE id = 1")
    await drain(config)
    assert emulator.items(CONTACTS_BOARD)[0].values["text"] == "Baroness"
    out.clear()
    assert await pull.run(config, table="contacts", full=False, dry_run=True, echo=out.append)
    assert out == [
        "contacts: read the activity log in 1 request; 1 item to look at",
        f"  items {item}",
    ]
    out.clear()
    assert await pull.run(config, table="contacts", full=False, dry_run=False, echo=out.append)
    assert (await contact(conn))["role_title"] == "Baroness"
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.conflicts") == 0
    assert await conn.fetchval("SELECT count(*) FROM npd_sync.changes") == 0  # nothing echoed
    assert out[-1] == "done: 0 rows updated and 0 inserted from Monday, 0 conflicts, 0 failed"
