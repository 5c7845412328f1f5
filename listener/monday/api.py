"""Monday's GraphQL API: one aiohttp session, typed errors, many mutations per request.

Documents are built from fixed text and variables only (never from row data), every response
body is parsed whatever its HTTP status, and each failure becomes an `errors` type.
Building documents and reading replies are pure functions, tested without a network.

Each function that sends a request sends exactly one, and returns what it read together with
the `Reply` it came in, so that the caller can settle the request with the governor (a paged
read is one call per page).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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
    request_id: str | None = None  # Monday's id of the request that carried it


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


ITEM_BOARDS_QUERY = (
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
    body = _body(status, raw)
    request_id = headers.get("x-request-id")
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
    field_errors = _field_errors(body, status, request_id, headers)
    if status != 200 or body.data is None:
        raise errors.make(
            f"HTTP {status} without data", status=status if status != 200 else 502,
            request_id=request_id, retry_after=errors.retry_after(None, headers),
        )  # fmt: skip
    return Reply(body.data, field_errors, request_id, _complexity(body.data), headers)


def _body(status: int, raw: bytes) -> Body:
    try:
        return Body.model_validate_json(raw) if raw else Body()
    except ValidationError:
        text = raw[:200].decode("utf-8", "replace")
        kind_status = status if status != 200 else 502
        raise errors.make(f"unreadable response: {text!r}", status=kind_status) from None


def _field_errors(
    body: Body, status: int, request_id: str | None, headers: Mapping[str, str]
) -> dict[str, GraphQLError]:
    """The errors of top-level fields, by alias; raises the first error of the request."""
    found: dict[str, GraphQLError] = {}
    for error in body.errors or []:
        alias = error.path[0] if error.path else None
        if isinstance(alias, str) and body.data is not None and alias in body.data:
            found.setdefault(alias, error)
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
    return found


def _complexity(data: Mapping[str, Any]) -> Complexity | None:
    if not isinstance(data.get("complexity"), dict):
        return None
    try:
        return Complexity.model_validate(data["complexity"])
    except ValidationError:
        return None


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
            out.append(Result(op, None, error, reply.request_id))
        elif isinstance(item, dict) and item.get("id") is not None:
            out.append(Result(op, str(item["id"]), request_id=reply.request_id))
        else:
            gone = errors.ItemGone("Monday returned no item", request_id=reply.request_id)
            out.append(Result(op, None, gone, reply.request_id))
    return out


# --- the client ---------------------------------------------------------------------------


def client(settings: Settings, *, timeout: float | None = None) -> Client:
    """A client for the configured endpoint, token and version (the token must be set)."""
    if settings.api_key is None:
        raise ValueError("MONDAY_API_KEY is not set")
    return Client(
        url=settings.api_url,
        api_key=settings.api_key,
        version=settings.api_version,
        timeout=settings.tuning.request_timeout if timeout is None else timeout,
    )


class Client:
    """Monday's API over one aiohttp session. Use as an async context manager."""

    def __init__(
        self,
        *,
        url: str,
        api_key: SecretStr,
        version: str,
        timeout: float = 65.0,
    ) -> None:
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
        return reply


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a paged read: what it found, and the cursor of the next page (None after
    the last)."""

    found: T
    cursor: str | None


async def mutate(client: Client, board_id: str, ops: Sequence[Op]) -> tuple[list[Result], Reply]:
    """Apply ops to one board in one request: per-op results and the reply, or a
    request-level error."""
    query, variables = build_mutation(board_id, ops)
    key = idempotency_key(query, variables, [op.change for op in ops])
    reply = await client.post(query, variables, idempotency_key=key)
    return results(ops, reply), reply


async def item_boards(client: Client, ids: Sequence[str]) -> tuple[dict[str, str], Reply]:
    """The board of each item among `ids` (at most ITEMS_PAGE) that Monday knows, by id."""
    reply = await client.post(ITEM_BOARDS_QUERY, {"ids": list(ids), "l": ITEMS_PAGE})
    error = field_error(reply, "items")
    if error is not None:
        raise error
    found = {}
    for item in reply.data.get("items") or []:
        board = item.get("board") if isinstance(item, dict) else None
        if isinstance(board, dict) and board.get("id") is not None:
            found[str(item["id"])] = str(board["id"])
    return found, reply


async def find_items(
    client: Client,
    board_id: str,
    column_id: str,
    values: Sequence[str],
    cursor: str | None = None,
) -> tuple[Page[dict[str, list[str]]], Reply]:
    """One page of the active items whose text column `column_id` is one of `values` (the
    first page without a cursor): value -> item ids, and the next page's cursor."""
    if not values:
        raise ValueError("nothing to look up")
    if cursor is None:
        variables: dict[str, Any] = {
            "b": board_id, "c": column_id, "v": list(values), "l": LOOKUP_PAGE,
        }  # fmt: skip
        reply = await client.post(LOOKUP_QUERY, variables)
        page = reply.data.get("items_page_by_column_values") or {}
    else:
        variables = {"cursor": cursor, "c": column_id, "l": LOOKUP_PAGE}
        reply = await client.post(NEXT_PAGE_QUERY, variables)
        page = reply.data.get("next_items_page") or {}
    found: dict[str, list[str]] = {}
    wanted = {v.lower(): v for v in values}
    for item in page.get("items") or []:
        text = next((c.get("text") for c in item.get("column_values") or []), None)
        # Text columns match case-insensitively on Monday; map back to our spelling.
        key = wanted.get((text or "").lower())
        if key is not None:
            found.setdefault(key, []).append(str(item["id"]))
    following = page.get("cursor")
    return Page(found, following if isinstance(following, str) and following else None), reply


# --- reading items (inbound) -----------------------------------------------------------------

ITEMS_QUERY = (
    "query ($ids: [ID!], $l: Int, $c: [String!]) { items(ids: $ids, limit: $l) { "
    "id name state updated_at board { id } column_values(ids: $c) { "
    "id value text ... on BoardRelationValue { linked_item_ids } } } "
    f"{COMPLEXITY_FIELD} }}"
)


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
    # Connect-boards columns: their value and text are null (since API 2025-04).
    linked_item_ids: list[str] | None = None

    @field_validator("linked_item_ids", mode="before")
    @classmethod
    def _ids(cls, value: object) -> object:
        return [str(i) for i in value] if isinstance(value, list) else value

    @property
    def raw(self) -> str | None:
        """The value as the rest of npd-sync reads it: a connect-boards column's links in the
        form npd-sync writes them."""
        if self.linked_item_ids is not None:
            return json.dumps({"item_ids": self.linked_item_ids})
        return self.value


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
            values={c.id: (c.raw, c.text) for c in model.column_values},
            board_id=model.board.id if model.board else None,
            updated_at=model.updated_at,
        )
    return found


_ITEM_FIELDS = (
    "id name state updated_at column_values(ids: $c) { "
    "id value text ... on BoardRelationValue { linked_item_ids } }"
)
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
) -> tuple[Page[dict[str, Item]], Reply]:
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
    cursor = following if isinstance(following, str) and following else None
    return Page(parse_items(page), cursor), reply


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
) -> tuple[list[Activity], Reply]:
    """One page of a board's activity log since a moment (ACTIVITY_PAGE entries; fewer on the
    last page)."""
    variables = {"b": [board_id], "from": since.isoformat(), "l": ACTIVITY_PAGE, "p": page}
    reply = await client.post(ACTIVITY_QUERY, variables)
    boards = reply.data.get("boards") or []
    if not boards or not isinstance(boards[0], dict):
        raise field_error(reply, "boards") or errors.Permanent(
            f"board {board_id} not found", request_id=reply.request_id
        )
    entries = boards[0].get("activity_logs") or []
    return [parse_activity(e) for e in entries if isinstance(e, dict)], reply


async def read_items(
    client: Client, ids: Sequence[str], column_ids: Sequence[str]
) -> tuple[dict[str, Item], Reply]:
    """The items among `ids` Monday returns (up to ITEMS_PAGE), with the given columns."""
    variables = {"ids": list(ids), "l": len(ids), "c": list(column_ids)}
    reply = await client.post(ITEMS_QUERY, variables)
    error = field_error(reply, "items")
    if error is not None:
        raise error
    return parse_items(reply.data), reply


# --- the day's calls (platform_api, 2026-10) --------------------------------------------------

DAILY_QUERY = (
    "query { platform_api { daily_limit { base total } daily_analytics { last_updated "
    f"by_day {{ day usage }} }} }} {COMPLEXITY_FIELD} }}"
)


@dataclass(frozen=True, slots=True)
class Daily:
    """The account's daily call limit and usage as Monday states them (None: not said)."""

    limit: int | None
    updated: dt.datetime | None  # when Monday last refreshed the usage
    usage: Mapping[dt.date, int]  # calls per UTC day


async def daily(client: Client) -> tuple[Daily, Reply]:
    """The daily limit and usage (`platform_api`); raises the field's error if Monday refuses
    it (a token without the right, an older version)."""
    reply = await client.post(DAILY_QUERY, {})
    found = reply.data.get("platform_api")
    if not isinstance(found, dict):
        raise field_error(reply, "platform_api") or errors.Permanent(
            "Monday did not tell the daily limit", request_id=reply.request_id
        )
    limit = (found.get("daily_limit") or {}).get("total")
    analytics = found.get("daily_analytics") or {}
    usage: dict[dt.date, int] = {}
    for entry in analytics.get("by_day") or []:
        with contextlib.suppress(TypeError, ValueError, KeyError):
            usage[dt.date.fromisoformat(str(entry["day"])[:10])] = int(entry["usage"])
    updated = None
    with contextlib.suppress(TypeError, ValueError):
        updated = dt.datetime.fromisoformat(str(analytics.get("last_updated")))
    if updated is not None and updated.tzinfo is None:
        updated = updated.replace(tzinfo=dt.UTC)
    return Daily(limit if isinstance(limit, int) else None, updated, usage), reply


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


async def webhooks(client: Client, board_id: str) -> tuple[list[Webhook], Reply]:
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
    ], reply


async def create_webhook(
    client: Client, board_id: str, url: str, event: str
) -> tuple[Webhook, Reply]:
    """Register a webhook; Monday first checks that the URL answers its challenge."""
    reply = await client.post(CREATE_WEBHOOK, {"b": board_id, "u": url, "e": event})
    created = reply.data.get("create_webhook")
    if not isinstance(created, dict) or created.get("id") is None:
        raise field_error(reply, "create_webhook") or errors.Permanent(
            "Monday created no webhook", request_id=reply.request_id
        )
    return Webhook(str(created["id"]), board_id, event), reply


async def delete_webhook(client: Client, webhook_id: str) -> Reply:
    """Remove a webhook; one already gone is not an error."""
    reply = await client.post(DELETE_WEBHOOK, {"i": webhook_id})
    error = field_error(reply, "delete_webhook")
    if error is not None and error.kind is not errors.Kind.ITEM_GONE:
        raise error
    return reply


# --- for `npd-sync check`: who the token is, the version served, the boards ------------------

ABOUT_QUERY = f"query {{ me {{ id name email }} version {{ value kind }} {COMPLEXITY_FIELD} }}"
BOARDS_QUERY = (
    "query ($ids: [ID!], $l: Int) { boards(ids: $ids, limit: $l, state: all) { "
    "id name state columns { id title type archived settings } } "
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
    connected: tuple[str, ...] = ()  # a connect-boards column: the boards it links to


@dataclass(frozen=True, slots=True)
class BoardInfo:
    id: str
    name: str
    state: str  # active, archived or deleted
    columns: Mapping[str, BoardColumn]


def _connected(settings: Any) -> tuple[str, ...]:
    """The boards a connect-boards column links to, from its settings (a JSON object, or its
    text in older versions)."""
    if isinstance(settings, str):
        try:
            settings = json.loads(settings)
        except ValueError:
            return ()
    ids = settings.get("boardIds") if isinstance(settings, dict) else None
    return tuple(str(i) for i in ids) if isinstance(ids, list) else ()


async def about(client: Client) -> tuple[About, Reply]:
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
    return About(me, served, kind if isinstance(kind, str) else None), reply


CREATE_COLUMN = (
    "mutation ($b: ID!, $t: String!, $y: ColumnType!) { "
    "create_column(board_id: $b, title: $t, column_type: $y) { id title type archived } "
    f"{COMPLEXITY_FIELD} }}"
)


async def create_column(
    client: Client, board_id: str, title: str, column_type: str
) -> tuple[BoardColumn, Reply]:
    """Add a column to a board (`npd-sync mapping init --create-columns`); Monday makes its id."""
    variables = {"b": board_id, "t": title, "y": column_type}
    reply = await client.post(CREATE_COLUMN, variables)
    made = reply.data.get("create_column")
    if not isinstance(made, dict) or made.get("id") is None:
        raise field_error(reply, "create_column") or errors.Permanent(
            "Monday created no column", request_id=reply.request_id
        )
    column = BoardColumn(
        str(made["id"]), str(made.get("title") or title), str(made.get("type") or column_type),
        bool(made.get("archived")),
    )  # fmt: skip
    return column, reply


async def boards(client: Client, ids: Sequence[str]) -> tuple[dict[str, BoardInfo], Reply]:
    """The boards among `ids` (at most BOARDS_PAGE) that the token can see (in any state),
    with their columns."""
    wanted = list(dict.fromkeys(ids))
    if len(wanted) > BOARDS_PAGE:
        raise ValueError(f"at most {BOARDS_PAGE} boards a request")
    reply = await client.post(BOARDS_QUERY, {"ids": wanted, "l": len(wanted)})
    error = field_error(reply, "boards")
    if error is not None:
        raise error
    found: dict[str, BoardInfo] = {}
    for board in reply.data.get("boards") or []:
        if isinstance(board, dict) and board.get("id") is not None:
            found[str(board["id"])] = _board_info(board)
    return found, reply


def _board_info(board: Mapping[str, Any]) -> BoardInfo:
    columns = {
        str(c["id"]): BoardColumn(
            str(c["id"]), str(c.get("title") or ""), str(c.get("type") or ""),
            bool(c.get("archived")), _connected(c.get("settings")),
        )
        for c in board.get("columns") or []
        if isinstance(c, dict) and c.get("id") is not None
    }  # fmt: skip
    return BoardInfo(
        str(board["id"]), str(board.get("name") or ""), str(board.get("state") or ""), columns
    )
