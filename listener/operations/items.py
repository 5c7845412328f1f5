"""Items on Monday: links to them for people to follow (`url`), and one item as Monday holds
it now, read on demand (`read_now`, the console's "Read it from Monday now").

A read on demand spends the calls and the complexity every listener shares, so it goes through
the governor like any listener's request, and is refused rather than kept waiting: when Monday
asked everyone to pause, or when the limits have no room for it within `READ_WAIT`. The reason
is said; nothing is retried.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from listener import fault, mapping, sql
from listener.monday import api, cost, errors, governor
from listener.settings import Settings

READ_WAIT = 2.0  # seconds a read on demand may wait for room in the limits
READ_TIMEOUT = 30.0  # seconds Monday has to answer it


def url(template: str, board: str | None, item: str | None) -> str | None:
    """The link to an item on Monday (`template` holds `{board}` and `{item}`), when both ids
    are known and look like Monday's."""
    if not board or not item or not board.isdigit() or not item.isdigit():
        return None
    return template.format(board=board, item=item)


@dataclass(frozen=True, slots=True)
class ItemNow:
    """An item as Monday held it when it was read (or why it was not read)."""

    table: str
    key: str
    item_id: str
    at: dt.datetime
    name: str | None = None
    state: str | None = None  # active, archived or deleted; None: Monday returned no item
    values: Mapping[str, Any] | None = None  # column id -> value (its JSON form), mapped ones
    texts: Mapping[str, str | None] | None = None  # column id -> Monday's text of it
    request_id: str | None = None
    refused: str | None = None  # why it was not read: the limits, a pause, no token
    error: fault.Fault | None = None  # what Monday (or the way to it) said


async def read_now(
    pool: asyncpg.Pool, settings: Settings, table: mapping.TableMapping, key: str, item_id: str
) -> ItemNow:
    """Read one item from Monday now, within the limits every listener shares."""
    now = dt.datetime.now(dt.UTC)
    asked = ItemNow(table.table, key, item_id, now)
    if settings.api_key is None:
        return dataclasses.replace(
            asked, refused="MONDAY_API_KEY is not set where the console runs"
        )
    async with pool.acquire() as conn:
        pause = await conn.fetchrow(sql.query("paused_for"))
    if pause is not None and pause["seconds"] > 0:
        reason = pause["pause_reason"] or "no reason given"
        return dataclasses.replace(
            asked,
            refused=f"Monday asked every listener to pause ({reason}) for "
            f"{pause['seconds']:.0f} s more: try again then",
        )
    tuning = settings.tuning
    meter = governor.Governor(pool, governor.limits_for(tuning), max_wait=READ_WAIT)
    paced = await meter.next_call_in()
    if paced > 0:
        return dataclasses.replace(
            asked,
            refused=f"the day's calls to Monday are paced to last the day: the next may go in "
            f"{paced:.0f} s, and the listeners' work comes first",
        )
    columns = [c.id for c in table.columns]
    try:
        async with (
            api.client(settings, timeout=READ_TIMEOUT) as client,
            meter.reserve([item_id], kind=cost.Kind.READ) as grant,
        ):
            try:
                found, reply = await api.read_items(client, [item_id], columns)
            except errors.MondayError as exc:
                await grant.settle(exc)
                raise
            await grant.settle(reply)
    except errors.MondayError as exc:
        said = exc.status is not None or exc.request_id is not None
        if isinstance(exc, errors.RateLimited) and not said:  # the governor's no, not Monday's
            refused = f"not now: {exc.message}; the listeners' work comes first"
            return dataclasses.replace(asked, refused=refused)
        if exc.kind is errors.Kind.RATE_LIMITED or exc.code == "DAILY_LIMIT_EXCEEDED":
            # Monday's stop (a 429, the day's limit) is every listener's. A refused token is
            # not: the console's may not be the listeners'.
            await meter.pause(exc)
        error = fault.redacted(fault.from_monday(exc), settings.secrets())
        return dataclasses.replace(asked, error=error)
    item = found.get(item_id)
    if item is None:
        return dataclasses.replace(asked, request_id=reply.request_id)
    return dataclasses.replace(
        asked,
        name=item.name,
        state=item.state,
        values={c: _parsed(v) for c, (v, _) in item.values.items()},
        texts={c: t for c, (_, t) in item.values.items()},
        request_id=reply.request_id,
    )


def _parsed(value: str | None) -> Any:
    """A column's value JSON as read (text when it is not JSON)."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value
