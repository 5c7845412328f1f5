"""`npd-sync conflicts` (list) and `npd-sync conflicts resolve`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from listener import db, mapping, sql
from listener.capture import install
from listener.commands.requeue import UsageError, normalize_key
from listener.inbound import conflicts
from listener.settings import Settings
from listener.text import one_line, when

Echo = Callable[[str], None]


async def run(
    settings: Settings, *, table: str | None, everything: bool, as_json: bool, echo: Echo
) -> None:
    """List open conflicts (all of them with `everything`)."""
    if table is not None:
        settings.table(table)  # an unknown name is a ConfigError (exit 2)
    conn = await db.connect(settings.require_database(), application_name="npd-sync conflicts")
    try:
        await install.require_current(conn)
        found = await conflicts.listing(conn, settings.tables, everything=everything, table=table)
    finally:
        await conn.close()
    if as_json:
        echo(json.dumps([_json(c) for c in found], indent=2, ensure_ascii=False))
        return
    if not found:
        echo("no conflicts" if everything else "no open conflicts")
        return
    for c in found:
        head = f"{c.table} {c.key} {c.field}: {c.state}"
        if c.state == "resolved":
            head += f", {c.winner or 'both sides agreed'} ({c.resolved_by})"
        echo(head + f", found {when(c.detected_at)}")
        echo(f"    agreed: {_value(c.agreed_value)}")
        echo(f"    npd:    {_value(c.npd_value)}" + _lost(c, "monday"))
        echo(f"    monday: {_value(c.monday_value)}" + _lost(c, "npd"))
    if not everything:
        echo("resolve: npd-sync conflicts resolve --table T --id KEY [--field F] --take npd|monday")


async def resolve(
    settings: Settings, *, table: str, key: str, field: str | None, take: conflicts.Side, echo: Echo
) -> bool:
    """Settle a row's open conflicts for one side; False when there was none."""
    mapped = settings.table(table)
    columns = None
    if field is not None:
        columns = conflicts.columns_of(mapped, field)
        if not columns:
            known = sorted({c.sources[0] for c in mapped.inbound_columns} | {"name"})
            raise UsageError(
                f"--field {field!r} is not a field that flows back ({', '.join(known)})"
            )
    conn = await db.connect(settings.require_database(), application_name="npd-sync conflicts")
    try:
        settled = await settle(conn, mapped, key, columns, take)
    finally:
        await conn.close()
    for line in summary(settings, mapped, key, field, settled, take):
        echo(line)
    return bool(settled)


async def settle(
    conn: db.Conn,
    table: mapping.TableMapping,
    key: str,
    columns: Sequence[str] | None,
    take: conflicts.Side,
) -> list[str]:
    """The operation behind `conflicts resolve` (and the console's): the columns settled.
    Raises UsageError for a key that cannot be one, or a table not captured."""
    await install.require_current(conn)
    table_id = await conn.fetchval(sql.query("table_id"), table.table)
    if table_id is None:
        raise UsageError(f"{table.table}: capture not installed (run `npd-sync install`)")
    row_key = await normalize_key(conn, table, key)
    return await conflicts.resolve(conn, table_id, row_key, columns, take)


def summary(
    settings: Settings,
    table: mapping.TableMapping,
    key: str,
    field: str | None,
    settled: Sequence[str],
    take: conflicts.Side,
) -> list[str]:
    """What `settle` did, in lines for people (`field`: the one asked for, if any)."""
    if not settled:
        return [f"{table.table} {key}: no open conflict" + (f" on {field}" if field else "")]
    fields = ", ".join(conflicts.field_of(table, c) for c in settled)
    other = "Monday" if take == "npd" else "the database"
    lines = [
        f"{table.table} {key}: {fields} resolved for {take}; the next sync writes it to {other}"
    ]
    if take == "monday" and not settings.inbound:
        lines.append(
            "inbound is off (NPD_SYNC_PUBLIC_URL is not set): a listener with it on writes it"
        )
    return lines


def _value(value: str | None) -> str:
    return "(empty)" if value is None else one_line(value, 100)


def _lost(c: conflicts.Record, winner: str) -> str:
    return "   (lost)" if c.state == "resolved" and c.winner == winner else ""


def _json(c: conflicts.Record) -> dict[str, Any]:
    data = asdict(c)
    data.pop("id")
    for name in ("detected_at", "resolved_at"):
        value = data[name]
        data[name] = None if value is None else value.isoformat().replace("+00:00", "Z")
    return data
