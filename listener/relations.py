"""Relations between rows, for connect-boards columns: which rows wait for a referenced row's
item (`npd_sync.awaited`), and which rows link an item that went.

A row whose foreign key references a row without an item yet is pushed without that link and
waits; once the referenced row has its item, the rows that waited arrive in the queue again,
together, and their next push carries the link. A row whose link holds an item that was
archived (its row deleted) arrives too: its next push clears the link.
"""

from __future__ import annotations

from collections.abc import Sequence

from listener import db, sql

Key = tuple[int, str]  # (table id, row key)


async def await_items(conn: db.Conn, waits: Sequence[tuple[Key, Key]]) -> None:
    """Record that rows wait for referenced rows' items: (row, referenced row) pairs."""
    if not waits:
        return
    await conn.execute(
        sql.query("await_items"),
        [r[0] for r, _ in waits], [r[1] for r, _ in waits],
        [ref[0] for _, ref in waits], [ref[1] for _, ref in waits],
    )  # fmt: skip


async def items_came(conn: db.Conn, rows: Sequence[Key]) -> list[Key]:
    """These rows have their items now: the rows that waited for them (no longer waiting)."""
    if not rows:
        return []
    found = await conn.fetch(sql.query("items_came"), [r[0] for r in rows], [r[1] for r in rows])
    return [(r["table_id"], r["row_key"]) for r in found]


async def linking(conn: db.Conn, table_id: int, column_id: str, items: Sequence[str]) -> list[str]:
    """The keys of the table's rows whose link on this connect-boards column holds one of the
    items, as Monday last accepted it."""
    found = await conn.fetch(sql.query("linking_items"), table_id, column_id, list(items))
    return [r["row_key"] for r in found]
