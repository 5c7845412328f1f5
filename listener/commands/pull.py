"""`npd-sync pull`: bring the board's edits into the database now, whatever webhooks missed.

A pass over each board (see `listener.inbound.reconcile`) finds the items whose board side
differs from what was agreed; then the listener's own machinery reads them and merges each
with its row, with the same conflict rules as for a webhook. Safe beside running listeners.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from listener import db, rows
from listener.commands.backfill import WAIT_FOR_RETRIES
from listener.engine import worker
from listener.inbound import reconcile
from listener.settings import ConfigError, Settings
from listener.text import counted

Echo = Callable[[str], None]
SHOWN = 10  # items --dry-run names per table


async def run(
    settings: Settings, *, table: str | None, full: bool, dry_run: bool, echo: Echo
) -> bool:
    """Reconcile the configured boards (or one); False when rows ended FAILED."""
    if table is not None:
        settings.table(table)  # an unknown name is a ConfigError (exit 2)
    if settings.api_key is None:
        raise ConfigError("MONDAY_API_KEY is not set: pull reads the boards from Monday")
    pool = await db.create_pool(settings.require_database(), application_name="npd-sync pull")
    try:
        async with pool.acquire() as conn:
            tables = [
                t for t in await rows.load_tables(conn, settings)
                if t.mapping.board_id and (table is None or t.name == table)
            ]  # fmt: skip
        if not tables:
            raise ConfigError("no table to pull: set a board id (MONDAY_<TABLE>_BOARD_ID)")
        name = f"pull:{id(tables):x}"
        async with worker.open_worker(settings, pool, tables, name, inbound=True) as w:
            assert w.client is not None
            for t in tables:
                found = await reconcile.pull(
                    pool, w.client, w.governor, t.id, t.mapping, full=full, mark=not dry_run
                )
                how = f"read {found.read} items" if found.full else "read the activity log"
                requests = counted(found.requests, "request")
                items = counted(len(found.changed), "item")
                echo(f"{t.name}: {how} in {requests}; {items} to look at")
                if dry_run and found.changed:
                    more = len(found.changed) - SHOWN
                    shown = ", ".join(found.changed[:SHOWN])
                    echo(f"  items {shown}" + (f" (+{more})" if more > 0 else ""))
            if dry_run:
                return True
            await _work(w)
        stats = w.stats
    finally:
        await pool.close()
    echo(
        f"done: {counted(stats.pulled, 'row')} updated and {stats.inserted:,} inserted from "
        f"Monday, {counted(stats.conflicts, 'conflict')}, {stats.failed:,} failed"
    )
    return stats.failed == 0


async def _work(w: worker.Worker) -> None:
    """Work what the passes found (and anything else due) until nothing is left but retries
    due later."""
    while True:
        await w.drain()
        due = await w.next_due()
        if due is None or due > WAIT_FOR_RETRIES:
            return
        await asyncio.sleep(min(max(due, 0.05), 5.0))
