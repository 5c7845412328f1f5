"""P4: sustained throughput under a Pro plan's limits, with 150 ms of latency per request.

The emulator enforces `AccountLimits.pro()`: a create_item costs 10,000 complexity points and the
budget is 10,000,000 per 60 s window, so at most 1,000 creates per window (16.7 rows/s). The
emulator's windows are fixed: one starts with the first charged request after the previous
one ran out. So a client can spend a window's budget in a burst, and what decides its
sustained rate is how soon it comes back once a window has run out.

A backlog larger than two windows' budget is queued, `npd-sync listen` (default tuning)
starts, and the emulator's request records over the following `p4_seconds` give:
- the sustained rate: rows pushed from the start of the first window to the start of the
  last one observed, over that time, as a share of 1,000 rows per 60 s;
- the rejected requests (HTTP 429, COMPLEXITY_BUDGET_EXHAUSTED): "no 429 storm" is read as at
  most 3 rejected requests per window.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from bench import setup
from bench.report import Figure, Metric, Target
from bench.setup import Bench
from emulator import AccountLimits, Faults
from emulator.records import RequestRecord

LATENCY = 0.150
WINDOW = 60.0
REJECTION_CODES = frozenset(
    {"COMPLEXITY_BUDGET_EXHAUSTED", "RATE_LIMIT_EXCEEDED", "maxConcurrencyExceeded"}
)


def _rejected(record: RequestRecord) -> bool:
    return record.status == 429 or bool(REJECTION_CODES.intersection(record.error_codes))


def _pushed(record: RequestRecord) -> int:
    """Rows a request applied: its mutations, when it was executed and not refused."""
    if record.status != 200 or _rejected(record) or record.replayed:
        return 0
    return record.mutations


def analyse(records: list[RequestRecord], horizon: float, rows_per_window: int) -> dict[str, Any]:
    """Windows, rows and rejections of the requests that started within `horizon` s of the
    first one."""
    if not records:
        return {"requests": 0}
    starts = [(r.at - r.seconds, r) for r in records]
    starts.sort(key=lambda sr: sr[0])
    t0 = starts[0][0]
    inside = [(t - t0, r) for t, r in starts if t - t0 <= horizon]
    windows: list[float] = []  # start of each complexity window, relative to t0
    for t, r in inside:
        if r.complexity > 0 and not _rejected(r) and (not windows or t >= windows[-1] + WINDOW):
            windows.append(t)
    rows = sum(_pushed(r) for _, r in inside)
    rejected = [t for t, r in inside if _rejected(r)]
    result: dict[str, Any] = {
        "requests": len(inside),
        "rows": rows,
        "rejected": len(rejected),
        "http_429": sum(1 for _, r in inside if r.status == 429),
        "budget_exhausted": sum(
            1 for _, r in inside if "COMPLEXITY_BUDGET_EXHAUSTED" in r.error_codes
        ),
        "window_starts_s": setup.rounded(windows),
        "rejected_at_s": setup.rounded(rejected),
        "late_restart_s": setup.rounded([b - (a + WINDOW) for a, b in itertools.pairwise(windows)]),
    }
    per_second = rows_per_window / WINDOW
    if len(windows) >= 2:
        span = windows[-1] - windows[0]
        done = sum(_pushed(r) for t, r in inside if windows[0] <= t < windows[-1])
        result["sustained_rows_per_s"] = done / span
        result["share"] = done / span / per_second
        result["share_basis"] = f"{len(windows) - 1} full window period(s)"
    else:
        # Shorter than a window: all one can say is how much of its budget was used.
        result["sustained_rows_per_s"] = None
        result["share"] = rows / rows_per_window
        result["share_basis"] = "one window only: the burst, not a sustained rate"
    burst = [t for t, r in inside if _pushed(r) and t < (windows[0] if windows else 0) + WINDOW]
    result["first_window_burst_s"] = round(max(burst) - min(burst), 3) if burst else None
    return result


async def run(bench: Bench) -> Figure:
    figure = Figure("P4", "Pro plan limits, 150 ms latency: sustained share of the budget")
    sizes = bench.sizes
    limits = AccountLimits.pro()
    assert limits.complexity_per_minute is not None
    rows_per_window = limits.complexity_per_minute // limits.cost("create_item")
    dbname = await bench.server.create_database("bench_limits", setup.INSTALLED_TEMPLATE)
    dsn = bench.server.dsn(dbname)
    await setup.insert_contacts(dsn, sizes.p4_rows, captured=True, chunk=5_000)
    monday = setup.Monday(limits=limits, faults=Faults(latency=LATENCY))
    await monday.start()
    listener = setup.Listener(dsn, monday.url, bench.workdir, name="p4-listener")
    try:
        await listener.start()

        async def first_request() -> bool:
            return bool(monday.emulator.requests)

        await setup.wait_until(first_request, timeout=30, what="a first request")
        t0 = min(r.at - r.seconds for r in monday.emulator.requests)
        bench.log(f"observing for {sizes.p4_seconds:g} s from the first request")
        while time.time() < t0 + sizes.p4_seconds + LATENCY + 0.5:
            await asyncio.sleep(min(5.0, max(0.05, t0 + sizes.p4_seconds + 1 - time.time())))
            bench.log(f"  {monday.mutations} rows pushed so far")
    finally:
        code = await listener.stop()
        await monday.stop()
        await bench.server.drop_database(dbname)
    stats = analyse(monday.emulator.requests, sizes.p4_seconds, rows_per_window)
    stats.update(
        backlog=sizes.p4_rows,
        horizon_s=sizes.p4_seconds,
        latency_s=LATENCY,
        rows_per_window=rows_per_window,
        exit_code=code,
        errors_logged=[e for e in listener.events() if e.get("level") in ("warning", "error")][:20],
    )
    figure.raw = stats
    windows = max(1, len(stats.get("window_starts_s", [])))
    share = stats.get("share")
    figure.add(
        Metric(
            key="share",
            label=f"sustained rows/s as a share of the budget ({stats.get('share_basis')})",
            value=None if share is None else share * 100,
            unit="%",
            target=Target(">=", 90),
            better="higher",
        )
    )
    figure.add(
        Metric(
            key="rows_per_s",
            label=f"  sustained rows/s (the budget allows {rows_per_window / WINDOW:.1f})",
            value=stats.get("sustained_rows_per_s"),
            unit="rows/s",
        )
    )
    per_window = stats.get("rejected", 0) / windows
    figure.add(
        Metric(
            key="rejected_per_window",
            label=f"rejected requests per window (429: {stats.get('http_429', 0)}, budget "
            f"exhausted: {stats.get('budget_exhausted', 0)})",
            value=per_window,
            unit="count",
            target=Target("<=", 3),
            better="lower",
            target_text="<= 3 (no 429 storm)",
        )
    )
    late = stats.get("late_restart_s") or []
    figure.notes.append(
        f"{stats.get('rows', 0)} rows in {stats.get('requests', 0)} requests over "
        f"{sizes.p4_seconds:g} s; windows began at {stats.get('window_starts_s')} s; "
        f"restart after a window ran out: {late} s late"
    )
    if len(stats.get("window_starts_s", [])) < 2:
        figure.scaled_down = {
            "why": f"observed {sizes.p4_seconds:g} s: less than two windows",
            "seconds": sizes.p4_seconds,
        }
    return figure
