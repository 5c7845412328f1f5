"""listener.proposal: the mapping `npd-sync mapping init` proposes for a table and a board, and
the file it writes (pure; no database, no network)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from listener import catalog, mapping, proposal, settings
from listener.monday.api import BoardColumn, BoardInfo
from listener.proposal import Mapped, Wanted

CONTACTS_MAPPING, ORGANIZATIONS_MAPPING = mapping.default_mappings()


def info(name: str, *columns: str | tuple[str, str], key: str = "id") -> catalog.TableInfo:
    """A table: plain names are text columns; (name, type) gives another type; the key is an
    integer primary key; the four sync columns are added."""
    found = {key: catalog.ColumnInfo(key, "integer", "integer", None, not_null=True, unique=True)}
    for column in (*columns, "sync_enabled", "sync_direction", "monday_id", "sync_status"):
        column_name, type_ = column if isinstance(column, tuple) else (column, "text")
        labels = ("a", "b") if type_ == "enum" else None
        base = "text" if type_ == "enum" else type_
        found[column_name] = catalog.ColumnInfo(column_name, type_, base, labels)
    return catalog.TableInfo(name, name, found)


def board(*columns: tuple[str, ...], name: str = "Contacts") -> BoardInfo:
    """A board with its name column and (id, title, type[, "archived"]) columns."""
    found = {"name": BoardColumn("name", "Name", "name", False)}
    for column_id, title, type_, *archived in columns:
        found[column_id] = BoardColumn(column_id, title, type_, bool(archived))
    return BoardInfo("1234567890", name, "active", found)


CONTACTS = info("contacts", "first_name", "last_name", "email", "phone", "role_title", "notes")
ORGANIZATIONS = info(
    "organizations", "name", "notes", "address_line1", "address_line2", "city", "state",
    "postal_code", "country",
)  # fmt: skip
MONDAY_MADE = board(
    ("email_mkx1a2b3", "Email", "email"),
    ("phone_mkx4c5d6", "Phone", "phone"),
    ("text_mkx7e8f9", "Role title", "text"),
    ("long_text_mkxg1h2", "Notes", "long_text"),
)


def columns(found: proposal.Proposal) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(m.column.id, m.column.type, m.column.sources) for m in found.columns]


# --- matching -------------------------------------------------------------------------------


def test_columns_with_monday_made_ids_are_matched_by_title() -> None:
    found = proposal.propose(CONTACTS, MONDAY_MADE)
    assert columns(found) == [
        ("email_mkx1a2b3", "email", ("email",)),
        ("phone_mkx4c5d6", "phone", ("phone",)),
        ("text_mkx7e8f9", "text", ("role_title",)),
        ("long_text_mkxg1h2", "long_text", ("notes",)),
    ]
    assert [m.title for m in found.columns] == ["Email", "Phone", "Role title", "Notes"]
    assert (found.key, found.name) == ("id", "{first_name} {last_name}")
    # No text column for the key: wanted, and said so.
    assert (found.npd_id, found.wanted) == (None, (Wanted("npd_id", "text", ()),))
    assert found.npd_id_wanted
    assert found.notes == ()


def test_the_configured_mapping_is_kept_where_the_board_has_its_columns() -> None:
    # The emulator's board for the built-in mapping: ids are the mapping's, titles too.
    emulator_board = board(
        ("email", "email", "email"), ("phone", "phone", "phone"), ("text", "text", "text"),
        ("long_text", "long_text", "long_text"), ("npd_id", "npd_id", "text"),
    )  # fmt: skip
    found = proposal.propose(CONTACTS, emulator_board, CONTACTS_MAPPING)
    assert tuple(m.column for m in found.columns) == CONTACTS_MAPPING.columns
    assert (found.npd_id, found.wanted, found.notes) == ("npd_id", (), ())
    assert found.name == CONTACTS_MAPPING.name_template


def test_a_configured_joined_column_is_found_by_its_title() -> None:
    monday = board(("long_text_mk1", "Notes", "long_text"), ("text_mk2", "Address", "text"),
                   ("text_mk3", "npd_id", "text"), name="Organizations")  # fmt: skip
    found = proposal.propose(ORGANIZATIONS, monday, ORGANIZATIONS_MAPPING)
    [notes, address] = found.columns
    assert notes.column == mapping.Column("long_text_mk1", "long_text", ("notes",))
    assert address.column == mapping.Column(
        "text_mk2", "text", ORGANIZATIONS_MAPPING.columns[1].sources, separator=", "
    )
    assert (found.npd_id, found.name, found.wanted, found.notes) == ("text_mk3", "{name}", (), ())


def test_what_the_configured_mapping_needs_and_the_board_lacks_is_wanted() -> None:
    found = proposal.propose(ORGANIZATIONS, board(name="Organizations"), ORGANIZATIONS_MAPPING)
    assert found.columns == ()
    assert found.wanted == (
        Wanted("npd_id", "text", ()),
        Wanted("Notes", "long_text", ("notes",)),
        Wanted("Address", "text", ORGANIZATIONS_MAPPING.columns[1].sources, ", "),
    )
    # Their columns are not noted as unmatched as well: the wanted line says it.
    assert found.notes == ()


@pytest.mark.parametrize(
    ("column", "table_column", "note"),
    [
        (("numbers_mk1", "Phone", "numbers"), "phone",
         'board column "Phone" (numbers, id numbers_mk1): table column phone is text, which a '
         "numbers column cannot take"),
        (("person", "Owner", "people"), "owner",
         'board column "Owner" (people, id person): npd-sync does not write people columns'),
        (("text_mk9", "Fax", "text", "archived"), "fax",
         'board column "Fax" (text, id text_mk9): archived'),
        (("text_mk8", "Region", "text"), "country",
         'board column "Region" (text, id text_mk8): no table column is named like it'),
    ],
)  # fmt: skip
def test_every_board_column_left_unmatched_is_noted_with_why(
    column: tuple[str, ...], table_column: str, note: str
) -> None:
    table = info("things", "name", table_column)
    found = proposal.propose(table, board(column, ("npd_id", "npd_id", "text")))
    assert found.columns == ()
    assert found.notes == (
        note,
        f"table column {table_column} (text): no board column titled like it takes it",
    )


@pytest.mark.parametrize(
    ("table_type", "monday_type", "fits"),
    [
        ("text", "email", True), ("character varying", "phone", True), ("citext", "link", True),
        ("integer", "email", False), ("integer", "numbers", True), ("numeric", "numbers", True),
        ("text", "numbers", False), ("date", "date", True),
        ("timestamp with time zone", "date", True), ("text", "date", False),
        ("enum", "status", True), ("text", "dropdown", True), ("integer", "status", False),
        ("boolean", "text", True), ("jsonb", "text", False), ("text[]", "long_text", False),
    ],
)  # fmt: skip
def test_a_table_column_fits_a_board_column_by_type(
    table_type: str, monday_type: str, fits: bool
) -> None:
    table = info("things", ("value", table_type))
    assert proposal.fits(table.columns["value"], monday_type) is fits


def test_titles_match_whatever_their_case_spacing_and_punctuation() -> None:
    table = info("contacts", "first_name", "last_name", "email", "role_title")
    monday = board(("a", "E-mail", "email"), ("b", "ROLE TITLE", "text"),
                   ("c", "npd id", "text"))  # fmt: skip
    found = proposal.propose(table, monday)
    assert columns(found) == [("a", "email", ("email",)), ("b", "text", ("role_title",))]
    assert found.npd_id == "c"


def test_one_table_column_feeds_one_board_column_the_first_by_board_order() -> None:
    table = info("contacts", "first_name", "last_name", "email")
    found = proposal.propose(table, board(("e1", "Email", "email"), ("e2", "email", "text")))
    assert columns(found) == [("e1", "email", ("email",))]
    assert found.notes == (
        'board column "email" (text, id e2): table column email feeds column e1 already',
    )


# --- the name and the key ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "name_title", "template"),
    [
        (info("t", "first_name", "last_name", "name"), "Name", "{first_name} {last_name}"),
        (info("t", "title", "name"), "Name", "{name}"),
        (info("t", "deal", "title"), "Deal", "{deal}"),
        (info("t", "subject"), "Item", "{subject}"),
        (info("t", ("name", "jsonb")), "Name", "{id}"),
        (info("t", "notes"), "Name", "{id}"),
    ],
)
def test_the_item_name_is_proposed_from_the_table(
    table: catalog.TableInfo, name_title: str, template: str
) -> None:
    monday = BoardInfo("1", "b", "active", {"name": BoardColumn("name", name_title, "name", False)})
    assert proposal.name_template(table, monday, "id") == template


def test_the_key_is_the_configured_one_else_id_else_a_unique_not_null_column() -> None:
    assert proposal.key_column(CONTACTS, mapping.TableMapping("contacts", key_column="x")) == "x"
    assert proposal.key_column(CONTACTS, None) == "id"
    assert proposal.key_column(info("t", "name", key="code"), None) == "code"
    loose = catalog.TableInfo("t", "t", {"code": catalog.ColumnInfo("code", "text", "text", None)})
    assert proposal.key_column(loose, None) == "id"  # which check and install then ask for


# --- the file ---------------------------------------------------------------------------------


def load(text: str, tmp_path: Path) -> settings.Settings:
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return settings.load(environ={"NPD_SYNC_CONFIG": str(path)})


def test_the_file_reads_back_as_the_mapping_proposed(tmp_path: Path) -> None:
    made = {Wanted("npd_id", "text", ()): BoardColumn("text_mkzz", "npd_id", "text", False)}
    contacts = proposal.with_created(proposal.propose(CONTACTS, MONDAY_MADE), made)
    organizations = proposal.propose(
        ORGANIZATIONS,
        board(("text_mk2", "Address", "text"), ("npd_id", "npd_id", "text"), name="Orgs"),
        ORGANIZATIONS_MAPPING,
    )
    text = proposal.render([contacts, organizations], {"batch_size": 50, "plan": "standard"})
    loaded = load(text, tmp_path)
    assert loaded.table("contacts") == mapping.TableMapping(
        table="contacts",
        board_id="1234567890",
        key_column="id",
        name_template="{first_name} {last_name}",
        columns=tuple(m.column for m in contacts.columns),
        npd_id_column="text_mkzz",
    )
    assert loaded.table("organizations").columns == (
        mapping.Column("text_mk2", "text", ORGANIZATIONS_MAPPING.columns[1].sources, ", "),
    )
    assert (loaded.tuning.batch_size, loaded.tuning.plan) == (50, "standard")
    # What the organizations board lacks is said in a comment.
    assert "# - notes: the configured mapping sends it to a long_text column" in text
    assert "title" not in tomllib.loads(text)["tables"]["contacts"]


def test_a_board_without_an_npd_id_column_is_said_in_the_file(tmp_path: Path) -> None:
    text = proposal.render([proposal.propose(CONTACTS, MONDAY_MADE)])
    assert "# The board has no text column for the row's key" in text
    assert load(text, tmp_path).table("contacts").npd_id_column == "npd_id"


def test_options_of_the_configured_mapping_are_carried_over(tmp_path: Path) -> None:
    configured = mapping.TableMapping(
        "contacts", name_template="{email}", npd_id_column=None, on_delete="delete",
        conflict="npd_wins", create_labels=True,
    )  # fmt: skip
    text = proposal.render([proposal.propose(CONTACTS, MONDAY_MADE, configured)])
    table = load(text, tmp_path).table("contacts")
    assert (table.on_delete, table.conflict, table.create_labels) == ("delete", "npd_wins", True)
    assert (table.name_template, table.npd_id_column) == ("{email}", "")


def test_titles_and_names_from_outside_stay_inside_their_strings_and_comments(
    tmp_path: Path,
) -> None:
    hostile = 'Email"]\n[tables.evil]\nname = "x'
    table = info("public.contacts", "first_name", "last_name", "email", "role", 'we"ird')
    monday = board(("email_mk1", hostile, "email"), ("x]\n[y", "ro\u007fle\n#", "text"),
                   ("text_mk3", "npd_id", "text"), name="Bo\nard")  # fmt: skip
    found = proposal.propose(table, monday)
    text = proposal.render([found])
    data = tomllib.loads(text)
    assert list(data["tables"]) == ["public.contacts"]
    [loaded] = load(text, tmp_path).tables
    assert loaded.table == "public.contacts"
    assert [(c.id, c.sources) for c in loaded.columns] == [("x]\n[y", ("role",))]
    assert found.notes[-1] == (
        'table column "we\\"ird": a mapping file names columns with letters, digits, _ and $ only'
    )
    assert "email_mk1" not in data["tables"]["public.contacts"]["columns"]


def test_with_created_maps_what_was_made() -> None:
    found = proposal.propose(ORGANIZATIONS, board(name="Orgs"), ORGANIZATIONS_MAPPING)
    made = {
        w: BoardColumn(f"{w.type}_mk{i}", w.title, w.type, False)
        for i, w in enumerate(found.wanted)
    }
    done = proposal.with_created(found, made)
    assert done.wanted == ()
    assert done.npd_id == "text_mk0"
    assert [(m.title, m.column.id) for m in done.columns] == [
        ("Notes", "long_text_mk1"), ("Address", "text_mk2"),
    ]  # fmt: skip
    assert done.columns[1] == Mapped(
        mapping.Column("text_mk2", "text", ORGANIZATIONS_MAPPING.columns[1].sources, ", "),
        "Address",
    )
