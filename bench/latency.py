"""P2: from a commit to its mutation reaching the emulator, at a steady 50 commits/s.

An idle `npd-sync listen` (default tuning) and the in-process emulator (no latency, no
limits; then again with an account whose budget Monday states far above the plan's,
`setup.ABOVE_PLAN`). One connection inserts a contact every 20 ms on a fixed schedule and
stamps each commit with time.time() right after COMMIT returns; the emulator stamps each
POST /v2 once its body is read, and the row is found in it by its npd_id. Same process, same clock.

The first commits are a warm-up (statement preparation, first connections) and not counted.
Also reported: the time to the emulator's answer (RequestRecord.at), and how many rows the
listener put in each request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from bench import setup
from bench.report import Figure, Metric, Target
from bench.setup import Bench
from emulator import AccountLimits


async def measure(
    bench: Bench, commits: int, *, profile: bool = False, limits: AccountLimits | None = None
) -> dict[str, Any]:
    """One run: a fresh database and listener, `commits` timed commits after the warm-up
    (`limits`: the emulator's account, unlimited by default)."""
    sizes = bench.sizes
    dbname = await bench.server.create_database("bench_latency", setup.INSTALLED_TEMPLATE)
    dsn = bench.server.dsn(dbname)
    statements = setup.StatementLog(bench.server, dbname) if profile else None
    if statements is not None:
        await statements.start()
    monday = setup.Monday(track=True, limits=limits)
    await monday.start()
    name = "p2-profile" if profile else "p2-above-plan" if limits else "p2-listener"
    listener = setup.Listener(dsn, monday.url, bench.workdir, name=name)
    conn = await asyncpg.connect(dsn)
    commit_at: dict[str, float] = {}
    warmup: set[str] = set()
    late = 0
    prof: setup.Profile | None = None
    raw: dict[str, Any] = {"rate": sizes.p2_rate, "commits": commits}
    try:
        await listener.start()

        async def idle() -> bool:
            return await setup.listener_waiting(conn)

        await setup.wait_until(idle, timeout=30, what="an idle listener")
        insert = await conn.prepare(
            "INSERT INTO contacts (first_name, last_name, email) VALUES ('Latency', $1, $2)"
            " RETURNING id::text"
        )
        total = sizes.p2_warmup + commits
        interval = 1 / sizes.p2_rate
        bench.log(f"{total} commits at {sizes.p2_rate:g}/s ({sizes.p2_warmup} warm-up)")
        start = time.monotonic() + 0.05
        for i in range(total):
            if i == sizes.p2_warmup and profile:
                prof = setup.Profile(listener.pid, bench.profiles_dir / f"{name}.pyspy.txt")
                await prof.start()
                start = time.monotonic() - i * interval
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -interval:
                late += 1
            key = await insert.fetchval(f"n{i}", f"n{i}@example.com")
            commit_at[key] = time.time()  # right after COMMIT returned
            if i < sizes.p2_warmup:
                warmup.add(key)
        elapsed = time.monotonic() - start

        async def all_received() -> bool:
            seen = {k for a in monday.arrivals for k in a.npd_ids}
            return seen.issuperset(commit_at)

        await setup.wait_until(all_received, timeout=30, what="every row at the emulator")

        async def empty() -> bool:
            return await setup.queue_empty(conn)

        await setup.wait_until(empty, timeout=30, what="an empty queue")
        if prof is not None:
            raw["profile"] = await prof.stop()
            prof = None
    finally:
        if prof is not None:
            await prof.stop()
        await conn.close()
        code = await listener.stop()
        await monday.stop()
        if statements is not None:
            raw["statements"] = statements.summary()
        await bench.server.drop_database(dbname)

    answered = {r.request_id: r.at for r in monday.emulator.requests}
    received: dict[str, float] = {}
    replied: dict[str, float] = {}
    rows_per_request = []
    for arrival in monday.arrivals:
        counted = [k for k in arrival.npd_ids if k in commit_at and k not in warmup]
        if counted:
            rows_per_request.append(len(arrival.npd_ids))
        for key in arrival.npd_ids:
            if key in received:
                continue
            received[key] = arrival.at
            if arrival.request_id in answered:
                replied[key] = answered[arrival.request_id]
    keys = [k for k in commit_at if k not in warmup]
    latencies = [(received[k] - commit_at[k]) * 1000 for k in keys if k in received]
    answers = [(replied[k] - commit_at[k]) * 1000 for k in keys if k in replied]
    raw.update(
        achieved_rate=round(commits / max(elapsed - sizes.p2_warmup * interval, 1e-9), 2),
        late_commits=late,
        missing=len(keys) - len(latencies),
        requests=len(rows_per_request),
        rows_per_request_mean=round(sum(rows_per_request) / len(rows_per_request), 2)
        if rows_per_request
        else None,
        received_ms=setup.rounded(latencies),
        answered_ms=setup.rounded(answers),
        exit_code=code,
    )
    return raw


async def run(bench: Bench) -> Figure:
    figure = Figure("P2", "commit -> mutation received by the emulator, steady rate")
    sizes = bench.sizes
    raw = await measure(bench, sizes.p2_commits)
    if bench.options.profile:
        bench.log("profiled run (py-spy, statement log): not counted")
        raw["profile_run"] = await measure(bench, min(sizes.p2_commits, 250), profile=True)
    bench.log("again, Monday stating a budget far above the plan's")
    raw["above_plan"] = above = await measure(bench, sizes.p2_commits, limits=setup.ABOVE_PLAN)
    figure.raw = raw
    latencies, answers = raw["received_ms"], raw["answered_ms"]
    p50, p99 = setup.percentile(latencies, 50), setup.percentile(latencies, 99)
    figure.add(
        Metric(
            key="p50_ms", label="commit -> received, p50", value=p50, unit="ms",
            target=Target("<=", 5), better="lower",
        )
    )  # fmt: skip
    figure.add(
        Metric(
            key="p99_ms", label="commit -> received, p99", value=p99, unit="ms",
            target=Target("<=", 50), better="lower",
        )
    )  # fmt: skip
    figure.add(
        Metric(
            key="max_ms", label="commit -> received, max", value=max(latencies, default=None),
            unit="ms",
        )
    )  # fmt: skip
    figure.add(
        Metric(
            key="answered_p50_ms",
            label="commit -> emulator's answer (RequestRecord.at), p50",
            value=setup.percentile(answers, 50),
            unit="ms",
            better="lower",
        )
    )
    figure.add(
        Metric(
            key="above_plan_p99_ms",
            label="the same, Monday stating 10^9 points and 10,000 requests a minute, p99",
            value=setup.percentile(above["received_ms"], 99),
            unit="ms",
            target=Target("<=", 50),
            better="lower",
        )
    )
    figure.add(
        Metric(
            key="above_plan_p50_ms",
            label="the same, Monday stating 10^9 points and 10,000 requests a minute, p50",
            value=setup.percentile(above["received_ms"], 50),
            unit="ms",
            better="lower",
        )
    )
    figure.notes.append(
        f"{len(latencies)} commits at {sizes.p2_rate:g}/s, {raw['rows_per_request_mean']} rows "
        f"per request on average, {raw['late_commits']} commits behind schedule"
    )
    for run in (raw, above):
        if run["missing"]:
            figure.notes.append(f"PROBLEM: {run['missing']} rows never reached the emulator")
    if sizes.p2_commits < 1_000:
        figure.scaled_down = {
            "why": f"{sizes.p2_commits} commits (--quick)",
            "commits": sizes.p2_commits,
        }
    return figure
