"""Monday's GraphQL API: one aiohttp session, typed errors, many mutations per request.

Documents are built from fixed text and variables only (never from row data), every response
body is parsed whatever its HTTP status, and each failure becomes an `errors` type.
Building documents and reading replies are pure functions, tested without a network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator

from listener.monday import errors
from listener.settings import Settings

COMPLEXITY_FIELD = "complexity { query before after reset_in_x_seconds }"
LOOKUP_PAGE = 500  # Monday's maximum for items_page_by_column_values


# Each op carries `change`: which change of its row it applies (not sent; it goes into the
# Idempotency-Key, so that the same state pushed again for a later change is not mistaken for
# a retry and answered from Monday's replay cache).


@dataclass(frozen=True, slots=True)
class Create:
    key: str
    name: str
    values: Mapping[str, Any]
    change: str = ""
    create_labels: bool = False


@dataclass(frozen=True, slots=True)
class Update:
    key: str
    item_id: str
    values: Mapping[str, Any]
    change: str = ""
    create_labels: bool = False


@dataclass(frozen=True, slots=True)
class Archive:
    key: str
    item_id: str
    change: str = ""


@dataclass(frozen=True, slots=True)
class Delete:
    key: str
    item_id: str
    change: str = ""


Op = Create | Update | Archive | Delete


@dataclass(frozen=True, slots=True)
class Result:
    """What became of one operation: the item it touched, or its error."""

    op: Op
    item_id: str | None
    error: errors.MondayError | None = None


# --- what crosses the boundary --------------------------------------------------------------


class Complexity(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    query: int
    before: int
    after: int
    reset_in_x_seconds: int


class GraphQLError(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    message: str = "unknown error"
    path: list[str | int] | None = None
    extensions: dict[str, Any] | None = None


class Body(BaseModel):
    """A response body: the 2025-01+ shape, plus the legacy top-level error fields."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    data: dict[str, Any] | None = None
    errors: list[GraphQLError] | None = None
    extensions: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    status_code: int | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A parsed response that was not a request-level failure."""

    data: dict[str, Any]
    field_errors: dict[str, GraphQLError]
    request_id: str | None
    complexity: Complexity | None
    headers: Mapping[str, str]


# --- pure parts ---------------------------------------------------------------------------


def build_mutation(board_id: str, ops: Sequence[Op]) -> tuple[str, dict[str, Any]]:
    """One document with an aliased mutation per op (o0, o1, ...), and its variables.

    The text depends only on the kinds of the ops, so a server sees few distinct documents.
    """
    declarations = []
    fields = []
    variables: dict[str, Any] = {}
    if any(isinstance(op, Create | Update) for op in ops):
        declarations.append("$b: ID!")
        variables["b"] = board_id
    for i, op in enumerate(ops):
        match op:
            case Create():
                declarations += [f"$n{i}: String!", f"$v{i}: JSON"]
                fields.append(
                    f"o{i}: create_item(board_id: $b, item_name: $n{i}, "
                    f"column_values: $v{i}{_LABELS[op.create_labels]}) {{ id }}"
                )
                variables[f"n{i}"] = op.name
                variables[f"v{i}"] = _json(op.values)
            case Update():
                declarations += [f"$i{i}: ID", f"$v{i}: JSON!"]
                fields.append(
                    f"o{i}: change_multiple_column_values(board_id: $b, item_id: $i{i}, "
                    f"column_values: $v{i}{_LABELS[op.create_labels]}) {{ id }}"
                )
                variables[f"i{i}"] = op.item_id
                variables[f"v{i}"] = _json(op.values)
            case Archive():
                declarations.append(f"$i{i}: ID")
                fields.append(f"o{i}: archive_item(item_id: $i{i}) {{ id }}")
                variables[f"i{i}"] = op.item_id
            case Delete():
                declarations.append(f"$i{i}: ID")
                fields.append(f"o{i}: delete_item(item_id: $i{i}) {{ id }}")
                variables[f"i{i}"] = op.item_id
    query = f"mutation ({', '.join(declarations)}) {{ {' '.join(fields)} {COMPLEXITY_FIELD} }}"
    return query, variables


LOOKUP_QUERY = (
    "query ($b: ID!, $c: String!, $v: [String]!, $l: Int!) { "
    "items_page_by_column_values(board_id: $b, limit: $l, "
    "columns: [{column_id: $c, column_values: $v}]) { "
    "cursor items { id column_values(ids: [$c]) { text } } } "
    f"{COMPLEXITY_FIELD} }}"
)
NEXT_PAGE_QUERY = (
    "query ($cursor: String!, $c: String!, $l: Int!) { "
    "next_items_page(cursor: $cursor, limit: $l) { "
    "cursor items { id column_values(ids: [$c]) { text } } } "
    f"{COMPLEXITY_FIELD} }}"
)


ITEMS_QUERY = (
    "query ($ids: [ID!], $l: Int) { items(ids: $ids, limit: $l) { id board { id } } "
    f"{COMPLEXITY_FIELD} }}"
)
ITEMS_PAGE = 100  # Monday's maximum for items(ids:), whose limit defaults to 25

_LABELS = {False: "", True: ", create_labels_if_missing: true"}


def _json(values: Mapping[str, Any]) -> str:
    # Monday's JSON scalar is a JSON-encoded string, not an object (its schema says so).
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def idempotency_key(query: str, variables: Mapping[str, Any], changes: Sequence[str] = ()) -> str:
    """A key from the request and the changes it applies: only a retry reuses it."""
    digest = hashlib.sha256()
    digest.update(query.encode())
    digest.update(json.dumps(variables, sort_keys=True, ensure_ascii=False).encode())
    digest.update("\n".join(changes).encode())
    return "npd-sync-" + digest.hexdigest()[:40]


def read_reply(status: int, raw: bytes, headers: Mapping[str, str]) -> Reply:
    """Turn an HTTP response into a Reply, or raise the typed error of a request-level failure.

    Errors whose path names a top-level field are the field's own (partial success); any other
    error fails the whole request.
    """
    request_id = headers.get("x-request-id")
    try:
        body = Body.model_validate_json(raw) if raw else Body()
    except ValidationError:
        text = raw[:200].decode("utf-8", "replace")
        kind_status = status if status != 200 else 502
        raise errors.make(f"unreadable response: {text!r}", status=kind_status) from None
    if body.extensions and isinstance(body.extensions.get("request_id"), str):
        request_id = body.extensions["request_id"]
    if body.error_code or (body.error_message and body.data is None):
        message = body.error_message or body.error_code or "error"
        raise errors.make(
            message,
            code=body.error_code,
            status=body.status_code or (status if status != 200 else None),
            request_id=request_id,
            retry_after=errors.retry_after(None, headers),
            budget=_budget(body.error_code, message, None, headers),
        )
    field_errors: dict[str, GraphQLError] = {}
    for error in body.errors or []:
        alias = error.path[0] if error.path else None
        if isinstance(alias, str) and body.data is not None and alias in body.data:
            field_errors.setdefault(alias, error)
            continue
        ext = error.extensions or {}
        code = ext.get("code")
        raise errors.make(
            error.message,
            code=code if isinstance(code, str) else None,
            status=_status(ext, status),
            request_id=request_id,
            retry_after=errors.retry_after(ext, headers),
            budget=_budget(code, error.message, ext, headers),
        )
    if status != 200 or body.data is None:
        raise errors.make(
            f"HTTP {status} without data", status=status if status != 200 else 502,
            request_id=request_id, retry_after=errors.retry_after(None, headers),
        )  # fmt: skip
    complexity = None
    if isinstance(body.data.get("complexity"), dict):
        try:
            complexity = Complexity.model_validate(body.data["complexity"])
        except ValidationError:
            complexity = None
    return Reply(body.data, field_errors, request_id, complexity, headers)


def _budget(
    code: object, message: str, extensions: Mapping[str, Any] | None, headers: Mapping[str, str]
) -> errors.Budget | None:
    """What a refusal for complexity says of the budget (None: not such a refusal)."""
    if code in errors.BUDGET_CODES:
        return errors.budget(message, extensions, headers)
    if code is None or code == errors.TOO_COMPLEX:
        return errors.too_complex(message)
    return None


def _status(extensions: Mapping[str, Any], http_status: int) -> int | None:
    value = extensions.get("status_code")
    if isinstance(value, int):
        return value
    return http_status if http_status != 200 else None


def field_error(reply: Reply, field: str) -> errors.MondayError | None:
    """The typed error of one top-level field (an alias) of a reply, if it failed."""
    error = reply.field_errors.get(field)
    if error is None:
        return None
    ext = error.extensions or {}
    code = ext.get("code")
    return errors.make(
        error.message,
        code=code if isinstance(code, str) else None,
        status=_status(ext, 200),
        request_id=reply.request_id,
        retry_after=errors.retry_after(ext, reply.headers),
    )


def results(ops: Sequence[Op], reply: Reply) -> list[Result]:
    """Per-op results from a reply to `build_mutation`'s document."""
    out = []
    for i, op in enumerate(ops):
        alias = f"o{i}"
        error = field_error(reply, alias)
        item = reply.data.get(alias)
        if error is not None:
            out.append(Result(op, None, error))
        elif isinstance(item, dict) and item.get("id") is not None:
            out.append(Result(op, str(item["id"])))
        else:
            out.append(
                Result(
                    op,
                    None,
                    errors.ItemGone("Monday returned no item", request_id=reply.request_id),
                )
            )
    return out


# --- the client ---------------------------------------------------------------------------


def client(
    settings: Settings,
    *,
    timeout: float | None = None,
    on_reply: Callable[[Reply], Awaitable[None]] | None = None,
) -> Client:
    """A client for the configured endpoint, token and version (the token must be set)."""
    if settings.api_key is None:
        raise ValueError("MONDAY_API_KEY is not set")
    return Client(
        url=settings.api_url,
        api_key=settings.api_key,
        version=settings.api_version,
        timeout=settings.tuning.request_timeout if timeout is None else timeout,
        on_reply=on_reply,
    )


class Client:
    """Monday's API over one aiohttp session. Use as an async context manager.

    `on_reply` sees every successful reply (the governor calibrates the shared budget on it).
    """

    def __init__(
        self,
        *,
        url: str,
        api_key: SecretStr,
        version: str,
        timeout: float = 65.0,
        on_reply: Callable[[Reply], Awaitable[None]] | None = None,
    ) -> None:
        self._on_reply = on_reply
        self._url = url
        self._api_key = api_key
        self._version = version
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        self._session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=False)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self, query: str, variables: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Reply:
        """Send one document; return its reply or raise an `errors.MondayError`."""
        if self._session is None:
            raise RuntimeError("Client used outside 'async with'")
        headers = {
            "Authorization": self._api_key.get_secret_value(),
            "API-Version": self._version,
            "Content-Type": "application/json",
        }
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        body = json.dumps({"query": query, "variables": variables}, ensure_ascii=False)
        try:
            async with self._session.post(self._url, data=body.encode(), headers=headers) as resp:
                raw = await resp.read()
                reply = read_reply(resp.status, raw, resp.headers)
        except errors.MondayError as exc:
            # A proxy's error page may echo the request; the key must not reach a message.
            raise exc.redacted([self._api_key.get_secret_value()]) from None
        except aiohttp.ClientConnectorError as exc:
            raise errors.Transient(f"cannot connect to Monday: {exc.os_error}") from None
        except TimeoutError:
            raise errors.OutcomeUnknown(f"no answer within {self._timeout.total:.0f}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            # The request may have been applied before the connection broke.
            raise errors.OutcomeUnknown(f"connection lost: {type(exc).__name__}") from None
        if self._on_reply is not None:
            await self._on_reply(reply)
        return reply

    async def mutate(self, board_id: str, ops: Sequence[Op]) -> list[Result]:
        """Apply ops to one board in one request; per-op results, or a request-level error."""
        query, variables = build_mutation(board_id, ops)
        key = idempotency_key(query, variables, [op.change for op in ops])
        reply = await self.post(query, variables, idempotency_key=key)
        return results(ops, reply)

    async def item_boards(self, ids: Sequence[str]) -> dict[str, str]:
        """The board of each item among `ids` (at most ITEMS_PAGE) that Monday knows, by id."""
        reply = await self.post(ITEMS_QUERY, {"ids": list(ids), "l": ITEMS_PAGE})
        error = field_error(reply, "items")
        if error is not None:
            raise error
        found = {}
        for item in reply.data.get("items") or []:
            board = item.get("board") if isinstance(item, dict) else None
            if isinstance(board, dict) and board.get("id") is not None:
                found[str(item["id"])] = str(board["id"])
        return found

    async def find_items(
        self, board_id: str, column_id: str, values: Sequence[str]
    ) -> dict[str, list[str]]:
        """Active items whose text column `column_id` is one of `values`: value -> item ids."""
        found: dict[str, list[str]] = {}
        if not values:
            return found
        variables: dict[str, Any] = {
            "b": board_id, "c": column_id, "v": list(values), "l": LOOKUP_PAGE,
        }  # fmt: skip
        reply = await self.post(LOOKUP_QUERY, variables)
        page = reply.data.get("items_page_by_column_values") or {}
        wanted = {v.lower(): v for v in values}
        while True:
            for item in page.get("items") or []:
                text = next((c.get("text") for c in item.get("column_values") or []), None)
                # Text columns match case-insensitively on Monday; map back to our spelling.
                key = wanted.get((text or "").lower())
                if key is not None:
                    found.setdefault(key, []).append(str(item["id"]))
            cursor = page.get("cursor")
            if not cursor:
                return found
            reply = await self.post(
                NEXT_PAGE_QUERY, {"cursor": cursor, "c": column_id, "l": LOOKUP_PAGE}
            )
            page = reply.data.get("next_items_page") or {}


# --- reading items (inbound) -----------------------------------------------------------------

ITEMS_QUERY = (
    "query ($ids: [ID!], $l: Int, $c: [String!]) { items(ids: $ids, limit: $l) { "
    "id name state updated_at board { id } column_values(ids: $c) { id value text } } "
    f"{COMPLEXITY_FIELD} }}"
)
ITEMS_PAGE = 100  # Monday's maximum for items(ids:)


@dataclass(frozen=True, slots=True)
class Item:
    """An item as Monday holds it: name, state and the raw value and text of each column."""

    id: str
    name: str
    state: str  # active, archived or deleted
    values: Mapping[str, tuple[str | None, str | None]]  # column id -> (value JSON, text)
    board_id: str | None = None
    updated_at: dt.datetime | None = None


class _CellModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str
    value: str | None = None
    text: str | None = None


class _BoardRef(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str


class _ItemModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str
    name: str = ""
    state: str | None = None
    updated_at: dt.datetime | None = None
    board: _BoardRef | None = None
    column_values: list[_CellModel] = []

    @field_validator("id", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


def parse_items(data: Mapping[str, Any]) -> dict[str, Item]:
    """The items of a reply to ITEMS_QUERY, by id (items Monday did not return are absent)."""
    found: dict[str, Item] = {}
    for raw in data.get("items") or []:
        if not isinstance(raw, dict):
            continue
        try:
            model = _ItemModel.model_validate(raw)
        except ValidationError:
            continue
        found[model.id] = Item(
            id=model.id,
            name=model.name,
            state=model.state or "active",
            values={c.id: (c.value, c.text) for c in model.column_values},
            board_id=model.board.id if model.board else None,
            updated_at=model.updated_at,
        )
    return found


_ITEM_FIELDS = "id name state updated_at column_values(ids: $c) { id value text }"
BOARD_ITEMS_QUERY = (
    "query ($b: [ID!], $l: Int!, $c: [String!]) { boards(ids: $b) { items_page(limit: $l) { "
    f"cursor items {{ {_ITEM_FIELDS} }} }} }} {COMPLEXITY_FIELD} }}"
)
NEXT_BOARD_ITEMS_QUERY = (
    "query ($cursor: String!, $l: Int!, $c: [String!]) { "
    f"next_items_page(cursor: $cursor, limit: $l) {{ cursor items {{ {_ITEM_FIELDS} }} }} "
    f"{COMPLEXITY_FIELD} }}"
)
ACTIVITY_QUERY = (
    "query ($b: [ID!], $from: ISO8601DateTime, $l: Int, $p: Int) { boards(ids: $b) { "
    "activity_logs(from: $from, limit: $l, page: $p) { id event data created_at } } "
    f"{COMPLEXITY_FIELD} }}"
)
BOARD_PAGE = 500  # Monday's maximum for items_page
ACTIVITY_PAGE = 500


async def board_page(
    client: Client,
    board_id: str,
    column_ids: Sequence[str],
    cursor: str | None = None,
    *,
    limit: int = BOARD_PAGE,
) -> tuple[dict[str, Item], str | None]:
    """One page of a board's active items (the first without a cursor), and the next page's
    cursor (None after the last)."""
    limit = max(1, min(limit, BOARD_PAGE))
    if cursor is None:
        variables: dict[str, Any] = {"b": [board_id], "l": limit, "c": list(column_ids)}
        reply = await client.post(BOARD_ITEMS_QUERY, variables)
        boards = reply.data.get("boards") or []
        if not boards or not isinstance(boards[0], dict):
            raise field_error(reply, "boards") or errors.Permanent(
                f"board {board_id} not found", request_id=reply.request_id
            )
        page = boards[0].get("items_page") or {}
    else:
        variables = {"cursor": cursor, "l": limit, "c": list(column_ids)}
        reply = await client.post(NEXT_BOARD_ITEMS_QUERY, variables)
        page = reply.data.get("next_items_page") or {}
    following = page.get("cursor")
    return parse_items(page), following if isinstance(following, str) and following else None


@dataclass(frozen=True, slots=True)
class Activity:
    """One entry of a board's activity log: which items it names, and when."""

    event: str
    item_ids: tuple[str, ...]
    at: dt.datetime | None
    column_id: str | None = None  # the column a value change was to


def parse_activity(entry: Mapping[str, Any]) -> Activity:
    """An activity log entry: its `data` (a JSON string) names the item (or items, for a
    batch change); `created_at` counts 100-nanosecond ticks since the epoch."""
    ids: list[str] = []
    try:
        data = json.loads(entry.get("data") or "{}")
    except ValueError:
        data = {}
    if isinstance(data, dict):
        for name in ("pulse_id", "item_id"):
            if data.get(name) is not None:
                ids.append(str(data[name]))
        ids += [str(i) for i in data.get("pulse_ids") or [] if i is not None]
    at = None
    raw = str(entry.get("created_at") or "")
    if raw.isdigit():
        at = dt.datetime.fromtimestamp(int(raw) / 10_000_000, dt.UTC)
    column = data.get("column_id") if isinstance(data, dict) else None
    return Activity(
        str(entry.get("event") or ""), tuple(dict.fromkeys(ids)), at,
        column if isinstance(column, str) else None,
    )  # fmt: skip


async def activity(
    client: Client, board_id: str, since: dt.datetime, page: int = 1
) -> list[Activity]:
    """One page of a board's activity log since a moment (ACTIVITY_PAGE entries; fewer on the
    last page)."""
    variables = {"b": [board_id], "from": since.isoformat(), "l": ACTIVITY_PAGE, "p": page}
    reply = await client.post(ACTIVITY_QUERY, variables)
    boards = reply.data.get("boards") or []
    if not boards or not isinstance(boards[0], dict):
        raise field_error(reply, "boards") or errors.Permanent(
            f"board {board_id} not found", request_id=reply.request_id
        )
    return [parse_activity(e) for e in boards[0].get("activity_logs") or [] if isinstance(e, dict)]


async def read_items(
    client: Client, ids: Sequence[str], column_ids: Sequence[str]
) -> dict[str, Item]:
    """The items among `ids` Monday returns (up to ITEMS_PAGE), with the given columns."""
    variables = {"ids": list(ids), "l": len(ids), "c": list(column_ids)}
    reply = await client.post(ITEMS_QUERY, variables)
    error = field_error(reply, "items")
    if error is not None:
        raise error
    return parse_items(reply.data)


# --- webhooks (inbound) ----------------------------------------------------------------------

# `app`: those made by the app whose token asks (Monday's changelog, "Webhooks improvements":
# only webhooks made with an app's token carry a JWT; none made with a personal token does).
WEBHOOKS_QUERY = (
    "query ($b: ID!) { webhooks(board_id: $b) { id board_id event } "
    "app: webhooks(board_id: $b, app_webhooks_only: true) { id } "
    f"{COMPLEXITY_FIELD} }}"
)
CREATE_WEBHOOK = (
    "mutation ($b: ID!, $u: String!, $e: WebhookEventType!) { "
    "create_webhook(board_id: $b, url: $u, event: $e) { id board_id event } "
    f"{COMPLEXITY_FIELD} }}"
)
DELETE_WEBHOOK = f"mutation ($i: ID!) {{ delete_webhook(id: $i) {{ id }} {COMPLEXITY_FIELD} }}"


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    board_id: str
    event: str
    app: bool | None = None  # made by this token's app; None: Monday did not say


def _ids(found: Any) -> set[str] | None:
    if not isinstance(found, list):
        return None
    return {str(w["id"]) for w in found if isinstance(w, dict) and w.get("id") is not None}


async def webhooks(client: Client, board_id: str) -> list[Webhook]:
    """The webhooks registered on a board (by anyone), and whether this token's app made
    each."""
    reply = await client.post(WEBHOOKS_QUERY, {"b": board_id})
    error = field_error(reply, "webhooks")
    if error is not None:
        raise error
    apps = None if field_error(reply, "app") is not None else _ids(reply.data.get("app"))
    return [
        Webhook(
            str(w["id"]),
            str(w.get("board_id") or board_id),
            str(w.get("event") or ""),
            None if apps is None else str(w["id"]) in apps,
        )
        for w in reply.data.get("webhooks") or []
        if isinstance(w, dict) and w.get("id") is not None
    ]


async def create_webhook(client: Client, board_id: str, url: str, event: str) -> Webhook:
    """Register a webhook; Monday first checks that the URL answers its challenge."""
    reply = await client.post(CREATE_WEBHOOK, {"b": board_id, "u": url, "e": event})
    created = reply.data.get("create_webhook")
    if not isinstance(created, dict) or created.get("id") is None:
        raise field_error(reply, "create_webhook") or errors.Permanent(
            "Monday created no webhook", request_id=reply.request_id
        )
    return Webhook(str(created["id"]), board_id, event)


async def delete_webhook(client: Client, webhook_id: str) -> None:
    """Remove a webhook; one already gone is not an error."""
    reply = await client.post(DELETE_WEBHOOK, {"i": webhook_id})
    error = field_error(reply, "delete_webhook")
    if error is not None and error.kind is not errors.Kind.ITEM_GONE:
        raise error


# --- for `npd-sync check`: who the token is, the version served, the boards ------------------

ABOUT_QUERY = f"query {{ me {{ id name email }} version {{ value kind }} {COMPLEXITY_FIELD} }}"
BOARDS_QUERY = (
    "query ($ids: [ID!], $l: Int) { boards(ids: $ids, limit: $l, state: all) { "
    "id name state columns { id title type archived } } "
    f"{COMPLEXITY_FIELD} }}"
)
BOARDS_PAGE = 100  # board ids asked for in one request


@dataclass(frozen=True, slots=True)
class About:
    """What `about` learnt: the token's user and the API version that answered."""

    user: Mapping[str, Any]
    served_version: str | None  # the response's API-Version header
    version_kind: str | None  # current, maintenance, release_candidate, deprecated, ...


@dataclass(frozen=True, slots=True)
class BoardColumn:
    id: str
    title: str
    type: str  # Monday's ColumnType, e.g. "text", "email"
    archived: bool


@dataclass(frozen=True, slots=True)
class BoardInfo:
    id: str
    name: str
    state: str  # active, archived or deleted
    columns: Mapping[str, BoardColumn]


async def about(client: Client) -> About:
    """Check the token (`me`) and read the version Monday serves; raises MondayError."""
    reply = await client.post(ABOUT_QUERY, {})
    me = reply.data.get("me")
    if not isinstance(me, dict):
        raise field_error(reply, "me") or errors.Blocked(
            "the token is not accepted (me is null)", request_id=reply.request_id
        )
    version = reply.data.get("version")
    kind = version.get("kind") if isinstance(version, dict) else None
    served = reply.headers.get("API-Version")
    if served is None and isinstance(version, dict) and isinstance(version.get("value"), str):
        served = version["value"]
    return About(me, served, kind if isinstance(kind, str) else None)


CREATE_COLUMN = (
    "mutation ($b: ID!, $t: String!, $y: ColumnType!) { "
    "create_column(board_id: $b, title: $t, column_type: $y) { id title type archived } "
    f"{COMPLEXITY_FIELD} }}"
)


async def create_column(client: Client, board_id: str, title: str, column_type: str) -> BoardColumn:
    """Add a column to a board (`npd-sync mapping init --create-columns`); Monday makes its id."""
    variables = {"b": board_id, "t": title, "y": column_type}
    reply = await client.post(CREATE_COLUMN, variables)
    made = reply.data.get("create_column")
    if not isinstance(made, dict) or made.get("id") is None:
        raise field_error(reply, "create_column") or errors.Permanent(
            "Monday created no column", request_id=reply.request_id
        )
    return BoardColumn(
        str(made["id"]), str(made.get("title") or title), str(made.get("type") or column_type),
        bool(made.get("archived")),
    )  # fmt: skip


async def boards(client: Client, ids: Sequence[str]) -> dict[str, BoardInfo]:
    """The boards among `ids` that the token can see (in any state), with their columns."""
    found: dict[str, BoardInfo] = {}
    wanted = list(dict.fromkeys(ids))
    for start in range(0, len(wanted), BOARDS_PAGE):
        page = wanted[start : start + BOARDS_PAGE]
        reply = await client.post(BOARDS_QUERY, {"ids": page, "l": len(page)})
        error = field_error(reply, "boards")
        if error is not None:
            raise error
        for board in reply.data.get("boards") or []:
            if not isinstance(board, dict) or board.get("id") is None:
                continue
            columns = {
                str(c["id"]): BoardColumn(
                    str(c["id"]), str(c.get("title") or ""), str(c.get("type") or ""),
                    bool(c.get("archived")),
                )
                for c in board.get("columns") or []
                if isinstance(c, dict) and c.get("id") is not None
            }  # fmt: skip
            found[str(board["id"])] = BoardInfo(
                str(board["id"]), str(board.get("name") or ""), str(board.get("state") or ""),
                columns,
            )  # fmt: skip
    return found
