"""Column values the way Monday checks and renders them (developer.monday.com, column types).

Pure functions over `model.Column`: `convert` turns what a mutation sends into the
stored value (or raises ColumnValueError), `text` renders a stored value, and
`search_key` is what items_page_by_column_values compares.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers

from emulator import errors
from emulator.errors import ColumnValueError
from emulator.model import Column, Stored

ITEM_NAME_MAX = 255
LONG_TEXT_MAX = 2000
STATUS_LABELS_MAX = 40
DEFAULT_STATUS_LABELS = ("Working on it", "Done", "Stuck")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^\s/?#]+\S*$", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2})?$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class Write:
    """The outcome of a valid value: what to store (None clears) and new column settings."""

    value: Stored | None
    settings: dict[str, Any] | None = None


def parse_object(raw: object, argument: str) -> dict[str, Any]:
    """Decode a JSON-scalar argument, which Monday wants as a JSON-encoded object string."""
    if not isinstance(raw, str):
        raise errors.json_parse(f"{argument} must be a JSON-encoded string")
    try:
        value = json.loads(raw)
    except ValueError:
        raise errors.json_parse(f"{argument} is not valid JSON") from None
    if not isinstance(value, dict):
        raise errors.json_parse(f"{argument} must be a JSON object")
    return value


def parse_value(raw: object, argument: str) -> Any:
    """Decode change_column_value's `value`: a JSON-encoded string of any JSON value."""
    if not isinstance(raw, str):
        raise errors.json_parse(f"{argument} must be a JSON-encoded string")
    try:
        return json.loads(raw)
    except ValueError:
        raise errors.json_parse(f"{argument} is not valid JSON") from None


def check_name(name: object) -> str:
    """An item name: a string of 1-255 characters, else ItemNameTooLongException."""
    if not isinstance(name, str) or not 1 <= len(name) <= ITEM_NAME_MAX:
        raise errors.item_name_length(len(name) if isinstance(name, str) else 0)
    return name


def convert(column: Column, value: object, *, create_labels: bool = False) -> Write:
    """Check one value in the JSON form of change_multiple_column_values / create_item."""
    if column.type == "name":  # the item name cannot be cleared
        return Write(check_name(value))
    if value is None or value == "" or value == {}:
        return Write(None)
    return _CONVERTERS[column.type](column, value, create_labels)


def convert_simple(column: Column, value: str | None, *, create_labels: bool = False) -> Write:
    """Check one value in the simple-string form of change_simple_column_value."""
    if column.type == "name":
        return Write(check_name(value))
    if value is None or value == "":
        return Write(None)
    return convert(column, _from_simple(column, value), create_labels=create_labels)


def text(column: Column, stored: Stored | None) -> str:
    """ColumnValue.text: the value as Monday displays it ("" when empty).

    Connect boards show their items' names, which only the store knows: "" here (and the API
    answers null for them since 2025-04, see `resolvers.Cell`).
    """
    if stored is None:
        return ""
    match column.type:
        case "text" | "numbers" | "name":
            return str(stored)
        case "long_text":
            return str(stored["text"])
        case "email":
            return str(stored["email"])
        case "phone":
            return str(stored["phone"])
        case "date":
            return f"{stored['date']} {stored['time']}" if "time" in stored else stored["date"]
        case "link":
            url, label = stored["url"], stored.get("text")
            return f"{label} - {url}" if label else str(url)
        case "status":
            return _label_of(column, stored["index"], "label") or ""
        case "dropdown":
            return ", ".join(_label_of(column, i, "name") or "" for i in stored["ids"])
        case "board_relation":
            return ""
    raise AssertionError(column.type)  # pragma: no cover - ColumnType is exhausted


def linked_ids(stored: Stored | None) -> list[int]:
    """The item ids a connect boards value links to, in the order written."""
    if not isinstance(stored, dict):
        return []
    return [int(link["linkedPulseId"]) for link in stored.get("linkedPulseIds", ())]


def search_key(column_type: str, shown: str) -> str:
    """What a search compares: text columns match case-insensitively, the rest exactly."""
    return shown.casefold() if column_type in ("text", "name") else shown


def default_settings(column_type: str) -> dict[str, Any]:
    """Settings of a new column: status gets Monday's three default labels."""
    if column_type == "status":
        labels = [{"id": i, "index": i, "label": s} for i, s in enumerate(DEFAULT_STATUS_LABELS)]
        return {"labels": labels}
    if column_type == "dropdown":
        return {"labels": []}
    if column_type == "board_relation":  # connected to no board yet: every link is refused
        return {"allowMultipleItems": True, "allowCreateReflectionColumn": False, "boardIds": []}
    return {}


# What create_column's `defaults` may hold for a connect boards column (get_column_type_schema
# for board_relation: "additionalProperties": false). `item_ids` is in that schema without a
# word on what it does: taken, and ignored.
RELATION_SETTINGS = frozenset(
    {"boardIds", "boardId", "allowMultipleItems", "allowCreateReflectionColumn", "item_ids"}
)


def settings_from_defaults(column_type: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Settings from create_column's `defaults`: labels as {"1": "Done"} or a list; the
    connected boards of a connect boards column as {"boardIds": [...]}."""
    if column_type == "board_relation":
        return _relation_settings(defaults)
    raw = defaults.get("labels")
    if raw is None:
        return default_settings(column_type)
    if isinstance(raw, Mapping):
        if not all(str(k).isdigit() for k in raw):
            raise errors.invalid_argument("defaults.labels keys must be label ids (digits)")
        pairs = [(int(k), str(v)) for k, v in raw.items()]
    elif isinstance(raw, list):
        first = 1 if column_type == "dropdown" else 0  # Monday numbers dropdown options from 1
        pairs = [
            (i, str(v.get("label", v.get("name")) if isinstance(v, dict) else v))
            for i, v in enumerate(raw, start=first)
        ]
    else:
        raise errors.invalid_argument("defaults.labels must be an object or a list")
    if column_type == "status":
        return {"labels": [{"id": i, "index": n, "label": s} for n, (i, s) in enumerate(pairs)]}
    if column_type == "dropdown":
        return {"labels": [{"id": i, "name": s} for i, s in pairs]}
    return {}


def _relation_settings(defaults: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(defaults) - RELATION_SETTINGS
    if unknown:
        names = ", ".join(sorted(unknown))
        raise errors.invalid_argument(f"unknown board_relation settings: {names}")
    raw = defaults.get("boardIds", [])
    board_ids: list[int | None] = [_int(b) for b in raw] if isinstance(raw, list) else [None]
    if "boardId" in defaults:
        board_ids.append(_int(defaults["boardId"]))
    if any(b is None for b in board_ids):
        raise errors.invalid_argument("defaults.boardIds must be a list of board ids")
    settings = default_settings("board_relation")
    for flag in ("allowMultipleItems", "allowCreateReflectionColumn"):
        if flag in defaults:
            if not isinstance(defaults[flag], bool):
                raise errors.invalid_argument(f"defaults.{flag} must be true or false")
            settings[flag] = defaults[flag]
    settings["boardIds"] = list(dict.fromkeys(b for b in board_ids if b is not None))
    return settings


# --- one converter per column type -----------------------------------------------------


def _object(column: Column, value: object, *keys: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ColumnValueError(column.id, column.type, f"expected a JSON object with {keys}")
    return value


def _string(column: Column, value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ColumnValueError(column.id, column.type, f"{what} must be a string")
    return value


def _text(column: Column, value: object, _create: bool) -> Write:
    return Write(_string(column, value, "a text value"))


def _long_text(column: Column, value: object, _create: bool) -> Write:
    body = _string(column, _object(column, value, "text").get("text"), "text")
    if len(body) > LONG_TEXT_MAX:
        raise ColumnValueError(column.id, column.type, f"text longer than {LONG_TEXT_MAX}")
    return Write({"text": body} if body else None)


def _email(column: Column, value: object, _create: bool) -> Write:
    obj = _object(column, value, "email", "text")
    address = _string(column, obj.get("email"), "email")
    label = _string(column, obj.get("text"), "text")
    if not address:
        return Write(None)
    if not _EMAIL.match(address):
        raise ColumnValueError(column.id, column.type, "email is not a valid email address")
    return Write({"email": address, "text": label})


def _phone(column: Column, value: object, _create: bool) -> Write:
    obj = _object(column, value, "phone", "countryShortName")
    number = _string(column, obj.get("phone"), "phone")
    country = _string(column, obj.get("countryShortName"), "countryShortName")
    if not number:
        return Write(None)
    if not _COUNTRY.match(country) or country not in phonenumbers.SUPPORTED_REGIONS:
        raise ColumnValueError(
            column.id, column.type, "countryShortName must be an uppercase ISO 3166-1 code"
        )
    if not _valid_phone(number, country):
        raise ColumnValueError(column.id, column.type, f"phone is not a valid {country} number")
    return Write({"phone": number, "countryShortName": country})


@functools.lru_cache(maxsize=4096)
def _valid_phone(number: str, country: str) -> bool:
    # libphonenumber is a third of a create_item's cost; updates resend the same numbers.
    try:
        parsed = phonenumbers.parse(number, country)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number_for_region(parsed, country)


def _numbers(column: Column, value: object, _create: bool) -> Write:
    # Monday documents strings; plain JSON numbers are seen in the wild and work.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Write(repr(value))
    if not isinstance(value, str) or not _NUMBER.match(value):
        raise ColumnValueError(column.id, column.type, "numbers need a string holding a number")
    return Write(value.strip())


def _date(column: Column, value: object, _create: bool) -> Write:
    obj = _object(column, value, "date")
    day = _string(column, obj.get("date"), "date")
    try:
        if not _DATE.match(day):
            raise ValueError(day)
        dt.date.fromisoformat(day)
        stored: dict[str, str] = {"date": day}
        if obj.get("time") is not None:
            time = _string(column, obj["time"], "time")
            if not _TIME.match(time):
                raise ValueError(time)
            stored["time"] = dt.time.fromisoformat(time).isoformat(timespec="seconds")
    except ValueError:
        raise ColumnValueError(
            column.id, column.type, "date must be YYYY-MM-DD and time HH:MM:SS"
        ) from None
    return Write(stored)


def _link(column: Column, value: object, _create: bool) -> Write:
    obj = _object(column, value, "url", "text")
    url = _string(column, obj.get("url"), "url")
    label = obj.get("text")
    if not url:
        return Write(None)
    if not _URL.match(url):
        raise ColumnValueError(column.id, column.type, "url must start with http:// or https://")
    stored = {"url": url}
    if label is not None:
        stored["text"] = _string(column, label, "text")
    return Write(stored)


def _status(column: Column, value: object, create: bool) -> Write:
    obj = _object(column, value, "label", "index")
    labels: list[dict[str, Any]] = column.settings.get("labels", [])
    if "index" in obj:
        label_id = _int(obj["index"])
        if label_id is None or not any(entry["id"] == label_id for entry in labels):
            raise ColumnValueError(column.id, column.type, "index does not exist in column")
        return Write({"index": label_id})
    if "label" not in obj:
        raise ColumnValueError(column.id, column.type, 'expected {"label"} or {"index"}')
    wanted = _string(column, obj["label"], "label")
    for entry in labels:
        if entry["label"] == wanted:
            return Write({"index": entry["id"]})
    if not create:
        raise ColumnValueError(column.id, column.type, "label does not exist in column")
    if len(labels) >= STATUS_LABELS_MAX:
        raise ColumnValueError(column.id, column.type, f"more than {STATUS_LABELS_MAX} labels")
    settings = copy.deepcopy(column.settings)
    new_id = max((entry["id"] for entry in labels), default=-1) + 1
    settings.setdefault("labels", []).append({"id": new_id, "index": len(labels), "label": wanted})
    return Write({"index": new_id}, settings)


def _dropdown(column: Column, value: object, create: bool) -> Write:
    obj = _object(column, value, "labels", "ids")
    options: list[dict[str, Any]] = column.settings.get("labels", [])
    if "labels" in obj and "ids" in obj:
        raise ColumnValueError(column.id, column.type, "labels and ids cannot be mixed")
    if "ids" in obj:
        ids = [_int(i) for i in _list(column, obj["ids"])]
        known = {entry["id"] for entry in options}
        if any(i is None or i not in known for i in ids):
            raise ColumnValueError(column.id, column.type, "id does not exist in column")
        return Write({"ids": ids} if ids else None)
    wanted = [_string(column, s, "labels") for s in _list(column, obj.get("labels"))]
    by_name = {entry["name"]: entry["id"] for entry in options}
    missing = [s for s in dict.fromkeys(wanted) if s not in by_name]
    settings = None
    if missing:
        if not create:
            raise ColumnValueError(column.id, column.type, "label does not exist in column")
        settings = copy.deepcopy(column.settings)
        next_id = max(by_name.values(), default=0) + 1
        for offset, name in enumerate(missing):
            settings.setdefault("labels", []).append({"id": next_id + offset, "name": name})
            by_name[name] = next_id + offset
    ids = list(dict.fromkeys(by_name[s] for s in wanted))
    return Write({"ids": ids} if ids else None, settings)


def _board_relation(column: Column, value: object, _create: bool) -> Write:
    # Only the ids are checked here; that each is an item of a connected board needs the
    # store (resolvers.check_links).
    obj = _object(column, value, "item_ids")
    if "item_ids" not in obj:
        raise ColumnValueError(column.id, column.type, 'expected {"item_ids": [item ids]}')
    if obj["item_ids"] is None:
        return Write(None)
    ids = [_int(i) for i in _list(column, obj["item_ids"])]
    if any(i is None or i <= 0 for i in ids):
        raise ColumnValueError(column.id, column.type, "item_ids must be item ids")
    linked = list(dict.fromkeys(i for i in ids if i is not None))
    if len(linked) > 1 and column.settings.get("allowMultipleItems") is False:
        raise ColumnValueError(column.id, column.type, "this column links to one item only")
    if not linked:
        return Write(None)
    return Write({"linkedPulseIds": [{"linkedPulseId": i} for i in linked]})


def _list(column: Column, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise ColumnValueError(column.id, column.type, "expected a list")
    return value


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _label_of(column: Column, label_id: int, key: str) -> str | None:
    for entry in column.settings.get("labels", []):
        if entry["id"] == label_id:
            return str(entry[key])
    return None


_CONVERTERS: dict[str, Callable[[Column, object, bool], Write]] = {
    "text": _text,
    "long_text": _long_text,
    "email": _email,
    "phone": _phone,
    "numbers": _numbers,
    "date": _date,
    "link": _link,
    "status": _status,
    "dropdown": _dropdown,
    "board_relation": _board_relation,
}


def _from_simple(column: Column, value: str) -> object:
    """The JSON form of a simple string (what change_simple_column_value takes)."""
    match column.type:
        case "text" | "numbers":
            return value
        case "long_text":
            return {"text": value}
        case "email":
            address, _, label = value.strip().partition(" ")
            return {"email": address, "text": label.strip() or address}
        case "phone":
            number, _, country = value.strip().rpartition(" ")
            return {"phone": number, "countryShortName": country}
        case "date":
            day, _, time = value.strip().partition(" ")
            return {"date": day, "time": time} if time else {"date": day}
        case "link":
            url, _, label = value.strip().partition(" ")
            if not label.strip():
                raise ColumnValueError(column.id, column.type, "a simple link needs 'url text'")
            return {"url": url, "text": label.strip()}
        case "status":
            value = value.strip()
            return {"index": int(value)} if value.isdigit() else {"label": value}
        case "dropdown":
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if parts and all(p.isdigit() for p in parts):
                return {"ids": [int(p) for p in parts]}
            return {"labels": parts}
        case "board_relation":  # "Simple string updates are not supported" (Monday's page)
            raise ColumnValueError(
                column.id, column.type, 'send JSON {"item_ids": [...]}, not a simple string'
            )
    raise AssertionError(column.type)  # pragma: no cover - ColumnType is exhausted
