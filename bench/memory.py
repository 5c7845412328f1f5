"""P5: the listener's memory while it drains a large backlog, and a backfill's.

Change records for N new contacts are written while no listener runs, then `npd-sync listen`
(default tuning) drains them into the emulator (no latency, no limits) while this module reads
its RSS from /proc every 0.25 s. The issue asks for 1,000,000 changes; the default here is
200,000 so that the whole suite fits in ten minutes on two cores (`--p5-changes 1000000` for
the full size). The output and the JSON say when the figure was scaled down.

"Flat": the RSS in the last quarter of the drain is at most 10 MiB above that in the first
quarter (after start-up). The slope of RSS over rows pushed is reported too.

The backfill (`npd-sync backfill`, 100,000 rows that need pushing) is measured the same way.

The rows a second are not the code's pace (P3 is): "no limits" still charges 30,000 points a
create against 2^31 points a minute, which Monday's figures in every answer report, so the
listener stops after 71,582 creates until the minute is over, as it would on Monday.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any

import asyncpg

from bench import setup
from bench.report import Figure, Metric, Target
from bench.setup import Bench

FULL_SIZE = 1_000_000
FLAT_MIB = 10.0
SAMPLE_EVERY = 0.25


def flatness(samples: list[tuple[float, float, int]]) -> dict[str, Any]:
    """From (seconds, rss MiB, rows pushed) samples: peak, growth, slope per 100k rows."""
    # From the first row pushed on: the start-up (imports, connections) is not the drain.
    samples = [s for s in samples if s[2] > 0] or samples
    if not samples:
        return {}
    rss = [s[1] for s in samples]
    quarter = max(1, len(samples) // 4)
    first, last = rss[:quarter], rss[-quarter:]
    per_row = setup.slope([s[2] for s in samples], rss)
    return {
        "peak_mib": max(rss),
        "start_mib": rss[0],
        "first_quarter_max_mib": max(first),
        "last_quarter_max_mib": max(last),
        "growth_mib": max(last) - max(first),
        "mib_per_100k_rows": None if per_row is None else per_row * 100_000,
    }


async def _backfill(bench: Bench, rows: int) -> dict[str, Any]:
    """RSS of `npd-sync backfill` over rows that were never captured (sync_status PENDING)."""
    dbname = await bench.server.create_database("bench_backfill", setup.INSTALLED_TEMPLATE)
    dsn = bench.server.dsn(dbname)
    monday = setup.Monday()
    await monday.start()
    try:
        await setup.insert_contacts(dsn, rows, captured=False)
        env = setup.Listener(dsn, monday.url, bench.workdir, name="p5-backfill").environment()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(setup.ROOT / "cli.py"), "backfill",
            env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        started = time.monotonic()
        samples: list[tuple[float, float, int]] = []
        deadline = started + 120 + rows / 100
        while proc.returncode is None:
            if time.monotonic() > deadline:
                proc.kill()
                await proc.wait()
                break
            rss = setup.proc_rss_mib(proc.pid)
            if rss is not None:
                samples.append((time.monotonic() - started, rss, monday.mutations))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), SAMPLE_EVERY)
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode(errors="replace")
        seconds = time.monotonic() - started
        result: dict[str, Any] = {
            "rows": rows,
            "exit_code": proc.returncode,
            "pushed": monday.mutations,
            "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds, 1),
        }
        result.update(flatness(samples))
        result["samples"] = [[round(t, 2), round(m, 1), n] for t, m, n in samples]
        if proc.returncode != 0:
            result["problem"] = err.strip()[-500:]
        return result
    finally:
        await monday.stop()
        await bench.server.drop_database(dbname)


async def run(bench: Bench) -> Figure:
    figure = Figure("P5", "listener memory (RSS) while draining a large backlog")
    sizes = bench.sizes
    changes = bench.options.p5_changes or sizes.p5_changes
    dbname = await bench.server.create_database("bench_memory", setup.INSTALLED_TEMPLATE)
    dsn = bench.server.dsn(dbname)
    bench.log(f"writing {changes:,} change records")
    await setup.insert_contacts(dsn, changes, captured=True, chunk=50_000)
    await bench.server.execute(dbname, "VACUUM ANALYZE")
    monday = setup.Monday()
    await monday.start()
    listener = setup.Listener(dsn, monday.url, bench.workdir, name="p5-listener")
    conn = await asyncpg.connect(dsn)
    samples: list[tuple[float, float, int]] = []
    try:
        await listener.start()
        started = time.monotonic()
        deadline = started + 120 + changes / 200
        last_log = started
        while True:
            rss = listener.rss_mib()
            if rss is not None:
                samples.append((time.monotonic() - started, rss, monday.mutations))
            if monday.mutations >= changes and await setup.queue_empty(conn):
                break
            if listener.proc is not None and listener.proc.returncode is not None:
                raise RuntimeError(f"the listener exited: {listener.log_tail(5)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{monday.mutations:,} of {changes:,} pushed in time")
            if time.monotonic() - last_log > 10:
                last_log = time.monotonic()
                bench.log(f"  {monday.mutations:,} pushed, RSS {rss or 0:.1f} MiB")
            await asyncio.sleep(SAMPLE_EVERY)
        seconds = time.monotonic() - started
        tables = await setup.table_stats(conn)
    finally:
        await conn.close()
        code = await listener.stop()
        await monday.stop()
        await bench.server.drop_database(dbname)
    stats = flatness(samples)
    figure.raw = {
        "changes": changes,
        "seconds": round(seconds, 2),
        "rows_per_s": round(changes / seconds, 1),
        "exit_code": code,
        "tables": tables,
        **{k: (round(v, 2) if isinstance(v, float) else v) for k, v in stats.items()},
        "samples": [[round(t, 2), round(m, 1), n] for t, m, n in samples],
    }
    figure.add(
        Metric(
            key="peak_mib",
            label=f"listener peak RSS, draining {changes:,} changes",
            value=stats.get("peak_mib"),
            unit="MiB",
            target=Target("<=", 150),
            better="lower",
        )
    )
    growth = stats.get("growth_mib")
    figure.add(
        Metric(
            key="growth_mib",
            label="  growth, first quarter of the drain -> last (flat?)",
            value=growth,
            unit="MiB",
            target=Target("<=", FLAT_MIB),
            better="lower",
            target_text=f"<= {FLAT_MIB:g} MiB (flat)",
        )
    )
    if changes < FULL_SIZE:
        figure.scaled_down = {
            "why": f"{changes:,} pending changes instead of {FULL_SIZE:,} "
            f"({'--quick' if bench.options.quick else 'time budget; --p5-changes 1000000'})",
            "changes": changes,
            "asked": FULL_SIZE,
        }
    figure.notes.append(
        f"drained {changes:,} changes in {seconds:.0f} s ({changes / seconds:,.0f} rows/s)"
    )
    # The backfill.
    bench.log(f"backfill of {sizes.p5_backfill_rows:,} rows")
    backfill = await _backfill(bench, sizes.p5_backfill_rows)
    figure.raw["backfill"] = backfill
    figure.add(
        Metric(
            key="backfill_peak_mib",
            label=f"backfill peak RSS, {sizes.p5_backfill_rows:,} rows",
            value=backfill.get("peak_mib"),
            unit="MiB",
            target=Target("<=", 150),
            better="lower",
            note=backfill.get("problem", "")
            or f"{backfill.get('rows_per_s', 0):,.0f} rows/s, {backfill.get('pushed')} pushed",
        )
    )
    return figure
