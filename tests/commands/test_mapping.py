"""`npd-sync mapping init` and `mapping show` against a real database and the emulator over real
HTTP: from a board whose columns have Monday-made ids and no npd_id column to a mapping file
that `check` accepts and rows that land in their columns."""

from __future__ import annotations

import tomllib
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from emulator import Emulator
from listener import settings
from listener.commands import mappings
from tests.conftest import CONTACTS_BOARD, ORGANIZATIONS_BOARD, TOKEN, MakeSettings
from tests.helpers import drain
from tests.test_cli import Ran, npd_sync

# The contacts board as someone made it in Monday's UI: Monday's ids, people's titles.
MONDAY_MADE = {
    "email_mkx1a2b3": ("Email", "email"),
    "phone_mkx4c5d6": ("Phone", "phone"),
    "text_mkx7e8f9": ("Role title", "text"),
    "long_text_mkxg1h2": ("Notes", "long_text"),
    "person": ("Owner", "text"),
}


def reshape(emulator: Emulator) -> None:
    """The emulator's contacts board with Monday-made ids and no npd_id column."""
    for column_id in ("email", "phone", "text", "long_text", "npd_id"):
        emulator.remove_column(CONTACTS_BOARD, column_id)
    for column_id, (title, column_type) in MONDAY_MADE.items():
        emulator.add_column(CONTACTS_BOARD, column_id, column_type, title=title)  # type: ignore[arg-type]


def env_for(dsn: str, emulator: Emulator, **more: str) -> dict[str, str]:
    return {
        "DATABASE_URL": dsn,
        "MONDAY_API_KEY": TOKEN,
        "MONDAY_API_URL": emulator.url,
        "MONDAY_CONTACTS_BOARD_ID": CONTACTS_BOARD,
        "MONDAY_ORGANIZATIONS_BOARD_ID": ORGANIZATIONS_BOARD,
        **more,
    }


async def test_from_monday_made_ids_to_a_row_in_its_columns(
    dsn: str, conn: asyncpg.Connection, emulator: Emulator, tmp_path: Path
) -> None:
    reshape(emulator)
    env = env_for(dsn, emulator)
    target = tmp_path / "mapping.toml"
    ran = await npd_sync(
        "mapping", "init", "--table", "contacts", "--create-columns", "--write", str(target),
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    board = emulator.board(CONTACTS_BOARD)
    [npd_id] = [c.id for c in board.columns.values() if c.title == "npd_id"]
    assert npd_id.startswith("text_mk")  # made by Monday (the emulator), not by us
    assert f"contacts: created text column {npd_id} ('npd_id') on board {CONTACTS_BOARD}" in (
        ran.stdout
    )
    assert f"wrote {target}" in ran.stdout
    text = target.read_text()
    assert '# - board column "Owner" (text, id person): no table column is named like it' in text

    # `check` accepts the file as written.
    env["NPD_SYNC_CONFIG"] = str(target)
    checked = await npd_sync("check", env=env, cwd=tmp_path)
    assert checked.code == 0, checked.stdout + checked.stderr
    assert "✓ contacts: board 1000000001 (contacts) has the 5 mapped columns" in checked.stdout

    # A new row lands with each value in its column.
    await conn.execute(
        "INSERT INTO contacts (first_name, last_name, email, phone, role_title, notes) VALUES"
        " ('Ada', 'Lovelace', 'ada@example.com', '+44 20 7946 0958', 'Countess', 'First')"
    )
    config = settings.load(environ=env)
    worker = await drain(config)
    assert worker.stats.failed == 0
    [item] = emulator.items(CONTACTS_BOARD)
    assert item.name == "Ada Lovelace"
    key = str(await conn.fetchval("SELECT id FROM contacts"))
    assert item.values == {
        "email_mkx1a2b3": {"email": "ada@example.com", "text": "ada@example.com"},
        "phone_mkx4c5d6": {"phone": "+442079460958", "countryShortName": "GB"},
        "text_mkx7e8f9": "Countess",
        "long_text_mkxg1h2": {"text": "First"},
        npd_id: key,
    }
    assert await conn.fetchval("SELECT sync_status FROM contacts") == "SYNCED"


async def test_run_again_it_finds_what_it_made_and_creates_nothing(
    dsn: str, emulator: Emulator, tmp_path: Path
) -> None:
    reshape(emulator)
    env = env_for(dsn, emulator)
    first = await npd_sync("mapping", "init", "--create-columns", env=env, cwd=tmp_path)
    assert first.code == 0, first.stderr
    columns = dict(emulator.board(CONTACTS_BOARD).columns)
    again = await npd_sync("mapping", "init", "--create-columns", env=env, cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert dict(emulator.board(CONTACTS_BOARD).columns).keys() == columns.keys()
    assert "created" not in again.stderr
    # Without --write the file goes to stdout, what was done to stderr.
    assert first.stdout == again.stdout
    assert tomllib.loads(first.stdout)["tables"]["contacts"]["npd_id_column"].startswith("text_mk")
    assert "contacts: board 1000000001" in first.stderr
    # Every configured table with a board is in it.
    assert list(tomllib.loads(first.stdout)["tables"]) == ["contacts", "organizations"]


async def test_without_create_columns_the_board_is_left_alone_and_the_lack_said(
    dsn: str, emulator: Emulator, tmp_path: Path
) -> None:
    reshape(emulator)
    before = dict(emulator.board(CONTACTS_BOARD).columns)
    env = env_for(dsn, emulator)
    ran = await npd_sync("mapping", "init", "--table", "contacts", env=env, cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert emulator.board(CONTACTS_BOARD).columns == before
    assert "# The board has no text column for the row's key" in ran.stdout
    assert "npd_id column missing" in ran.stderr


async def test_npd_sync_config_may_name_the_file_it_is_about_to_write(
    dsn: str, emulator: Emulator, tmp_path: Path
) -> None:
    # The guide says to set NPD_SYNC_CONFIG in .env; the file is what mapping init writes.
    (tmp_path / ".env").write_text("NPD_SYNC_CONFIG=mapping.toml\n")
    env = env_for(dsn, emulator)
    ran = await npd_sync("mapping", "init", "--write", "mapping.toml", env=env, cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert ran.stdout.startswith(
        "NPD_SYNC_CONFIG=mapping.toml does not exist yet: starting from the built-in mapping\n"
    )
    checked = await npd_sync("check", env=env, cwd=tmp_path)
    assert checked.code == 0, checked.stdout
    # Any other command still says the file is missing.
    (tmp_path / "mapping.toml").unlink()
    status = await npd_sync("status", env=env, cwd=tmp_path)
    assert (status.code, status.stderr) == (
        2, "npd-sync: NPD_SYNC_CONFIG=mapping.toml: file not found\n"
    )  # fmt: skip


async def test_the_built_in_boards_give_the_built_in_mapping(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    config = make_settings()
    text = await mappings.init(
        config, tables=(), board=None, create_columns=False, environ={}, say=lambda _: None
    )
    path = tmp_path / "mapping.toml"
    path.write_text(text)
    again = make_settings(NPD_SYNC_CONFIG=str(path))
    assert again.tables == config.tables


async def test_a_table_that_is_not_configured_takes_its_board_from_the_option(
    dsn: str, conn: asyncpg.Connection, emulator: Emulator, tmp_path: Path
) -> None:
    await conn.execute("CREATE TABLE deals (code text PRIMARY KEY, title text, amount numeric)")
    async with aiohttp.ClientSession() as http:
        made = await http.post(
            emulator.url,
            json={"query": 'mutation { create_board(board_name: "Deals", board_kind: public) '
                  "{ id } }"},
            headers={"Authorization": TOKEN},
        )  # fmt: skip
        board_id = (await made.json())["data"]["create_board"]["id"]
    emulator.add_column(board_id, "numbers_mk1", "numbers", title="Amount")
    env = env_for(dsn, emulator)
    ran = await npd_sync(
        "mapping", "init", "--table", "deals", "--board", board_id, env=env, cwd=tmp_path
    )
    assert ran.code == 0, ran.stderr
    deals = tomllib.loads(ran.stdout)["tables"]["deals"]
    assert (deals["board_id"], deals["key"], deals["name"]) == (board_id, "code", "{title}")
    assert deals["columns"] == {"numbers_mk1": {"type": "numbers", "source": "amount"}}


async def test_the_shared_pause_holds_mapping_init_too(
    make_settings: MakeSettings, conn: asyncpg.Connection, emulator: Emulator, tmp_path: Path
) -> None:
    # npd-sync is installed here: its requests go through the governor, and every listener's
    # pause (Monday's daily limit, say) holds them back.
    await conn.execute(
        "UPDATE npd_sync.monday SET paused_until = now() + interval '1 hour',"
        " pause_reason = 'DAILY_LIMIT_EXCEEDED'"
    )
    path = tmp_path / "tuning.toml"
    path.write_text("[tuning]\nmax_rate_wait = 0.1\n")
    config = make_settings(NPD_SYNC_CONFIG=str(path))
    before = len(emulator.requests)
    with pytest.raises(mappings.MondayFailed, match="DAILY_LIMIT_EXCEEDED"):
        await mappings.init(
            config, tables=(), board=None, create_columns=True, environ={}, say=print
        )
    assert len(emulator.requests) == before


@pytest.mark.parametrize(
    ("args", "more", "message"),
    [
        (["--table", "contacts", "--table", "organizations", "--board", "1"], {},
         "--board names one board: give it with one --table"),
        (["--table", "nope", "--board", "1000000001"], {},
         "nope: no such table in the database (DATABASE_URL)"),
        (["--table", "deals"], {},
         "deals: no board: give --board ID, or set MONDAY_DEALS_BOARD_ID"),
        (["--table", "contacts", "--board", "board-one"], {},
         "--board: must be a numeric Monday board id"),
        (["--table", "contacts", "--board", "999"], {},
         "contacts: board 999 not found: check the board id"),
        ([], {"MONDAY_API_KEY": ""},
         "MONDAY_API_KEY is not set: mapping init reads the boards from Monday"),
    ],
)  # fmt: skip
async def test_bad_usage_is_one_line_and_exit_2(
    dsn: str,
    emulator: Emulator,
    tmp_path: Path,
    args: list[str],
    more: dict[str, str],
    message: str,
) -> None:
    ran: Ran = await npd_sync(
        "mapping", "init", *args, env=env_for(dsn, emulator, **more), cwd=tmp_path
    )
    assert ran.code == 2, ran
    assert ran.stderr.startswith(f"npd-sync: {message}"), ran.stderr
    assert len(ran.stderr.splitlines()) == 1
    assert TOKEN not in ran.stdout + ran.stderr


# --- mapping show ------------------------------------------------------------------------------


async def test_show_names_each_column_with_its_title_and_whether_it_flows_back(
    dsn: str, emulator: Emulator, tmp_path: Path
) -> None:
    reshape(emulator)
    env = env_for(dsn, emulator, NPD_SYNC_PUBLIC_URL="https://sync.example.com")
    init = await npd_sync("mapping", "init", "--create-columns", env=env, cwd=tmp_path)
    (tmp_path / "mapping.toml").write_text(init.stdout)
    ran = await npd_sync(
        "mapping", "show", env={**env, "NPD_SYNC_CONFIG": "mapping.toml"}, cwd=tmp_path
    )
    assert ran.code == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[:2] == [
        "mapping: NPD_SYNC_CONFIG=mapping.toml",
        "inbound: on: the columns marked 'yes' flow back into the rows",
    ]
    text = ran.stdout
    assert "contacts -> board 1000000001 'contacts'" in text
    assert (
        "key id; item name '{first_name} {last_name}': flows back yes: the first word to "
        "first_name, the rest to last_name"
    ) in text
    assert [line.split() for line in lines if "email_mkx1a2b3" in line] == [
        ["email_mkx1a2b3", "'Email'", "email", "email", "yes"]
    ]
    [address] = [line for line in lines if line.strip().startswith("address ")]
    assert address.split()[:3] == ["address", "'address'", "text"]
    assert address.endswith("no: several columns joined")
    assert "npd-sync's own" in text


async def test_show_without_a_token_or_a_file_shows_the_built_in_mapping(tmp_path: Path) -> None:
    ran = await npd_sync("mapping", "show", env={"MONDAY_CONTACTS_BOARD_ID": "1"}, cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert ran.stdout.splitlines()[:3] == [
        "mapping: built-in (NPD_SYNC_CONFIG is not set)",
        "inbound: off (NPD_SYNC_PUBLIC_URL is not set): nothing flows back now",
        "board titles unknown: MONDAY_API_KEY is not set",
    ]
    assert "organizations: not synced (MONDAY_ORGANIZATIONS_BOARD_ID is not set)" in ran.stdout
    assert "  email      ?      email      email" in ran.stdout
