"""The change log: what the triggers record in `npd_sync.changes`, taken a batch at a time.

Each application transaction appends a record per changed row (`sql/triggers/capture.sql`);
the engine takes them out, folded to one per row, in the transaction that queues them
(`engine.source`). Records that can never be synced are set aside in `npd_sync.rejected` with
the reason, so that one bad record costs itself only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from listener import db, sql


@dataclass(frozen=True, slots=True)
class Change:
    """All the records of one row taken together."""

    table_id: int
    key: str
    changed_at: datetime  # the first record's commit time
    last_changed_at: datetime  # the last one's
    archive_ids: tuple[str, ...]  # items of the row's keys that were deleted or changed


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that can never be synced, set aside in `npd_sync.rejected`."""

    table_id: int
    key: str  # cut short
    reason: str


@dataclass(frozen=True, slots=True)
class Taken:
    changes: tuple[Change, ...]
    rejected: tuple[Rejected, ...]
    records: int  # records taken out of the log, rejected ones included


async def take(conn: db.Conn, limit: int, key_max_bytes: int) -> Taken:
    """Take up to `limit` records out of the log; run it in the transaction that queues them."""
    found = await conn.fetch(sql.query("take_changes"), limit, key_max_bytes)
    changes: list[Change] = []
    rejected: list[Rejected] = []
    for r in found:
        if r["reason"] is not None:
            rejected.append(Rejected(r["table_id"], r["row_key"], r["reason"]))
        else:
            changes.append(
                Change(
                    r["table_id"],
                    r["row_key"],
                    r["changed_at"],
                    r["last_changed_at"],
                    tuple(r["archive_ids"]),
                )
            )
    return Taken(tuple(changes), tuple(rejected), sum(r["records"] for r in found))
