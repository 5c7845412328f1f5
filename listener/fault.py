"""Why an entry did not sync, as it is recorded on the entry: what was said, who said it
(Monday, npd-sync itself, or the database), and where Monday said it, its error code, HTTP
status and request id.

A queue entry's and an inbox entry's `last_error` hold it as JSON (`to_json`, `from_json`).
The CLI and the console show it through the one formatter below: `headline` (one line, the
code first), `details` (who said it, the code, HTTP status and request id) and `line` (all of
it on one line, as the row's `sync_error` and `status --json` give it). Shown text passes
through `redacted`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import asyncpg

from listener.monday import errors
from listener.redact import redact

Source = Literal["monday", "npd-sync", "database"]
MONDAY: Source = "monday"
NPD_SYNC: Source = "npd-sync"
DATABASE: Source = "database"
SOURCES: tuple[Source, ...] = (MONDAY, NPD_SYNC, DATABASE)
SAID_BY: dict[Source, str] = {MONDAY: "Monday", NPD_SYNC: "npd-sync", DATABASE: "the database"}


@dataclass(frozen=True, slots=True)
class Fault:
    """The last error of an entry."""

    source: Source
    message: str
    code: str | None = None  # Monday's error code, or the database's SQLSTATE
    http: int | None = None  # the HTTP status of Monday's answer
    request_id: str | None = None  # Monday's id of the request, for its support

    def to_json(self) -> str:
        """The stored form: a JSON object with every field (PostgreSQL's jsonb holds no NUL)."""
        return json.dumps(
            {
                f.name: v.replace("\x00", "") if isinstance(v, str) else v
                for f in fields(self)
                for v in [getattr(self, f.name)]
            },
            ensure_ascii=False,
        )


def from_json(stored: str | None) -> Fault | None:
    """A fault as stored (None: none stored). Unknown keys are ignored, and a value of the
    wrong type reads as missing, so that what an older or newer npd-sync wrote still reads."""
    if stored is None:
        return None
    raw: Any = json.loads(stored)
    if not isinstance(raw, dict):
        return ours(str(raw))
    source = raw.get("source")
    http = raw.get("http")
    return Fault(
        source=source if source in SOURCES else NPD_SYNC,
        message=_text(raw.get("message")) or "",
        code=_text(raw.get("code")),
        http=http if isinstance(http, int) and not isinstance(http, bool) else None,
        request_id=_text(raw.get("request_id")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def from_monday(exc: errors.MondayError) -> Fault:
    """An error met on the way to Monday. Monday said it when an answer came (an HTTP status,
    or Monday's request id, which every answer of Monday's carries); npd-sync said it when no
    answer came (a timeout, a connection refused) or when it held the request back itself (its
    governor's waits)."""
    said = exc.status is not None or exc.request_id is not None
    return Fault(
        MONDAY if said else NPD_SYNC, exc.message, exc.code, exc.status or None, exc.request_id
    )


def ours(message: str) -> Fault:
    """npd-sync's own reason (a row that cannot be sent, a key that does not fit its column)."""
    return Fault(NPD_SYNC, message)


def from_database(exc: asyncpg.PostgresError, doing: str | None = None) -> Fault:
    """The database refused a statement (a constraint, a trigger of the application); `doing`
    says what npd-sync was doing."""
    message = str(exc) or type(exc).__name__
    return Fault(DATABASE, f"{doing}: {message}" if doing else message, exc.sqlstate or None)


def gave_up(fault: Fault, attempts: int) -> Fault:
    """The fault that ended an entry's last attempt."""
    return replace(fault, message=f"gave up after {attempts} attempts: {fault.message}")


def also(fault: Fault, more: str) -> Fault:
    """The fault with a second reason after it (the row could not be told, say)."""
    return replace(fault, message=f"{fault.message}; {more}")


def redacted(fault: Fault, secrets: Sequence[str]) -> Fault:
    """The fault without any secret in its text (errors may echo what they were sent)."""
    return Fault(
        fault.source,
        redact(fault.message, secrets),
        None if fault.code is None else redact(fault.code, secrets),
        fault.http,
        None if fault.request_id is None else redact(fault.request_id, secrets),
    )


# --- the one formatter ------------------------------------------------------------------------


def headline(fault: Fault) -> str:
    """One line for a list of errors: the code first, the request id left to `details`."""
    return f"{fault.code}: {fault.message}" if fault.code else fault.message


def details(fault: Fault) -> str:
    """Who said it, and what came with the message, for someone chasing it:
    'from Monday · code ColumnValueException · HTTP 200 · request 1a2b'."""
    parts = [f"from {SAID_BY[fault.source]}"]
    if fault.code:
        parts.append(f"code {fault.code}")
    if fault.http:
        parts.append(f"HTTP {fault.http}")
    if fault.request_id:
        parts.append(f"request {fault.request_id}")
    return " · ".join(parts)


def line(fault: Fault) -> str:
    """Everything on one line: 'message code=X http=N request_id=R' (a row's `sync_error`,
    `status --json`'s `error`, the log)."""
    parts = [fault.message]
    if fault.code:
        parts.append(f"code={fault.code}")
    if fault.http:
        parts.append(f"http={fault.http}")
    if fault.request_id:
        parts.append(f"request_id={fault.request_id}")
    return " ".join(parts)
