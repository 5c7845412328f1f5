"""Tables are not hard-coded: a mapping file adds a third one, with a uuid key, an enum status,
a custom delete policy and transforms, and it syncs like the others."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from emulator import Emulator
from listener import db, settings
from listener.capture import install
from tests.conftest import TOKEN
from tests.helpers import drain

MAPPING = """
[tuning]
batch_size = 50

[tables.contacts]
name = "{first_name} {last_name}"
[tables.contacts.columns.email]
type = "email"
source = "email"

[tables.deals]
board_id = "3000000001"
key = "deal_id"
name = "{title} {stage}"
npd_id_column = "npd_ref"
on_delete = "delete"
create_labels = true
[tables.deals.columns.amount]
type = "numbers"
source = "amount"
[tables.deals.columns.close]
type = "date"
source = "closes_on"
[tables.deals.columns.stage]
type = "status"
source = "stage"
[tables.deals.columns.owner_phone]
type = "phone"
source = "owner_phone"
default_country = "GB"
[tables.deals.columns.site]
type = "link"
source = "website"
[tables.deals.columns.tags]
type = "dropdown"
source = "tags"
[tables.deals.columns.summary]
type = "long_text"
sources = ["title", "stage", "notes"]
separator = " / "
"""

SCHEMA = """
CREATE TYPE deal_status AS ENUM ('PENDING', 'SYNCED', 'FAILED');
CREATE TABLE deals (
    deal_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title text NOT NULL, stage text, amount numeric, closes_on date, owner_phone text,
    website text, tags text, notes text,
    sync_enabled boolean DEFAULT true, sync_direction text DEFAULT 'NPD_TO_MONDAY',
    monday_id bigint, sync_status deal_status DEFAULT 'PENDING'
);
"""


async def test_a_third_table_from_a_mapping_file(
    empty_dsn: str, tmp_path: Path, emulator: Emulator
) -> None:
    path = tmp_path / "npd-sync.toml"
    path.write_text(MAPPING)
    env = {
        "DATABASE_URL": empty_dsn,
        "MONDAY_API_KEY": TOKEN,
        "NPD_SYNC_CONFIG": str(path),
        "MONDAY_CONTACTS_BOARD_ID": "1000000001",
    }
    config = settings.load(environ=env)
    async with Emulator(token=TOKEN, tables=config.tables) as own:
        config = settings.load(environ={**env, "MONDAY_API_URL": own.url})
        conn = await db.connect(empty_dsn)
        try:
            await conn.execute(
                "CREATE TABLE contacts (id serial PRIMARY KEY, first_name text, last_name text,"
                " email text, sync_enabled boolean, sync_direction text, monday_id text,"
                " sync_status text)"
            )
            await conn.execute(SCHEMA)
            plan = await install.install(conn, config.tables)
            assert "attach capture to deals (table id 2)" in [s.description for s in plan.steps]
        finally:
            await conn.close()

        app = await asyncpg.connect(empty_dsn)
        try:
            await app.execute(
                "INSERT INTO deals (title, stage, amount, closes_on, owner_phone, website, tags,"
                " notes) VALUES ('Big one', 'Won', 12500.50, '2026-12-24', '020 7946 0958',"
                " 'example.com', 'q4, priority', 'call back')"
            )
            await app.execute("INSERT INTO deals (title) VALUES ('Small one')")
            await drain(config)
            big, small = sorted(own.items("3000000001"), key=lambda i: i.name)
            assert big.name == "Big one Won"
            # Monday keeps status and dropdown values as label indexes and ids; the labels were
            # created (create_labels = true).
            stage, tags = big.values.pop("stage"), big.values.pop("tags")
            assert set(stage) == {"index"}
            assert len(tags["ids"]) == 2
            assert big.values == {
                "amount": "12500.50",
                "close": {"date": "2026-12-24"},
                "owner_phone": {"phone": "+442079460958", "countryShortName": "GB"},
                "site": {"url": "https://example.com", "text": "example.com"},
                "summary": {"text": "Big one / Won / call back"},
                "npd_ref": big.values["npd_ref"],
            }
            key = await app.fetchval("SELECT deal_id::text FROM deals WHERE title = 'Big one'")
            assert big.values["npd_ref"] == key
            assert small.name == "Small one"  # a NULL field is empty; spaces are collapsed
            synced = "SELECT count(*) FROM deals WHERE sync_status = 'SYNCED' AND monday_id > 0"
            assert await app.fetchval(synced) == 2
            # on_delete = "delete": the item is deleted, not archived.
            await app.execute("DELETE FROM deals WHERE title = 'Small one'")
            await drain(config)
            assert own.item(small.id).state == "deleted"  # type: ignore[union-attr]
        finally:
            await app.close()
