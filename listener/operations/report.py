"""The state of npd-sync, as `npd-sync status` and the console's overview show it: per table,
what waits, what is in flight, what failed and what is synced; the latest errors; which
listeners are alive; Monday's shared state; inbound.

Read-only, and independent of the listener: everything comes from the database (npd-sync's
tables and the application's `sync_status`), ages are measured on the database's clock. The
counts are of rows, each row with work outstanding counted once:

- in flight: leased by a listener whose lease has not run out;
- failed: failed permanently (or out of attempts), with no newer change waiting;
- pending: everything else with work outstanding, including rows waiting for a retry and rows
  whose change records no listener has taken in yet (`npd_sync.changes`);
- synced: rows whose `sync_status` is SYNCED, read from the application's table.

Change records that can never be synced (set aside by a listener at ingest) are counted apart,
and each alive listener's own view of its health (what /healthz says when it is not ok) is
shown with it. Text that came from outside (errors, pause reasons) is redacted here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from listener import catalog, db, fault, mapping, sql
from listener.inbound import reconcile
from listener.monday import governor, ledger
from listener.redact import redact
from listener.settings import Settings

ALIVE_SECONDS = 30.0  # a listener heartbeats every 10 s; three missed beats and it is gone
ERRORS_SHOWN = 5


@dataclass(frozen=True, slots=True)
class TableStatus:
    table: str
    board_id: str | None
    capture_installed: bool
    pending: int
    in_flight: int
    failed: int
    synced: int | None  # None when the table cannot be read (missing, no sync_status)
    oldest_pending_at: datetime | None
    oldest_pending_age: float | None
    notes: tuple[str, ...] = ()
    conflicts: int = 0  # open conflicts (inbound): one per field of a row
    conflict_rows: int = 0  # the rows they are in
    unlinked: int = 0  # rows SYNCED once, whose item went on Monday: not counted as synced


@dataclass(frozen=True, slots=True)
class ErrorStatus:
    table: str
    id: str
    state: str  # pending (will be retried), failed, in_flight
    attempts: int
    at: datetime | None
    error: fault.Fault


@dataclass(frozen=True, slots=True)
class RejectedStatus:
    """A change record set aside at ingest: it can never be synced."""

    table: str
    id: str
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class ListenerStatus:
    id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    seen_at: datetime
    seen_ago: float
    alive: bool
    problem: str | None = None  # what the listener finds wrong with itself


@dataclass(frozen=True, slots=True)
class MondayStatus:
    api_key_set: bool
    paused: bool
    paused_until: datetime | None
    pause_reason: str | None
    complexity_remaining: int | None
    complexity_reset_at: datetime | None
    updated_at: datetime | None
    budget: governor.BudgetUse | None = None  # what all listeners spent lately
    day: governor.DayView | None = None  # Monday's daily call limit and today's calls


@dataclass(frozen=True, slots=True)
class InboundStatus:
    enabled: bool  # NPD_SYNC_PUBLIC_URL is set
    public_url: str | None
    webhooks: int  # webhooks npd-sync registered
    last_webhook_at: datetime | None
    last_webhook_age: float | None
    pending: int  # items Monday said changed, not looked at yet
    oldest_pending_age: float | None
    open_conflicts: int  # one per field of a row
    open_conflict_rows: int = 0  # the rows they are in
    # Seconds between two reconciliation passes: reconcile_interval, widened to keep within
    # reconcile_share of the daily limit (None: the timer is off, or inbound is).
    reconcile_every: float | None = None


@dataclass(frozen=True, slots=True)
class Report:
    now: datetime
    schema_version: int
    tables: tuple[TableStatus, ...]
    errors: tuple[ErrorStatus, ...]
    listeners: tuple[ListenerStatus, ...]
    monday: MondayStatus
    inbound: InboundStatus
    rejected: tuple[RejectedStatus, ...] = ()  # the latest few
    rejected_count: int = 0

    @property
    def alive(self) -> list[ListenerStatus]:
        """The listeners seen within ALIVE_SECONDS."""
        return [listener for listener in self.listeners if listener.alive]


async def any_alive(conn: db.Conn) -> bool:
    """Whether a listener was seen within ALIVE_SECONDS."""
    found = await conn.fetch(sql.query("status_listeners"), ALIVE_SECONDS)
    return any(r["alive"] for r in found)


async def collect(conn: db.Conn, settings: Settings, schema_version: int) -> Report:
    """Everything status shows; npd-sync must be installed (see `installed_version`)."""
    secrets = settings.secrets()
    now = await conn.fetchval(sql.query("database_now"))
    tables = await _tables(conn, settings)
    i = await conn.fetchrow(sql.query("status_inbound"))
    assert i is not None
    conflicts = {r["name"]: r for r in await conn.fetch(sql.query("open_conflict_counts"))}
    tables = [
        dataclasses.replace(t, conflicts=c["conflicts"], conflict_rows=c["rows"])
        if (c := conflicts.get(t.table))
        else t
        for t in tables
    ]
    inbound = InboundStatus(
        enabled=settings.inbound,
        public_url=settings.public_url,
        webhooks=i["webhooks"],
        last_webhook_at=i["last_webhook_at"],
        last_webhook_age=_age(now, i["last_webhook_at"]),
        pending=i["pending"],
        oldest_pending_age=_age(now, i["oldest_pending"]),
        open_conflicts=sum(c["conflicts"] for c in conflicts.values()),
        open_conflict_rows=sum(c["rows"] for c in conflicts.values()),
        reconcile_every=await _reconcile_every(conn, settings),
    )
    rejected = tuple(
        RejectedStatus(r["table_name"], r["row_key"], r["rejected_at"], r["reason"])
        for r in await conn.fetch(sql.query("status_rejected"), ERRORS_SHOWN)
    )
    return Report(
        now=now,
        schema_version=schema_version,
        tables=tuple(tables),
        errors=await _errors(conn, secrets),
        listeners=await _listeners(conn),
        monday=await _monday(conn, settings, secrets),
        inbound=inbound,
        rejected=rejected,
        rejected_count=int(await conn.fetchval(sql.query("count_rejected"))),
    )


async def _reconcile_every(conn: db.Conn, settings: Settings) -> float | None:
    """The interval the listeners reconcile at, as they work it out (`reconcile.due`)."""
    tuning = settings.tuning
    if not settings.inbound or tuning.reconcile_interval <= 0:
        return None
    chosen = await governor.day_limit(conn, governor.limits_for(tuning))
    boards = [t.board_id for t in settings.tables if t.board_id]
    calls = chosen.calls if chosen else None
    return await reconcile.every(
        conn, boards, tuning.reconcile_interval, tuning.reconcile_share, calls
    )


async def _tables(conn: db.Conn, settings: Settings) -> list[TableStatus]:
    """The configured tables, then those captured but no longer configured (their work is
    still in the queue)."""
    counts = {r["name"]: r for r in await conn.fetch(sql.query("status_counts"))}
    tables = [await _table(conn, table, counts.pop(table.table, None)) for table in settings.tables]
    return tables + [
        TableStatus(
            name,
            None,
            True,
            r["pending"],
            r["in_flight"],
            r["failed"],
            None,
            r["oldest_pending"],
            r["oldest_pending_age"],
            ("not configured any more: run `npd-sync install` to detach it",),
        )
        for name, r in counts.items()
    ]


async def _errors(conn: db.Conn, secrets: Sequence[str]) -> tuple[ErrorStatus, ...]:
    errors = []
    for r in await conn.fetch(sql.query("status_errors"), ERRORS_SHOWN):
        error = fault.from_json(r["last_error"])
        assert error is not None  # the statement reads entries with an error only
        state = "in_flight" if r["in_flight"] else r["state"]
        at = r["last_error_at"]
        error = fault.redacted(error, secrets)
        errors.append(ErrorStatus(r["table_name"], r["row_key"], state, r["attempts"], at, error))
    return tuple(errors)


async def _listeners(conn: db.Conn) -> tuple[ListenerStatus, ...]:
    return tuple(
        ListenerStatus(
            id=r["id"],
            host=r["hostname"],
            pid=r["pid"],
            version=r["version"],
            started_at=r["started_at"],
            seen_at=r["seen_at"],
            seen_ago=r["seen_ago"],
            alive=r["alive"],
            problem=r["problem"],
        )
        for r in await conn.fetch(sql.query("status_listeners"), ALIVE_SECONDS)
    )


async def _monday(conn: db.Conn, settings: Settings, secrets: Sequence[str]) -> MondayStatus:
    m = await conn.fetchrow(sql.query("status_monday"))
    return MondayStatus(
        api_key_set=settings.api_key is not None,
        paused=bool(m and m["paused"]),
        paused_until=m["paused_until"] if m else None,
        pause_reason=redact(m["pause_reason"], secrets) if m and m["pause_reason"] else None,
        complexity_remaining=m["complexity_remaining"] if m else None,
        complexity_reset_at=m["complexity_reset_at"] if m else None,
        updated_at=m["updated_at"] if m else None,
        budget=await governor.budget_use(conn),
        day=governor.day_view(await ledger.day_use(conn), governor.limits_for(settings.tuning)),
    )


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max((now - then).total_seconds(), 0.0)


async def _table(conn: db.Conn, table: mapping.TableMapping, counts: Any) -> TableStatus:
    notes: list[str] = []
    synced: int | None = None
    unlinked = 0
    info = await catalog.describe(conn, table.table)
    if info is None:
        notes.append("table not found")
    elif not info.has(mapping.SYNC_STATUS):
        notes.append(f"no {mapping.SYNC_STATUS} column")
    else:
        synced, unlinked = await _synced(conn, table, info, counts["id"] if counts else None)
    if counts is None:
        notes.append("capture not installed: run `npd-sync install`")
    if not table.board_id:
        notes.append(f"no board: not synced ({table.board_env} is not set)")
    return TableStatus(
        table=table.table,
        board_id=table.board_id,
        capture_installed=counts is not None,
        pending=counts["pending"] if counts else 0,
        in_flight=counts["in_flight"] if counts else 0,
        failed=counts["failed"] if counts else 0,
        synced=synced,
        oldest_pending_at=counts["oldest_pending"] if counts else None,
        oldest_pending_age=counts["oldest_pending_age"] if counts else None,
        notes=tuple(notes),
        unlinked=unlinked,
    )


async def _synced(
    conn: db.Conn, table: mapping.TableMapping, info: catalog.TableInfo, table_id: int | None
) -> tuple[int, int]:
    """Rows in sync, and rows that say SYNCED but whose item went on Monday (unlinked)."""
    names = {
        "table": info.relation,
        "status": sql.quote_ident(mapping.SYNC_STATUS),
        "key": sql.quote_ident(table.key_column),
        "monday_id": sql.quote_ident(mapping.MONDAY_ID),
    }
    if table_id is None or not (info.has(table.key_column) and info.has(mapping.MONDAY_ID)):
        found = await conn.fetchrow(sql.query("count_synced").format(**names))
    else:
        found = await conn.fetchrow(sql.query("count_synced_unlinked").format(**names), table_id)
    assert found is not None  # an aggregate: always one row
    return int(found["synced"]), int(found["unlinked"])
