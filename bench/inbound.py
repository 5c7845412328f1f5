"""P7-P9: inbound sync, Monday to PostgreSQL.

P7  a board edit to its row: a person edits items on the (in-process) emulator at a steady
    20 edits/s, each a different row; the emulator delivers the webhooks to the receiver of a
    real `npd-sync listen --webhook-port`; latency is from the edit (time.time() when
    edit_item returns) to the row's write (its last_synced_at, the write-back transaction's
    start, on the same machine's clock).
P8  the receiver's throughput: every item of a board edited first (no webhooks registered),
    then 5 deliveries per item posted to the receiver by 50 concurrent clients: deliveries
    accepted (answered 200, hence stored) per second, items applied per second (first post to
    the last row written), and the listener's RSS before and after.
P9  reconciliation's cost on a board of 10,000 items: one pass with nothing changed, and one
    with 1% of the items changed (edits without deliveries), after a first full read: the
    requests and the complexity points the pass spent (the emulator's records), and those of
    the reads that follow in the worker.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import asyncpg

from bench import setup
from bench.report import Figure, Metric, Target
from bench.setup import Bench
from listener import settings
from listener.commands import pull
from listener.commands import webhooks as webhook_commands
from listener.inbound import webhooks


class Inbound:
    """A database with rows synced to the emulator, and a listener with its receiver."""

    def __init__(self, bench: Bench, name: str, rows: int) -> None:
        self.bench = bench
        self.name = name
        self.rows = rows
        self.port = setup.free_port()
        self.monday = setup.Monday()
        self.dbname = ""
        self.dsn = ""
        self.listener: setup.Listener | None = None
        self.conn: asyncpg.Connection | None = None

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> settings.Settings:
        return setup.inbound_settings(self.dsn, self.monday.url, self.public_url)

    async def start(self) -> asyncpg.Connection:
        server = self.bench.server
        self.dbname = await server.create_database(self.name, setup.INSTALLED_TEMPLATE)
        self.dsn = server.dsn(self.dbname)
        await self.monday.start()
        self.conn = await asyncpg.connect(self.dsn)
        self.listener = setup.Listener(
            self.dsn, self.monday.url, self.bench.workdir, name=self.name,
            env={"NPD_SYNC_PUBLIC_URL": self.public_url},
            args=["--webhook-port", str(self.port)],
            tuning={"reconcile_interval": 0},
        )  # fmt: skip
        await setup.insert_contacts(self.dsn, self.rows)
        await self.listener.start()
        conn = self.conn

        async def synced() -> bool:
            return await setup.queue_empty(conn)

        await setup.wait_until(synced, timeout=120, what=f"{self.rows} rows synced")
        return conn

    async def stop(self) -> None:
        if self.conn is not None:
            await self.conn.close()
        if self.listener is not None:
            await self.listener.stop()
        await self.monday.stop()
        if self.dbname:
            await self.bench.server.drop_database(self.dbname)

    async def items(self) -> dict[int, str]:
        """Row key -> item id."""
        return {
            int(i.values["npd_id"]): i.id
            for i in self.monday.emulator.items(setup.CONTACTS_BOARD)
            if "npd_id" in i.values
        }


async def _roles(conn: asyncpg.Connection, prefix: str) -> dict[int, float]:
    """Rows whose role starts with `prefix`: key -> when they were written (epoch seconds)."""
    rows = await conn.fetch(
        "SELECT id, extract(epoch FROM last_synced_at)::float8 AS at FROM contacts"
        " WHERE role_title LIKE $1",
        prefix + "%",
    )
    return {r["id"]: r["at"] for r in rows}


async def run_p7(bench: Bench) -> Figure:
    figure = Figure("P7", "a board edit -> its row, 20 edits/s")
    sizes = bench.sizes
    total = sizes.p7_edits + sizes.p7_warmup
    setup_ = Inbound(bench, "bench_p7", total)
    raw: dict[str, Any] = {"edits": sizes.p7_edits, "rate": sizes.p7_rate}
    try:
        conn = await setup_.start()
        out: list[str] = []
        assert await webhook_commands.run(setup_.settings(), action="install", echo=out.append)
        items = await setup_.items()
        edited: dict[int, float] = {}
        interval = 1 / sizes.p7_rate
        start = time.monotonic() + 0.05
        for i, key in enumerate(sorted(items)[:total]):
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            setup_.monday.emulator.edit_item(items[key], {"text": f"p7-{i}"})
            edited[key] = time.time()

        async def arrived() -> bool:
            return len(await _roles(conn, "p7-")) >= len(edited)

        await setup.wait_until(arrived, timeout=60, what="every edit in its row")
        written = await _roles(conn, "p7-")
        warm = set(sorted(edited)[: sizes.p7_warmup])
        latencies = [
            (written[k] - edited[k]) * 1000 for k in edited if k not in warm and k in written
        ]
        raw["ms"] = setup.rounded(latencies)
    finally:
        await setup_.stop()
    figure.raw = raw
    figure.add(
        Metric(
            key="p50_ms", label="board edit -> row written, p50",
            value=setup.percentile(raw["ms"], 50), unit="ms", target=Target("<=", 20),
            better="lower",
        )
    )  # fmt: skip
    figure.add(
        Metric(
            key="p99_ms", label="board edit -> row written, p99",
            value=setup.percentile(raw["ms"], 99), unit="ms", target=Target("<=", 100),
            better="lower",
        )
    )  # fmt: skip
    figure.notes.append(
        f"{len(raw['ms'])} edits at {sizes.p7_rate:g}/s after {sizes.p7_warmup} of warm-up; the "
        "emulator delivers each webhook as Monday would, the listener reads the item back"
    )
    if sizes.p7_edits < 1_000:
        figure.scaled_down = {"why": f"{sizes.p7_edits} edits (--quick)"}
    return figure


async def run_p8(bench: Bench) -> Figure:
    figure = Figure("P8", "webhooks: accepted durably, and applied, per second")
    sizes = bench.sizes
    setup_ = Inbound(bench, "bench_p8", sizes.p8_items)
    raw: dict[str, Any] = {"items": sizes.p8_items, "deliveries": sizes.p8_items * 5}
    try:
        conn = await setup_.start()
        secret = await webhooks.secret(conn)
        url = f"{setup_.public_url}/monday/webhook/{secret}"
        items = await setup_.items()
        for key, item in items.items():
            setup_.monday.emulator.edit_item(item, {"text": f"p8-{key}"})  # no webhook yet
        assert setup_.listener is not None
        rss_before = setup_.listener.rss_mib()
        bodies = [
            {"event": {"type": "update_column_value", "boardId": int(setup.CONTACTS_BOARD),
                       "pulseId": int(item), "columnId": "text", "triggerUuid": uuid.uuid4().hex,
                       "changedAt": time.time()}}
            for _ in range(5) for item in items.values()
        ]  # fmt: skip
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)
        refused = 0

        async def client(session: aiohttp.ClientSession) -> None:
            nonlocal refused
            while not queue.empty():
                body = queue.get_nowait()
                async with session.post(url, json=body) as resp:
                    await resp.read()
                    refused += resp.status != 200

        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(client(session) for _ in range(50)))
        accepted_in = time.monotonic() - started

        async def applied() -> bool:
            return len(await _roles(conn, "p8-")) >= len(items)

        await setup.wait_until(applied, timeout=120, what="every item in its row")
        applied_in = time.monotonic() - started
        raw.update(
            accepted_seconds=round(accepted_in, 3), applied_seconds=round(applied_in, 3),
            refused=refused, rss_before_mib=rss_before, rss_after_mib=setup_.listener.rss_mib(),
        )  # fmt: skip
    finally:
        await setup_.stop()
    figure.raw = raw
    figure.add(
        Metric(
            key="accepted_per_s", label="deliveries accepted durably (200 after the insert)",
            value=round(raw["deliveries"] / raw["accepted_seconds"]), unit="/s",
            target=Target(">=", 2_000), better="higher",
        )
    )  # fmt: skip
    figure.add(
        Metric(
            key="applied_items_per_s",
            label=f"a burst of {raw['deliveries']:,} deliveries over {raw['items']:,} items: "
            "items applied",
            value=round(raw["items"] / raw["applied_seconds"]), unit="items/s",
            target=Target(">=", 1_000), better="higher",
        )
    )  # fmt: skip
    growth = None
    if raw["rss_before_mib"] is not None and raw["rss_after_mib"] is not None:
        growth = round(raw["rss_after_mib"] - raw["rss_before_mib"], 2)
    figure.add(
        Metric(
            key="rss_growth_mib", label="listener RSS growth over the burst", value=growth,
            unit="MiB", target=Target("<=", 10), better="lower",
        )
    )  # fmt: skip
    if raw["refused"]:
        figure.notes.append(f"PROBLEM: {raw['refused']} deliveries were not answered 200")
    figure.notes.append(
        "the posting clients share the machine's 2 cores with the listener; the last item was "
        f"applied {raw['applied_seconds'] - raw['accepted_seconds']:.2f} s after the last "
        "delivery was accepted (items applied a second cannot exceed the arrivals' pace)"
    )
    if sizes.p8_items < 2_000:
        figure.scaled_down = {"why": f"{sizes.p8_items} items (--quick)"}
    return figure


async def run_p9(bench: Bench) -> Figure:
    figure = Figure("P9", "reconciliation's cost per pass over a board")
    sizes = bench.sizes
    setup_ = Inbound(bench, "bench_p9", sizes.p9_items)
    raw: dict[str, Any] = {"items": sizes.p9_items}
    emulator = setup_.monday.emulator
    try:
        await setup_.start()
        assert setup_.listener is not None
        await setup_.listener.stop()  # the pass and its reads, alone
        config = setup_.settings()

        async def a_pass(what: str) -> None:
            before = len(emulator.requests)
            lines: list[str] = []
            assert await pull.run(config, table="contacts", full=False, dry_run=False,
                                  echo=lines.append)  # fmt: skip
            records = emulator.requests[before:]
            reads = [r for r in records if "items" in r.root_fields]
            raw[what] = {
                "pass_line": lines[0], "requests": len(records),
                "complexity": sum(r.complexity for r in records),
                "item_reads": len(reads), "done": lines[-1],
            }  # fmt: skip

        await a_pass("first")  # a full read: there is no watermark yet
        await a_pass("unchanged")
        items = await setup_.items()
        changed = list(items.values())[:: max(1, len(items) // max(1, sizes.p9_items // 100))]
        for item in changed:
            emulator.edit_item(item, {"text": "p9"})
        raw["changed_items"] = len(changed)
        await a_pass("one_percent")
    finally:
        await setup_.stop()
    figure.raw = raw
    for key, label in (
        ("first", "first pass (a full read)"),
        ("unchanged", "a pass with nothing changed"),
        ("one_percent", f"a pass with {raw['changed_items']} items changed"),
    ):
        figure.add(
            Metric(
                key=f"{key}_requests", label=f"{label}: requests (pass and reads)",
                value=raw[key]["requests"], unit="count", better="lower",
                target=Target("<=", 1) if key == "unchanged" else None,
            )
        )  # fmt: skip
        figure.add(
            Metric(
                key=f"{key}_complexity", label="  complexity points", unit="points",
                value=raw[key]["complexity"], better="lower",
            )
        )  # fmt: skip
    if sizes.p9_items < 10_000:
        figure.scaled_down = {"why": f"{sizes.p9_items} items (--quick)"}
    return figure
