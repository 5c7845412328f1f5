"""`npd-sync status`: the report of `listener.operations.report`, as text for a terminal or
as JSON (`--json`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from listener import db, fault, text
from listener.capture import install
from listener.monday import governor
from listener.operations.report import (
    ErrorStatus,
    InboundStatus,
    MondayStatus,
    Report,
    TableStatus,
    collect,
)
from listener.settings import Settings

ERROR_WIDTH = text.WIDTH

# --json: the keys are stable; new keys may be added, none renamed or removed.
JSON_KEYS = """\b
--json prints one object (times are ISO 8601 UTC, ages in seconds, absent values null):
  now, schema_version
  tables[]:    table, board_id, capture_installed, pending, in_flight, failed,
               synced, oldest_pending_at, oldest_pending_age_seconds, conflicts, notes[],
               conflict_rows (the rows the conflicts are in), unlinked (rows whose item
               was archived or deleted on Monday: not counted in synced)
  errors[]:    table, id, state (pending|failed|in_flight), attempts, at, error (all of it
               on one line), code, request_id, source (who said it: monday|npd-sync|database)
  rejected:    count, latest[]: table, id, at, reason
  listeners[]: id, host, pid, version, started_at, seen_at, seen_ago_seconds, alive,
               problem (why its /healthz says 503; null while healthy)
  monday:      api_key_set, paused, paused_until, pause_reason,
               complexity_remaining, complexity_reset_at, updated_at,
               complexity_limit, complexity_window_seconds (the budget a window, as
               Monday reports it), budget_per_minute, budget_used_per_minute,
               budget_used_share (mean of the last 5 busy minutes of the past hour,
               all listeners), points_per_synced_row (past hour), daily_limit,
               daily_limit_source (monday, daily_calls or plan; null: calls not paced),
               daily_calls_used (the account's today, as far as known), daily_calls_own
               (npd-sync's), daily_calls_reported_at (Monday's figure), daily_calls_past_hour,
               daily_calls_run_out_at (at that pace; null: they last the day), daily_reset_at
  inbound:     enabled, public_url, webhooks, last_webhook_at, last_webhook_age_seconds,
               pending, oldest_pending_age_seconds, open_conflicts, open_conflict_rows,
               reconcile_every_seconds (reconcile_interval, widened to keep within
               reconcile_share of the daily limit; null: the timer is off)
Counts are rows, but conflicts: one per field of a row, with the rows they are in.
pending includes rows waiting for a retry and changes no listener has taken in yet;
synced is read from the table's sync_status, less the unlinked rows.
"""


async def run(settings: Settings, *, as_json: bool, echo: Callable[[str], None]) -> None:
    """`npd-sync status`: print the report (as JSON with `as_json`)."""
    conn = await db.connect(settings.require_database(), application_name="npd-sync status")
    try:
        version = await install.require_current(conn)
        report = await collect(conn, settings, version)
    finally:
        await conn.close()
    if as_json:
        echo(json.dumps(to_json(report), indent=2, ensure_ascii=False))
    else:
        for line in render(report):
            echo(line)


# --- output ---------------------------------------------------------------------------------


def to_json(report: Report) -> dict[str, Any]:
    """The report as `status --json` prints it (see JSON_KEYS)."""
    use = report.monday.budget or governor.BudgetUse(None, None, None, 0, 0, None)
    return {
        "now": text.iso(report.now),
        "schema_version": report.schema_version,
        "tables": [
            {
                "table": t.table,
                "board_id": t.board_id,
                "capture_installed": t.capture_installed,
                "pending": t.pending,
                "in_flight": t.in_flight,
                "failed": t.failed,
                "synced": t.synced,
                "oldest_pending_at": text.iso(t.oldest_pending_at),
                "oldest_pending_age_seconds": _seconds(t.oldest_pending_age),
                "conflicts": t.conflicts,
                "notes": list(t.notes),
                "conflict_rows": t.conflict_rows,
                "unlinked": t.unlinked,
            }
            for t in report.tables
        ],
        "errors": [
            {
                "table": e.table,
                "id": e.id,
                "state": e.state,
                "attempts": e.attempts,
                "at": text.iso(e.at),
                "error": fault.line(e.error),
                "code": e.error.code,
                "request_id": e.error.request_id,
                "source": e.error.source,
            }
            for e in report.errors
        ],
        "rejected": {
            "count": report.rejected_count,
            "latest": [
                {"table": r.table, "id": r.id, "at": text.iso(r.at), "reason": r.reason}
                for r in report.rejected
            ],
        },
        "listeners": [
            {
                "id": li.id,
                "host": li.host,
                "pid": li.pid,
                "version": li.version,
                "started_at": text.iso(li.started_at),
                "seen_at": text.iso(li.seen_at),
                "seen_ago_seconds": _seconds(li.seen_ago),
                "alive": li.alive,
                "problem": li.problem,
            }
            for li in report.listeners
        ],
        "monday": {
            "api_key_set": report.monday.api_key_set,
            "paused": report.monday.paused,
            "paused_until": text.iso(report.monday.paused_until),
            "pause_reason": report.monday.pause_reason,
            "complexity_remaining": report.monday.complexity_remaining,
            "complexity_reset_at": text.iso(report.monday.complexity_reset_at),
            "updated_at": text.iso(report.monday.updated_at),
            "complexity_limit": use.limit,
            "complexity_window_seconds": use.window,
            "budget_per_minute": _round(use.limit_per_minute),
            "budget_used_per_minute": _round(use.points_per_minute),
            "budget_used_share": None if use.share is None else round(use.share, 4),
            "points_per_synced_row": _round(use.points_per_row),
            **_day_json(report.monday.day),
        },
        "inbound": {
            "enabled": report.inbound.enabled,
            "public_url": report.inbound.public_url,
            "webhooks": report.inbound.webhooks,
            "last_webhook_at": text.iso(report.inbound.last_webhook_at),
            "last_webhook_age_seconds": _seconds(report.inbound.last_webhook_age),
            "pending": report.inbound.pending,
            "oldest_pending_age_seconds": _seconds(report.inbound.oldest_pending_age),
            "open_conflicts": report.inbound.open_conflicts,
            "open_conflict_rows": report.inbound.open_conflict_rows,
            "reconcile_every_seconds": _seconds(report.inbound.reconcile_every),
        },
    }


def render(report: Report) -> list[str]:
    """The report as lines of text for a terminal."""
    lines = [f"npd-sync status at {text.when(report.now)} (schema version {report.schema_version})"]
    lines += ["", *_table_lines(report.tables)]
    lines += ["", *_listener_lines(report)]
    lines += ["", *_monday_lines(report.monday)]
    lines += ["", *_inbound_lines(report.inbound)]
    lines += ["", *_error_lines(report.errors)]
    if report.rejected_count:
        lines += ["", *_rejected_lines(report)]
    return lines


def _table_lines(tables: Sequence[TableStatus]) -> list[str]:
    header = ("table", "pending", "in flight", "failed", "synced", "oldest pending")
    rows = [
        (
            t.table,
            f"{t.pending:,}",
            f"{t.in_flight:,}",
            f"{t.failed:,}",
            "?" if t.synced is None else f"{t.synced:,}",
            "-" if t.oldest_pending_age is None else text.age(t.oldest_pending_age),
        )
        for t in tables
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    out = []
    for r in (header, *rows):
        cells = [
            r[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(r[1:5], widths[1:5], strict=True)),
        ]
        out.append("  ".join([*cells, r[5]]).rstrip())
    for t in tables:
        out.extend(f"  {t.table}: {note}" for note in t.notes)
        if t.unlinked:
            out.append(f"  {t.table}: {text.unlinked(t.unlinked)}")
        if t.conflicts:
            out.append(f"  {t.table}: {text.open_conflicts(t.conflicts, t.conflict_rows)}")
    if not tables:
        out.append("  no tables configured")
    return out


def _listener_lines(report: Report) -> list[str]:
    alive = report.alive
    unhealthy = [li for li in alive if li.problem]
    if unhealthy:
        head = f"listeners: {len(alive)} alive, {len(unhealthy)} of them unhealthy"
    elif alive:
        head = f"listeners: {len(alive)} alive"
    else:
        head = "listeners: none alive (changes are recorded and wait for `npd-sync listen`)"
    out = [head]
    for li in report.listeners:
        seen = f"seen {text.age(li.seen_ago)} ago"
        state = f"alive ({seen})" if li.alive else f"gone (last {seen})"
        if li.alive and li.problem:
            state += f", unhealthy: {text.one_line(li.problem)}"
        since = text.when(li.started_at)
        out.append(f"  {li.host} pid {li.pid} v{li.version}, since {since}: {state}")
    return out


def _inbound_lines(i: InboundStatus) -> list[str]:
    if not i.enabled:
        head = "inbound: off (NPD_SYNC_PUBLIC_URL is not set)"
        if i.open_conflicts:
            head += f"; {text.open_conflicts(i.open_conflicts, i.open_conflict_rows)}"
        return [head]
    last = "none yet" if i.last_webhook_age is None else f"{text.age(i.last_webhook_age)} ago"
    waiting = f"{text.counted(i.pending, 'item')} waiting"
    if i.oldest_pending_age is not None and i.pending:
        waiting += f" (oldest {text.age(i.oldest_pending_age)})"
    conflicts = text.open_conflicts(i.open_conflicts, i.open_conflict_rows)
    out = [f"inbound: on; last webhook {last}; {waiting}; {conflicts}"]
    if i.reconcile_every is not None:
        out.append(f"  reconciles every {text.age(i.reconcile_every)}")
    if i.webhooks == 0:
        out.append("  no webhooks registered: run `npd-sync webhooks install`")
    if i.open_conflicts:
        out.append("  see them with `npd-sync conflicts`")
    return out


def _rejected_lines(report: Report) -> list[str]:
    out = [f"rejected change records (never valid, not retried): {report.rejected_count:,}"]
    for r in report.rejected:
        key, reason = text.one_line(r.id, 40), text.one_line(r.reason)
        out.append(f"  {text.when(r.at)}  {r.table} {key}: {reason}")
    return out


def _monday_lines(m: MondayStatus) -> list[str]:
    if m.paused and m.paused_until is not None:
        state = f"paused until {text.when(m.paused_until)}"
        if m.pause_reason:
            state += f": {text.one_line(m.pause_reason)}"
    else:
        state = "not paused"
    if m.complexity_remaining is None:
        budget = "complexity budget not reported yet"
    else:
        budget = f"complexity remaining {m.complexity_remaining:,}"
        if m.updated_at is not None:
            budget += f" (as of {text.when(m.updated_at)})"
    out = [f"monday: {state}; {budget}"]
    if m.budget is not None:
        out.append("  " + _budget_line(m.budget))
    if m.day is not None:
        out.append("  " + text.daily_calls(m.day))
    if not m.api_key_set:
        out.append("  MONDAY_API_KEY is not set: changes are recorded and left pending")
    return out


def _budget_line(use: governor.BudgetUse) -> str:
    per_minute = use.limit_per_minute
    if per_minute is None:
        line = "budget: not reported by Monday yet"
    else:
        line = f"budget: {per_minute:,.0f} points a minute"
    if use.points_per_minute is None:
        return line + "; nothing spent in the past hour"
    line += f"; spent {use.points_per_minute:,.0f} a minute"
    if use.share is not None:
        line += f" ({use.share:.1%})"
    line += f" over the last {text.counted(use.minutes, 'busy minute')}"
    if use.refused:
        line += f", {text.counted(use.refused, 'request')} refused"
    if use.points_per_row is not None:
        line += f"; {use.points_per_row:,.0f} points per synced row"
    return line


def _day_json(day: governor.DayView | None) -> dict[str, object]:
    if day is None:
        return {}
    return {
        "daily_limit": day.limit.calls if day.limit else None,
        "daily_limit_source": day.limit.source if day.limit else None,
        "daily_calls_used": _round(day.used),
        "daily_calls_own": _round(day.own),
        "daily_calls_reported_at": text.iso(day.account_reported_at),
        "daily_calls_past_hour": _round(day.per_hour),
        "daily_calls_run_out_at": text.iso(day.runs_out),
        "daily_reset_at": text.iso(day.resets),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _error_lines(errors: Sequence[ErrorStatus]) -> list[str]:
    if not errors:
        return ["last errors: none"]
    out = ["last errors (newest first):"]
    for e in errors:
        error = text.one_line(fault.headline(e.error))
        out.append(f"  {text.when(e.at)}  {e.table} {e.id}  {_phase(e)}: {error}")
    return out


def _phase(error: ErrorStatus) -> str:
    tries = text.counted(error.attempts, "attempt")
    if error.state == "failed":
        return f"failed after {tries}"
    if error.state == "in_flight":
        return "in flight"
    return f"retrying after {tries}" if error.attempts else "queued again"


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
