"""Resolvers: what each field of schema.graphql does to the store.

Everything but create_webhook (which sends the challenge) is synchronous (the store is in
memory), so graphql-core executes a document without creating a coroutine per field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from graphql import GraphQLResolveInfo

from emulator import errors, events, values, versions
from emulator.clock import Clock
from emulator.limits import Charge, RateLimiter
from emulator.model import COLUMN_TYPES, NAME_COLUMN, Board, Change, Column, Item, Stored, Webhook
from emulator.state import Store
from emulator.webhooks import Deliverer

PAGE_MAX = 500  # items_page, items_page_by_column_values, next_items_page
# Column types items_page_by_column_values does not support (Monday's page lists location,
# formula, mirror, connect boards, tags, item id and others).
UNSEARCHABLE = frozenset({"board_relation"})
ITEMS_MAX = 100  # items(ids:)
CURSOR_TTL = 60 * 60.0  # Monday's cursors last 60 minutes
# A column id given to create_column: 1-20 lowercase letters or underscores (Monday's changelog,
# "Create a column with a custom ID"). Ids Monday makes itself look like `email_mkx1a2b3`.
_COLUMN_ID = re.compile(r"^[a-z_]{1,20}$")
WEBHOOK_URL_MAX = 255
USER = {"id": str(events.API_USER_ID), "name": "Emulator User", "email": "emulator@example.com"}


class CursorBook:
    """Open cursors: a snapshot of the matching item ids and how far the client read."""

    def __init__(self, clock: Clock, capacity: int = 1_000) -> None:
        self._clock = clock
        self._capacity = capacity
        self._open: dict[str, tuple[tuple[str, ...], float]] = {}

    def page(self, ids: Iterable[str], limit: int) -> tuple[list[str], str | None]:
        """The first `limit` ids, and a cursor to the rest (None when there is no rest)."""
        ids = tuple(ids)
        rest = ids[limit:]
        if not rest:
            return list(ids), None
        cursor = secrets.token_urlsafe(18)
        self._open[cursor] = (rest, self._clock() + CURSOR_TTL)
        while len(self._open) > self._capacity:
            del self._open[next(iter(self._open))]
        return list(ids[:limit]), cursor

    def next(self, cursor: str, limit: int) -> tuple[list[str], str | None]:
        """The next page of an open cursor; each cursor can be followed once."""
        entry = self._open.pop(cursor, None)
        if entry is None or entry[1] <= self._clock():
            raise errors.invalid_argument("The cursor is invalid or has expired")
        return self.page(entry[0], limit)

    def clear(self) -> None:
        """Close every cursor."""
        self._open.clear()


# What delete_webhook answers for an id that is not (or no longer) there: Monday does not
# say (monday-facts.md, 5): a not-found error, an internal error, or a null.
GoneWebhook = Literal["not_found", "internal_error", "null"]


@dataclass(slots=True)
class Context:
    """What resolvers of one request see."""

    store: Store
    cursors: CursorBook
    charge: Charge
    version: versions.Version
    deliverer: Deliverer
    limiter: RateLimiter
    user_id: int = events.API_USER_ID
    gone_webhook: GoneWebhook = "not_found"


Info: TypeAlias = "GraphQLResolveInfo[Context]"


@dataclass(frozen=True, slots=True)
class ItemsPage:
    """ItemsResponse { cursor items }."""

    cursor: str | None
    items: list[Item]


class Cell:
    """One ColumnValue; the fields of the concrete types are properties."""

    __slots__ = ("column", "stored")

    def __init__(self, column: Column, stored: Stored | None) -> None:
        self.column = column
        self.stored = stored

    @property
    def id(self) -> str:
        return self.column.id

    @property
    def type(self) -> str:
        return self.column.type

    @property
    def text(self) -> str | None:
        if self.column.type == "board_relation":
            return None  # "always returns null ... Use display_value" (since 2025-04)
        return values.text(self.column, self.stored)

    @property
    def value(self) -> str | None:
        # Monday returns ColumnValue.value as a JSON-encoded string; connect boards null
        # since 2025-04 ("use linked_items and linked_item_ids").
        if self.stored is None or self.column.type == "board_relation":
            return None
        return json.dumps(self.stored)

    def _get(self, key: str) -> Any:
        return self.stored.get(key) if isinstance(self.stored, dict) else None

    @property
    def email(self) -> Any:
        return self._get("email")

    @property
    def label(self) -> str | None:
        if self.column.type == "email":
            return self._get("text")  # type: ignore[no-any-return]
        return self.text if self.stored is not None else None

    @property
    def phone(self) -> Any:
        return self._get("phone")

    @property
    def country_short_name(self) -> Any:
        return self._get("countryShortName")

    @property
    def number(self) -> float | None:
        return None if self.stored is None else float(self.stored)

    @property
    def date(self) -> Any:
        return self._get("date")

    @property
    def time(self) -> Any:
        return self._get("time")

    @property
    def url(self) -> Any:
        return self._get("url")

    @property
    def url_text(self) -> Any:
        return self._get("text")

    @property
    def index(self) -> Any:
        return self._get("index")


_VALUE_TYPES = {
    "text": "TextValue",
    "long_text": "LongTextValue",
    "email": "EmailValue",
    "phone": "PhoneValue",
    "numbers": "NumbersValue",
    "date": "DateValue",
    "link": "LinkValue",
    "status": "StatusValue",
    "dropdown": "DropdownValue",
    "board_relation": "BoardRelationValue",
}


def value_type(cell: Cell, _info: Info, _abstract: Any) -> str:
    """The concrete ColumnValue type of a cell."""
    return _VALUE_TYPES[cell.column.type]


# --- helpers ---------------------------------------------------------------------------


def _board(store: Store, board_id: str) -> Board:
    board = store.boards.get(str(board_id))
    if board is None or board.state == "deleted":
        raise errors.invalid_board(str(board_id))
    return board


def _item(store: Store, item_id: str | None, board: Board | None = None) -> Item:
    if item_id is None:
        raise errors.invalid_argument("item_id is required")
    item = store.items.get(str(item_id))
    if item is None or item.state == "deleted":
        raise errors.item_not_found(str(item_id))
    if board is not None and item.board_id != board.id:
        raise errors.item_not_found(str(item_id), board.id)
    return item


def _page_limit(limit: int) -> int:
    if not 1 <= limit <= PAGE_MAX:
        raise errors.invalid_argument(f"limit must be between 1 and {PAGE_MAX}")
    return limit


def _page(ctx: Context, ids: Iterable[str], limit: int) -> ItemsPage:
    page, cursor = ctx.cursors.page(ids, _page_limit(limit))
    return ItemsPage(cursor, [ctx.store.items[i] for i in page])


def writes(
    store: Store,
    board: Board,
    raw: Mapping[str, Any],
    create_labels: bool,
    *,
    simple: bool = False,
) -> tuple[str | None, dict[str, Stored | None], list[tuple[Column, dict[str, Any]]]]:
    """The new name, values and column settings that `raw` asks for, every value checked
    before anything changes, so that a bad one leaves the item as it was."""
    name: str | None = None
    vals: dict[str, Stored | None] = {}
    settings: list[tuple[Column, dict[str, Any]]] = []
    for column_id, value in raw.items():
        column = board.columns.get(column_id)
        if column is None or column.archived:
            raise errors.invalid_column(column_id, board.id)
        if simple:
            write = values.convert_simple(column, value, create_labels=create_labels)
        else:
            write = values.convert(column, value, create_labels=create_labels)
        if column.type == "name":
            name = write.value
            continue
        vals[column_id] = write.value
        if write.settings is not None:
            settings.append((column, write.settings))
        if column.type == "board_relation":
            check_links(store, column, write.value)
    return name, vals, settings


def check_links(store: Store, column: Column, stored: Stored | None) -> None:
    """Every item a connect boards value links to is an active item of a board the column is
    connected to, else ColumnValueException (Monday: "If the items sent do not belong to the
    board(s) that are connected, an exception will be raised")."""
    connected = {str(b) for b in column.settings.get("boardIds", ())}
    for item_id in values.linked_ids(stored):
        if not connected:
            raise errors.ColumnValueError(
                column.id, column.type, "the column is not connected to any board"
            )
        item = store.items.get(str(item_id))
        if item is None or item.state != "active" or item.board_id not in connected:
            raise errors.ColumnValueError(
                column.id, column.type, f"item {item_id} is not on a board connected to the column"
            )


def connect_boards(store: Store, settings: Mapping[str, Any]) -> None:
    """A connect boards column's boards exist (create_column and the control API)."""
    for board_id in settings.get("boardIds", ()):
        board = store.boards.get(str(board_id))
        if board is None or board.state == "deleted":
            raise errors.invalid_argument(f"Board with id {board_id} does not exist")


def _change(
    ctx: Context,
    board_id: str,
    item_id: str | None,
    raw: Mapping[str, Any],
    create_labels: bool | None,
    *,
    simple: bool = False,
) -> Item:
    board = _board(ctx.store, board_id)
    item = _item(ctx.store, item_id, board)
    name, vals, settings = writes(ctx.store, board, raw, bool(create_labels), simple=simple)
    for column, new in settings:
        ctx.store.set_settings(column, new)
    ctx.store.update_item(item, name, vals, user_id=ctx.user_id)
    return item


# --- Query (each resolver is named after its field) ------------------------------------


def _me(_root: Any, _info: Info) -> dict[str, str]:
    return USER


def _boards(
    _root: Any,
    info: Info,
    ids: list[str] | None = None,
    limit: int | None = 25,
    page: int | None = 1,
    state: str | None = "active",
) -> list[Board]:
    store = info.context.store
    if ids is None:
        found = list(store.boards.values())
    else:
        found = [store.boards[i] for i in dict.fromkeys(ids) if i in store.boards]
    found = [b for b in found if state in (None, "all") or b.state == state]
    return _slice(found, limit, page)


def _items(
    _root: Any,
    info: Info,
    ids: list[str] | None = None,
    limit: int | None = 25,
    page: int | None = 1,
    newest_first: bool | None = None,
    exclude_nonactive: bool | None = None,
) -> list[Item]:
    store = info.context.store
    if ids is None:
        found = list(store.items.values())
    else:
        found = [store.items[i] for i in dict.fromkeys(ids) if i in store.items]
    if exclude_nonactive:
        found = [i for i in found if i.state == "active"]
    found.sort(key=lambda i: int(i.id), reverse=bool(newest_first))
    # Monday returns at most 100 (and 25 unless told otherwise: a classic trap).
    return _slice(found, min(limit or 25, ITEMS_MAX), page)


def _slice(found: list[Any], limit: int | None, page: int | None) -> list[Any]:
    size = max(1, limit or 25)
    start = (max(1, page or 1) - 1) * size
    return found[start : start + size]


def _items_page_by_column_values(
    _root: Any,
    info: Info,
    board_id: str,
    limit: int,
    columns: list[dict[str, Any]] | None = None,
    cursor: str | None = None,
) -> ItemsPage:
    ctx = info.context
    if cursor is not None:
        if columns:
            raise errors.invalid_argument("columns and cursor cannot be used in the same request")
        return _next_items_page(None, info, cursor, limit)
    board = _board(ctx.store, board_id)
    _page_limit(limit)
    if not columns:
        return _page(ctx, (i.id for i in ctx.store.board_items(board.id)), limit)
    matched: set[str] | None = None
    for rule in columns:
        column = board.columns.get(rule["column_id"])
        if column is None:
            raise errors.invalid_column(rule["column_id"], board.id)
        if column.type in UNSEARCHABLE:
            raise errors.invalid_argument(
                f"Column {column.id} of type {column.type} cannot be searched by its values"
            )
        wanted = [v for v in rule["column_values"] if v is not None]
        ids = {i.id for i in ctx.store.find(board, column, wanted)}
        matched = ids if matched is None else matched & ids  # entries are ANDed
    return _page(ctx, sorted(matched or (), key=int), limit)


def _next_items_page(_root: Any, info: Info, cursor: str, limit: int) -> ItemsPage:
    ctx = info.context
    ids, following = ctx.cursors.next(cursor, _page_limit(limit))
    return ItemsPage(following, [ctx.store.items[i] for i in ids])


def _complexity(_root: Any, info: Info) -> Charge:
    return info.context.charge


class PlatformApi:
    """PlatformApi { daily_limit daily_analytics }: the account's limit, and its usage as the
    last refresh of the analytics saw it."""

    __slots__ = ("_limiter",)

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    @property
    def daily_limit(self) -> dict[str, int | None]:
        limits = self._limiter.limits
        return {"base": limits.daily_calls, "total": limits.daily_total}

    @property
    def daily_analytics(self) -> dict[str, Any]:
        usage = self._limiter.daily_usage()
        moment = dt.datetime.fromtimestamp(usage.last_updated, dt.UTC)
        return {
            "last_updated": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "by_day": [{"day": day, "usage": used} for day, used in usage.by_day],
        }


def _platform_api(_root: Any, info: Info) -> PlatformApi:
    limiter = info.context.limiter
    if not limiter.limits.platform_api_readable:
        # Monday's answer to a token that may not read something (error-handling page).
        raise errors.ApiError(
            "USER_UNAUTHORIZED",
            "User unauthorized to perform action",
            status_code=403,
            error_data={},
        )
    return PlatformApi(limiter)


def _version(_root: Any, info: Info) -> versions.Version:
    return info.context.version


def _all_versions(_root: Any, _info: Info) -> tuple[versions.Version, ...]:
    return versions.VERSIONS


# --- Mutation --------------------------------------------------------------------------


def _create_item(
    _root: Any,
    info: Info,
    board_id: str,
    item_name: str,
    column_values: object = None,
    create_labels_if_missing: bool | None = None,
) -> Item:
    ctx = info.context
    board = _board(ctx.store, board_id)
    name = values.check_name(item_name)
    raw = {} if column_values is None else values.parse_object(column_values, "column_values")
    renamed, vals, settings = writes(ctx.store, board, raw, bool(create_labels_if_missing))
    for column, new in settings:
        ctx.store.set_settings(column, new)
    return ctx.store.create_item(board, renamed or name, vals, user_id=ctx.user_id)


def _change_multiple_column_values(
    _root: Any,
    info: Info,
    board_id: str,
    column_values: object,
    item_id: str | None = None,
    create_labels_if_missing: bool | None = None,
) -> Item:
    raw = values.parse_object(column_values, "column_values")
    return _change(info.context, board_id, item_id, raw, create_labels_if_missing)


def _change_column_value(
    _root: Any,
    info: Info,
    board_id: str,
    column_id: str,
    value: object,
    item_id: str | None = None,
    create_labels_if_missing: bool | None = None,
) -> Item:
    raw = {column_id: values.parse_value(value, "value")}
    return _change(info.context, board_id, item_id, raw, create_labels_if_missing)


def _change_simple_column_value(
    _root: Any,
    info: Info,
    board_id: str,
    column_id: str,
    item_id: str | None = None,
    value: str | None = None,
    create_labels_if_missing: bool | None = None,
) -> Item:
    raw = {column_id: value}
    return _change(info.context, board_id, item_id, raw, create_labels_if_missing, simple=True)


def _archive_item(_root: Any, info: Info, item_id: str | None = None) -> Item:
    ctx = info.context
    item = _item(ctx.store, item_id)
    if item.state != "archived":
        ctx.store.set_state(item, "archived", user_id=ctx.user_id)
    return item


def _delete_item(_root: Any, info: Info, item_id: str | None = None) -> Item:
    ctx = info.context
    item = _item(ctx.store, item_id)
    ctx.store.set_state(item, "deleted", user_id=ctx.user_id)
    return item


async def _create_webhook(
    _root: Any, info: Info, board_id: str, url: str, event: str, config: object = None
) -> Webhook:
    ctx = info.context
    board = _webhook_board(ctx.store, board_id)
    if len(url) > WEBHOOK_URL_MAX:
        raise errors.invalid_argument(f"url must be at most {WEBHOOK_URL_MAX} characters")
    settings = None if config is None else values.parse_object(config, "config")
    if event == "change_specific_column_value":
        column_id = (settings or {}).get("columnId")
        if not isinstance(column_id, str) or column_id not in board.columns:
            raise errors.invalid_argument(
                'change_specific_column_value needs config {"columnId": ...} naming a column'
            )
    # Monday answers a URL that fails the challenge with nothing but this message.
    if await ctx.deliverer.challenge(url) is not None:
        raise errors.BareError("Internal Server Error")
    return ctx.store.add_webhook(board, url, event, settings, app=ctx.deliverer.signed)


def _delete_webhook(_root: Any, info: Info, id: str) -> Webhook | None:
    webhook = info.context.store.remove_webhook(id)
    if webhook is None:
        match info.context.gone_webhook:
            case "internal_error":
                raise errors.ApiError(
                    "INTERNAL_SERVER_ERROR", "Internal server error", status_code=500
                )
            case "null":
                return None
        raise errors.ApiError(
            "ResourceNotFoundException", f"Webhook with id {id} was not found", status_code=404
        )
    return webhook


def _webhooks(
    _root: Any, info: Info, board_id: str, app_webhooks_only: bool | None = None
) -> list[Webhook]:
    store = info.context.store
    board = _webhook_board(store, board_id)
    return [
        w
        for w in store.webhooks.values()
        if w.board_id == board.id and (w.app or not app_webhooks_only)
    ]


def _webhook_board(store: Store, board_id: str) -> Board:
    board = store.boards.get(str(board_id))
    if board is None or board.state == "deleted":
        raise errors.invalid_argument(f"Board with id {board_id} does not exist")
    return board


def _create_column(
    _root: Any,
    info: Info,
    board_id: str,
    title: str,
    column_type: str,
    id: str | None = None,
    description: str | None = None,
    defaults: object = None,
) -> Column:
    store = info.context.store
    board = _board(store, board_id)
    if column_type not in COLUMN_TYPES or column_type == "name":
        raise errors.invalid_argument(f"The emulator cannot create {column_type} columns")
    if id is None:
        id = _made_column_id(board, column_type)
    elif not _COLUMN_ID.match(id):
        raise errors.invalid_argument("Column id must be 1-20 lowercase letters or underscores")
    elif id in board.columns:
        raise errors.invalid_argument(f"Column id {id} already exists on the board")
    # Monday's own examples pass `defaults` as an object literal as well as a JSON string.
    raw = defaults if isinstance(defaults, dict) else None
    if raw is None:
        raw = {} if defaults is None else values.parse_object(defaults, "defaults")
    settings = values.settings_from_defaults(column_type, raw)
    connect_boards(store, settings)
    column = Column(id, title, column_type, settings, description)  # type: ignore[arg-type]
    return store.add_column(board, column)


def _made_column_id(board: Board, column_type: str) -> str:
    """An id as Monday makes one: the type, `_mk` and a few letters and digits (the same for the
    same board and column count, so that runs repeat)."""
    n = 0
    while True:
        seed = f"{board.id}:{len(board.columns)}:{column_type}:{n}".encode()
        digest = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big")
        suffix = ""
        for _ in range(6):
            digest, digit = divmod(digest, 36)
            suffix += "0123456789abcdefghijklmnopqrstuvwxyz"[digit]
        made = f"{column_type}_mk{suffix}"
        if made not in board.columns:
            return made
        n += 1


def _create_board(
    _root: Any,
    info: Info,
    board_kind: str,
    board_name: str,
    description: str | None = None,
) -> Board:
    if not board_name.strip():
        raise errors.invalid_argument("board_name must not be empty")
    return info.context.store.add_board(board_name, kind=board_kind, description=description)


# --- object fields ---------------------------------------------------------------------


def _board_kind(board: Board, _info: Info) -> str:
    return board.kind


def _board_columns(
    board: Board,
    _info: Info,
    ids: list[str | None] | None = None,
    types: list[str] | None = None,
) -> list[Column]:
    found = [c for c in board.columns.values() if ids is None or c.id in ids]
    return [c for c in found if types is None or c.type in types]


def _board_items_count(board: Board, info: Info) -> int:
    return len(info.context.store.board_items(board.id))


def _board_items_page(board: Board, info: Info, limit: int, cursor: str | None = None) -> ItemsPage:
    if cursor is not None:
        return _next_items_page(None, info, cursor, limit)
    ctx = info.context
    return _page(ctx, (i.id for i in ctx.store.board_items(board.id)), limit)


def _board_activity_logs(board: Board, info: Info, **args: Any) -> list[dict[str, Any]]:
    # `from` is a Python keyword, hence **args.
    since, until = _instant(args.get("from"), "from"), _instant(args.get("to"), "to")
    columns, groups = args.get("column_ids"), args.get("group_ids")
    items, users = args.get("item_ids"), args.get("user_ids")
    users = None if users is None else {str(u) for u in users}
    found: list[Change] = []
    for change in reversed(info.context.store.activity.get(board.id, ())):  # newest first
        column = NAME_COLUMN if change.kind == "name" else change.column_id
        if (
            (since is None or change.at >= since)
            and (until is None or change.at <= until)
            and (columns is None or column in columns)
            and (groups is None or events.GROUP["groupId"] in groups)
            and (items is None or change.item_id in items)
            and (users is None or str(change.user_id) in users)
        ):
            found.append(change)
    return [
        events.activity_log(c, board) for c in _slice(found, args.get("limit"), args.get("page"))
    ]


def _instant(value: str | None, argument: str) -> float | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise errors.invalid_argument(f"{argument} must be an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _webhook_config(webhook: Webhook, _info: Info) -> str | None:
    return None if webhook.config is None else json.dumps(webhook.config)


def _item_board(item: Item, info: Info) -> Board:
    return info.context.store.boards[item.board_id]


def _item_column_values(
    item: Item,
    info: Info,
    ids: list[str] | None = None,
    types: list[str] | None = None,
) -> list[Cell]:
    board = info.context.store.boards[item.board_id]
    return [
        Cell(column, item.values.get(column.id))
        for column in board.columns.values()
        if column.id != NAME_COLUMN
        and (ids is None or column.id in ids)
        and (types is None or column.type in types)
    ]


def _links(cell: Cell, info: Info) -> list[Item]:
    # An archived or deleted item drops out of the links and comes back when restored
    # [inferred: Monday hides archived items from the column and restores them with it].
    found = (info.context.store.items.get(str(i)) for i in values.linked_ids(cell.stored))
    return [item for item in found if item is not None and item.state == "active"]


def _linked_item_ids(cell: Cell, info: Info) -> list[str]:
    return [item.id for item in _links(cell, info)]


def _display_value(cell: Cell, info: Info) -> str:
    return ", ".join(item.name for item in _links(cell, info))


# Field resolvers by type; fields not listed read the attribute of the same name.
RESOLVERS: dict[str, dict[str, Callable[..., Any]]] = {
    "Query": {
        "me": _me,
        "boards": _boards,
        "items": _items,
        "items_page_by_column_values": _items_page_by_column_values,
        "next_items_page": _next_items_page,
        "complexity": _complexity,
        "version": _version,
        "versions": _all_versions,
        "webhooks": _webhooks,
        "platform_api": _platform_api,
    },
    "Mutation": {
        "create_item": _create_item,
        "change_multiple_column_values": _change_multiple_column_values,
        "change_column_value": _change_column_value,
        "change_simple_column_value": _change_simple_column_value,
        "archive_item": _archive_item,
        "delete_item": _delete_item,
        "create_column": _create_column,
        "create_board": _create_board,
        "create_webhook": _create_webhook,
        "delete_webhook": _delete_webhook,
        "complexity": _complexity,
    },
    "Board": {
        "board_kind": _board_kind,
        "columns": _board_columns,
        "items_count": _board_items_count,
        "items_page": _board_items_page,
        "activity_logs": _board_activity_logs,
    },
    "Item": {"board": _item_board, "column_values": _item_column_values},
    "BoardRelationValue": {
        "linked_item_ids": _linked_item_ids,
        "linked_items": _links,
        "display_value": _display_value,
    },
    "Webhook": {"config": _webhook_config},
}
