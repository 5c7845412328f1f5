"""The /control/* endpoints: inspect and steer a running emulator over HTTP (for tests
and for people trying the emulator from a shell). They are not part of Monday's API and
need no token; the emulator listens on 127.0.0.1 unless told otherwise.

    GET  /control/state     boards with items, counters, faults, limits, usage
    GET  /control/requests  {"requests": [RequestRecord, ...]}
    POST /control/faults    Faults fields (missing ones default) -> {"faults": {...}}
    POST /control/limits    {"plan": "pro", ...AccountLimits fields} -> {"limits": {...}}
    POST /control/reset     -> {"ok": true}
    POST /control/release   let hung requests go -> {"released": n}
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator.faults import Faults
from emulator.limits import limits_from_json, limits_to_json

if TYPE_CHECKING:
    from emulator.server import Emulator


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

    app.router.add_get("/control/state", state)
    app.router.add_get("/control/requests", requests)
    app.router.add_post("/control/faults", faults)
    app.router.add_post("/control/limits", limits)
    app.router.add_post("/control/reset", reset)
    app.router.add_post("/control/release", release)


async def _object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body is not JSON"}), content_type="application/json"
        ) from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object"}),
            content_type="application/json",
        )
    return data


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)
