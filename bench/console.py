"""P16: the console's reads on a big table: a search (`GET /rows?q=`) by key, item id, email
and name, and a row's page with the rows that point at it, on `p16_contacts` contacts over
1,000 organizations, every contact linked to an item.

The mapping is P15's: contacts' organization_id as a connect-boards column. Each read runs as
the console runs it (`listener.operations`, in a read-only snapshot), a few
times in a row, and the median is the figure; once on the tables as the sample schema makes
them (no index on email, names or organization_id: the application's tables, which npd-sync
does not index) and once after the indexes docs/console.md suggests. No target: what it costs
is the figure (a search runs once per submitted query, never per keystroke).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench import setup
from bench.relations import RELATION
from bench.report import Figure, Metric
from bench.setup import Bench
from listener import db, settings
from listener.operations import related, search

RUNS = 7
ITEM = "https://monday.com/boards/{board}/pulses/{item}"
INDEXES = (
    "CREATE INDEX contacts_email_lower ON contacts (lower(email))",
    "CREATE INDEX contacts_first_lower ON contacts (lower(first_name) text_pattern_ops)",
    "CREATE INDEX contacts_last_lower ON contacts (lower(last_name) text_pattern_ops)",
    "CREATE INDEX contacts_organization ON contacts (organization_id)",
)


async def _rows(dsn: str, contacts: int) -> None:
    conn = await db.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO organizations (name) SELECT 'Org ' || g FROM generate_series(1, 1000) g"
        )
        await conn.execute(
            "INSERT INTO contacts (first_name, last_name, email, organization_id, monday_id,"
            "                      sync_status)"
            " SELECT 'First' || g, 'Last' || g, 'Person' || g || '@Example.com', g % 1000 + 1,"
            "        (5000000000 + g)::text, 'SYNCED'"
            "   FROM generate_series(1, $1) g",
            contacts,
        )
        await conn.execute(
            "INSERT INTO npd_sync.links (table_id, row_key, item_id)"
            " SELECT 1, id::text, monday_id FROM contacts"
        )
        await conn.execute("DELETE FROM npd_sync.changes")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _timed(read: Callable[[], Awaitable[Any]]) -> list[float]:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        await read()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _measure(dsn: str, config: settings.Settings, contacts: int) -> dict[str, list[float]]:
    conn = await db.connect(dsn)
    middle = contacts // 2 + 7

    def searching(text: str) -> Callable[[], Awaitable[Any]]:
        async def read() -> Any:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                found = await search.search(conn, config, ITEM, text)
                assert not found.notes, found.notes
                return found

        return read

    async def pointing() -> Any:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            [found] = await related.linked_from(conn, config, ITEM, "organizations", "500")
            assert found.total == contacts // 1000, found
            return found

    cases = {
        "key": searching(str(middle)),
        "item id": searching(str(5_000_000_000 + middle)),
        "email": searching(f"person{middle}@example.com"),
        "email, none": searching("nobody@example.com"),
        "name": searching(f"first{middle} last{middle}"),
        "name, none": searching("nobody"),
        "rows pointing at an organization": pointing,
    }
    try:
        return {name: await _timed(read) for name, read in cases.items()}
    finally:
        await conn.close()


async def run(bench: Bench) -> Figure:
    figure = Figure("P16", "the console's reads on a big table: search, rows pointing at a row")
    contacts = bench.sizes.p16_contacts
    bench.log(f"{contacts:,} contacts over 1,000 organizations")
    dbname = await bench.server.create_database("bench_p16", setup.INSTALLED_TEMPLATE)
    dsn = bench.server.dsn(dbname)
    try:
        await _rows(dsn, contacts)
        mapping = bench.workdir / "p16.toml"
        mapping.write_text(RELATION)
        config = settings.load(
            environ={
                "DATABASE_URL": dsn,
                "MONDAY_CONTACTS_BOARD_ID": setup.CONTACTS_BOARD,
                "MONDAY_ORGANIZATIONS_BOARD_ID": setup.ORGANIZATIONS_BOARD,
                "NPD_SYNC_CONFIG": str(mapping),
            },
            env_file=None,
        )
        plain = await _measure(dsn, config, contacts)
        conn = await db.connect(dsn)
        try:
            for statement in INDEXES:
                await conn.execute(statement)
            await conn.execute("ANALYZE contacts")
        finally:
            await conn.close()
        indexed = await _measure(dsn, config, contacts)
    finally:
        await bench.server.drop_database(dbname)
    figure.raw = {"without_indexes": plain, "with_indexes": indexed}
    for name in plain:
        for label, found in (("as the tables are", plain), ("with the indexes", indexed)):
            value = statistics.median(found[name])
            bench.log(f"  {name}, {label}: {value:.1f} ms")
            figure.add(
                Metric(
                    key=f"{name} ({label})".replace(" ", "_").replace(",", ""),
                    label=f"{name}, {label}: median of {RUNS}",
                    value=value,
                    unit="ms",
                    better="lower",
                    samples=[round(s, 2) for s in found[name]],
                )
            )
    figure.notes.append(
        f"{contacts:,} contacts; indexes added for the second run: " + "; ".join(INDEXES)
    )
    if bench.options.quick:
        figure.scaled_down = {"why": "--quick", "contacts": contacts}
    return figure
