"""Reconciliation: the safety net for everything a webhook can miss (the receiver down longer
than Monday's 30 minutes of retries, a webhook deleted in Monday's UI).

A pass over a board puts in the inbox every item whose board side may differ from what was
agreed; the worker then reads and merges them as it does for a delivery. It costs little when
nothing changed: after a full read, a pass reads the board's activity log since the last one
(one request when it is empty, whatever the board's size) and skips what is known already:
the creation of an item linked to a row, a column that does not flow back, and a change
older than the last time both sides agreed on the item (less a margin for the two clocks).
A full read (the first pass, one a day, or `npd-sync pull --full`) pages through the board,
500 items a request, and compares each item with the agreed values; items linked to a row
that it did not see (archived, deleted) are looked at too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from listener import db, links, mapping, sql
from listener.inbound import merge
from listener.monday import api, cost, daily, errors, governor

# An activity log may show an entry late: a pass after an incremental one reads this much of
# what that one read already. Monday does not document the delay; reports say up to a minute,
# so twice that. Entries read twice cost nothing more than the request: those of items both
# sides agreed on since are skipped (`_unknown`), and an item read again merges to no change.
OVERLAP = dt.timedelta(minutes=2)
SKEW = dt.timedelta(seconds=5)  # between Monday's clock and the database's
FULL_EVERY = dt.timedelta(days=1)  # a full read at least this often, the timer's passes too


@dataclass
class Pass:
    """What one pass over one board found."""

    table: str
    board_id: str
    full: bool
    changed: list[str] = field(default_factory=list)  # items to look at
    when: dict[str, dt.datetime] = field(default_factory=dict)  # as the activity log dates them
    read: int = 0  # items read (a full pass)
    requests: int = 0


def differs(item: api.Item, table: mapping.TableMapping, key: str, agreed: links.Values) -> bool:
    """Whether an item's board side differs from what was agreed (for the columns that flow
    back, and the name when it does)."""
    return any(agreed.get(k) != v for k, v in merge.monday_values(item, table, key).items())


async def pull(
    pool: asyncpg.Pool,
    client: api.Client,
    meter: governor.Governor,
    table_id: int,
    table: mapping.TableMapping,
    *,
    full: bool = False,
    mark: bool = True,
) -> Pass:
    """One pass over a table's board; with `mark`, the items found go in the inbox. A
    connection is taken for each step, never held while Monday answers."""
    assert table.board_id is not None
    board = table.board_id
    async with pool.acquire() as conn:
        started = await conn.fetchval(sql.query("database_now"))
        state = await conn.fetchrow(sql.query("board_state"), board)
    watermark = state["watermark"] if state else None
    last_full = state["full_read_at"] if state else None
    full = full or watermark is None or last_full is None or started - last_full > FULL_EVERY
    found = Pass(table.table, board, full)
    if full:
        await _read_board(pool, client, meter, table_id, table, found)
    else:
        assert watermark is not None
        entries = await _activity(client, meter, board, watermark, found)
        async with pool.acquire() as conn:
            await _unknown(conn, table_id, table, entries, found)
    if mark:
        async with pool.acquire() as conn:
            if found.changed:
                when = [found.when.get(i) for i in found.changed]
                await conn.execute(sql.query("mark_items"), board, found.changed, when)
            # What this pass saw: everything before a full read's start; before an incremental
            # pass's, all but entries that may show up late.
            covered = started if full else started - OVERLAP
            await conn.execute(sql.query("board_pulled"), board, covered, full, found.requests)
    return found


async def _activity(
    client: api.Client,
    meter: governor.Governor,
    board: str,
    since: dt.datetime,
    found: Pass,
) -> list[api.Activity]:
    """The board's activity log since a moment, a page a request."""
    page, entries = 1, []
    while True:
        async with meter.reserve([page], kind=cost.Kind.ACTIVITY) as grant:
            try:
                got, reply = await api.activity(client, board, since, page)
            except errors.MondayError as exc:
                raise await grant.settle(exc) or exc from None
            await grant.settle(reply)
        found.requests += 1
        entries += got
        if len(got) < api.ACTIVITY_PAGE:
            return entries
        page += 1


async def _unknown(
    conn: db.Conn,
    table_id: int,
    table: mapping.TableMapping,
    entries: Sequence[api.Activity],
    found: Pass,
) -> None:
    """The items of activity entries that may hold something not agreed yet."""
    flowing = {c.id for c in table.inbound_columns} | {mapping.NAME}
    ids = list(dict.fromkeys(i for e in entries for i in e.item_ids))
    known = {r["item_id"]: r for r in await conn.fetch(sql.query("links_of_items"), table_id, ids)}
    for entry in entries:
        if entry.column_id is not None and entry.column_id not in flowing:
            continue  # a column that does not flow back (npd_id, a joined one)
        for item in entry.item_ids:
            link = known.get(item)
            if link is not None and not link["unlinked"]:
                if entry.event == "create_pulse":
                    continue  # npd-sync's own item, or one already made a row
                if entry.at is not None and entry.at < link["agreed_at"] - SKEW:
                    continue  # both sides agreed on the item after this change
            if entry.at is not None:
                found.when[item] = max(found.when.get(item, entry.at), entry.at)
            found.changed.append(item)
    found.changed = list(dict.fromkeys(found.changed))


async def _read_board(
    pool: asyncpg.Pool,
    client: api.Client,
    meter: governor.Governor,
    table_id: int,
    table: mapping.TableMapping,
    found: Pass,
) -> None:
    async with pool.acquire() as conn:
        rows = await conn.fetch(sql.query("table_links"), table_id)
    linked = {r["item_id"]: r for r in rows}
    columns = [c.id for c in table.inbound_columns]
    if table.npd_id_column:
        columns.append(table.npd_id_column)
    seen: set[str] = set()
    cursor: str | None = None
    slots = range(api.BOARD_PAGE)  # a page's items: as many as the budget holds now
    while True:
        async with meter.reserve(slots, kind=cost.Kind.READ) as grant:
            try:
                page, reply = await api.board_page(
                    client, table.board_id or "", columns, cursor, limit=len(grant.ops)
                )
            except errors.MondayError as exc:
                raise await grant.settle(exc) or exc from None
            await grant.settle(reply)
        cursor = page.cursor
        found.requests += 1
        for item in page.found.values():
            seen.add(item.id)
            found.read += 1
            link = linked.get(item.id)
            if link is None:
                if merge.new_row(item, table) is not None:
                    found.changed.append(item.id)  # created on the board
            elif link["unlinked"] or differs(
                item, table, link["row_key"], links.parse(link["agreed"]) or {}
            ):
                found.changed.append(item.id)
        if cursor is None:
            break
    # Linked items the board no longer shows: archived or deleted while nobody listened.
    found.changed += [i for i, r in linked.items() if i not in seen and not r["unlinked"]]


async def every(
    conn: db.Conn, boards: Sequence[str], interval: float, share: float, calls: int | None
) -> float:
    """Seconds between two passes over `boards`: `interval`, widened so that the passes until
    midnight cost at most what today's passes left of `share` of the daily limit (`calls`;
    None: no limit known), each board's pass costing what its last one did (1 call before the
    first)."""
    return (await _reconciled(conn, boards, interval, share, calls))[1]


async def due(
    conn: db.Conn,
    boards: Sequence[str],
    interval: float,
    *,
    share: float,
    calls: int | None,
) -> list[str]:
    """The boards whose last pass is older than the interval (`every`) or that never had one."""
    return (await _reconciled(conn, boards, interval, share, calls))[0]


async def costs(conn: db.Conn, boards: Sequence[str]) -> list[daily.PassCost]:
    """What each board's last passes cost (unknown for a board never reconciled)."""
    return (await _state(conn, boards))[1]


async def _state(
    conn: db.Conn, boards: Sequence[str]
) -> tuple[dict[str, asyncpg.Record], list[daily.PassCost]]:
    known = {r["board_id"]: r for r in await conn.fetch(sql.query("boards_reconciled"), boards)}
    found = [_cost(known.get(b)) for b in boards]
    return known, found


def _cost(state: asyncpg.Record | None) -> daily.PassCost:
    if state is None:
        return daily.PassCost()
    return daily.PassCost(state["pass_calls"], state["full_calls"])


async def _reconciled(
    conn: db.Conn, boards: Sequence[str], interval: float, share: float, calls: int | None
) -> tuple[list[str], float]:
    now = await conn.fetchval(sql.query("database_now"))
    known, found = await _state(conn, boards)
    spent = sum(r["today"] for r in known.values())
    left = daily.until_midnight(now)
    seconds = daily.reconcile_every(interval, share, calls, found, spent=spent, seconds=left)
    result = []
    for board in boards:
        last = known[board]["last_pull_at"] if board in known else None
        if last is None or (now - last).total_seconds() >= seconds:
            result.append(board)
    return result, seconds
