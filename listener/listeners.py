"""Running listeners: each writes a heartbeat into `npd_sync.listeners` (alive, what it finds
wrong with itself, when it last finished an entry), which `status`, health and the console read.
"""

from __future__ import annotations

import os
import socket

from listener import __version__, db, sql


async def heartbeat(conn: db.Conn, listener_id: str, problem: str | None, finished: float) -> None:
    """Say this listener is alive, what it finds wrong (None: nothing), and that it last synced
    or failed an entry `finished` seconds ago."""
    await conn.execute(
        sql.query("heartbeat"), listener_id, socket.gethostname(), os.getpid(), __version__,
        problem, finished,
    )  # fmt: skip


async def forget(conn: db.Conn, listener_id: str) -> None:
    """A listener leaving cleanly."""
    await conn.execute(sql.query("forget_listener"), listener_id)
