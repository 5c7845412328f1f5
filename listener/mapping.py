"""What a database row becomes on a Monday board: item name and column values.

Everything here is pure: a row (column name -> text value) goes in, Monday's
column-value JSON comes out. The built-in default is docs/mapping.md's; a
mapping file (`NPD_SYNC_CONFIG`, read by `listener.settings`) describes other tables and boards.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import phonenumbers

ColumnType = Literal[
    "text", "long_text", "email", "phone", "numbers", "date", "link", "status", "dropdown",
    "board_relation",
]  # fmt: skip
COLUMN_TYPES: tuple[ColumnType, ...] = (
    "text",
    "long_text",
    "email",
    "phone",
    "numbers",
    "date",
    "link",
    "status",
    "dropdown",
    "board_relation",
)
RELATION: ColumnType = "board_relation"  # a foreign key, as a link to the referenced row's item
DeletePolicy = Literal["archive", "delete", "ignore"]
ConflictPolicy = Literal["manual", "npd_wins", "monday_wins", "newest_wins"]
CreatePolicy = Literal["insert", "ignore"]
UnlinkPolicy = Literal["unlink", "delete", "ignore"]

# Monday's own limits on what an item holds.
ITEM_NAME_MAX = 255
LONG_TEXT_MAX = 2000
ELLIPSIS = "…"

# The columns npd-sync itself reads and writes on every synced table.
SYNC_ENABLED = "sync_enabled"
SYNC_DIRECTION = "sync_direction"
MONDAY_ID = "monday_id"
SYNC_STATUS = "sync_status"
SYNC_ERROR = "sync_error"
LAST_SYNCED_AT = "last_synced_at"
REQUIRED_COLUMNS = (SYNC_ENABLED, SYNC_DIRECTION, MONDAY_ID, SYNC_STATUS)
BOOKKEEPING_COLUMNS = (MONDAY_ID, SYNC_STATUS, SYNC_ERROR, LAST_SYNCED_AT)
PUSH_DIRECTIONS = frozenset({"BIDIRECTIONAL", "NPD_TO_MONDAY"})
PULL_DIRECTIONS = frozenset({"BIDIRECTIONAL", "MONDAY_TO_NPD"})
NAME = "name"  # the item name, among column values

# A row's mapped columns, as text (None: NULL).
RowValues = Mapping[str, str | None]


class MappingError(ValueError):
    """A row value that cannot be turned into something Monday accepts."""


@dataclass(frozen=True, slots=True)
class Column:
    """One Monday column fed from one or more database columns."""

    id: str
    type: ColumnType
    sources: tuple[str, ...]
    separator: str = " "
    default_country: str | None = None
    references: str | None = None  # board_relation: the synced table the source's keys are of


@dataclass(frozen=True, slots=True)
class TableMapping:
    """How one table maps onto one board."""

    table: str
    board_id: str | None = None
    key_column: str = "id"
    name_template: str = "{name}"
    columns: tuple[Column, ...] = ()
    npd_id_column: str | None = "npd_id"
    on_delete: DeletePolicy = "archive"
    # Let Monday add status/dropdown labels it does not know yet (needs permission to change
    # the board's structure); otherwise an unknown label fails the row.
    create_labels: bool = False
    # Inbound: a field changed on both sides; an item created on the board; one archived or
    # deleted there.
    conflict: ConflictPolicy = "manual"
    on_monday_create: CreatePolicy = "insert"
    on_monday_delete: UnlinkPolicy = "unlink"
    name_fields: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        fields = tuple(
            name for _, name, _, _ in string.Formatter().parse(self.name_template) if name
        )
        object.__setattr__(self, "name_fields", fields)

    @property
    def source_columns(self) -> tuple[str, ...]:
        """Every database column the mapping reads, in a stable order, without repeats."""
        seen: dict[str, None] = dict.fromkeys(self.name_fields)
        for column in self.columns:
            seen.update(dict.fromkeys(column.sources))
        return tuple(seen)

    @property
    def relations(self) -> tuple[Column, ...]:
        """The connect-boards columns: foreign keys shown as links to the referenced rows'
        items."""
        return tuple(c for c in self.columns if c.type == RELATION)

    @property
    def inbound_columns(self) -> tuple[Column, ...]:
        """The Monday columns whose edits flow back: those fed from one database column (a
        joined column cannot be split back), npd_id excepted."""
        return tuple(c for c in self.columns if len(c.sources) == 1 and c.id != self.npd_id_column)

    @property
    def name_split(self) -> tuple[str, ...] | None:
        """The database columns the item name flows back into: `{a}` gives (a,), `{a} {b}`
        gives (a, b) (the first word to a, the rest to b); any other template, None."""
        one = re.fullmatch(r"\{([^{}!:]+)\}", self.name_template)
        if one:
            return (one[1],)
        two = re.fullmatch(r"\{([^{}!:]+)\} \{([^{}!:]+)\}", self.name_template)
        return (two[1], two[2]) if two else None

    @property
    def board_env(self) -> str:
        """The environment variable that sets (or overrides) this table's board id."""
        bare = self.table.rsplit(".", 1)[-1]
        return f"MONDAY_{re.sub(r'[^A-Za-z0-9]', '_', bare).upper()}_BOARD_ID"


def default_mappings() -> tuple[TableMapping, ...]:
    """The built-in mapping (board ids come from the environment)."""
    return (
        TableMapping(
            table="contacts",
            name_template="{first_name} {last_name}",
            columns=(
                Column("email", "email", ("email",)),
                Column("phone", "phone", ("phone",)),
                Column("text", "text", ("role_title",)),
                Column("long_text", "long_text", ("notes",)),
            ),
        ),
        TableMapping(
            table="organizations",
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
        ),
    )


def receives(sync_enabled: bool | None, sync_direction: str | None) -> bool:
    """Whether Monday's edits flow into the row: sync_enabled and a direction from Monday."""
    return sync_enabled is True and sync_direction in PULL_DIRECTIONS


def is_syncable(sync_enabled: bool | None, sync_direction: str | None) -> bool:
    """Whether a row is pushed: sync_enabled and a direction towards Monday; NULL counts as
    false / NONE."""
    return sync_enabled is True and sync_direction in PUSH_DIRECTIONS


def item_name(row: RowValues, mapping: TableMapping, key: str) -> str:
    """The item name: the template filled from the row, trimmed, 1-255 characters."""
    values = {name: (row.get(name) or "") for name in mapping.name_fields}
    name = " ".join(mapping.name_template.format_map(values).split())
    if not name:
        # Monday refuses an empty name; the key keeps the item findable.
        name = f"{mapping.table.rsplit('.', 1)[-1]} #{key}"
    return _truncate(name, ITEM_NAME_MAX)


def column_values(
    row: RowValues,
    mapping: TableMapping,
    key: str,
    links: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Monday column values for a row, keyed by column id; None for an empty column (sent as
    null, so that a value cleared in the database is cleared on the board too). `links`: per
    connect-boards column, the items its keys' rows have."""
    values: dict[str, Any] = {
        column.id: relation_value((links or {}).get(column.id, ()))
        if column.type == RELATION
        else column_value(column, row)
        for column in mapping.columns
    }
    if mapping.npd_id_column:
        values[mapping.npd_id_column] = key
    return values


def relation_value(items: Iterable[str]) -> dict[str, list[int]] | None:
    """A connect-boards column's value: its items as a set, in one order (a write replaces the
    whole set, and Monday gives them in any order); None for no link."""
    ids = sorted({int(i) for i in items})
    return {"item_ids": ids} if ids else None


def relation_items(value: str | None) -> list[str]:
    """The items of a connect-boards value as `relation_value` writes it (or Monday's
    `linked_item_ids`, as the client gives them)."""
    try:
        data = json.loads(value) if value else None
    except ValueError:
        return []
    ids = data.get("item_ids") if isinstance(data, dict) else None
    return [str(i) for i in ids] if isinstance(ids, list) else []


def keys_value(keys: Sequence[str], many: bool) -> str | None:
    """The foreign key's text for the rows `keys`: one key, or a PostgreSQL array literal for
    an array column; None for none."""
    if not keys:
        return None
    if not many:
        return keys[0]
    quoted = ('"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in keys)
    return "{" + ",".join(quoted) + "}"


def column_value(column: Column, row: RowValues) -> Any:
    """One column's value in Monday's JSON format, or None when the row has nothing for it."""
    parts = [v.strip() for v in (row.get(s) for s in column.sources) if v and v.strip()]
    if not parts:
        return None
    text = column.separator.join(parts)
    match column.type:
        case "text":
            return text
        case "long_text":
            return {"text": _truncate(text, LONG_TEXT_MAX)}
        case "email":
            return {"email": text, "text": text}
        case "phone":
            return _phone(text, column)
        case "numbers":
            return _number(text, column)
        case "date":
            return _date(text, column)
        case "link":
            url = text if re.match(r"^https?://", text, re.I) else f"https://{text}"
            return {"url": url, "text": text}
        case "status":
            return {"label": text}
        case "dropdown":
            return {"labels": [p for p in (s.strip() for s in text.split(",")) if p]}
        case "board_relation":
            raise MappingError(f"column {column.id}: links are made from items, not text")
    raise AssertionError(column.type)  # pragma: no cover - Literal exhausted


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def _phone(text: str, column: Column) -> dict[str, str]:
    region = column.default_country.upper() if column.default_country else None
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        hint = (
            "" if text.startswith("+") or region else " (no +country code and no default_country)"
        )
        raise MappingError(f"column {column.id}: phone {text!r} cannot be read{hint}") from exc
    country = phonenumbers.region_code_for_number(number) or region
    if not country or country == "001":
        # No region matches the number: libphonenumber (which Monday uses) finds it invalid.
        raise MappingError(f"column {column.id}: phone {text!r} is not a valid number")
    return {
        "phone": phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        "countryShortName": country,
    }


def _number(text: str, column: Column) -> str:
    try:
        float(text)
    except ValueError:
        raise MappingError(f"column {column.id}: {text!r} is not a number") from None
    return text


def _date(text: str, column: Column) -> dict[str, str]:
    # PostgreSQL's text form of date and timestamptz: "2026-06-15[ 09:00:00[+00]]".
    match = re.match(r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}:\d{2}))?", text)
    if not match:
        raise MappingError(f"column {column.id}: {text!r} is not a date")
    date, time = match.groups()
    return {"date": date, "time": time} if time else {"date": date}


# --- back from Monday ------------------------------------------------------------------------


def from_monday(column: Column, value: str | None, text: str | None) -> str | None:
    """The database value (as text) that a Monday column value stands for, from
    ColumnValue.value (JSON) and .text; None when the column is empty.

    What `column_value` makes of the result is the value's canonical form, the one agreed
    values are kept in: so whatever Monday stores (a phone as typed, an email's label, a
    `changed_at`), a value written back into the row is agreed on exactly.
    """
    data: Any = None
    if value:
        try:
            data = json.loads(value)
        except ValueError:
            data = None
    match column.type:
        case "text" | "numbers":
            found = data if isinstance(data, str | int | float) and data != "" else text
            return _clean(None if found is None else str(found))
        case "long_text" | "email" | "phone" | "link" | "date":
            return _from_object(column, data if isinstance(data, dict) else {}, text)
        case "status" | "dropdown":
            return _clean(text)
        case "board_relation":
            # The row's keys come from the items through the links (`merge`), not from text.
            return ",".join(relation_items(value)) or None
    raise AssertionError(column.type)  # pragma: no cover - Literal exhausted


def name_to_row(mapping: TableMapping, name: str) -> dict[str, str | None] | None:
    """The database values an item name stands for (see `TableMapping.name_split`)."""
    split = mapping.name_split
    if split is None:
        return None
    words = " ".join(name.split())
    if len(split) == 1:
        return {split[0]: words or None}
    first, _, rest = words.partition(" ")
    return {split[0]: first or None, split[1]: rest or None}


def _from_object(column: Column, data: Mapping[str, Any], text: str | None) -> str | None:
    match column.type:
        case "long_text":
            return _clean(_str(data.get("text")) or text)
        case "email":
            return _clean(_str(data.get("email")) or text)
        case "link":
            url, label = _str(data.get("url")), _str(data.get("text"))
            # The row's text becomes {url, text: the row's text} on the way out: keep it.
            if label and url in (label, f"https://{label}"):
                return _clean(label)
            return _clean(url or text)
        case "date":
            day, time = _str(data.get("date")), _str(data.get("time"))
            return _clean(f"{day} {time}" if day and time else day)
        case "phone":
            number = _str(data.get("phone")) or text
            country = _str(data.get("countryShortName")) or column.default_country
            return _clean(_e164(number, country) if number else None)
    raise AssertionError(column.type)  # pragma: no cover


def _e164(number: str, country: str | None) -> str:
    # Monday keeps a phone as it was typed, with its country: the row gets the number in the
    # form npd-sync sends, so that writing it back changes nothing on the board.
    try:
        parsed = phonenumbers.parse(number, None if number.startswith("+") else country)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _clean(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None
