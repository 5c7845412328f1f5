"""Helpers of the engine's pure tests: an entry and a row of the built-in contacts table."""

from __future__ import annotations

import datetime as dt

from listener import mapping
from listener.engine.queue import Entry
from listener.rows import Row

CONTACTS = mapping.default_mappings()[0]
VALUES = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}


def entry(
    *,
    attempts: int = 0,
    claims: int = 1,
    uncertain: bool = False,
    monday_id: str | None = None,
    archive_ids: tuple[str, ...] = (),
) -> Entry:
    """A claimed entry of row 7 of table 1."""
    at = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
    return Entry(1, "7", 1, claims, attempts, uncertain, monday_id, archive_ids, at)


def row(
    *,
    enabled: bool | None = True,
    direction: str | None = "BIDIRECTIONAL",
    monday_id: str | None = None,
    phone: str | None = None,
) -> Row:
    """Row 7, Ada; an item id in it is one npd-sync linked it to."""
    values = {**VALUES, "phone": phone}
    return Row("7", enabled, direction, monday_id, values, linked_item=monday_id)
