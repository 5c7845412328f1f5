"""The emulator's board data: boards, their columns, and items (plain dataclasses)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

# The column types the emulator implements; a subset of Monday's ColumnType enum.
ColumnType = Literal[
    "name", "text", "long_text", "email", "phone", "numbers", "date", "link", "status", "dropdown",
    "board_relation",
]  # fmt: skip
COLUMN_TYPES: frozenset[str] = frozenset(ColumnType.__args__)  # type: ignore[attr-defined]
ItemState = Literal["active", "archived", "deleted"]
BoardKind = Literal["public", "private", "share"]

# A column's value as Monday stores it (the JSON behind ColumnValue.value).
Stored = Any

NAME_COLUMN = "name"


@dataclass(slots=True)
class Column:
    """One board column; `settings` holds the labels of status and dropdown columns, and the
    connected boards of a connect boards column ({"boardIds": [...], ...}, as Monday keeps them)."""

    id: str
    title: str
    type: ColumnType
    settings: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    archived: bool = False


@dataclass(slots=True)
class Board:
    """A board: its columns in display order, the first always the built-in `name`."""

    id: str
    name: str
    columns: dict[str, Column]
    kind: BoardKind = "public"
    state: Literal["active", "archived", "deleted"] = "active"
    description: str | None = None


@dataclass(slots=True)
class Item:
    """An item; `values` maps column id to the stored value (never the name column)."""

    id: str
    board_id: str
    name: str
    state: ItemState
    values: dict[str, Stored]
    created_at: str
    updated_at: str

    def copy(self) -> Item:
        """A deep copy, safe to hand out of the emulator."""
        return copy.deepcopy(self)


@dataclass(slots=True)
class Webhook:
    """A board webhook: `event` is a WebhookEventType; `config` the decoded JSON (or None).

    `app` is whether an app token created it (its deliveries are signed).
    """

    id: str
    board_id: str
    url: str
    event: str
    config: dict[str, Any] | None = None
    app: bool = False


ChangeKind = Literal["create", "value", "name", "state"]


@dataclass(frozen=True, slots=True)
class Change:
    """One change to an item, as the board's activity log and its webhooks report it.

    `value` and `previous` are stored values (a column's JSON, the name, or an ItemState;
    on "create", `value` holds the item's column values); `column_id` is set on value
    changes only; `at` is epoch seconds.
    """

    id: str
    kind: ChangeKind
    board_id: str
    item_id: str
    item_name: str
    user_id: int
    at: float
    column_id: str | None = None
    value: Stored | None = None
    previous: Stored | None = None
