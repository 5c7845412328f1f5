"""Failed rows back in the queue: `npd-sync retry` and the console's Retry; or out of it:
`npd-sync retry --discard` and the console's "Stop retrying".

A failed queue entry becomes pending again, due now, with a fresh set of attempts and no
lease; its application row's `sync_status` goes from FAILED to PENDING. `last_error` (and the
row's `sync_error`) stay as they are: they say why the row failed until the next attempt
replaces them, so `status` still shows what went wrong while the retry is waiting.

Rows marked FAILED that the queue knows nothing about (its entries went with an
`uninstall`, say) are queued too, when they are rows to push. Everything happens in one
transaction on a connection marked as the listener's, so nothing here is captured as a change;
application rows that are locked right now are skipped rather than waited for (the listener
writes their status when it syncs them). An idle listener is woken at commit. The queue's
entries go back through the queue's own transitions (`engine.queue`: retry, arrive).

Discarding takes failed entries out of the queue (`engine.queue.discard`): retries stop, the
row leaves the failed lists and waits for new data. Its application row is left as it is
(FAILED, with its `sync_error`): its data never reached Monday. A change to the row queues it
again, as does a retry that names it or its table (rows marked FAILED without an entry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from listener import catalog, db, mapping, sql
from listener.capture import notify
from listener.engine import queue
from listener.operations.keys import normalize
from listener.text import counted


@dataclass(frozen=True, slots=True)
class Target:
    """One table to retry, and the keys to limit it to (None: every failed row)."""

    table: mapping.TableMapping
    keys: tuple[str, ...] | None


@dataclass
class Retried:
    """What retry did to one table."""

    table: str
    requeued: list[str] = field(default_factory=list)  # keys back in the queue
    not_failed: list[str] = field(default_factory=list)  # asked-for keys with nothing failed
    note: str | None = None  # why the table was skipped


@dataclass
class Discarded:
    """What discard did to one table."""

    table: str
    discarded: list[str] = field(default_factory=list)  # keys out of the queue
    not_failed: list[str] = field(default_factory=list)  # asked-for keys with nothing failed
    note: str | None = None  # why the table was skipped


def summary(results: Sequence[Retried]) -> list[str]:
    """What a retry did, a line per table (and one when nothing was failed)."""
    lines = []
    for result in results:
        if result.note:
            lines.append(f"{result.table}: {result.note}")
        elif result.requeued:
            lines.append(
                f"{result.table}: {counted(len(result.requeued), 'row')} back in the queue"
            )
        if result.not_failed:
            lines.append(
                f"{result.table}: not failed, left as they are: {', '.join(result.not_failed)}"
            )
    if not any(r.requeued or r.note for r in results):
        lines.append("no failed rows")
    return lines


async def retry(conn: db.Conn, wanted: Sequence[Target]) -> list[Retried]:
    """Requeue the failed rows of the targets; NotAKey for a key that cannot be one of its
    table. The connection must come from `db.connect` or `db.create_pool` (marked as the
    listener's, so that nothing here is captured)."""
    results = [Retried(target.table.table) for target in wanted]
    prepared = [
        (result, found)
        for target, result in zip(wanted, results, strict=True)
        if (found := await _prepare(conn, target, result)) is not None
    ]
    async with conn.transaction():
        # Never queue behind a long application transaction for ever.
        await conn.execute("SET LOCAL lock_timeout = '10s'")
        for result, found in prepared:
            await _requeue(conn, result, *found)
        if any(result.requeued for result in results):
            await notify.wake(conn)
    return results


def discard_summary(results: Sequence[Discarded]) -> list[str]:
    """What a discard did, a line per table (and one when nothing was failed)."""
    lines = []
    for result in results:
        if result.note:
            lines.append(f"{result.table}: {result.note}")
        elif result.discarded:
            lines.append(
                f"{result.table}: stopped retrying {counted(len(result.discarded), 'row')} "
                f"({', '.join(result.discarded)}): out of the queue until new data"
            )
        if result.not_failed:
            lines.append(
                f"{result.table}: not failed, left as they are: {', '.join(result.not_failed)}"
            )
    if not any(r.discarded or r.note for r in results):
        lines.append("no failed rows")
    return lines


async def discard(conn: db.Conn, wanted: Sequence[Target]) -> list[Discarded]:
    """Take the failed entries of the targets out of the queue; NotAKey for a key that cannot
    be one of its table. The application rows are left as they are."""
    results = [Discarded(target.table.table) for target in wanted]
    prepared = [
        (result, found)
        for target, result in zip(wanted, results, strict=True)
        if (found := await _prepare(conn, target, result)) is not None
    ]
    async with conn.transaction():
        await conn.execute("SET LOCAL lock_timeout = '10s'")
        for result, (table_id, _, keys) in prepared:
            result.discarded = sorted(await queue.discard(conn, table_id, keys), key=_order)
            if keys is not None:
                done = set(result.discarded)
                result.not_failed = [k for k in keys if k not in done]
    return results


Prepared = tuple[int, dict[str, str], list[str] | None]


async def _prepare(conn: db.Conn, target: Target, result: Retried | Discarded) -> Prepared | None:
    """What retrying (or discarding) a table needs (its id, its names, its keys), or None
    with a note on `result` saying why it cannot be."""
    table_id = await conn.fetchval(sql.query("table_id"), target.table.table)
    info = await catalog.describe(conn, target.table.table)
    if table_id is None:
        result.note = "capture not installed (run `npd-sync install`)"
    elif info is None:
        result.note = "table not found"
    elif problems := catalog.problems(info, target.table):
        result.note = "cannot retry: " + "; ".join(map(str, problems))
    else:
        keys = None
        if target.keys is not None:
            keys = await normalize(conn, target.table, info, target.keys)
        return int(table_id), _names(target.table, info), keys
    return None


async def _requeue(
    conn: db.Conn, result: Retried, table_id: int, names: dict[str, str], keys: list[str] | None
) -> None:
    """Requeue one table's failed rows (those with `keys`, when given), in the transaction."""
    requeued = await queue.retry(conn, table_id, keys)
    orphans = [
        r[0]
        for r in await conn.fetch(sql.query("failed_without_entry").format(**names), table_id, keys)
    ]
    await queue.arrive(conn, [queue.Arrival(table_id, key) for key in orphans])
    requeued += orphans
    if requeued:
        await conn.fetch(sql.query("mark_pending").format(**names), requeued)
    result.requeued = sorted(requeued, key=_order)
    if keys is not None:
        done = set(requeued)
        result.not_failed = [k for k in keys if k not in done]


def _names(table: mapping.TableMapping, info: catalog.TableInfo) -> dict[str, str]:
    """The placeholders of the per-table templates: quoted names, catalog types."""
    return {
        "table": info.relation,
        "key": sql.quote_ident(table.key_column),
        "key_type": info.columns[table.key_column].type,
        "status": sql.quote_ident(mapping.SYNC_STATUS),
        "status_type": info.columns[mapping.SYNC_STATUS].type,
    }


def _order(key: str) -> tuple[int, str]:
    return (len(key), key) if key.isdigit() else (1 << 30, key)
