"""`npd-sync conflicts` (list) and `npd-sync conflicts resolve`: options, text and exit codes
over `listener.operations.conflicts`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from listener import db
from listener.inbound import conflicts as inbound
from listener.operations import conflicts
from listener.operations.keys import NotAKey, UsageError
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
        found = await conflicts.listing(conn, settings, everything=everything, table=table)
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
    settings: Settings, *, table: str, key: str, field: str | None, take: inbound.Side, echo: Echo
) -> bool:
    """Settle a row's open conflicts for one side; False when there was none."""
    mapped = settings.table(table)
    columns = None
    if field is not None:
        columns = inbound.columns_of(mapped, field)
        if not columns:
            known = sorted({c.sources[0] for c in mapped.inbound_columns} | {"name"})
            raise UsageError(
                f"--field {field!r} is not a field that flows back ({', '.join(known)})"
            )
    conn = await db.connect(settings.require_database(), application_name="npd-sync conflicts")
    try:
        settled = await conflicts.settle(conn, mapped, key, columns, take)
    except NotAKey as exc:
        raise UsageError(f"--id {exc}") from None
    finally:
        await conn.close()
    for line in conflicts.summary(settings, mapped, key, field, settled, take):
        echo(line)
    return bool(settled)


def _value(value: str | None) -> str:
    return "(empty)" if value is None else one_line(value, 100)


def _lost(c: inbound.Record, winner: str) -> str:
    return "   (lost)" if c.state == "resolved" and c.winner == winner else ""


def _json(c: inbound.Record) -> dict[str, Any]:
    data = asdict(c)
    data.pop("id")
    for name in ("detected_at", "resolved_at"):
        value = data[name]
        data[name] = None if value is None else value.isoformat().replace("+00:00", "Z")
    return data
