"""`npd-sync retry`: put failed rows back in the queue.

A failed queue entry becomes pending again, due now, with a fresh set of attempts and no
lease; its application row's `sync_status` goes from FAILED to PENDING. `last_error` (and the
row's `sync_error`) stay as they are: they say why the row failed until the next attempt
replaces them, so `status` still shows what went wrong while the retry is waiting.

Rows marked FAILED that the queue knows nothing about (its entries went with an
`uninstall`, say) are queued too, when they are rows to push. Everything happens in one
transaction on a connection marked as the listener's, so nothing here is captured as a change;
application rows that are locked right now are skipped rather than waited for (the listener
writes their status when it syncs them). An idle listener is woken at commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from listener import catalog, db, mapping, sql, text
from listener.capture import install, notify
from listener.commands import status
from listener.settings import Settings


class UsageError(Exception):
    """--table / --id do not make sense together; the message says what to give."""


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


def targets(settings: Settings, table: str | None, ids: Sequence[str]) -> list[Target]:
    """Which tables and keys the options name; raises UsageError or ConfigError (exit 2)."""
    keys = tuple(dict.fromkeys(ids)) or None
    if table is not None:
        return [Target(settings.table(table), keys)]
    if keys is not None:
        if len(settings.tables) != 1:
            names = ", ".join(t.table for t in settings.tables) or "none"
            raise UsageError(f"--id needs --table: several tables are configured ({names})")
        return [Target(settings.tables[0], keys)]
    return [Target(t, None) for t in settings.tables]


async def run(
    settings: Settings, *, table: str | None, ids: Sequence[str], echo: Callable[[str], None]
) -> bool:
    """`npd-sync retry`: requeue and say what happened; False when a table named could not be
    handled."""
    wanted = targets(settings, table, ids)
    conn = await db.connect(settings.require_database(), application_name="npd-sync retry")
    try:
        await install.require_current(conn)
        results = await retry(conn, wanted)
        listeners = await conn.fetch(sql.query("status_listeners"), status.ALIVE_SECONDS)
    finally:
        await conn.close()
    for line in summary(results):
        echo(line)
    if any(r.requeued for r in results):
        if settings.api_key is None:
            echo("MONDAY_API_KEY is not set: they stay pending until it is")
        elif not any(r["alive"] for r in listeners):
            echo("no listener is running: they are synced when `npd-sync listen` runs")
    return not any(r.note for r in results)


def summary(results: Sequence[Retried]) -> list[str]:
    """What a retry did, a line per table (and one when nothing was failed)."""
    lines = []
    for result in results:
        if result.note:
            lines.append(f"{result.table}: {result.note}")
        elif result.requeued:
            lines.append(
                f"{result.table}: {text.counted(len(result.requeued), 'row')} back in the queue"
            )
        if result.not_failed:
            lines.append(
                f"{result.table}: not failed, left as they are: {', '.join(result.not_failed)}"
            )
    if not any(r.requeued or r.note for r in results):
        lines.append("no failed rows")
    return lines


async def retry(conn: db.Conn, wanted: Sequence[Target]) -> list[Retried]:
    """Requeue the failed rows of the targets: the one retry operation, for `npd-sync retry`
    and the console. The connection must come from `db.connect` or `db.create_pool` (marked as
    the listener's, so that nothing here is captured)."""
    prepared = []
    results = []
    for target in wanted:
        result = Retried(target.table.table)
        results.append(result)
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
                keys = await _normalize(conn, target.table, info, target.keys)
            prepared.append((result, int(table_id), _names(target.table, info), keys))
    async with conn.transaction():
        # Never queue behind a long application transaction for ever.
        await conn.execute("SET LOCAL lock_timeout = '10s'")
        for result, table_id, names, keys in prepared:
            requeued = [r[0] for r in await conn.fetch(sql.query("requeue_failed"), table_id, keys)]
            orphans = [
                r[0]
                for r in await conn.fetch(
                    sql.query("failed_without_entry").format(**names), table_id, keys
                )
            ]
            if orphans:
                inserted = await conn.fetch(sql.query("requeue_orphans"), table_id, orphans)
                requeued += [r[0] for r in inserted]
            if requeued:
                await conn.fetch(sql.query("mark_pending").format(**names), requeued)
            result.requeued = sorted(requeued, key=_order)
            if keys is not None:
                done = set(requeued)
                result.not_failed = [k for k in keys if k not in done]
        if any(result.requeued for result, *_ in prepared):
            await conn.execute(sql.query("wake"), notify.CHANNEL)
    return results


def _names(table: mapping.TableMapping, info: catalog.TableInfo) -> dict[str, str]:
    """The placeholders of the per-table templates: quoted names, catalog types."""
    return {
        "table": info.relation,
        "key": sql.quote_ident(table.key_column),
        "key_type": info.columns[table.key_column].type,
        "status": sql.quote_ident(mapping.SYNC_STATUS),
        "status_type": info.columns[mapping.SYNC_STATUS].type,
    }


async def _normalize(
    conn: db.Conn, table: mapping.TableMapping, info: catalog.TableInfo, keys: Sequence[str]
) -> list[str]:
    """The keys as the table's key type prints them (`007` -> `7`); UsageError if invalid."""
    key_type = info.columns[table.key_column].type
    statement = sql.query("normalize_keys").format(key_type=key_type)
    normalized = []
    for key in keys:
        try:
            normalized.append(await conn.fetchval(statement, [key]))
        except asyncpg.DataError:
            raise UsageError(
                f"--id {key!r} is not a key of {table.table} ({table.key_column} is {key_type})"
            ) from None
    return list(dict.fromkeys(normalized))


async def normalize_key(conn: db.Conn, table: mapping.TableMapping, key: str) -> str:
    """One key as the table's key type prints it; UsageError if it cannot be one."""
    info = await catalog.describe(conn, table.table)
    if info is None or not info.has(table.key_column):
        raise UsageError(f"{table.table}: table not found")
    for problem in catalog.problems(info, table):
        if problem.kind == "foreign_code" and table.key_column in problem.columns:
            raise UsageError(f"{table.table}: {problem}")  # a cast to it would run that code
    [normalized] = await _normalize(conn, table, info, [key])
    return normalized


def _order(key: str) -> tuple[int, str]:
    return (len(key), key) if key.isdigit() else (1 << 30, key)
