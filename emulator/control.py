"""The /control/* endpoints: inspect and steer a running emulator over HTTP (for tests
and for people trying the emulator from a shell). They are not part of Monday's API and
need no token; the emulator listens on 127.0.0.1 unless told otherwise.

    GET  /control/state     boards with items, counters, faults, limits, usage
    GET  /control/requests  {"requests": [RequestRecord, ...]}
    POST /control/faults    Faults fields (missing ones default) -> {"faults": {...}}
    POST /control/limits    {"plan": "pro", ...AccountLimits fields} -> {"limits": {...}}
    POST /control/reset     -> {"ok": true}
    POST /control/release   let hung requests go -> {"released": n}

Editing the boards as a person in the browser would (user_id defaults to PERSON_USER_ID;
values in Monday's JSON form, as an object; the webhooks hear of it like any change):

    POST /control/items/{id}         {"column_values": {...}, "name": "...",
                                      "state": "active|archived|deleted", "user_id": n}
                                     (all optional) -> {"item": {...}}
    POST /control/boards/{id}/items  {"name": "...", "column_values": {...}, "user_id": n}
                                     -> {"item": {...}}

    POST /control/boards/{id}/columns  {"id": "company", "type": "board_relation",
                                      "title": "...", "defaults": {"boardIds": [...]}}
                                     -> {"column": {...}}  (defaults as create_column's)

    An unknown item or board is a 404, a value Monday would refuse a 400, both with
    {"error": message, "code": Monday's error code}.

The daily call limit (the limit itself is `daily_calls` in /control/limits):

    GET  /control/daily   {"now", "day", "used", "limit", "left", "resets_in_seconds",
                           "reported": {"last_updated", "by_day": [{"day", "usage"}]}}
    POST /control/daily   {"used": n} or {"left": n} (calls other apps spent today;
                           "reported": false leaves platform_api behind until its next
                           refresh) -> the same as GET

Webhooks:

    GET  /control/webhooks          {"webhooks": [...], "deliveries": [Delivery, ...],
                                     "faults": {...}, "pending": n}
    POST /control/webhooks/faults   WebhookFaults fields (missing ones default; "paused":
                                     false resumes) -> {"faults": {...}}
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator import errors, events, values
from emulator.faults import Faults
from emulator.limits import limits_from_json, limits_to_json
from emulator.model import COLUMN_TYPES, NAME_COLUMN, Item
from emulator.state import board_json, item_json
from emulator.webhooks import WebhookFaults

if TYPE_CHECKING:
    from emulator.server import Emulator


async def _edit_item(emulator: Emulator, request: web.Request) -> web.Response:
    """Edit an item as a person would (POST /control/items/{id})."""
    data = await _object(request)
    item_id = request.match_info["id"]
    unknown = set(data) - {"column_values", "name", "state", "user_id"}
    if unknown:
        return _bad(f"unknown keys: {', '.join(sorted(unknown))}")
    state = data.get("state")
    if state not in (None, "active", "archived", "deleted"):
        return _bad("state must be active, archived or deleted")
    user_id, column_values, name = _user(data), _values(data), data.get("name")
    try:
        # A restore comes first, so that the restored item can be edited.
        if state == "active":
            emulator.set_item_state(item_id, state, user_id=user_id)
        if column_values is not None or name is not None:
            emulator.edit_item(item_id, column_values, name=name, user_id=user_id)
        if state in ("archived", "deleted"):
            emulator.set_item_state(item_id, state, user_id=user_id)
    except errors.ApiError as exc:
        return _refused(exc)
    return _item(emulator.item(item_id))


def add_routes(app: web.Application, emulator: Emulator) -> None:
    """Mount the control endpoints of `emulator` on `app`."""

    async def state(_request: web.Request) -> web.Response:
        return web.json_response(emulator.state_json())

    async def requests(_request: web.Request) -> web.Response:
        return web.json_response({"requests": [r.to_json() for r in emulator.requests]})

    async def faults(request: web.Request) -> web.Response:
        data = await _object(request)
        try:
            new = Faults.from_json(data)
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
        emulator.set_faults(new)
        return web.json_response({"faults": new.to_json()})

    async def limits(request: web.Request) -> web.Response:
        data = await _object(request)
        try:
            new = limits_from_json(data)
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
        emulator.set_limits(new)
        return web.json_response({"limits": limits_to_json(new)})

    async def reset(_request: web.Request) -> web.Response:
        emulator.reset()
        return web.json_response({"ok": True})

    async def release(_request: web.Request) -> web.Response:
        return web.json_response({"released": emulator.release_hung()})

    async def add_item(request: web.Request) -> web.Response:
        data = await _object(request)
        unknown = set(data) - {"column_values", "name", "user_id"}
        if unknown:
            return _bad(f"unknown keys: {', '.join(sorted(unknown))}")
        try:
            item = emulator.add_item(
                request.match_info["id"],
                data.get("name", ""),
                _values(data),
                user_id=_user(data),
            )
        except errors.ApiError as exc:
            return _refused(exc)
        return _item(item)

    async def webhooks(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "webhooks": [dataclasses.asdict(w) for w in emulator.webhooks()],
                "deliveries": [d.to_json() for d in emulator.deliveries],
                "faults": emulator.webhook_faults.to_json(),
                "pending": emulator.webhooks_pending,
            }
        )

    async def webhook_faults(request: web.Request) -> web.Response:
        data = await _object(request)
        try:
            new = WebhookFaults.from_json(data)
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
        emulator.set_webhook_faults(new)
        return web.json_response({"faults": new.to_json()})

    app.router.add_get("/control/state", state)
    app.router.add_get("/control/requests", requests)
    app.router.add_post("/control/faults", faults)
    app.router.add_post("/control/limits", limits)
    app.router.add_post("/control/reset", reset)
    app.router.add_post("/control/release", release)
    app.router.add_post("/control/items/{id}", functools.partial(_edit_item, emulator))
    app.router.add_post("/control/boards/{id}/items", add_item)
    app.router.add_post("/control/boards/{id}/columns", functools.partial(_add_column, emulator))
    app.router.add_get("/control/daily", functools.partial(_daily, emulator))
    app.router.add_post("/control/daily", functools.partial(_set_daily, emulator))
    app.router.add_get("/control/webhooks", webhooks)
    app.router.add_post("/control/webhooks/faults", webhook_faults)


async def _add_column(emulator: Emulator, request: web.Request) -> web.Response:
    data = await _object(request)
    unknown = set(data) - {"id", "type", "title", "defaults"}
    if unknown:
        return _bad(f"unknown keys: {', '.join(sorted(unknown))}")
    board_id = request.match_info["id"]
    column_id, column_type = data.get("id"), data.get("type")
    if not isinstance(column_id, str) or not column_id:
        return _bad("id must name the new column")
    if column_type not in COLUMN_TYPES or column_type == NAME_COLUMN:
        return _bad(f"type must be one of {', '.join(sorted(COLUMN_TYPES - {NAME_COLUMN}))}")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        return _bad("defaults must be an object")
    try:
        emulator.board(board_id)
    except KeyError:
        return _refused(errors.invalid_board(board_id))
    try:
        settings = values.settings_from_defaults(column_type, defaults)
        emulator.add_column(
            board_id, column_id, column_type, title=data.get("title"), settings=settings
        )
    except errors.ApiError as exc:
        return _refused(exc)
    except ValueError as exc:  # the column exists already
        return _bad(str(exc))
    columns = board_json(emulator.board(board_id))["columns"]
    return web.json_response({"column": next(c for c in columns if c["id"] == column_id)})


async def _daily(emulator: Emulator, _request: web.Request) -> web.Response:
    return web.json_response(emulator.daily_json())


async def _set_daily(emulator: Emulator, request: web.Request) -> web.Response:
    data = await _object(request)
    used = _daily_used(data, emulator.limits.daily_total)
    if isinstance(used, str):
        return _bad(used)
    emulator.set_daily_calls_used(used, reported=data.get("reported", True))
    return web.json_response(emulator.daily_json())


async def _object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise _http_bad("body is not JSON") from None
    if not isinstance(data, dict):
        raise _http_bad("body must be a JSON object")
    return data


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def _daily_used(data: dict[str, Any], total: int | None) -> float | str:
    """Today's count that POST /control/daily asks for, or what is wrong with the request."""
    if set(data) - {"used", "left", "reported"} or len({"used", "left"} & set(data)) != 1:
        return 'send {"used": n} or {"left": n} (and "reported": true|false)'
    if not isinstance(data.get("reported", True), bool):
        return "reported must be true or false"
    number = data.get("used", data.get("left"))
    if isinstance(number, bool) or not isinstance(number, int | float) or number < 0:
        return "used and left must be non-negative numbers"
    if "used" in data:
        return float(number)
    if total is None:
        return "left needs a daily limit: set daily_calls in /control/limits first"
    return max(0.0, total - number)


def _user(data: dict[str, Any]) -> int:
    user_id = data.get("user_id")
    if user_id is None:
        return events.PERSON_USER_ID
    if (
        isinstance(user_id, bool)
        or not isinstance(user_id, int | str)
        or not str(user_id).isdigit()
    ):
        raise _http_bad("user_id must be a user id (digits)")
    return int(user_id)


def _values(data: dict[str, Any]) -> dict[str, Any] | None:
    column_values = data.get("column_values")
    if column_values is not None and not isinstance(column_values, dict):
        raise _http_bad("column_values must be an object of column id to value")
    return column_values


def _refused(exc: errors.ApiError) -> web.Response:
    status = 404 if exc.code in ("ResourceNotFoundException", "InvalidBoardIdException") else 400
    return web.json_response({"error": exc.message, "code": exc.code}, status=status)


def _item(item: Item | None) -> web.Response:
    assert item is not None
    return web.json_response({"item": item_json(item)})


def _http_bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")
