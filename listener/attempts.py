"""Each row's attempts (`npd_sync.attempts`): what a listener did for a row, batch by batch,
for the row's history in the console: when, what it did and sent, what came of it, and
Monday's request id. Kept for `[tuning] history_days`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from listener import db, fault, sql


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt at a row."""

    table_id: int
    key: str
    outcome: str  # synced, retried, failed (as the batch counted it)
    action: str | None = None  # create, update, find, archive, read
    item_id: str | None = None
    sent: Mapping[str, Any] | None = None  # column id -> value, as sent
    error: fault.Fault | None = None
    request_id: str | None = None
    at: datetime | None = None  # as recorded
    listener_id: str | None = None


async def record(conn: db.Conn, listener_id: str, attempts: Sequence[Attempt]) -> None:
    """Record a batch's attempts (in the caller's transaction)."""
    if not attempts:
        return
    a = attempts
    await conn.execute(
        sql.query("record_attempts"), listener_id,
        [x.table_id for x in a], [x.key for x in a], [x.outcome for x in a],
        [x.action for x in a], [x.item_id for x in a],
        [None if x.sent is None else json.dumps(x.sent, ensure_ascii=False) for x in a],
        [None if x.error is None else x.error.to_json() for x in a],
        [x.request_id for x in a],
    )  # fmt: skip


async def forget(conn: db.Conn, days: float) -> None:
    """Forget attempts older than `days`."""
    await conn.execute(sql.query("forget_attempts"), float(days))


async def of_row(conn: db.Conn, table_id: int, key: str, limit: int = 50) -> list[Attempt]:
    """The latest attempts at one row, newest first."""
    found = await conn.fetch(sql.query("row_attempts"), table_id, key, limit)
    return [
        Attempt(
            table_id,
            key,
            r["outcome"],
            r["action"],
            r["item_id"],
            None if r["sent"] is None else json.loads(r["sent"]),
            fault.from_json(r["error"]),
            r["request_id"],
            r["at"],
            r["listener_id"],
        )
        for r in found
    ]
