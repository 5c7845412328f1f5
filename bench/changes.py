"""P10: what an UPDATE costs on Monday when it changes little or nothing that is mapped.

`p10_rows` contacts are synced first (a listener, the emulator without limits). Then, with the
same listener running, two rounds of UPDATEs, each of every row (in statements of 1,000 rows;
the capture is per row either way), each round waited out until the queue is empty:

1. an UPDATE that changes no mapped column (`updated_at = now()`, an ORM's touch): the
   mutations Monday receives; the target is none;
2. an ORM-style UPDATE that rewrites every column with its own value and changes one mapped
   value (`role_title`): the column values each mutation carries (the keys of its
   `column_values`, the item name counting as one); the target is one.

The emulator is watched at the HTTP boundary: every mutation document's variables are read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler

from bench import setup
from bench.report import Figure, Metric, Target
from bench.setup import Bench

CHUNK = 1_000
TOUCH = "UPDATE contacts SET updated_at = now() WHERE id > $1 AND id <= $1 + $2"
ORM = """
UPDATE contacts SET first_name = first_name, last_name = last_name, email = email,
       phone = phone, role_title = role_title || ' (senior)', notes = notes,
       sync_enabled = sync_enabled, sync_direction = sync_direction, updated_at = now()
 WHERE id > $1 AND id <= $1 + $2
"""


@dataclass
class Sent:
    """What the listener sent: mutations, and the column values of each update."""

    mutations: int = 0
    update_values: list[int] = field(default_factory=list)

    def reset(self) -> None:
        self.mutations = 0
        self.update_values.clear()


def _mutations(raw: bytes) -> tuple[int, list[int]]:
    """The mutations of a request and, per update, how many column values it carries."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return 0, []
    query = payload.get("query") or ""
    if not query.lstrip().startswith("mutation"):
        return 0, []
    variables = payload.get("variables") or {}
    count = len(re.findall(r"\bo\d+:", query))
    updates = []
    for alias in re.findall(r"\b(o\d+): change_multiple_column_values", query):
        values = json.loads(variables.get("v" + alias[1:]) or "{}")
        updates.append(len(values))
    return count, updates


def watch(monday: setup.Monday, sent: Sent) -> None:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/v2":
            count, updates = _mutations(await request.read())
            sent.mutations += count
            sent.update_values.extend(updates)
        return await handler(request)

    monday.emulator.app.middlewares.append(middleware)


async def _round(conn: asyncpg.Connection, statement: str, rows: int) -> None:
    for start in range(0, rows, CHUNK):
        await conn.execute(statement, start, CHUNK)

    async def empty() -> bool:
        return await setup.queue_empty(conn)

    await setup.wait_until(empty, timeout=120 + rows / 50, what="an empty queue")


async def run(bench: Bench) -> Figure:
    figure = Figure("P10", "UPDATEs that change little: what reaches Monday")
    rows = bench.sizes.p10_rows
    dbname = await bench.server.create_database("bench_changes", setup.INSTALLED_TEMPLATE)
    dsn = bench.server.dsn(dbname)
    await setup.insert_contacts(dsn, rows, captured=True, chunk=5_000)
    monday = setup.Monday()
    sent = Sent()
    watch(monday, sent)
    await monday.start()
    listener = setup.Listener(dsn, monday.url, bench.workdir, name="p10-listener")
    conn = await asyncpg.connect(dsn)
    raw: dict[str, Any] = {"rows": rows}
    try:
        await listener.start()

        async def synced() -> bool:
            return await setup.queue_empty(conn) and monday.mutations >= rows

        await setup.wait_until(synced, timeout=120 + rows / 50, what=f"{rows} rows synced")
        bench.log(f"{rows} rows synced; touching each (no mapped column)")
        sent.reset()
        await _round(conn, TOUCH, rows)
        raw["touch"] = {"mutations": sent.mutations, "updates": len(sent.update_values)}
        bench.log(f"  {sent.mutations} mutations; rewriting each, one mapped value changed")
        sent.reset()
        await _round(conn, ORM, rows)
        values = sent.update_values
        raw["orm"] = {
            "mutations": sent.mutations,
            "updates": len(values),
            "column_values": sum(values),
            "most_in_one": max(values, default=0),
        }
        changed = await conn.fetchval(
            "SELECT count(*) FROM contacts WHERE role_title LIKE '%(senior)'"
        )
        raw["orm"]["rows_changed"] = changed
    finally:
        await conn.close()
        raw["exit_code"] = await listener.stop()
        await monday.stop()
        await bench.server.drop_database(dbname)
    figure.raw = raw
    figure.add(
        Metric(
            key="touch_mutations",
            label=f"mutations sent for {rows:,} UPDATEs that change no mapped column",
            value=raw["touch"]["mutations"],
            unit="count",
            target=Target("<=", 0),
            better="lower",
        )
    )
    orm = raw["orm"]
    figure.add(
        Metric(
            key="orm_values_per_mutation",
            label=f"column values per mutation, {rows:,} ORM-style UPDATEs, one mapped value "
            f"changed ({orm['mutations']:,} mutations)",
            value=orm["column_values"] / orm["updates"] if orm["updates"] else None,
            unit="values",
            target=Target("<=", 1),
            better="lower",
        )
    )
    figure.notes.append(
        f"UPDATEs in statements of {CHUNK:,} rows; most column values in one mutation: "
        f"{orm['most_in_one']}"
    )
    if bench.options.quick:
        figure.scaled_down = {"why": "--quick", "rows": rows}
    return figure
