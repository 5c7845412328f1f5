"""The emulator's board data: boards, their columns, and items (plain dataclasses)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

# The column types the emulator implements; a subset of Monday's ColumnType enum.
ColumnType = Literal[
    "name", "text", "long_text", "email", "phone", "numbers", "date", "link", "status", "dropdown"
]
COLUMN_TYPES: frozenset[str] = frozenset(ColumnType.__args__)  # type: ignore[attr-defined]
ItemState = Literal["active", "archived", "deleted"]
BoardKind = Literal["public", "private", "share"]

# A column's value as Monday stores it (the JSON behind ColumnValue.value).
Stored = Any

NAME_COLUMN = "name"


@dataclass(slots=True)
class Column:
    """One board column; `settings` holds the labels of status and dropdown columns."""

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
