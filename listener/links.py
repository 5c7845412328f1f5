"""Links: which Monday item each row is, and what both sides last agreed the item holds.

`npd_sync.links` keeps, per linked row, the item id and the value of each Monday column (and
the item name, under "name") as Monday last accepted it, in the JSON form npd-sync sends. It is
the one record of "what the two sides agreed on": a push sends only what differs from it, and
an edit is told to be the database's or the board's against it. The listener writes it in the
transaction that writes the row back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from listener import db, sql

NAME = "name"  # the item name's key among the agreed values

Values = Mapping[str, Any]  # Monday column id (or NAME) -> value in the form npd-sync sends


@dataclass(frozen=True, slots=True)
class Link:
    """A row linked to an item, with the values Monday accepted for it."""

    key: str
    item_id: str
    agreed: Values


def changed(values: Values, agreed: Values) -> dict[str, Any]:
    """The values that differ from what was agreed (a column never agreed on differs)."""
    return {k: v for k, v in values.items() if k not in agreed or agreed[k] != v}


def parse(raw: str | None) -> dict[str, Any] | None:
    """The agreed values as stored (jsonb text), or None for a row without a link."""
    return None if raw is None else dict(json.loads(raw))


async def link(conn: db.Conn, table_id: int, links: Sequence[Link]) -> None:
    """Record links (merging agreed values for the same item); in the caller's transaction."""
    if not links:
        return
    keys = [x.key for x in links]
    items = [x.item_id for x in links]
    await conn.execute(sql.query("unlink_moved"), table_id, keys, items)
    agreed = [json.dumps(x.agreed, ensure_ascii=False, sort_keys=True) for x in links]
    await conn.execute(sql.query("link_items"), table_id, keys, items, agreed)


async def unlink(conn: db.Conn, item_ids: Sequence[str]) -> None:
    """Forget the links to these items (archived or deleted on Monday)."""
    if item_ids:
        await conn.execute(sql.query("unlink_items"), list(item_ids))


async def mark_unlinked(conn: db.Conn, table_id: int, key: str) -> None:
    """A row's item went on Monday: keep its link, marked, for a restore."""
    await conn.execute(sql.query("mark_unlinked"), table_id, key)


async def drop(conn: db.Conn, table_id: int, key: str) -> None:
    """Forget a row's link (the row is gone)."""
    await conn.execute(sql.query("drop_link"), table_id, key)


async def linked(conn: db.Conn, item_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
    """The rows these items are linked to: item id -> (table id, key)."""
    records = await conn.fetch(sql.query("linked_rows"), list(item_ids))
    return {r["item_id"]: (r["table_id"], r["row_key"]) for r in records}


async def rebase(conn: db.Conn, table_id: int, key: str, agreed: Values) -> None:
    """These values become the agreed ones of a row's link, for those columns."""
    payload = json.dumps(agreed, ensure_ascii=False, sort_keys=True)
    await conn.execute(sql.query("rebase_link"), table_id, key, payload)
