"""What the listeners did, minute by minute (`npd_sync.throughput`), for the console's charts:
each listener adds what it counted since its last write to the current minute's row, and a day
of history is kept.
"""

from __future__ import annotations

from listener import db, sql
from listener.metrics import Totals


async def record(conn: db.Conn, listener_id: str, gained: Totals) -> None:
    """Add what a listener counted since its last write to this minute, and forget the minutes
    of more than a day ago (in one transaction)."""
    async with conn.transaction():
        await conn.execute(
            sql.query("record_minute"), listener_id, gained.synced, gained.failed,
            gained.retried, list(gained.latency_buckets), gained.latency_sum,
        )  # fmt: skip
        await conn.execute(sql.query("forget_old_minutes"))
