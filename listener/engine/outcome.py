"""What a batch came to, counted once: one `Outcome` per batch, and a `Tally` that feeds it to
everything that counts (the running totals for logs and tests, Prometheus, the per-minute
history the console charts, and the governor's points per synced row) and logs it.
"""

from __future__ import annotations

import datetime as dt
import logging
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

from listener import fault
from listener.capture.changes import Rejected
from listener.engine.decide import Decision
from listener.engine.queue import Completion
from listener.engine.queue import Outcome as Done
from listener.metrics import LATENCY_BUCKETS, Metrics, Totals

log = logging.getLogger("npd_sync.worker")

# What a handled entry counts as, by what was recorded for it.
OUTCOME_NAMES = {Done.DONE: "synced", Done.RETRY: "retried", Done.FAILED: "failed",
                 Done.WAIT: "waited"}  # fmt: skip
SHOWN = 3  # rows named in the log per batch; the rest are counted


def name_of(decision: Decision, completion: Completion) -> str:
    """What an entry counts as: synced, unchanged, skipped, retried, failed or waited."""
    if completion.outcome is Done.DONE and decision.status != "SYNCED":
        return "unchanged" if decision.unchanged else "skipped"
    return OUTCOME_NAMES[completion.outcome]


@dataclass
class Stats:
    """Running totals, for logs, status and tests."""

    synced: int = 0
    unchanged: int = 0  # nothing to send: Monday held the row's values already
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    waited: int = 0
    requests: int = 0
    ingested: int = 0  # change records taken into the queue
    pulled: int = 0  # rows the board's edits were written into
    inserted: int = 0  # rows made for items created on the board
    conflicts: int = 0  # conflicts found (settled by policy or left open)
    rejected: int = 0  # change records set aside at ingest: they can never be synced


@dataclass
class Outcome:
    """One batch: what each entry came to, what inbound did to rows, and what it cost."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (table, outcome)
    latencies: list[float] = field(default_factory=list)  # commit to Monday, synced rows
    failed: list[tuple[str, Completion]] = field(default_factory=list)  # (table, completion)
    inbound: Counter[tuple[str, str]] = field(default_factory=Counter)  # (table, what)
    inbound_latencies: list[float] = field(default_factory=list)  # board edit to row written
    rejected: tuple[Rejected, ...] = ()
    records: int = 0  # change records taken in
    requests: int = 0
    seconds: float = 0.0

    def entry(self, table: str, decision: Decision, completion: Completion) -> None:
        """Count one entry by what was recorded for it."""
        outcome = name_of(decision, completion)
        self.counts[table, outcome] += 1
        if outcome == "synced":
            age = dt.datetime.now(dt.UTC) - completion.entry.changed_at
            self.latencies.append(age.total_seconds())
        elif outcome == "failed":
            self.failed.append((table, completion))

    def landed(self, table: str, what: str, n: int = 1) -> None:
        """Count what inbound did to rows: written, conflict, unlinked, deleted, inserted."""
        self.inbound[table, what] += n

    def total(self, outcome: str) -> int:
        return sum(n for (_, o), n in self.counts.items() if o == outcome)


class Tally:
    """Feeds each batch's outcome to the counters, the history and the log."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.stats = Stats()
        self._history = _History()

    def add(self, outcome: Outcome) -> None:
        """Count a batch everywhere, and log it (a few rows by name, never one line a row)."""
        self._stats(outcome)
        for (table, name), n in outcome.counts.items():
            self.metrics.changes.labels(table, name).inc(n)
        for (table, what), n in outcome.inbound.items():
            self.metrics.inbound.labels(table, what).inc(n)
        for seconds in outcome.latencies:
            self.metrics.latency.observe(seconds)
        for seconds in outcome.inbound_latencies:
            self.metrics.inbound_latency.observe(max(seconds, 0.0))
        self._history.add(outcome)
        _log(outcome)

    def _stats(self, outcome: Outcome) -> None:
        s = self.stats
        s.synced += outcome.total("synced")
        s.unchanged += outcome.total("unchanged")
        s.skipped += outcome.total("skipped")
        s.failed += outcome.total("failed")
        s.retried += outcome.total("retried")
        s.waited += outcome.total("waited")
        s.requests += outcome.requests
        s.ingested += outcome.records
        s.rejected += len(outcome.rejected)
        s.pulled += sum(n for (_, w), n in outcome.inbound.items() if w == "written")
        s.inserted += sum(n for (_, w), n in outcome.inbound.items() if w == "inserted")
        s.conflicts += sum(n for (_, w), n in outcome.inbound.items() if w == "conflict")

    def take_history(self) -> Totals:
        """What was counted since the last take, for the per-minute history; give it back with
        `restore` if it could not be written."""
        taken, self._history = self._history.totals(), _History()
        return taken

    def restore(self, totals: Totals) -> None:
        """Count again what `take_history` gave and could not be written."""
        self._history.restore(totals)


class _History:
    """Synced, failed and retried rows and the commit-to-Monday histogram, since a take."""

    def __init__(self) -> None:
        self.synced = self.failed = self.retried = 0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.seconds = 0.0

    def add(self, outcome: Outcome) -> None:
        self.synced += outcome.total("synced")
        self.failed += outcome.total("failed")
        self.retried += outcome.total("retried")
        for seconds in outcome.latencies:
            self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self.seconds += seconds

    def restore(self, totals: Totals) -> None:
        self.synced += totals.synced
        self.failed += totals.failed
        self.retried += totals.retried
        self.buckets = [a + b for a, b in zip(self.buckets, totals.latency_buckets, strict=True)]
        self.seconds += totals.latency_sum

    def totals(self) -> Totals:
        return Totals(self.synced, self.failed, self.retried, tuple(self.buckets), self.seconds)


def _log(outcome: Outcome) -> None:
    for r in outcome.rejected[:SHOWN]:
        log.error(
            "sync.change_rejected",
            extra={"table_id": r.table_id, "key": r.key, "reason": r.reason},
        )
    if len(outcome.rejected) > SHOWN:
        log.error("sync.changes_rejected", extra={"more": len(outcome.rejected) - SHOWN})
    handled = sum(outcome.counts.values())
    if not handled:
        return
    names = ("synced", "unchanged", "skipped", "failed", "retried", "waited")
    counts = {name: outcome.total(name) for name in names if outcome.total(name)}
    level = logging.INFO if outcome.failed or counts.get("retried") else logging.DEBUG
    extra = {"rows": handled, **counts, "ms": round(outcome.seconds * 1000)}
    log.log(level, "sync.batch", extra=extra)
    for table, c in outcome.failed[:SHOWN]:
        error = None if c.error is None else fault.line(c.error)
        log.warning("sync.row_failed", extra={"table": table, "key": c.entry.key, "error": error})
    if len(outcome.failed) > SHOWN:
        log.warning("sync.rows_failed", extra={"more": len(outcome.failed) - SHOWN})
