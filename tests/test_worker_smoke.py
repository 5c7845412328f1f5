import asyncpg

from tests.helpers import drain


async def test_insert_creates_item(conn: asyncpg.Connection, make_settings, emulator) -> None:
    await conn.execute(
        "INSERT INTO contacts (first_name, last_name, email, phone, role_title, notes)"
        " VALUES ('Ada', 'Lovelace', 'ada@example.com', '+14155552671', 'Countess', 'First programmer')"
    )
    w = await drain(make_settings())
    row = await conn.fetchrow("SELECT monday_id, sync_status, sync_error FROM contacts")
    assert row["sync_status"] == "SYNCED", (row, w.stats)
    items = emulator.items("1000000001")
    assert len(items) == 1
    print(items[0])
