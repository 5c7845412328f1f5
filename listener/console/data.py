"""What the console's overview shows: the report of `npd-sync status`
(`listener.operations.report`) and the last hour's history for its charts. The other pages
read through `listener.operations` directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from listener import db, sql
from listener.capture import install
from listener.console import charts
from listener.operations import report
from listener.settings import Settings


@dataclass(frozen=True, slots=True)
class Overview:
    report: report.Report
    history: charts.History


async def overview(conn: db.Conn, settings: Settings) -> Overview:
    """The status report and the last hour's history; raises install.NotInstalled."""
    version = await install.require_current(conn)
    found = await report.collect(conn, settings, version)
    recent = await conn.fetch(sql.query("recent_minutes"), charts.MINUTES)
    this_minute = await conn.fetchval("SELECT date_trunc('minute', now())")
    return Overview(found, charts.history(map(dict, recent), this_minute))
