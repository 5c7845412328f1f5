"""Helpers of the inbound tests: settings with inbound on, a synced row, a delivery stored as
the receiver stores it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import asyncpg

from emulator import Emulator
from listener import db, settings
from listener.inbound import inbox
from tests.conftest import CONTACTS_BOARD, MakeSettings
from tests.helpers import drain

PUBLIC_URL = "https://sync.example.com"
ADA = (
    "INSERT INTO contacts (first_name, last_name, email, phone, role_title, sync_direction)"
    " VALUES ('Ada', 'Lovelace', 'ada@example.com', '+44 20 7946 0958', 'Countess', $1)"
)


def inbound(make_settings: MakeSettings, tmp_path: Path, **table: str) -> settings.Settings:
    """Settings with inbound on; `table` sets options of the contacts table's mapping."""
    if not table:
        return make_settings(NPD_SYNC_PUBLIC_URL=PUBLIC_URL)
    lines = ["[tables.contacts]", 'name = "{first_name} {last_name}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    for column, source, kind in (
        ("email", "email", "email"), ("phone", "phone", "phone"),
        ("text", "role_title", "text"), ("long_text", "notes", "long_text"),
    ):  # fmt: skip
        lines += [f"[tables.contacts.columns.{column}]", f'type = "{kind}"', f'source = "{source}"']
    path = tmp_path / "mapping.toml"
    path.write_text("\n".join(lines) + "\n")
    return make_settings(NPD_SYNC_PUBLIC_URL=PUBLIC_URL, NPD_SYNC_CONFIG=str(path))


async def deliver(
    config: settings.Settings, item_id: str, kind: str = "update_column_value"
) -> None:
    """A delivery for an item, stored as the receiver stores it."""
    conn = await db.connect(config.require_database())
    try:
        event = inbox.Event(uuid.uuid4().hex, CONTACTS_BOARD, item_id, kind)
        await inbox.store(conn, [event], [CONTACTS_BOARD])
    finally:
        await conn.close()


async def contact(conn: asyncpg.Connection) -> asyncpg.Record:
    return await conn.fetchrow("SELECT * FROM contacts WHERE id = 1")


async def synced_ada(
    conn: asyncpg.Connection, config: settings.Settings, emulator: Emulator, direction: str
) -> str:
    await conn.execute(ADA, direction)
    await drain(config)
    (item,) = emulator.items(CONTACTS_BOARD)
    return item.id
