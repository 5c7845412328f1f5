"""P3: draining a backlog. 20,000 contacts are inserted while no listener runs (20,000
change records), then `npd-sync listen` starts and pushes them to the emulator (no latency,
no limits). Rows/s from the listener's start (its `listener.started` log line, after its
imports and connections) until the last row is written back and the queue is empty.

The same with Monday stating a budget far above the plan's (`setup.ABOVE_PLAN`: 10^9 points
and 10,000 requests a minute; the listener's plan is the default), where it must pause nobody.

The same with `batch_size = 1` (one request per row) on a smaller backlog, runs alternating
with the batched ones; the ratio is the median of the per-pair ratios of rows/s.

Per run the JSON also has the CPU seconds of the listener, of PostgreSQL and of this process
(the emulator), which shows where the time goes on a 2-core machine; `--profile` adds a
py-spy summary of the listener's CPU time.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from bench import setup
from bench.report import Figure, Metric, Target
from bench.setup import Bench

DEFAULT_BATCH = 100  # listener.settings.Tuning's default


async def drain_once(
    bench: Bench,
    monday: setup.Monday,
    rows: int,
    *,
    name: str,
    tuning: dict[str, object] | None = None,
    profile: bool = False,
) -> dict[str, Any]:
    """Insert `rows` captured contacts, start a listener, time it until all are synced.

    `profile`: py-spy on the listener and every statement logged (slower: not a measurement).
    """
    dbname = await bench.server.create_database("bench_drain", setup.INSTALLED_TEMPLATE)
    dsn = bench.server.dsn(dbname)
    await setup.insert_contacts(dsn, rows, captured=True, chunk=5_000)
    await bench.server.execute(dbname, "VACUUM ANALYZE")
    statements = setup.StatementLog(bench.server, dbname) if profile else None
    if statements is not None:
        await statements.start()
    monday.reset()
    listener = setup.Listener(dsn, monday.url, bench.workdir, name=name, tuning=tuning)
    conn = await asyncpg.connect(dsn)
    prof: setup.Profile | None = None
    result: dict[str, Any] = {"rows": rows, "tuning": tuning or {}}
    try:
        assert await conn.fetchval("SELECT count(*) FROM npd_sync.changes") == rows
        await listener.start()
        # CPU from here on: the drain, not the listener's imports and start-up.
        listener_cpu = listener.cpu_seconds()
        server_cpu = bench.server.cpu_seconds()
        own_cpu = time.process_time()
        if profile:
            prof = setup.Profile(listener.pid, bench.profiles_dir / f"{name}.pyspy.txt")
            await prof.start()

        async def pushed() -> bool:
            return monday.mutations >= rows

        async def empty() -> bool:
            return await setup.queue_empty(conn)

        timeout = 60 + rows / 20
        pushed_at = await setup.wait_until(pushed, timeout=timeout, what=f"{rows} mutations")
        done_at = await setup.wait_until(empty, timeout=60, interval=0.005, what="an empty queue")
        listener_cpu = listener.cpu_seconds() - listener_cpu
        result["server_cpu_s"] = round(bench.server.cpu_seconds() - server_cpu, 2)
        result["emulator_cpu_s"] = round(time.process_time() - own_cpu, 2)
        result["listener_cpu_s"] = round(listener_cpu, 2)
        if prof is not None:
            result["profile"] = await prof.stop()
            prof = None
        synced = await conn.fetchval("SELECT count(*) FROM contacts WHERE sync_status = 'SYNCED'")
    finally:
        if prof is not None:
            await prof.stop()
        await conn.close()
        code = await listener.stop()
        if statements is not None:
            result["statements"] = statements.summary()
        await bench.server.drop_database(dbname)
    requests = monday.emulator.requests
    first = min(r.at - r.seconds for r in requests)
    last = max(r.at for r in requests)
    wall = done_at - listener.started_at
    result.update(
        synced=synced,
        exit_code=code,
        requests=len(requests),
        mutations=monday.mutations,
        startup_s=round(listener.started_at - listener.spawned_at, 3),
        seconds=round(wall, 3),
        rows_per_s=rows / wall,
        rows_per_s_from_spawn=rows / (done_at - listener.spawned_at),
        rows_per_s_requests=rows / (last - first) if last > first else None,
        first_request_after_s=round(first - listener.started_at, 3),
        write_back_tail_s=round(done_at - pushed_at, 3),
    )
    if synced != rows:
        result["problem"] = f"{synced} of {rows} rows SYNCED"
    return result


async def run(bench: Bench) -> Figure:
    figure = Figure("P3", "drain of pending changes to the emulator (rows/s)")
    sizes = bench.sizes
    monday = setup.Monday()
    await monday.start()
    batched: list[dict[str, Any]] = []
    single: list[dict[str, Any]] = []
    profiled: dict[str, Any] | None = None
    try:
        for i in range(sizes.p3_runs):
            order = ["batched", "single"] if i % 2 == 0 else ["single", "batched"]
            for kind in order:
                if kind == "batched":
                    bench.log(f"run {i + 1}/{sizes.p3_runs}: {sizes.p3_rows:,} rows, batch 100")
                    batched.append(
                        await drain_once(
                            bench,
                            monday,
                            sizes.p3_rows,
                            name=f"p3-batched-{i}",
                        )
                    )
                    bench.log(f"  {batched[-1]['rows_per_s']:,.0f} rows/s")
                else:
                    bench.log(
                        f"run {i + 1}/{sizes.p3_runs}: {sizes.p3_single_rows:,} rows, batch 1"
                    )
                    single.append(
                        await drain_once(
                            bench,
                            monday,
                            sizes.p3_single_rows,
                            name=f"p3-single-{i}",
                            tuning={"batch_size": 1},
                        )
                    )
                    bench.log(f"  {single[-1]['rows_per_s']:,.0f} rows/s")
        if bench.options.profile:
            bench.log("profiled run (py-spy, statement log): not counted")
            profiled = await drain_once(
                bench, monday, sizes.p3_rows, name="p3-profile", profile=True
            )
    finally:
        await monday.stop()
    above = await _above_plan(bench)
    rates = [r["rows_per_s"] for r in batched]
    single_rates = [r["rows_per_s"] for r in single]
    ratios = [b["rows_per_s"] / s["rows_per_s"] for b, s in zip(batched, single, strict=True)]
    figure.raw = {
        "batched": batched,
        "single": single,
        "pair_ratios": setup.rounded(ratios),
        "profile_run": profiled,
        "above_plan": above,
    }
    figure.add(
        Metric(
            key="rows_per_s",
            label=f"drain of {sizes.p3_rows:,} pending changes, batch {DEFAULT_BATCH}",
            value=setup.median(rates),
            unit="rows/s",
            target=Target(">=", 3_000),
            better="higher",
            samples=setup.rounded(rates, 1),
        )
    )
    figure.add(
        Metric(
            key="above_plan_rows_per_s",
            label="the same, Monday stating 10^9 points and 10,000 requests a minute",
            value=setup.median([r["rows_per_s"] for r in above]),
            unit="rows/s",
            target=Target(">=", 3_000),
            better="higher",
            samples=setup.rounded([r["rows_per_s"] for r in above], 1),
        )
    )
    figure.add(
        Metric(
            key="single_rows_per_s",
            label=f"drain of {sizes.p3_single_rows:,}, batch_size = 1 (one request per row)",
            value=setup.median(single_rates),
            unit="rows/s",
            better="higher",
            samples=setup.rounded(single_rates, 1),
        )
    )
    figure.add(
        Metric(
            key="batch_vs_single",
            label="batched / one request per row",
            value=setup.median(ratios),
            unit="ratio",
            target=Target(">=", 10),
            better="higher",
            samples=setup.rounded(ratios),
        )
    )
    cpu = {
        part: setup.median([r[f"{part}_cpu_s"] / r["seconds"] for r in batched])
        for part in ("listener", "server", "emulator")
    }
    figure.notes.append(
        "rows/s from the listener's start to the last row written back; CPU during the "
        "batched drain, in cores: "
        + ", ".join(f"{part} {share:.2f}" for part, share in cpu.items() if share is not None)
    )
    figure.notes.append(
        f"batch_size = 1 drains a backlog of {sizes.p3_single_rows:,} rather than "
        f"{sizes.p3_rows:,} (at a few hundred rows/s the full backlog would take minutes); "
        "the ratio compares rows/s"
    )
    problems = [r["problem"] for r in batched + single + above if "problem" in r]
    if problems:
        figure.notes.append("PROBLEM: " + "; ".join(problems))
    if sizes.p3_rows < 20_000:
        figure.scaled_down = {
            "why": f"{sizes.p3_rows:,} pending changes instead of 20,000 (--quick)",
            "rows": sizes.p3_rows,
        }
    return figure


async def _above_plan(bench: Bench) -> list[dict[str, Any]]:
    """The batched drains again, Monday stating a budget far above the plan's."""
    sizes = bench.sizes
    monday = setup.Monday(limits=setup.ABOVE_PLAN)
    await monday.start()
    runs: list[dict[str, Any]] = []
    try:
        for i in range(sizes.p3_runs):
            bench.log(f"above the plan, run {i + 1}/{sizes.p3_runs}: {sizes.p3_rows:,} rows")
            runs.append(await drain_once(bench, monday, sizes.p3_rows, name=f"p3-above-{i}"))
            bench.log(f"  {runs[-1]['rows_per_s']:,.0f} rows/s")
    finally:
        await monday.stop()
    return runs
