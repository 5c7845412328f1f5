"""Conflicts: a field changed on both sides since they last agreed, to different values.

The worker records them as it finds them (`record`), settled by the table's policy or left
open (manual); `npd-sync conflicts` lists them and `conflicts resolve` settles open ones by
taking one side (`resolve`): the chosen value is written to the other side by the next sync of
the row. The losing value is always kept.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from listener import db, links, mapping, sql
from listener.capture import notify
from listener.engine import queue
from listener.inbound.merge import Conflict

Side = Literal["npd", "monday"]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


async def record(
    conn: db.Conn,
    table_id: int,
    key: str,
    item_id: str | None,
    found: Sequence[Conflict],
    *,
    policy: str,
    npd_changed_at: dt.datetime | None,
    monday_changed_at: dt.datetime | None,
) -> None:
    """Record conflicts found on one row (in the caller's transaction)."""
    if not found:
        return
    await conn.execute(
        sql.query("record_conflicts"), table_id, key, item_id,
        [c.column_id for c in found], [_json(c.agreed) for c in found],
        [_json(c.npd) for c in found], [_json(c.monday) for c in found],
        [c.winner for c in found], policy, npd_changed_at, monday_changed_at,
    )  # fmt: skip


async def settle(conn: db.Conn, table_id: int, key: str, columns: Sequence[str]) -> None:
    """Close the open conflicts on these columns: both sides hold the same value now."""
    if columns:
        await conn.execute(sql.query("settle_conflicts"), table_id, key, list(columns))


@dataclass(frozen=True, slots=True)
class Record:
    """A conflict as stored, its values shown as the row would hold them."""

    id: int
    table: str
    key: str
    field: str  # the row's column (for the item name: "name")
    column_id: str
    item_id: str | None
    agreed_value: str | None
    npd_value: str | None
    monday_value: str | None
    state: str  # open or resolved
    winner: str | None  # npd, monday; None while open, or when both sides came to agree
    policy: str
    resolved_by: str | None  # policy, operator, converged
    detected_at: dt.datetime
    resolved_at: dt.datetime | None


def field_of(table: mapping.TableMapping | None, column_id: str) -> str:
    """The row column a Monday column stands for (the item name is "name")."""
    if table is not None and column_id != mapping.NAME:
        for column in table.columns:
            if column.id == column_id and len(column.sources) == 1:
                return column.sources[0]
    return column_id


def columns_of(table: mapping.TableMapping, field: str) -> list[str]:
    """The Monday columns a field given by someone names: a column id, a row column, or one of
    the name's fields; [] when it names none."""
    found = [c.id for c in table.inbound_columns if field in (c.id, c.sources[0])]
    if field == mapping.NAME or field in (table.name_split or ()):
        found.append(mapping.NAME)
    return found


def shown(column: mapping.Column | None, raw: str | None) -> str | None:
    """A stored value (JSON text in the form npd-sync sends) as the row would hold it."""
    if raw is None:
        return None
    value = json.loads(raw)
    if value is None or column is None:
        return value if value is None or isinstance(value, str) else json.dumps(value)
    if isinstance(value, dict):
        if "unreadable" in value:
            return value["unreadable"]  # type: ignore[no-any-return]
        if column.type == "dropdown":
            return ", ".join(value.get("labels") or [])
        if column.type == mapping.RELATION:
            return "items " + ", ".join(str(i) for i in value.get("item_ids") or [])
        if column.type == "date":
            return " ".join(v for v in (value.get("date"), value.get("time")) if v)
        key = {"long_text": "text", "email": "email", "phone": "phone", "link": "url"}
        return value.get(key.get(column.type, "label"))
    return str(value)


async def listing(
    conn: db.Conn, tables: Sequence[mapping.TableMapping], *, everything: bool, table: str | None
) -> list[Record]:
    """The open conflicts (all of them with `everything`), of one table or all."""
    by_name = {t.table: t for t in tables}
    found = await conn.fetch(sql.query("list_conflicts"), everything, table)
    return [_record(r, by_name) for r in found]


@dataclass(frozen=True, slots=True)
class Page:
    """A page of conflicts, and how many there are in all (open: rows; resolved: conflicts);
    for open ones, also how many conflicts those rows have."""

    records: list[Record]
    total: int
    conflicts: int = 0


async def page(
    conn: db.Conn,
    tables: Sequence[mapping.TableMapping],
    *,
    state: Literal["open", "resolved"],
    limit: int,
    offset: int = 0,
    table: str | None = None,
    key: str | None = None,
) -> Page:
    """Open conflicts by row (`limit` rows, oldest first, each with all its open conflicts), or
    resolved ones (`limit` of them, latest first); of one table, one row, or all."""
    by_name = {t.table: t for t in tables}
    if state == "open":
        statement = sql.query("open_conflicts_by_row")
    else:
        statement = sql.query("resolved_conflicts")
    found = await conn.fetch(statement, table, key, limit, offset)
    if not found:
        return Page([], 0)
    conflicts = found[0]["conflicts"] if state == "open" else found[0]["total"]
    return Page([_record(r, by_name) for r in found], found[0]["total"], conflicts)


def _record(r: asyncpg.Record, tables: Mapping[str, mapping.TableMapping]) -> Record:
    mapped = tables.get(r["table_name"])
    column = next((c for c in (mapped.columns if mapped else ()) if c.id == r["column_id"]), None)
    return Record(
        id=r["id"],
        table=r["table_name"],
        key=r["row_key"],
        field=field_of(mapped, r["column_id"]),
        column_id=r["column_id"],
        item_id=r["item_id"],
        agreed_value=shown(column, r["agreed_value"]),
        npd_value=shown(column, r["npd_value"]),
        monday_value=shown(column, r["monday_value"]),
        state=r["state"],
        winner=r["winner"],
        policy=r["policy"],
        resolved_by=r["resolved_by"],
        detected_at=r["detected_at"],
        resolved_at=r["resolved_at"],
    )


async def resolve(
    conn: db.Conn, table_id: int, key: str, columns: Sequence[str] | None, take: Side
) -> list[str]:
    """Settle a row's open conflicts (on `columns`, or all) for one side; the next sync of the
    row writes the winner's value to the other side. Returns the columns settled."""
    async with conn.transaction():
        settled = await conn.fetch(
            sql.query("resolve_conflicts"), table_id, key,
            None if columns is None else list(columns), take,
        )  # fmt: skip
        if not settled:
            return []
        base = {r["column_id"]: json.loads(r["base"] or "null") for r in settled}
        await links.rebase(conn, table_id, key, base)
        # The row is read and merged again at once: the winner's value goes to the other side.
        await queue.arrive(conn, [queue.Arrival(table_id, key, pull=True)], urgent=True)
        await notify.wake(conn)
    return sorted(base)
