"""P6: one UPDATE of 100,000 rows, its time with npd-sync's triggers / without.

The same pair of databases as P1 (same data, `npd-sync install` on one). Each run updates a
data column of the first 100,000 contacts in one statement (its commit included); before
each, both sides get the same treatment: the change log emptied, the table vacuumed, a
checkpoint. Runs alternate between the two databases and the figure is the median of the
per-pair ratios. No listener runs.
"""

from __future__ import annotations

import time

import asyncpg

from bench import setup
from bench.report import Figure, Metric, Target
from bench.setup import Bench


async def _timed_update(bench: Bench, dbname: str, rows: int, value: str) -> float:
    installed = dbname.startswith("bench_installed")
    if installed:
        await bench.server.execute(dbname, "TRUNCATE npd_sync.changes")
    await bench.server.execute(dbname, "VACUUM contacts")
    await bench.server.execute(dbname, "CHECKPOINT")
    conn = await asyncpg.connect(bench.server.dsn(dbname))
    try:
        started = time.perf_counter()
        await conn.execute("UPDATE contacts SET role_title = $1 WHERE id <= $2", value, rows)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def run(bench: Bench) -> Figure:
    figure = Figure("P6", "one UPDATE of many rows: time with triggers / without")
    sizes = bench.sizes
    on, off = await bench.write_pair()
    rows = sizes.p6_rows
    pairs: list[dict[str, float | str]] = []
    on_times: list[float] = []
    off_times: list[float] = []
    ratios: list[float] = []
    for i in range(sizes.p6_pairs):
        order = [("on", on), ("off", off)] if i % 2 == 0 else [("off", off), ("on", on)]
        times: dict[str, float] = {}
        for which, dbname in order:
            bench.log(f"pair {i + 1}/{sizes.p6_pairs}: UPDATE of {rows:,} rows, {which}")
            times[which] = await _timed_update(bench, dbname, rows, f"p6 run {i}")
        on_times.append(times["on"])
        off_times.append(times["off"])
        ratios.append(times["on"] / times["off"])
        pairs.append(
            {
                "first": order[0][0],
                "on": round(times["on"], 4),
                "off": round(times["off"], 4),
                "ratio": round(ratios[-1], 4),
            }
        )
    figure.raw = {"rows": rows, "pairs": pairs}
    figure.add(
        Metric(
            key="update_ratio",
            label=f"UPDATE of {rows:,} rows: time with triggers / without",
            value=setup.median(ratios),
            unit="ratio",
            target=Target("<=", 1.5),
            better="lower",
            samples=setup.rounded(ratios),
        )
    )
    figure.add(
        Metric(
            key="update_seconds_on",
            label="  time with triggers",
            value=setup.median(on_times),
            unit="s",
        )
    )
    figure.add(
        Metric(
            key="update_seconds_off",
            label="  time without",
            value=setup.median(off_times),
            unit="s",
        )
    )
    if rows < 100_000:
        figure.scaled_down = {"why": f"{rows:,} rows instead of 100,000 (--quick)", "rows": rows}
    return figure
