"""P4 and P11: Monday's complexity budget as the ceiling, and how much of it the listeners use.

The emulator charges like Monday (`emulator.limits`): a create costs the points the scenario
says (the id it returns included), the budget is a fixed window that starts with its first
charged call. A backlog bigger than the observed windows can take is queued, one or two
`npd-sync listen` processes start (default tuning, but `max_rate_wait = 1`: a spent budget
pauses every listener until the window starts again and gives the batch back, as with
Monday's minute-long windows, rather than waiting in place), and the emulator's own
accounting of each window (its start, the points charged in it) gives:

- the share of the budget used: the points charged from the start of the second window to the
  start of the last one observed, over the budget of that much time (a late restart after a
  window ran out counts as unused budget); the first window, where the listeners learn what
  Monday allows, is left out;
- the requests refused for their complexity (COMPLEXITY_BUDGET_EXHAUSTED, or over the cap on
  one query) after the first window: the target is none.

To see many windows in reasonable time the windows are shorter than Monday's minute: 6 s with a
tenth of the 10M budget (1M: the same points a second as a real account), 3 s in --quick; the
listeners learn the window from Monday's replies (RateLimit-Policy `w`, the reset times). The
budget of 30,000 is per window, as the issue's account has it per minute. Each request waits
LATENCY before its answer.

P11 is the same with one listener, 30,000 points a create and 10M a minute (scaled the same
way): rows per minute, next to the ceiling the budget allows (10M / 30,000 = 333.3 a minute).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bench import setup
from bench.report import Figure, Metric, Target
from bench.setup import Bench
from emulator import AccountLimits, Faults
from emulator.records import RequestRecord

LATENCY = 0.100
MINUTE_BUDGET = 10_000_000  # a personal token's budget a minute
REFUSALS = frozenset({"COMPLEXITY_BUDGET_EXHAUSTED", "maxComplexityExceeded"})
TUNING = {"max_rate_wait": 1.0, "poll_interval": 1.0}


@dataclass(frozen=True)
class Scenario:
    cost: int  # points a create
    budget: int  # points a window
    window: float  # seconds
    listeners: int

    @property
    def per_window(self) -> int:
        """Creates a window holds."""
        return self.budget // self.cost

    @property
    def label(self) -> str:
        scaled = self.budget * 60 / self.window
        minute = "30,000 a window" if self.budget == 30_000 else f"{scaled / 1e6:g}M a minute"
        return f"{self.cost:,} a create, {minute}, {self.listeners} listener" + (
            "s" if self.listeners > 1 else ""
        )


def scaled(window: float) -> int:
    """The 10M budget of a minute, scaled to a window of `window` seconds."""
    return round(MINUTE_BUDGET * window / 60)


def scenarios(quick: bool) -> tuple[list[Scenario], int]:
    """P4's scenarios and how many windows each is measured over."""
    if quick:
        w = 3.0
        return [Scenario(10_000, scaled(w), w, 2), Scenario(10_000, 30_000, w, 1)], 2
    w = 6.0
    found = [Scenario(cost, scaled(w), w, n) for cost in (1_000, 10_000, 50_000) for n in (1, 2)]
    found += [Scenario(10_000, 30_000, w, n) for n in (1, 2)]
    return found, 3


def _refused(record: RequestRecord) -> bool:
    return bool(REFUSALS.intersection(record.error_codes))


async def measure(bench: Bench, scenario: Scenario, windows: int) -> dict[str, Any]:
    """Run one scenario: the emulator's windows, the share of the budget used in them."""
    rows = scenario.per_window * (windows + 3)
    limits = AccountLimits(
        complexity_per_minute=scenario.budget,
        complexity_window_seconds=scenario.window,
        mutation_cost=scenario.cost - 1,  # and 1 for the id it returns
    )
    dbname = await bench.server.create_database("bench_budget", setup.INSTALLED_TEMPLATE)
    dsn = bench.server.dsn(dbname)
    await setup.insert_contacts(dsn, rows, captured=True, chunk=5_000)
    monday = setup.Monday(limits=limits, faults=Faults(latency=LATENCY))
    await monday.start()
    listeners = [
        setup.Listener(dsn, monday.url, bench.workdir, name=f"budget-{i}", tuning=TUNING)
        for i in range(scenario.listeners)
    ]
    codes: list[int | None] = []
    try:
        await asyncio.gather(*(listener.start() for listener in listeners))

        async def seen() -> bool:
            return len(monday.emulator.complexity_windows()) >= windows + 2

        await setup.wait_until(
            seen, timeout=60 + 3 * windows * scenario.window, interval=0.05,
            what=f"{windows + 2} complexity windows",
        )  # fmt: skip
    finally:
        codes = list(await asyncio.gather(*(listener.stop() for listener in listeners)))
        await monday.stop()
        await bench.server.drop_database(dbname)
    spent = monday.emulator.complexity_windows()
    measured = spent[1 : windows + 1]
    span = spent[windows + 1].start - spent[1].start
    used = sum(w.used for w in measured)
    first_ends = spent[0].start + scenario.window
    records = monday.emulator.requests
    late = [r for r in records if _refused(r) and r.at - r.seconds >= first_ends]
    problems = [
        e
        for listener in listeners
        for e in listener.events()
        if e.get("level") == "error" or e.get("event") == "listener.batch_crashed"
    ]
    return {
        "scenario": scenario.label,
        "cost": scenario.cost,
        "budget_per_window": scenario.budget,
        "window_s": scenario.window,
        "listeners": scenario.listeners,
        "backlog": rows,
        "share": used / (scenario.budget * span / scenario.window),
        "window_shares": [round(w.used / scenario.budget, 4) for w in measured],
        "window_starts_s": setup.rounded([w.start - spent[0].start for w in spent]),
        "creates_per_minute": used / scenario.cost / span * 60,
        "refused_first_window": sum(1 for r in records if _refused(r)) - len(late),
        "refused_after_first_window": len(late),
        "requests": len(records),
        "exit_codes": codes,
        "errors_logged": problems[:10],
    }


async def run(bench: Bench) -> Figure:
    figure = Figure("P4", "Monday's complexity budget: share used, one and two listeners")
    found, windows = scenarios(bench.options.quick)
    results = []
    for scenario in found:
        bench.log(f"{scenario.label}: {windows} windows of {scenario.window:g} s")
        t0 = time.monotonic()
        result = await measure(bench, scenario, windows)
        bench.log(
            f"  {result['share']:.1%} of the budget, {result['refused_after_first_window']}"
            f" refused after the first window ({time.monotonic() - t0:.0f} s)"
        )
        results.append(result)
    figure.raw = {"latency_s": LATENCY, "windows_measured": windows, "runs": results}
    for result in results:
        figure.add(
            Metric(
                key=f"share_{result['cost']}_{result['budget_per_window']}_{result['listeners']}",
                label=f"share of the budget used: {result['scenario']}",
                value=result["share"] * 100,
                unit="%",
                target=Target(">=", 95),
                better="higher",
                samples=[s * 100 for s in result["window_shares"]],
            )
        )
    figure.add(
        Metric(
            key="refused_after_first_window",
            label="requests refused for complexity after the first window (all runs)",
            value=sum(r["refused_after_first_window"] for r in results),
            unit="count",
            target=Target("<=", 0),
            better="lower",
        )
    )
    figure.notes.append(
        f"windows of {found[0].window:g} s (Monday's are 60 s), {windows} measured after the "
        f"first; {LATENCY * 1000:.0f} ms per request; refused in the first windows: "
        f"{sum(r['refused_first_window'] for r in results)}"
    )
    if bench.options.quick:
        figure.scaled_down = {"why": "--quick: two scenarios of eight", "windows": windows}
    return figure


async def run_p11(bench: Bench) -> Figure:
    figure = Figure("P11", "rows a minute on 10M points a minute at 30,000 a create")
    quick = bench.options.quick
    # A window holding a whole number of creates: 10M a minute is 1.5M in 9 s, 50 creates.
    window, windows = (4.5, 2) if quick else (9.0, 4)
    scenario = Scenario(30_000, scaled(window), window, 1)
    bench.log(f"{scenario.label}: {windows} windows of {window:g} s")
    result = await measure(bench, scenario, windows)
    ceiling = MINUTE_BUDGET / scenario.cost
    rate = result["creates_per_minute"]
    figure.raw = {"latency_s": LATENCY, "windows_measured": windows, **result}
    figure.add(Metric(key="rows_per_minute", label="rows a minute", value=rate, unit="rows/min"))
    figure.add(
        Metric(
            key="ceiling", label="  the budget's ceiling (10M / 30,000)", value=ceiling,
            unit="rows/min",
        )
    )  # fmt: skip
    figure.add(
        Metric(
            key="ratio",
            label="rows a minute / the ceiling",
            value=rate / ceiling,
            unit="ratio",
            better="higher",
        )
    )
    figure.notes.append(
        f"windows of {window:g} s with {scenario.budget:,} points each (10M a minute scaled), "
        f"{windows} measured; refused after the first window: "
        f"{result['refused_after_first_window']}"
    )
    return figure
