"""P1: the application's write throughput with npd-sync's triggers installed, as a share of
the same without them.

Two databases with the same contacts, `npd-sync install` run on one of them. pgbench (the
cluster's own) runs single-row UPDATE and INSERT transactions with 1 and 4 clients against
each in turn, in short alternating slices (on/off, then off/on, ...), and each figure is the
median of the per-pair ratios: the machine is shared and plain pgbench throughput moves by
±30% from run to run, much less within a pair.

Two variants: no listener at all (writers only append the change record and read the
`npd_sync.waiting` flag), and a listener running and draining into the emulator (then the
wake-up path is live: an idle listener asks for NOTIFYs). In the second, each slice starts
with the listener idle again, so that its catching up does not slow the next slice down; on a
2-core machine the listener and the emulator still compete with the writers for CPU during
the slices with triggers, which the figure includes and the notes quantify.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import setup
from bench.report import Figure, Metric, Target
from bench.setup import Bench
from listener.capture import notify

UPDATE_SCRIPT = """\\set id random(1, {rows})
UPDATE contacts SET notes = 'pgbench ' || :client_id || ' ' || :id WHERE id = :id;
"""
INSERT_SCRIPT = """INSERT INTO contacts (first_name, last_name, email, role_title)
VALUES ('Bench', 'Writer', 'writer@example.com', 'tester');
"""
TARGETS = {1: 0.80, 4: 0.85}


async def pgbench(
    bench: Bench, dbname: str, script: Path, clients: int, seconds: int
) -> dict[str, Any]:
    """One pgbench run; its tps (without connection time) and transaction counts."""
    jobs = max(1, min(clients, os.cpu_count() or 1))
    args = [
        str(bench.server.pgbench), "-n", "-M", "prepared", "-f", str(script),
        "-c", str(clients), "-j", str(jobs), "-T", str(seconds),
        bench.server.dsn(dbname),
    ]  # fmt: skip
    code, out, err = await setup.run_command(args)
    if code != 0:
        raise RuntimeError(f"pgbench failed ({code}): {err.strip() or out.strip()}")
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out) or re.search(
        r"tps = ([\d.]+)", out
    )
    if match is None:
        raise RuntimeError(f"no tps in pgbench's output: {out}")
    processed = re.search(r"actually processed: (\d+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    return {
        "tps": float(match.group(1)),
        "transactions": int(processed.group(1)) if processed else None,
        "failed": int(failed.group(1)) if failed else 0,
    }


class Notifications:
    """Counts the wake-up NOTIFYs writers send (one per notifying transaction), on a LISTEN
    connection of its own beside the listener's."""

    def __init__(self) -> None:
        self.count = 0
        self.conn: asyncpg.Connection | None = None

    async def start(self, dsn: str) -> None:
        self.conn = await asyncpg.connect(dsn)
        await self.conn.add_listener(notify.CHANNEL, self._on_notify)

    def _on_notify(self, *_: object) -> None:
        self.count += 1

    async def stop(self) -> None:
        if self.conn is not None:
            await self.conn.close()


ACTIVITY = r"""
SELECT backend_type || ' ' || coalesce(nullif(application_name, ''), '-') || ': '
       || coalesce(wait_event_type || '/' || wait_event || ' ', '')
       || left(regexp_replace(query, '\s+', ' ', 'g'), 70)
  FROM pg_stat_activity
 WHERE state = 'active' AND pid <> pg_backend_pid()
"""


async def _wait_idle(
    probe: asyncpg.Connection, *, timeout: float = 30.0, slow: float = 3.0
) -> tuple[float, list[list[object]]]:
    """Wait (at most `timeout` s) for the listener to be idle again. Past `slow` seconds,
    sample what PostgreSQL is busy with: a slow drain is a finding, and this says why."""
    started = time.monotonic()
    seen: dict[str, int] = {}
    while not await setup.listener_waiting(probe):
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            seen["(gave up waiting for the listener)"] = 1
            break
        if elapsed > slow:
            for row in await probe.fetch(ACTIVITY):
                seen[row[0]] = seen.get(row[0], 0) + 1
            await asyncio.sleep(0.1)
        else:
            await asyncio.sleep(0.02)
    ranked = sorted(seen.items(), key=lambda kv: kv[1], reverse=True)[:6]
    return time.monotonic() - started, [[what, n] for what, n in ranked]


async def _case(
    bench: Bench,
    on: str,
    off: str,
    script: Path,
    clients: int,
    listener: setup.Listener | None,
    probe: asyncpg.Connection | None,
    notifications: Notifications | None = None,
) -> list[dict[str, Any]]:
    sizes = bench.sizes
    seconds = max(1, round(sizes.p1_slice_seconds))
    pairs = []
    for i in range(sizes.p1_pairs):
        order = [("on", on), ("off", off)] if i % 2 == 0 else [("off", off), ("on", on)]
        pair: dict[str, Any] = {"first": order[0][0]}
        for which, dbname in order:
            if listener is not None and probe is not None:
                # Start every slice with the listener idle and armed.
                waited, busy = await _wait_idle(probe)
                pair[f"drain_wait_s_before_{which}"] = round(waited, 3)
                if busy:
                    pair[f"slow_drain_before_{which}"] = busy
            cpu = listener.cpu_seconds() if listener is not None else 0.0
            server_cpu = bench.server.cpu_seconds()
            own_cpu = time.process_time()  # this process: the emulator, when it has work
            notified = notifications.count if notifications is not None else 0
            run = await pgbench(bench, dbname, script, clients, seconds)
            if notifications is not None:
                await asyncio.sleep(0.05)  # let the last notifications arrive
                pair[f"{which}_notifications"] = notifications.count - notified
            pair[f"{which}_emulator_cpu_s"] = round(time.process_time() - own_cpu, 2)
            pair[which] = run["tps"]
            pair[f"{which}_transactions"] = run["transactions"]
            pair[f"{which}_failed"] = run["failed"]
            pair[f"{which}_server_cpu_s"] = round(bench.server.cpu_seconds() - server_cpu, 2)
            if listener is not None:
                pair[f"{which}_listener_cpu_s"] = round(listener.cpu_seconds() - cpu, 2)
        pair["ratio"] = pair["on"] / pair["off"] if pair["off"] else None
        pairs.append(pair)
    return pairs


async def run(bench: Bench) -> Figure:
    figure = Figure("P1", "write throughput with triggers / without (pgbench)")
    sizes = bench.sizes
    on, off = await bench.write_pair()
    scripts = bench.workdir / "pgbench"
    scripts.mkdir(exist_ok=True)
    update = scripts / "update.sql"
    update.write_text(UPDATE_SCRIPT.format(rows=sizes.write_rows))
    insert = scripts / "insert.sql"
    insert.write_text(INSERT_SCRIPT)
    cases = [("update", update), ("insert", insert)]
    raw: dict[str, Any] = {
        "slice_seconds": max(1, round(sizes.p1_slice_seconds)),
        "pairs": sizes.p1_pairs,
        "rows": sizes.write_rows,
        "protocol": "prepared",
        "cases": {},
    }
    figure.raw = raw

    async def measure(
        variant: str,
        listener: setup.Listener | None,
        probe: Any,
        notifications: Notifications | None = None,
    ) -> None:
        for op, script in cases:
            for clients in (1, 4):
                bench.log(f"{variant}: {op}, {clients} writer(s)")
                pairs = await _case(bench, on, off, script, clients, listener, probe, notifications)
                ratios = [p["ratio"] for p in pairs if p["ratio"] is not None]
                key = f"{op}_c{clients}_{variant}"
                raw["cases"][key] = {
                    "pairs": pairs,
                    "median_tps_on": setup.median([p["on"] for p in pairs]),
                    "median_tps_off": setup.median([p["off"] for p in pairs]),
                }
                writers = "1 writer" if clients == 1 else f"{clients} writers"
                where = "no listener" if listener is None else "listener draining"
                note = ""
                if listener is not None:
                    slice_s = raw["slice_seconds"]
                    cpu = setup.median([p.get("on_listener_cpu_s", 0.0) for p in pairs]) or 0.0
                    emu = setup.median([p.get("on_emulator_cpu_s", 0.0) for p in pairs]) or 0.0
                    sent = sum(p.get("on_notifications", 0) for p in pairs)
                    done = sum(p.get("on_transactions") or 0 for p in pairs)
                    note = (
                        f"CPU, in cores: listener {cpu / slice_s:.2f}, emulator "
                        f"{emu / slice_s:.2f}; {sent} NOTIFYs in {done:,} transactions"
                    )
                figure.add(
                    Metric(
                        key=key,
                        label=f"{op.upper()}, {writers}, {where}",
                        value=setup.median(ratios),
                        unit="ratio",
                        target=Target(">=", TARGETS[clients]),
                        better="higher",
                        samples=setup.rounded(ratios),
                        note=note,
                    )
                )

    await measure("idle", None, None)

    # The same with a listener running: fresh change log, then a listener that drains into
    # the emulator (no latency, no limits) while the writers write.
    await bench.server.execute(on, "TRUNCATE npd_sync.changes, npd_sync.queue")
    monday = setup.Monday()
    await monday.start()
    listener = setup.Listener(bench.server.dsn(on), monday.url, bench.workdir, name="p1-listener")
    probe = await asyncpg.connect(bench.server.dsn(on))
    notifications = Notifications()
    try:
        await notifications.start(bench.server.dsn(on))
        await listener.start()
        await measure("listening", listener, probe, notifications)
        raw["listener_synced_items"] = monday.mutations
        raw["tables"] = await setup.table_stats(probe)
    finally:
        await notifications.stop()
        await probe.close()
        code = await listener.stop()
        await monday.stop()
    if code not in (0, None):
        figure.notes.append(f"the listener exited with {code}: {listener.log_tail(5)}")
    figure.notes.append(
        "ratio = tps with triggers / tps without, median of alternating pairs of "
        f"{raw['slice_seconds']} s pgbench slices; 'listener draining' includes the listener's "
        "and the emulator's CPU use on this machine"
    )
    return figure
