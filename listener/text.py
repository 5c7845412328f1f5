"""Text for people, the same in the CLI and the console: counts in words (open conflicts said
one way everywhere), durations, times, one-line cuts of long text.

Pure functions; nothing here knows where the text goes.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the figures only: text stays free of the layers it words
    from listener.monday.governor import DayView

WIDTH = 120  # characters of a line that `one_line` keeps by default
ELLIPSIS = "…"


def counted(n: int, noun: str) -> str:
    """'1 row', '2,000 rows'."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def open_conflicts(conflicts: int, rows: int) -> str:
    """Open conflicts, said one way everywhere: a conflict is one field of one row, and the
    rows they are in come with them ('2 open conflicts in 1 row'; '0 open conflicts')."""
    if not conflicts:
        return counted(0, "open conflict")
    return f"{counted(conflicts, 'open conflict')} in {counted(rows, 'row')}"


UNLINKED = (
    "its item was archived or deleted on Monday (not counted as synced; pushed again, as a new "
    "item, when it changes)"
)


def unlinked(rows: int) -> str:
    """Rows whose item went on Monday, said one way everywhere."""
    return f"{counted(rows, 'row')} unlinked: {UNLINKED}"


def age(seconds: float) -> str:
    """A duration for people: 12s, 4m 05s, 3h 02m, 2d 04h."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def one_line(text: str, width: int = WIDTH) -> str:
    """The text on one line (whitespace runs folded), cut to `width` characters."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= width else flat[: width - len(ELLIPSIS)] + ELLIPSIS


def when(value: datetime | None) -> str:
    """A time as the CLI and the console print it (UTC, as the database reads it): '-' for
    none."""
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


def iso(value: datetime | None) -> str | None:
    """A time in ISO 8601 for JSON, UTC written as Z."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def daily_calls(day: DayView) -> str:
    """Monday's daily call limit and today's calls, said one way in `status` and the console:
    the limit and its source, the account's usage and npd-sync's own, the past hour's pace and
    when the calls would run out at it."""
    if day.limit is None:
        line = "calls today: no daily limit known (set [tuning] daily_calls or plan)"
    else:
        line = f"calls today: {day.used:,.0f} of {day.limit.calls:,} ({day.limit.source})"
    line += f", npd-sync's own {day.own:,.0f}; {day.per_hour:,.0f} in the past hour"
    if day.limit is not None:
        if day.runs_out is not None:
            line += f"; at that pace they run out at {when(day.runs_out)}"
        else:
            line += "; at that pace they last the day"
    return line + f"; reset at {when(day.resets)}"
