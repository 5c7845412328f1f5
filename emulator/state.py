"""The emulator's boards and items, a lookup index, and the optional JSON state file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import random
import tempfile
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from emulator import values
from emulator.clock import Clock
from emulator.model import (
    NAME_COLUMN,
    Board,
    Change,
    ChangeKind,
    Column,
    ColumnType,
    Item,
    ItemState,
    Stored,
    Webhook,
)
from listener import mapping

FIRST_BOARD_ID = 1_000_000_001
FIRST_ITEM_ID = 2_000_000_001
FIRST_WEBHOOK_ID = 300_000_001
FORMAT = 1
ACTIVITY_PER_BOARD = 100_000  # the oldest activity log entries of a board are forgotten


class StateFileError(Exception):
    """The state file exists but cannot be read back; the message names the file."""


class Store:
    """Boards, items, webhooks and activity logs in memory. Ids are increasing numeric strings.

    `version` grows on every change so that callers can tell when to save. Every change to
    an item, made by `user_id`, goes to its board's activity log and to `unpublished`
    (for the emulator to turn into webhook events).
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.boards: dict[str, Board] = {}
        self.items: dict[str, Item] = {}
        self.webhooks: dict[str, Webhook] = {}
        self.activity: dict[str, deque[Change]] = {}
        self.unpublished: list[Change] = []
        self.next_item_id = FIRST_ITEM_ID
        self.next_board_id = FIRST_BOARD_ID
        self.next_webhook_id = FIRST_WEBHOOK_ID
        self.version = 0
        # (board id, column id) -> search key -> item ids; built on a column's first search.
        self._index: dict[tuple[str, str], dict[str, dict[str, None]]] = {}

    # --- boards and columns -------------------------------------------------------------

    def add_board(
        self,
        name: str,
        columns: Iterable[Column] = (),
        board_id: str | None = None,
        *,
        kind: str = "public",
        description: str | None = None,
    ) -> Board:
        """Create a board with the built-in name column plus `columns`."""
        if board_id is None:
            while str(self.next_board_id) in self.boards:
                self.next_board_id += 1
            board_id = str(self.next_board_id)
            self.next_board_id += 1
        if board_id in self.boards:
            raise ValueError(f"board {board_id} exists already")
        board = Board(
            id=board_id,
            name=name,
            columns={NAME_COLUMN: Column(NAME_COLUMN, "Name", "name")},
            kind=kind,  # type: ignore[arg-type]
            description=description,
        )
        for column in columns:
            if column.id in board.columns:
                raise ValueError(f"board {name}: column {column.id} appears twice")
            board.columns[column.id] = column
        self.boards[board_id] = board
        self._changed()
        return board

    def add_column(self, board: Board, column: Column) -> Column:
        """Append a column to a board."""
        if column.id in board.columns:
            raise ValueError(f"column {column.id} exists already on board {board.id}")
        board.columns[column.id] = column
        self._changed()
        return column

    def remove_column(self, board: Board, column_id: str) -> None:
        """Drop a column and its values, as deleting it on Monday does."""
        if column_id == NAME_COLUMN or column_id not in board.columns:
            raise ValueError(f"board {board.id} has no removable column {column_id!r}")
        del board.columns[column_id]
        for item in self.items.values():
            if item.board_id == board.id:
                item.values.pop(column_id, None)
        self._index.pop((board.id, column_id), None)
        self._changed()

    def set_settings(self, column: Column, settings: dict[str, Any]) -> None:
        """Replace a column's settings (new status or dropdown labels)."""
        column.settings = settings
        self._changed()

    # --- items --------------------------------------------------------------------------

    def create_item(
        self, board: Board, name: str, vals: Mapping[str, Stored | None], *, user_id: int
    ) -> Item:
        """A new active item on `board`; None values are left out."""
        now = self._now()
        item = Item(
            id=str(self.next_item_id),
            board_id=board.id,
            name=name,
            state="active",
            values={k: v for k, v in vals.items() if v is not None},
            created_at=now,
            updated_at=now,
        )
        self.next_item_id += 1
        self.items[item.id] = item
        self._reindex(item, None, (NAME_COLUMN, *item.values))
        self._record("create", item, user_id, value=dict(item.values))
        self._changed()
        return item

    def update_item(
        self, item: Item, name: str | None, vals: Mapping[str, Stored | None], *, user_id: int
    ) -> None:
        """Rename and/or set values (None clears a value)."""
        before = {k: item.values.get(k) for k in vals}
        before_name = item.name
        if name is not None:
            item.name = name
        for column_id, value in vals.items():
            if value is None:
                item.values.pop(column_id, None)
            else:
                item.values[column_id] = value
        item.updated_at = self._now()
        changed = [NAME_COLUMN] if name is not None else []
        self._reindex(item, {**before, NAME_COLUMN: before_name}, (*changed, *vals))
        if item.name != before_name:
            self._record("name", item, user_id, value=item.name, previous=before_name)
        for column_id, old in before.items():
            new = item.values.get(column_id)
            if new != old:
                self._record("value", item, user_id, column_id, new, old)
        self._changed()

    def set_state(self, item: Item, state: ItemState, *, user_id: int) -> None:
        """Archive, delete or restore an item; it stays in the store with its new state."""
        before = item.state
        item.state = state
        item.updated_at = self._now()
        if state != before:
            self._record("state", item, user_id, value=state, previous=before)
        self._changed()

    def take_unpublished(self) -> list[Change]:
        """The changes since the last call, oldest first."""
        taken, self.unpublished = self.unpublished, []
        return taken

    # --- webhooks -----------------------------------------------------------------------

    def add_webhook(
        self, board: Board, url: str, event: str, config: dict[str, Any] | None, *, app: bool
    ) -> Webhook:
        """Register a webhook (the challenge is the caller's business)."""
        webhook = Webhook(str(self.next_webhook_id), board.id, url, event, config, app)
        self.next_webhook_id += 1
        self.webhooks[webhook.id] = webhook
        self._changed()
        return webhook

    def remove_webhook(self, webhook_id: str) -> Webhook | None:
        """Forget a webhook; None when there is none with that id."""
        webhook = self.webhooks.pop(str(webhook_id), None)
        if webhook is not None:
            self._changed()
        return webhook

    def find(self, board: Board, column: Column, wanted: Iterable[str]) -> list[Item]:
        """Active items whose column text matches any of `wanted`, oldest first."""
        index = self._index.get((board.id, column.id))
        if index is None:
            index = self._build_index(board, column)
        ids: dict[str, None] = {}
        for raw in wanted:
            ids.update(index.get(values.search_key(column.type, raw), {}))
        found = (self.items[i] for i in ids)
        return sorted((i for i in found if i.state == "active"), key=lambda i: int(i.id))

    def board_items(self, board_id: str, states: Sequence[ItemState] = ("active",)) -> list[Item]:
        """A board's items in the given states, oldest first."""
        return [i for i in self.items.values() if i.board_id == board_id and i.state in states]

    # --- persistence --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Everything, as plain JSON data (the state file's content)."""
        return {
            "format": FORMAT,
            "next_item_id": self.next_item_id,
            "next_board_id": self.next_board_id,
            "boards": [board_json(b) for b in self.boards.values()],
            "items": [item_json(i) for i in self.items.values()],
            "next_webhook_id": self.next_webhook_id,
            "webhooks": [dataclasses.asdict(w) for w in self.webhooks.values()],
            "activity": [dataclasses.asdict(c) for log in self.activity.values() for c in log],
        }

    def load_json(self, data: Mapping[str, Any]) -> None:
        """Replace everything with what `to_json` produced."""
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}")
        boards = {}
        for b in data["boards"]:
            columns = {c["id"]: Column(**c) for c in b["columns"]}
            boards[b["id"]] = Board(
                id=b["id"],
                name=b["name"],
                columns=columns,
                kind=b["kind"],
                state=b["state"],
                description=b.get("description"),
            )
        self.boards = boards
        self.items = {i["id"]: Item(**i) for i in data["items"]}
        self.next_item_id = int(data["next_item_id"])
        self.next_board_id = int(data["next_board_id"])
        # Webhooks and activity logs came later: files without them are still read.
        self.webhooks = {w["id"]: Webhook(**w) for w in data.get("webhooks", ())}
        self.next_webhook_id = int(data.get("next_webhook_id", FIRST_WEBHOOK_ID))
        self.activity = {}
        for entry in data.get("activity", ()):
            self._log(Change(**entry))
        self.unpublished = []
        self._index.clear()
        self._changed()

    def save(self, path: Path) -> None:
        """Write the state file atomically: a temporary file renamed over the old one."""
        text = json.dumps(self.to_json(), separators=(",", ":"))
        write_atomically(path, text)

    def load(self, path: Path) -> None:
        """Read the state file written by `save`."""
        try:
            self.load_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateFileError(f"{path}: cannot load emulator state: {exc}") from None

    # --- internals ----------------------------------------------------------------------

    def _now(self) -> str:
        moment = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _changed(self) -> None:
        self.version += 1

    def _record(
        self,
        kind: ChangeKind,
        item: Item,
        user_id: int,
        column_id: str | None = None,
        value: Stored | None = None,
        previous: Stored | None = None,
    ) -> None:
        change = Change(
            _log_id(),
            kind,
            item.board_id,
            item.id,
            item.name,
            user_id,
            self._clock(),
            column_id,
            value,
            previous,
        )
        self._log(change)
        self.unpublished.append(change)

    def _log(self, change: Change) -> None:
        log = self.activity.get(change.board_id)
        if log is None:
            log = self.activity[change.board_id] = deque(maxlen=ACTIVITY_PER_BOARD)
        log.append(change)

    def _build_index(self, board: Board, column: Column) -> dict[str, dict[str, None]]:
        index: dict[str, dict[str, None]] = {}
        self._index[(board.id, column.id)] = index
        for item in self.items.values():
            if item.board_id == board.id:
                key = self._key(board, column.id, item, item.values.get(column.id))
                if key is not None:
                    index.setdefault(key, {})[item.id] = None
        return index

    def _reindex(
        self, item: Item, before: Mapping[str, Stored | None] | None, columns: Iterable[str]
    ) -> None:
        board = self.boards[item.board_id]
        for column_id in columns:
            index = self._index.get((board.id, column_id))
            if index is None:
                continue
            if before is not None:
                old = self._key(board, column_id, item, before.get(column_id))
                if old is not None:
                    index.get(old, {}).pop(item.id, None)
            new = self._key(board, column_id, item, item.values.get(column_id))
            if new is not None:
                index.setdefault(new, {})[item.id] = None

    @staticmethod
    def _key(board: Board, column_id: str, item: Item, stored: Stored | None) -> str | None:
        column = board.columns.get(column_id)
        if column is None:
            return None
        if column.type == "name":
            # The name is passed in `before` under the name column's id.
            shown = stored if isinstance(stored, str) else item.name
            return values.search_key("name", shown)
        if stored is None:
            return None
        return values.search_key(column.type, values.text(column, stored))


_IDS = random.Random()


def _log_id() -> str:
    """A UUID-shaped activity log id; uuid4 costs a third of a change (urandom), needlessly."""
    h = f"{_IDS.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def board_json(board: Board) -> dict[str, Any]:
    """A board and its columns as plain JSON data."""
    return {
        "id": board.id,
        "name": board.name,
        "kind": board.kind,
        "state": board.state,
        "description": board.description,
        "columns": [
            {
                "id": c.id,
                "title": c.title,
                "type": c.type,
                "settings": c.settings,
                "description": c.description,
                "archived": c.archived,
            }
            for c in board.columns.values()
        ],
    }


def item_json(item: Item) -> dict[str, Any]:
    """An item as plain JSON data; `values` are Monday's stored JSON per column."""
    return {
        "id": item.id,
        "board_id": item.board_id,
        "name": item.name,
        "state": item.state,
        "values": item.values,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


def boards_from_mappings(store: Store, tables: Sequence[mapping.TableMapping]) -> None:
    """Create one board per table: name column, mapped columns, then the npd_id column.

    Tables without a board id get the next free generated id, in order, so that the
    default mapping gives contacts 1000000001 and organizations 1000000002. Boards that
    the store already has (from a state file) are left as they are. A connect boards column
    is connected to the board of the table it `references`, when the mapping says which.
    """
    ids = [t.board_id for t in tables if t.board_id is not None]
    if len(ids) != len(set(ids)):
        raise ValueError(f"two tables map to one board: {sorted(ids)}")
    names = {board.name for board in store.boards.values()}
    created: list[tuple[mapping.TableMapping, Board]] = []
    for table in tables:
        # Boards loaded from a state file are kept: by id, or by name when ids are generated.
        if table.board_id in store.boards or (table.board_id is None and table.table in names):
            continue
        columns = [_column(c.id, c.type) for c in table.columns]
        if table.npd_id_column and all(c.id != table.npd_id_column for c in columns):
            columns.append(_column(table.npd_id_column, "text"))
        board = store.add_board(table.table, columns, table.board_id)
        created.append((table, board))
    boards = {board.name: board for board in store.boards.values()}
    for table, board in created:
        for mapped in table.columns:
            target = boards.get(str(getattr(mapped, "references", None) or ""))
            # str(): the listener's mapping may not know the type yet.
            if str(mapped.type) == "board_relation" and target is not None:
                board.columns[mapped.id].settings["boardIds"] = [int(target.id)]


def _column(column_id: str, column_type: ColumnType) -> Column:
    return Column(column_id, column_id, column_type, values.default_settings(column_type))


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a reader sees the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
