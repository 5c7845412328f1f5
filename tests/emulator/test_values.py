"""Column values checked and rendered as Monday does (pure functions, no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator import values
from emulator.errors import ApiError, ColumnValueError
from emulator.model import Column, ColumnType


def column(column_type: ColumnType, settings: dict[str, Any] | None = None) -> Column:
    return Column(
        f"{column_type}_col",
        column_type,
        column_type,
        values.default_settings(column_type) if settings is None else settings,
    )


VALID = [
    ("text", "hello", "hello", "hello"),
    ("long_text", {"text": "line1\nline2"}, {"text": "line1\nline2"}, "line1\nline2"),
    ("long_text", {"text": "x" * 2000}, {"text": "x" * 2000}, "x" * 2000),
    (
        "email",
        {"email": "a@b.com", "text": "Main"},
        {"email": "a@b.com", "text": "Main"},
        "a@b.com",
    ),
    (
        "phone",
        {"phone": "+12025550169", "countryShortName": "US"},
        {"phone": "+12025550169", "countryShortName": "US"},
        "+12025550169",
    ),
    (
        "phone",
        {"phone": "2025550169", "countryShortName": "US"},
        {"phone": "2025550169", "countryShortName": "US"},
        "2025550169",
    ),
    ("numbers", "3", "3", "3"),
    ("numbers", "-2.5", "-2.5", "-2.5"),
    ("numbers", 7, "7", "7"),
    ("date", {"date": "2026-06-15"}, {"date": "2026-06-15"}, "2026-06-15"),
    (
        "date",
        {"date": "2026-06-15", "time": "09:00:00"},
        {"date": "2026-06-15", "time": "09:00:00"},
        "2026-06-15 09:00:00",
    ),
    (
        "link",
        {"url": "https://x.com", "text": "X"},
        {"url": "https://x.com", "text": "X"},
        "X - https://x.com",
    ),
    ("link", {"url": "http://x.com"}, {"url": "http://x.com"}, "http://x.com"),
    ("status", {"label": "Done"}, {"index": 1}, "Done"),
    ("status", {"index": 2}, {"index": 2}, "Stuck"),
]


@pytest.mark.parametrize(("column_type", "sent", "stored", "shown"), VALID)
def test_valid_values_are_stored_and_shown_as_monday_does(
    column_type: ColumnType, sent: Any, stored: Any, shown: str
) -> None:
    col = column(column_type)
    write = values.convert(col, sent)
    assert write.value == stored
    assert write.settings is None
    assert values.text(col, write.value) == shown


INVALID = [
    ("text", 5, "must be a string"),
    ("text", {"text": "x"}, "must be a string"),
    ("long_text", "plain", "expected a JSON object"),
    ("long_text", {"text": "x" * 2001}, "longer than 2000"),
    ("email", {"email": "not-an-address", "text": "x"}, "not a valid email"),
    ("email", {"email": "a@b.com"}, "text must be a string"),
    ("email", "a@b.com", "expected a JSON object"),
    ("phone", {"phone": "+12025550169", "countryShortName": "us"}, "uppercase ISO"),
    ("phone", {"phone": "+12025550169", "countryShortName": "GB"}, "not a valid GB number"),
    ("phone", {"phone": "12345", "countryShortName": "US"}, "not a valid US number"),
    ("phone", {"phone": "+12025550169"}, "countryShortName must be a string"),
    ("numbers", "abc", "numbers need a string holding a number"),
    ("numbers", "nan", "numbers need a string holding a number"),
    ("numbers", True, "numbers need a string holding a number"),
    ("date", {"date": "15/06/2026"}, "date must be YYYY-MM-DD"),
    ("date", {"date": "2026-02-30"}, "date must be YYYY-MM-DD"),
    ("date", {"date": "2026-06-15", "time": "25:00:00"}, "date must be YYYY-MM-DD"),
    ("link", {"url": "x.com", "text": "X"}, "must start with http"),
    ("status", {"label": "Nope"}, "label does not exist"),
    ("status", {"index": 99}, "index does not exist"),
    ("status", {"color": "red"}, "expected"),
    ("dropdown", {"labels": ["Nope"]}, "label does not exist"),
    ("dropdown", {"labels": ["A"], "ids": [1]}, "cannot be mixed"),
    ("dropdown", {"ids": [42]}, "id does not exist"),
]


@pytest.mark.parametrize(("column_type", "sent", "reason"), INVALID)
def test_invalid_values_raise_column_value_exception(
    column_type: ColumnType, sent: Any, reason: str
) -> None:
    col = column(column_type)
    with pytest.raises(ColumnValueError) as caught:
        values.convert(col, sent)
    error = caught.value
    assert reason in error.message
    assert error.extensions == {
        "code": "ColumnValueException",
        "status_code": 200,
        "error_data": {"column_type": column_type, "column_id": col.id},
    }


@pytest.mark.parametrize("empty", [None, "", {}])
@pytest.mark.parametrize("column_type", ["text", "email", "status", "dropdown", "date"])
def test_empty_values_clear(column_type: ColumnType, empty: Any) -> None:
    assert values.convert(column(column_type), empty).value is None


@pytest.mark.parametrize("name", ["", "x" * 256, None, 7])
def test_item_names_must_have_1_to_255_characters(name: Any) -> None:
    with pytest.raises(ApiError) as caught:
        values.check_name(name)
    assert caught.value.code == "ItemNameTooLongException"


def test_name_column_cannot_be_cleared() -> None:
    assert values.convert(column("name", {}), "x" * 255).value == "x" * 255
    with pytest.raises(ApiError, match="between 1 and 255"):
        values.convert(column("name", {}), "")


def test_status_label_is_created_only_when_asked() -> None:
    col = column("status")
    write = values.convert(col, {"label": "Blocked"}, create_labels=True)
    assert write.value == {"index": 3}
    assert write.settings is not None
    assert write.settings["labels"][-1] == {"id": 3, "index": 3, "label": "Blocked"}
    assert col.settings == values.default_settings("status")  # not changed in place


def test_status_has_at_most_40_labels() -> None:
    labels = [{"id": i, "index": i, "label": f"L{i}"} for i in range(40)]
    with pytest.raises(ColumnValueError, match="more than 40"):
        values.convert(column("status", {"labels": labels}), {"label": "new"}, create_labels=True)


def test_dropdown_labels_by_name_or_id_and_created_when_asked() -> None:
    col = column("dropdown", {"labels": [{"id": 1, "name": "A"}, {"id": 2, "name": "B"}]})
    assert values.convert(col, {"labels": ["B", "A"]}).value == {"ids": [2, 1]}
    assert values.convert(col, {"ids": [1]}).value == {"ids": [1]}
    assert values.convert(col, {"labels": []}).value is None
    write = values.convert(col, {"labels": ["A", "C"]}, create_labels=True)
    assert write.value == {"ids": [1, 3]}
    assert write.settings == {"labels": [*col.settings["labels"], {"id": 3, "name": "C"}]}
    assert values.text(Column("d", "d", "dropdown", write.settings), write.value) == "A, C"


SIMPLE = [
    ("text", "hello", "hello"),
    ("long_text", "a\nb", {"text": "a\nb"}),
    ("email", "a@b.com Main office", {"email": "a@b.com", "text": "Main office"}),
    ("email", "a@b.com", {"email": "a@b.com", "text": "a@b.com"}),
    ("phone", "+12025550169 US", {"phone": "+12025550169", "countryShortName": "US"}),
    ("link", "https://x.com X", {"url": "https://x.com", "text": "X"}),
    ("numbers", "3", "3"),
    ("date", "2026-06-15 09:00:00", {"date": "2026-06-15", "time": "09:00:00"}),
    ("status", "Done", {"index": 1}),
    ("status", "2", {"index": 2}),
]


@pytest.mark.parametrize(("column_type", "sent", "stored"), SIMPLE)
def test_simple_strings(column_type: ColumnType, sent: str, stored: Any) -> None:
    assert values.convert_simple(column(column_type), sent).value == stored


def test_simple_link_needs_a_text() -> None:
    with pytest.raises(ColumnValueError, match="url text"):
        values.convert_simple(column("link"), "https://x.com")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{bad", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"text": "x"}, "must be a JSON-encoded string"),
    ],
)
def test_column_values_must_be_a_json_encoded_object(raw: object, message: str) -> None:
    with pytest.raises(ApiError, match=message) as caught:
        values.parse_object(raw, "column_values")
    assert caught.value.code == "JsonParseException"


def test_search_keys_ignore_case_only_for_text() -> None:
    assert values.search_key("text", "ACME Inc") == values.search_key("text", "acme inc")
    assert values.search_key("email", "A@B.com") != values.search_key("email", "a@b.com")


def test_create_column_defaults_give_labels() -> None:
    assert values.settings_from_defaults("status", {"labels": {"1": "Done", "7": "Late"}}) == {
        "labels": [{"id": 1, "index": 0, "label": "Done"}, {"id": 7, "index": 1, "label": "Late"}]
    }
    assert values.settings_from_defaults("dropdown", {"labels": ["A", {"name": "B"}]}) == {
        "labels": [{"id": 1, "name": "A"}, {"id": 2, "name": "B"}]
    }


@pytest.mark.parametrize("labels", [{"x": "Done"}, "Done"])
def test_create_column_defaults_are_checked(labels: object) -> None:
    with pytest.raises(ApiError) as caught:
        values.settings_from_defaults("status", {"labels": labels})
    assert caught.value.code == "InvalidArgumentException"
