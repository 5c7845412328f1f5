"""`npd-sync listen --metrics-port N`: Prometheus metrics on /metrics, health on /healthz.

The engine counts each batch's outcome into a `Metrics` object (`engine.outcome`); the queue
depth is read from the database by the daemon every few seconds. Each `Metrics` has a registry
of its own, so that several listeners in one process (tests) never share counters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# From a few milliseconds (idle listener, local Monday) to minutes (rate limits, retries).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


@dataclass(frozen=True, slots=True)
class Totals:
    """What a listener counted, summed over tables, for the console's per-minute history: rows
    synced, failed, retried, and the commit-to-Monday histogram as rows per bucket
    (LATENCY_BUCKETS, then the rest)."""

    synced: int = 0
    failed: int = 0
    retried: int = 0
    latency_buckets: tuple[int, ...] = (0,) * (len(LATENCY_BUCKETS) + 1)
    latency_sum: float = 0.0

    def __bool__(self) -> bool:
        return bool(self.synced or self.failed or self.retried)


class Metrics:
    """Everything `/metrics` shows."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge(
            "npd_sync_queue_depth",
            "Rows waiting, per table and state (pending, in_flight, failed).",
            ["table", "state"],
            registry=r,
        )
        self.changes = Counter(
            "npd_sync_changes_total",
            "Queue entries handled, per table and outcome (synced, unchanged, skipped, failed, "
            "retried, waited).",
            ["table", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "npd_sync_commit_to_monday_seconds",
            "From the change's transaction to Monday's answer, for synced rows.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "npd_sync_monday_requests_total",
            "Requests to Monday, per HTTP status and error code ('' when none).",
            ["status", "code"],
            registry=r,
        )
        self.rate_wait = Counter(
            "npd_sync_rate_limit_wait_seconds_total",
            "Time spent waiting for Monday's limits or for a board another listener holds.",
            registry=r,
        )
        self.webhooks = Counter(
            "npd_sync_webhooks_total",
            "Webhook requests, per outcome (stored, duplicate, challenge, ignored, refused, "
            "unavailable).",
            ["outcome"],
            registry=r,
        )
        self.inbound = Counter(
            "npd_sync_inbound_total",
            "Rows the board's edits were written into, and conflicts, per table and outcome "
            "(written, conflict, unlinked, deleted, inserted).",
            ["table", "outcome"],
            registry=r,
        )
        self.inbound_latency = Histogram(
            "npd_sync_monday_to_row_seconds",
            "From a change on the board (as Monday dates it) to the row written.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.complexity_points = Counter(
            "npd_sync_monday_complexity_points_total",
            "Complexity points Monday charged for this listener's requests.",
            registry=r,
        )
        self.budget = Gauge(
            "npd_sync_monday_budget_points_per_minute",
            "Monday's complexity budget a minute, as Monday reports it (all listeners share it).",
            registry=r,
        )
        self.budget_used = Gauge(
            "npd_sync_monday_budget_used_points_per_minute",
            "Complexity points all listeners spent a minute: mean of the last five busy minutes.",
            registry=r,
        )
        self.daily_limit = Gauge(
            "npd_sync_monday_daily_calls_limit",
            "Monday's daily call limit that holds (Monday's, [tuning] daily_calls or the "
            "plan's; NaN: none, calls are not paced).",
            registry=r,
        )
        self.daily_used = Gauge(
            "npd_sync_monday_daily_calls_used",
            "Calls made today (UTC): by the whole account as far as Monday told, and by "
            "npd-sync's own listeners.",
            ["by"],
            registry=r,
        )
        self.daily_pace = Gauge(
            "npd_sync_monday_daily_calls_per_hour",
            "npd-sync's calls in the past hour, all listeners.",
            registry=r,
        )
        self.daily_runs_out = Gauge(
            "npd_sync_monday_daily_calls_run_out_seconds",
            "Seconds until the day's calls run out at the past hour's pace (NaN: they last "
            "until 00:00 UTC).",
            registry=r,
        )
        self.points_per_row = Gauge(
            "npd_sync_points_per_synced_row",
            "Complexity points per row synced over the last hour, all listeners.",
            registry=r,
        )
        self.listen_connected = Gauge(
            "npd_sync_listen_connected", "1 while the LISTEN connection is up.", registry=r
        )
        self.oldest_pending = Gauge(
            "npd_sync_oldest_pending_seconds",
            "Age of the oldest change still to be synced (0 when none).",
            registry=r,
        )
        self.stalled = Gauge(
            "npd_sync_stalled",
            "1 while /healthz says 503: the queue does not move, or the listener is cut off.",
            registry=r,
        )

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


async def serve(
    metrics: Metrics, healthy: Callable[[], tuple[bool, str]], host: str, port: int
) -> web.AppRunner:
    """Serve /metrics and /healthz until the returned runner is cleaned up."""

    async def metrics_page(_: web.Request) -> web.Response:
        body = metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(_: web.Request) -> web.Response:
        ok, why = healthy()
        return web.Response(status=200 if ok else 503, text=why + "\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/healthz", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
