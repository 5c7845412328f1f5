"""`npd-sync retry`: put failed rows back in the queue, or with --discard take them out of it
(the work is `listener.operations.retry`): which tables and keys the options name, what
happened, and the exit code."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from listener import db
from listener.capture import install
from listener.operations import report, retry
from listener.operations.keys import NotAKey, UsageError
from listener.operations.retry import Target
from listener.settings import Settings


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
    settings: Settings,
    *,
    table: str | None,
    ids: Sequence[str],
    echo: Callable[[str], None],
    discard: bool = False,
) -> bool:
    """`npd-sync retry`: requeue (or, with `discard`, stop retrying) and say what happened;
    False when a table named could not be handled."""
    wanted = targets(settings, table, ids)
    conn = await db.connect(settings.require_database(), application_name="npd-sync retry")
    try:
        await install.require_current(conn)
        try:
            if discard:
                return _said(await retry.discard(conn, wanted), echo)
            results = await retry.retry(conn, wanted)
        except NotAKey as exc:
            raise UsageError(f"--id {exc}") from None
        alive = await report.any_alive(conn)
    finally:
        await conn.close()
    for line in retry.summary(results):
        echo(line)
    if any(r.requeued for r in results):
        if settings.api_key is None:
            echo("MONDAY_API_KEY is not set: they stay pending until it is")
        elif not alive:
            echo("no listener is running: they are synced when `npd-sync listen` runs")
    return not any(r.note for r in results)


def _said(results: Sequence[retry.Discarded], echo: Callable[[str], None]) -> bool:
    """Say what a discard did; False when a table named could not be handled."""
    for line in retry.discard_summary(results):
        echo(line)
    return not any(r.note for r in results)
