"""A property of inbound sync: random interleavings of database and board edits on random
fields, with deliveries dropped, repeated and reordered, end with every row equal to its item
on every field that flows back, and with every value that was overwritten found in the
conflict log. The two-sided edits are counted as they are generated: silent losses are zero.

Each seed is one history: a few rows, then rounds of edits on both sides followed by a sync
(the real worker); a final `pull --full` stands for the reconciliation that catches dropped
deliveries. A sync looks at a row when the database changed it or a delivery for its item
arrived, and it then sees every field of the row: the model below follows the same rule.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from emulator import Emulator
from listener import db, settings
from listener.commands import pull
from listener.inbound import inbox
from tests.conftest import CONTACTS_BOARD, MakeSettings
from tests.helpers import drain
from tests.inbound.helpers import PUBLIC_URL, inbound

ROWS = 3
ROUNDS = 6
# The row's column, the board's column, and how a value is written on the board.
FIELDS = {
    "role_title": ("text", lambda v: v),
    "notes": ("long_text", lambda v: {"text": v}),
    "email": ("email", lambda v: {"email": v, "text": v}),
}


def value(side: str, step: int, column: str) -> str:
    text = f"{side}{step}"
    return f"{text}@example.com" if column == "email" else text


@dataclass
class Model:
    """What the system should have seen: per row and field, the edits not yet merged."""

    db: dict[tuple[int, str], str] = field(default_factory=dict)
    board: dict[tuple[int, str], str] = field(default_factory=dict)
    delivered: set[int] = field(default_factory=set)  # rows a delivery arrived for
    conflicts: list[tuple[int, str, str, str]] = field(default_factory=list)  # expected

    def sync(self, rows: int) -> None:
        for key in range(1, rows + 1):
            if not any(k == key for k, _ in self.db) and key not in self.delivered:
                continue  # not looked at: its board edits wait
            for column in FIELDS:
                d, m = self.db.pop((key, column), None), self.board.pop((key, column), None)
                if d is not None and m is not None and d != m:
                    self.conflicts.append((key, column, d, m))
        self.delivered.clear()


async def store(config: settings.Settings, events: list[inbox.Event]) -> None:
    conn = await db.connect(config.require_database())
    try:
        await inbox.store(conn, events, [CONTACTS_BOARD])
    finally:
        await conn.close()


@pytest.mark.parametrize("policy", ["npd_wins", "monday_wins", "newest_wins"])
@pytest.mark.parametrize("seed", range(4))
async def test_random_histories_converge_and_lose_nothing(
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
    policy: str,
    seed: int,
) -> None:
    rng = random.Random(f"{policy}-{seed}")
    config = inbound(make_settings, tmp_path, conflict=policy)
    assert config.public_url == PUBLIC_URL
    for key in range(1, ROWS + 1):
        await conn.execute(
            "INSERT INTO contacts (first_name, role_title, notes, email) VALUES ($1, $2, $3, $4)",
            f"R{key}", "r0", "n0", f"e{key}@example.com",
        )  # fmt: skip
    await drain(config)
    items = {int(i.values["npd_id"]): i.id for i in emulator.items(CONTACTS_BOARD)}
    model = Model()
    step = 0
    for _ in range(ROUNDS):
        pending: list[tuple[int, inbox.Event]] = []
        for _ in range(rng.randint(1, 6)):
            step += 1
            key, column = rng.randint(1, ROWS), rng.choice(list(FIELDS))
            if rng.random() < 0.5:
                new = value("db", step, column)
                await conn.execute(f"UPDATE contacts SET {column} = $1 WHERE id = $2", new, key)
                model.db[(key, column)] = new
            else:
                new = value("mon", step, column)
                board_column, shape = FIELDS[column]
                emulator.edit_item(items[key], {board_column: shape(new)})
                model.board[(key, column)] = new
                event = inbox.Event(
                    uuid.uuid4().hex, CONTACTS_BOARD, items[key], "update_column_value"
                )
                fault = rng.random()
                if fault < 0.25:
                    continue  # dropped
                pending.append((key, event))
                if fault < 0.4:
                    pending.append((key, event))  # repeated
        rng.shuffle(pending)  # and out of order
        await store(config, [e for _, e in pending])
        model.delivered |= {k for k, _ in pending}
        await drain(config)
        model.sync(ROWS)

    # Reconciliation brings in what dropped deliveries missed.
    assert await pull.run(config, table=None, full=True, dry_run=False, echo=lambda _: None)
    model.delivered |= set(range(1, ROWS + 1))
    model.sync(ROWS)

    for key, item_id in items.items():
        row = await conn.fetchrow("SELECT * FROM contacts WHERE id = $1", key)
        item = emulator.item(item_id)
        assert item is not None
        assert row["sync_status"] == "SYNCED", (key, row["sync_error"])
        assert row["role_title"] == item.values.get("text"), key
        assert row["notes"] == (item.values.get("long_text") or {}).get("text"), key
        assert row["email"] == (item.values.get("email") or {}).get("email"), key
    plain = (
        "CASE WHEN jsonb_typeof({0}) = 'object' THEN coalesce({0} ->> 'text', {0} ->> 'email')"
        " ELSE {0} #>> '{{}}' END"
    )
    logged = {
        (int(r[0]), r[1], r[2], r[3])
        for r in await conn.fetch(
            f"SELECT row_key, column_id, {plain.format('npd_value')}, "
            f"{plain.format('monday_value')} FROM npd_sync.conflicts"
        )
    }
    expected = {(key, FIELDS[column][0], d, m) for key, column, d, m in model.conflicts}
    assert expected <= logged, f"lost: {sorted(expected - logged)}"
