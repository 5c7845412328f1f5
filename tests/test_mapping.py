"""listener.mapping: what a row becomes on a board (pure; no database, no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from listener import mapping
from listener.mapping import Column, MappingError, TableMapping

CONTACTS, ORGANIZATIONS = mapping.default_mappings()

FULL_CONTACT = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "phone": "+44 20 7946 0958",
    "role_title": "Countess",
    "notes": "First programmer",
}
MINIMAL_CONTACT: dict[str, str | None] = {
    "first_name": "Ada",
    "last_name": None,
    "email": None,
    "phone": None,
    "role_title": None,
    "notes": None,
}
FULL_ORGANIZATION = {
    "name": "Analytical Engines Ltd",
    "notes": "Makes engines",
    "address_line1": "1 Babbage Way",
    "address_line2": "Suite 2",
    "city": "London",
    "state": "Greater London",
    "postal_code": "N1 9GU",
    "country": "UK",
}
MINIMAL_ORGANIZATION: dict[str, str | None] = {
    "name": "Analytical Engines Ltd",
    **dict.fromkeys(
        ["notes", "address_line1", "address_line2", "city", "state", "postal_code", "country"]
    ),
}


def col(type_: Any, *sources: str, **kwargs: Any) -> Column:
    return Column("c", type_, sources or ("v",), **kwargs)


# --- the default mapping ----------------------------------------------------------------


def test_default_mappings_are_contract_md_exactly() -> None:
    assert mapping.default_mappings() == (
        TableMapping(
            table="contacts",
            board_id=None,
            key_column="id",
            name_template="{first_name} {last_name}",
            columns=(
                Column("email", "email", ("email",)),
                Column("phone", "phone", ("phone",)),
                Column("text", "text", ("role_title",)),
                Column("long_text", "long_text", ("notes",)),
            ),
            npd_id_column="npd_id",
            on_delete="archive",
        ),
        TableMapping(
            table="organizations",
            board_id=None,
            key_column="id",
            name_template="{name}",
            columns=(
                Column("long_text", "long_text", ("notes",)),
                Column(
                    "address",
                    "text",
                    (
                        "address_line1",
                        "address_line2",
                        "city",
                        "state",
                        "postal_code",
                        "country",
                    ),
                    separator=", ",
                ),
            ),
            npd_id_column="npd_id",
            on_delete="archive",
        ),
    )


def test_source_columns_of_the_defaults() -> None:
    assert CONTACTS.source_columns == (
        "first_name",
        "last_name",
        "email",
        "phone",
        "role_title",
        "notes",
    )
    assert ORGANIZATIONS.source_columns == (
        "name",
        "notes",
        "address_line1",
        "address_line2",
        "city",
        "state",
        "postal_code",
        "country",
    )


def test_source_columns_keep_first_appearance_order_without_repeats() -> None:
    table = TableMapping(
        "t",
        name_template="{email} ({email})",
        columns=(
            Column("a", "text", ("notes", "email")),
            Column("b", "email", ("email",)),
            Column("c", "text", ("city", "notes")),
        ),
    )
    assert table.name_fields == ("email", "email")
    assert table.source_columns == ("email", "notes", "city")


@pytest.mark.parametrize(
    ("table", "env"),
    [
        ("contacts", "MONDAY_CONTACTS_BOARD_ID"),
        ("organizations", "MONDAY_ORGANIZATIONS_BOARD_ID"),
        ("public.contacts", "MONDAY_CONTACTS_BOARD_ID"),
        ("crm.sales_leads", "MONDAY_SALES_LEADS_BOARD_ID"),
        ("Widgets$2", "MONDAY_WIDGETS_2_BOARD_ID"),
    ],
)
def test_board_env(table: str, env: str) -> None:
    assert TableMapping(table).board_env == env


# --- is_syncable: all four directions, NULLs ------------------------------------------------


@pytest.mark.parametrize(
    ("enabled", "direction", "pushed"),
    [
        (True, "BIDIRECTIONAL", True),
        (True, "NPD_TO_MONDAY", True),
        (True, "MONDAY_TO_NPD", False),
        (True, "NONE", False),
        (True, None, False),  # NULL direction counts as NONE
        (False, "BIDIRECTIONAL", False),
        (False, "NPD_TO_MONDAY", False),
        (None, "BIDIRECTIONAL", False),  # NULL enabled counts as false
        (None, "NPD_TO_MONDAY", False),
        (None, None, False),
        (False, None, False),
    ],
)
def test_is_syncable(enabled: bool | None, direction: str | None, pushed: bool) -> None:
    assert mapping.is_syncable(enabled, direction) is pushed


# --- item_name ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last", "name"),
    [
        ("Ada", "Lovelace", "Ada Lovelace"),
        ("  Ada ", " Lovelace  ", "Ada Lovelace"),
        ("Ada", None, "Ada"),
        (None, "Lovelace", "Lovelace"),
        ("Ada", "", "Ada"),
        ("Ada \n", "\tLovelace", "Ada Lovelace"),
        (None, None, "contacts #7"),
        ("", "   ", "contacts #7"),
    ],
)
def test_contact_item_name_is_first_and_last_name_trimmed(
    first: str | None, last: str | None, name: str
) -> None:
    assert mapping.item_name({"first_name": first, "last_name": last}, CONTACTS, "7") == name


def test_organization_item_name_is_the_name_or_the_fallback() -> None:
    assert mapping.item_name(FULL_ORGANIZATION, ORGANIZATIONS, "3") == "Analytical Engines Ltd"
    assert mapping.item_name({"name": None}, ORGANIZATIONS, "3") == "organizations #3"
    assert mapping.item_name({}, ORGANIZATIONS, "3") == "organizations #3"


def test_empty_name_fallback_uses_the_bare_table_name() -> None:
    table = TableMapping("crm.people", name_template="{nick}")
    assert mapping.item_name({"nick": " "}, table, "9b2f") == "people #9b2f"


@pytest.mark.parametrize("length", [1, 254, 255])
def test_names_up_to_255_characters_are_kept(length: int) -> None:
    name = "x" * length
    assert mapping.item_name({"name": name}, ORGANIZATIONS, "1") == name


@pytest.mark.parametrize("length", [256, 300, 5000])
def test_longer_names_are_cut_to_255_with_an_ellipsis(length: int) -> None:
    name = "".join(str(i % 10) for i in range(length))
    result = mapping.item_name({"name": name}, ORGANIZATIONS, "1")
    assert len(result) == mapping.ITEM_NAME_MAX == 255
    assert result == name[:254] + "…"


# --- column_value, per type --------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "row", "value"),
    [
        # text, one source and several joined by the separator, blanks skipped
        (col("text"), {"v": "hello"}, "hello"),
        (col("text"), {"v": "  padded  "}, "padded"),
        (col("text", "a", "b", "c"), {"a": "x", "b": "y", "c": "z"}, "x y z"),
        (
            col("text", "a", "b", "c", separator=", "),
            {"a": "1 Way", "b": "  ", "c": "London"},
            "1 Way, London",
        ),
        # long_text
        (col("long_text"), {"v": "line1\nline2"}, {"text": "line1\nline2"}),
        # email: both keys, the address as its text
        (col("email"), {"v": "a@b.com"}, {"email": "a@b.com", "text": "a@b.com"}),
        # numbers travel as strings
        (col("numbers"), {"v": "3"}, "3"),
        (col("numbers"), {"v": "-1.5"}, "-1.5"),
        (col("numbers"), {"v": " 42 "}, "42"),
        # date in PostgreSQL's text forms; time only when there is one (UTC)
        (col("date"), {"v": "2026-06-15"}, {"date": "2026-06-15"}),
        (col("date"), {"v": "2026-06-15 09:00:00+00"}, {"date": "2026-06-15", "time": "09:00:00"}),
        (
            col("date"),
            {"v": "2026-06-15 09:00:00.123456+00"},
            {"date": "2026-06-15", "time": "09:00:00"},
        ),
        (col("date"), {"v": "2026-06-15T23:59:59"}, {"date": "2026-06-15", "time": "23:59:59"}),
        # link: a scheme is added when missing, the text is what the row holds
        (
            col("link"),
            {"v": "https://example.com/a"},
            {"url": "https://example.com/a", "text": "https://example.com/a"},
        ),
        (col("link"), {"v": "HTTP://x.io"}, {"url": "HTTP://x.io", "text": "HTTP://x.io"}),
        (col("link"), {"v": "example.com"}, {"url": "https://example.com", "text": "example.com"}),
        # status by label
        (col("status"), {"v": "Done"}, {"label": "Done"}),
        # dropdown: comma-separated labels, trimmed, empties dropped
        (col("dropdown"), {"v": "A, B,,C "}, {"labels": ["A", "B", "C"]}),
        (col("dropdown"), {"v": "Only"}, {"labels": ["Only"]}),
        (
            col("dropdown", "a", "b", separator=","),
            {"a": "Red", "b": "Blue"},
            {"labels": ["Red", "Blue"]},
        ),
    ],
)
def test_column_value(column: Column, row: dict[str, str], value: Any) -> None:
    assert mapping.column_value(column, row) == value


@pytest.mark.parametrize("type_", mapping.COLUMN_TYPES)
@pytest.mark.parametrize("row", [{}, {"v": None}, {"v": ""}, {"v": "   "}])
def test_an_empty_value_is_none_for_every_type(type_: Any, row: dict[str, str | None]) -> None:
    assert mapping.column_value(col(type_), row) is None


@pytest.mark.parametrize("length", [1999, 2000])
def test_long_text_up_to_2000_characters_is_kept(length: int) -> None:
    text = "a" * length
    assert mapping.column_value(col("long_text"), {"v": text}) == {"text": text}


@pytest.mark.parametrize("length", [2001, 10_000])
def test_long_text_is_cut_to_2000_with_an_ellipsis(length: int) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(length))
    value = mapping.column_value(col("long_text"), {"v": text})
    assert len(value["text"]) == mapping.LONG_TEXT_MAX == 2000
    assert value == {"text": text[:1999] + "…"}


@pytest.mark.parametrize(
    ("raw", "default_country", "phone", "country"),
    [
        ("+14155552671", None, "+14155552671", "US"),
        ("+1 (415) 555-2671", None, "+14155552671", "US"),
        ("+44 20 7946 0958", None, "+442079460958", "GB"),
        ("+49 30 1234567", None, "+49301234567", "DE"),
        # a +number's own country wins over default_country
        ("+44 20 7946 0958", "US", "+442079460958", "GB"),
        # national numbers take default_country, whatever its case
        ("(415) 555-2671", "US", "+14155552671", "US"),
        ("030 1234567", "de", "+49301234567", "DE"),
        ("020 7946 0958", "GB", "+442079460958", "GB"),
    ],
)
def test_phone_country_is_derived(
    raw: str, default_country: str | None, phone: str, country: str
) -> None:
    column = Column("phone", "phone", ("phone",), default_country=default_country)
    assert mapping.column_value(column, {"phone": raw}) == {
        "phone": phone,
        "countryShortName": country,
    }


@pytest.mark.parametrize(
    ("raw", "default_country", "message"),
    [
        ("4155552671", None, "no +country code and no default_country"),
        ("12345", None, "no +country code and no default_country"),
        ("call me", None, "cannot be read"),
        ("call me", "US", "cannot be read"),
        ("+999 123", None, "cannot be read"),
        ("0", "DE", "cannot be read"),
        ("+800 1234 5678", None, "is not a valid number"),  # international freephone: no country
    ],
)
def test_unreadable_phone_numbers_are_mapping_errors(
    raw: str, default_country: str | None, message: str
) -> None:
    column = Column("mobile", "phone", ("phone",), default_country=default_country)
    with pytest.raises(MappingError) as caught:
        mapping.column_value(column, {"phone": raw})
    assert str(caught.value).startswith("column mobile: phone ")
    assert repr(raw) in str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize("raw", ["abc", "1,5", "3 apples", "--1"])
def test_a_non_number_is_a_mapping_error(raw: str) -> None:
    with pytest.raises(MappingError, match=r"^column c: .* is not a number$"):
        mapping.column_value(col("numbers"), {"v": raw})


@pytest.mark.parametrize("raw", ["15/06/2026", "June 15", "2026-6-15", "tomorrow"])
def test_a_non_date_is_a_mapping_error(raw: str) -> None:
    with pytest.raises(MappingError, match=r"^column c: .* is not a date$"):
        mapping.column_value(col("date"), {"v": raw})


def test_mapping_error_is_a_value_error() -> None:
    # Callers that only know ValueError still catch it.
    assert issubclass(MappingError, ValueError)


# --- column_values: whole rows, create vs update ---------------------------------------------

FULL_CONTACT_VALUES = {
    "email": {"email": "ada@example.com", "text": "ada@example.com"},
    "phone": {"phone": "+442079460958", "countryShortName": "GB"},
    "text": "Countess",
    "long_text": {"text": "First programmer"},
    "npd_id": "7",
}


def test_full_contact() -> None:
    assert mapping.item_name(FULL_CONTACT, CONTACTS, "7") == "Ada Lovelace"
    assert mapping.column_values(FULL_CONTACT, CONTACTS, "7") == FULL_CONTACT_VALUES


def test_minimal_contact_has_empty_columns_as_none() -> None:
    assert mapping.item_name(MINIMAL_CONTACT, CONTACTS, "7") == "Ada"
    assert mapping.column_values(MINIMAL_CONTACT, CONTACTS, "7") == {
        "email": None,
        "phone": None,
        "text": None,
        "long_text": None,
        "npd_id": "7",
    }


def test_full_organization() -> None:
    assert mapping.item_name(FULL_ORGANIZATION, ORGANIZATIONS, "3") == "Analytical Engines Ltd"
    assert mapping.column_values(FULL_ORGANIZATION, ORGANIZATIONS, "3") == {
        "long_text": {"text": "Makes engines"},
        "address": "1 Babbage Way, Suite 2, London, Greater London, N1 9GU, UK",
        "npd_id": "3",
    }


def test_organization_address_skips_empty_parts() -> None:
    row = {**FULL_ORGANIZATION, "address_line2": None, "state": "  "}
    values = mapping.column_values(row, ORGANIZATIONS, "3")
    assert values["address"] == "1 Babbage Way, London, N1 9GU, UK"


def test_minimal_organization() -> None:
    assert mapping.column_values(MINIMAL_ORGANIZATION, ORGANIZATIONS, "3") == {
        "long_text": None,
        "address": None,
        "npd_id": "3",
    }


def test_the_primary_key_goes_to_npd_id_as_text_and_can_be_turned_off() -> None:
    uuid = "1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    assert mapping.column_values({}, CONTACTS, uuid)["npd_id"] == uuid
    custom = TableMapping("t", npd_id_column="ext_ref")
    assert mapping.column_values({}, custom, "5") == {"ext_ref": "5"}
    assert mapping.column_values({}, TableMapping("t", npd_id_column=None), "5") == {}


def test_an_unreadable_value_fails_the_whole_row() -> None:
    row = {**FULL_CONTACT, "phone": "not a phone"}
    with pytest.raises(MappingError, match="column phone"):
        mapping.column_values(row, CONTACTS, "7")


# --- back from Monday: a pushed value comes back as the same value -------------------------

ROUND_TRIP = [
    ("text", "Countess"),
    ("long_text", "First programmer\nand more"),
    ("email", "ada@example.com"),
    ("phone", "+44 20 7946 0958"),
    ("numbers", "3.50"),
    ("date", "2026-06-15"),
    ("date", "2026-06-15 09:30:00+00"),
    ("link", "example.com/ada"),
    ("link", "https://example.com/ada"),
    ("status", "Done"),
    ("dropdown", "Red, Blue"),
]


@pytest.mark.parametrize(("kind", "text"), ROUND_TRIP)
def test_a_value_pushed_and_read_back_is_the_same_value(kind: str, text: str) -> None:
    # Monday stores what was sent (status and dropdown as ids, shown as labels in `text`);
    # reading it back must give the value npd-sync sent, or every push would echo.
    column = mapping.Column("c", kind, ("src",))  # type: ignore[arg-type]
    sent = mapping.column_value(column, {"src": text})
    stored = {**sent, "changed_at": "2026-11-28T10:00:00Z"} if isinstance(sent, dict) else sent
    shown = {"status": "Done", "dropdown": "Red, Blue"}.get(kind, text)
    back = mapping.from_monday(column, json.dumps(stored), shown)
    assert mapping.column_value(column, {"src": back}) == sent


def test_a_phone_typed_in_national_form_comes_back_in_e164() -> None:
    column = mapping.Column("p", "phone", ("phone",))
    stored = json.dumps({"phone": "020 7946 0958", "countryShortName": "GB"})
    assert mapping.from_monday(column, stored, "020 7946 0958") == "+442079460958"


@pytest.mark.parametrize(("value", "text"), [(None, ""), (None, None), ('""', ""), ("{}", "")])
def test_an_empty_column_comes_back_as_none(value: str | None, text: str | None) -> None:
    for kind in ("text", "long_text", "email", "phone", "numbers", "date", "link"):
        column = mapping.Column("c", kind, ("src",))  # type: ignore[arg-type]
        assert mapping.from_monday(column, value, text) is None, kind


@pytest.mark.parametrize(
    ("template", "name", "expected"),
    [
        ("{name}", "Initech  Ltd ", {"name": "Initech Ltd"}),
        ("{first_name} {last_name}", "Ada", {"first_name": "Ada", "last_name": None}),
        (
            "{first_name} {last_name}",
            "Ada  King Lovelace",
            {"first_name": "Ada", "last_name": "King Lovelace"},
        ),
        ("{last_name}, {first_name}", "Lovelace, Ada", None),
        ("{a}{b}", "x", None),
        ("Contact {a}", "Contact x", None),
    ],
)
def test_the_name_flows_back_only_through_a_template_that_splits(
    template: str, name: str, expected: dict[str, str | None] | None
) -> None:
    assert mapping.name_to_row(TableMapping("t", name_template=template), name) == expected
