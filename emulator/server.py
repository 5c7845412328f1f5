"""The emulator: POST /v2 answered like api.monday.com, over real HTTP (aiohttp).

A request goes through, in order: the IP limit, the token, the API version, the daily,
per-minute and concurrency limits, the body, the (cached) parse and validation, the
Idempotency-Key, injected faults, the complexity budget, and finally execution.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import hashlib
import inspect
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web
from graphql import ExecutionResult

from emulator import control, engine, errors, events, resolvers, values, versions, webhooks
from emulator.clock import Clock, system_clock, utc_day
from emulator.daily import Usage, day_name
from emulator.faults import FaultPlan, Faults
from emulator.idempotency import IdempotencyCache, InFlight
from emulator.limits import AccountLimits, RateLimiter, Rejection, Spent, limits_to_json
from emulator.model import Board, Column, ColumnType, Item, ItemState, Webhook
from emulator.records import Counters, RequestRecord
from emulator.state import StateFileError, Store, board_json, boards_from_mappings
from emulator.webhooks import Delivery, WebhookFaults
from listener import mapping

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "emulator-token"  # noqa: S105 - the emulator's own, not a secret
# Without `limits`: the Pro plan's, but no daily call limit (a client that paces itself by
# platform_api would slow down every test that runs more than a few calls).
DEFAULT_LIMITS = dataclasses.replace(AccountLimits.pro(), daily_calls=None)
MAX_BODY_BYTES = 16 * 1024 * 1024
_JSON = "application/json"

__all__ = ["DEFAULT_TOKEN", "Emulator", "StateFileError"]


@dataclass(slots=True)
class _Exchange:
    """What one POST /v2 collects on its way through, for its record."""

    request_id: str
    started: float
    api_version: str | None
    key: str | None
    served: versions.Version | None = None
    plan: engine.Prepared | None = None
    complexity: int = 0
    status: int | None = None
    codes: list[str] = field(default_factory=list)
    fault: str | None = None
    replayed: bool = False
    executed: bool = False
    delayed: bool = False
    calls: float = 0.0


class Emulator:
    """A local monday.com API: boards from the mapping, Monday's checks, limits and faults.

    `url = await emu.start()` serves on 127.0.0.1 (a free port unless `port` is given)
    and returns the /v2 URL; `await emu.stop()` ends it. Also an async context manager.

    token (and extra_tokens) are the accepted raw Authorization values, all of one account
    (they share its limits and its daily calls); tables default to the built-in mapping;
    limits default to the Pro plan without a daily call limit (`AccountLimits.standard()`: a
    1,000-call account; `AccountLimits.unlimited()` turns every limit off); clock drives the
    day, windows, expiry and timestamps (`ScaledClock` runs a day in minutes); state_file is
    read here when it exists, written `save_interval` seconds after changes and on stop.

    Webhooks (see `webhooks`): every change to an item, through the API (by API_USER_ID)
    or through this class (by PERSON_USER_ID unless told), is sent to the board's webhooks
    that subscribe to it, after the request. A delivery that gets no 200 within
    `webhook_timeout` seconds is retried every `webhook_retry_interval` seconds for
    `webhook_retry_for` seconds (Monday: 60 and 1800); `webhook_concurrency` senders (1:
    first attempts in order); with `signing_secret` (an app token's webhooks) each delivery
    carries a JWT whose iat/exp come from `clock`, and `webhooks(app_webhooks_only: true)`
    lists them. `gone_webhook` is what delete_webhook answers for an id not there, which
    Monday does not document: "not_found" (ResourceNotFoundException), "internal_error" or
    "null".
    """

    API_USER_ID = events.API_USER_ID
    PERSON_USER_ID = events.PERSON_USER_ID

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        tables: Sequence[mapping.TableMapping] | None = None,
        limits: AccountLimits | None = None,
        faults: Faults | None = None,
        state_file: Path | str | None = None,
        clock: Clock = system_clock,
        host: str = "127.0.0.1",
        port: int = 0,
        extra_tokens: Sequence[str] = (),
        save_interval: float = 0.5,
        max_records: int = 10_000,
        signing_secret: str | None = None,
        webhook_retry_interval: float = 60.0,
        webhook_retry_for: float = 1800.0,
        webhook_timeout: float = 10.0,
        webhook_concurrency: int = 1,
        gone_webhook: resolvers.GoneWebhook = "not_found",
    ) -> None:
        self._tokens = {t: _scope(t) for t in (token, *extra_tokens)}
        self.gone_webhook = gone_webhook  # delete_webhook's answer for an id not there
        self._tables = tuple(mapping.default_mappings() if tables is None else tables)
        self._clock = clock
        self._host, self._port = host, port
        self._state_file = Path(state_file) if state_file is not None else None
        self._save_interval = save_interval
        self._initial_faults = faults or Faults()
        self._limiter = RateLimiter(limits or DEFAULT_LIMITS, clock)
        self._faults = FaultPlan(self._initial_faults)
        self._idempotency = IdempotencyCache(clock)
        self._cursors = resolvers.CursorBook(clock)
        self._records: deque[RequestRecord] = deque(maxlen=max_records)
        self.counters = Counters()
        self._deliverer = webhooks.Deliverer(
            clock,
            retry_interval=webhook_retry_interval,
            retry_for=webhook_retry_for,
            timeout=webhook_timeout,
            concurrency=webhook_concurrency,
            signing_secret=signing_secret,
            account_id=events.ACCOUNT_ID,
            user_id=events.API_USER_ID,
            max_records=max_records,
            on_record=self._notify,
        )
        self._store = self._fresh_store()
        if self._state_file is not None and self._state_file.exists():
            self._store.load(self._state_file)
            boards_from_mappings(self._store, self._tables)  # boards added to the mapping since
        self._saved_version = self._store.version
        self._save_task: asyncio.Task[None] | None = None
        self._release = asyncio.Event()
        self._tick = asyncio.Event()
        self._hung = 0
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self.app = web.Application(client_max_size=MAX_BODY_BYTES)
        self.app.router.add_post("/v2", self._v2)
        control.add_routes(self.app, self)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> str:
        """Serve HTTP and return the full /v2 URL."""
        if self._runner is not None:
            raise RuntimeError("the emulator is running already")
        # handler_cancellation: a client that gives up (e.g. on a hang) frees its slot.
        runner = web.AppRunner(
            self.app, handler_cancellation=True, access_log=None, shutdown_timeout=5.0
        )
        await self._deliverer.start()
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        await site.start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        host = f"[{host}]" if ":" in host else host
        self._url = f"http://{host}:{port}/v2"
        return self._url

    async def stop(self) -> None:
        """Answer nothing more, let hung requests go, and save the state file."""
        self.release_hung()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._deliverer.stop()
        if self._save_task is not None:
            self._save_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._save_task
        self.save()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """The /v2 URL (after `start`)."""
        if self._url is None:
            raise RuntimeError("the emulator is not started")
        return self._url

    @property
    def base_url(self) -> str:
        """The server's root URL, for /control/* (after `start`)."""
        return self.url.removesuffix("/v2")

    def save(self) -> None:
        """Write the state file now (atomically), if there is one and anything changed."""
        if self._state_file is not None and self._store.version != self._saved_version:
            self._store.save(self._state_file)
            self._saved_version = self._store.version

    # --- inspection ---------------------------------------------------------------------

    def boards(self) -> list[Board]:
        """Every board with its columns (copies)."""
        return [copy.deepcopy(b) for b in self._store.boards.values()]

    def board(self, board_id: str | int) -> Board:
        """One board with its columns (a copy); KeyError when there is none."""
        return copy.deepcopy(self._store.boards[str(board_id)])

    def items(
        self, board_id: str | int | None = None, *, states: Sequence[ItemState] | None = None
    ) -> list[Item]:
        """Items (copies), oldest first, optionally of one board and in some states."""
        return [
            item.copy()
            for item in self._store.items.values()
            if (board_id is None or item.board_id == str(board_id))
            and (states is None or item.state in states)
        ]

    def item(self, item_id: str | int) -> Item | None:
        """One item (a copy), whatever its state, or None."""
        item = self._store.items.get(str(item_id))
        return None if item is None else item.copy()

    @property
    def requests(self) -> list[RequestRecord]:
        """Records of the last POST /v2 requests, oldest first."""
        return list(self._records)

    @property
    def hung(self) -> int:
        """How many requests are being held by the hang fault right now."""
        return self._hung

    @property
    def in_flight(self) -> int:
        """Requests admitted and not answered yet."""
        return self._limiter.in_flight

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds; it is checked after every request event and
        every webhook delivery.

        Wrap in `asyncio.timeout` in tests.
        """
        while not predicate():
            await self._tick.wait()

    def state_json(self) -> dict[str, Any]:
        """Everything GET /control/state shows: boards with their items, and the counters."""
        boards = []
        for board in self._store.boards.values():
            data = board_json(board)
            data["items"] = [
                {
                    "id": i.id,
                    "name": i.name,
                    "state": i.state,
                    "column_values": i.values,
                    "created_at": i.created_at,
                    "updated_at": i.updated_at,
                }
                for i in self._store.board_items(board.id, ("active", "archived", "deleted"))
            ]
            boards.append(data)
        return {
            "boards": boards,
            "webhooks": [dataclasses.asdict(w) for w in self._store.webhooks.values()],
            "counters": self.counters.to_json(),
            "faults": self.faults.to_json(),
            "limits": limits_to_json(self.limits),
            "usage": self._limiter.usage(),
            "daily": self.daily_json(),
            "hung": self._hung,
        }

    # --- the daily call limit -------------------------------------------------------------

    @property
    def daily_calls_used(self) -> float:
        """Calls counted today (UTC, on the emulator's clock), with the tenths."""
        return self._limiter.daily_used

    def set_daily_calls_used(self, used: float, *, reported: bool = True) -> None:
        """Make today's count `used`, as other apps of the account would have spent them
        (a 1,000-call account with 4 calls left: `set_daily_calls_used(996)`); `reported`:
        platform_api shows them at once rather than at its next refresh."""
        if used < 0:
            raise ValueError("used must not be negative")
        self._limiter.set_daily_used(used, reported=reported)

    def daily_usage(self) -> Usage:
        """What platform_api's daily_analytics answer now (the copy of the last refresh)."""
        return self._limiter.daily_usage()

    def daily_json(self) -> dict[str, Any]:
        """The day's count and what platform_api reports, for GET /control/daily."""
        total = self.limits.daily_total
        used = self._limiter.daily_used
        reported = self.daily_usage()
        return {
            "now": self._clock(),
            "day": day_name(utc_day(self._clock())),
            "used": round(used, 1),
            "limit": total,
            "left": None if total is None else round(max(0.0, total - used), 1),
            "resets_in_seconds": round(self._limiter.daily.resets_in(), 3),
            "reported": {
                "last_updated": reported.last_updated,
                "by_day": [{"day": d, "usage": u} for d, u in reported.by_day],
            },
        }

    # --- control ------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The fault settings now (the next_* counters count down as they fire)."""
        return self._faults.faults

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> Faults:
        """Replace the faults (`set_faults(Faults(...))`) or change some (`next_drop=1`)."""
        new = dataclasses.replace(faults or self._faults.faults, **changes)
        self._faults.replace(new)
        return new

    @property
    def limits(self) -> AccountLimits:
        """The rate limits in force."""
        return self._limiter.limits

    def set_limits(self, limits: AccountLimits) -> None:
        """New rate limits; usage so far is kept."""
        self._limiter.limits = limits

    def complexity_windows(self) -> list[Spent]:
        """Every complexity window so far (its first call, the points charged), oldest first."""
        return self._limiter.windows()

    def reset(self) -> None:
        """Back to a fresh start: the mapping's empty boards, no usage, the initial faults."""
        self._store = self._fresh_store()
        self._limiter.reset()
        self._faults.replace(self._initial_faults)
        self._idempotency.clear()
        self._cursors.clear()
        self._records.clear()
        self.counters = Counters()
        self._deliverer.clear()
        self._deliverer.set_faults(WebhookFaults())
        self._changed()

    def release_hung(self) -> int:
        """Let requests held by the hang fault go: their connections close unanswered."""
        released, self._release = self._release, asyncio.Event()
        released.set()
        return self._hung

    def add_column(
        self,
        board_id: str | int,
        column_id: str,
        column_type: ColumnType,
        *,
        title: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Column:
        """Add a column to a board (e.g. to give a board a wrong or extra column). A connect
        boards column takes its boards in `settings` as Monday keeps them:
        `add_column(contacts, "company", "board_relation", settings={"boardIds": [orgs]})`."""
        if settings is None:
            settings = values.default_settings(column_type)
        if column_type == "board_relation":  # as create_column takes them: ids made ints
            settings = values.settings_from_defaults(column_type, settings)
            resolvers.connect_boards(self._store, settings)
        column = Column(column_id, title or column_id, column_type, settings)
        self._store.add_column(self._store.boards[str(board_id)], column)
        self._changed()
        return copy.deepcopy(column)

    def remove_column(self, board_id: str | int, column_id: str) -> None:
        """Delete a column and its values (e.g. a column the mapping expects)."""
        self._store.remove_column(self._store.boards[str(board_id)], column_id)
        self._changed()

    def add_item(
        self,
        board_id: str | int,
        name: str,
        column_values: Mapping[str, Any] | None = None,
        *,
        state: ItemState = "active",
        user_id: int = events.PERSON_USER_ID,
    ) -> Item:
        """Create an item as `user_id` on the board would, values in Monday's JSON form and
        checked as Monday does. Raises errors.ApiError for what the API would refuse."""
        board = self._store.boards.get(str(board_id))
        if board is None:
            raise errors.invalid_board(str(board_id))
        name = values.check_name(name)
        renamed, vals, _ = resolvers.writes(self._store, board, column_values or {}, False)
        item = self._store.create_item(board, renamed or name, vals, user_id=user_id)
        if state != "active":
            self._store.set_state(item, state, user_id=user_id)
        self._changed()
        return item.copy()

    def edit_item(
        self,
        item_id: str | int,
        column_values: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        user_id: int = events.PERSON_USER_ID,
    ) -> Item:
        """Change an item as a person on the board would: values in Monday's JSON form (None
        clears), checked as Monday does. Raises errors.ApiError for what Monday would refuse."""
        item = self._store.items.get(str(item_id))
        if item is None or item.state == "deleted":
            raise errors.item_not_found(str(item_id))
        board = self._store.boards[item.board_id]
        raw = dict(column_values or {})
        if name is not None:
            raw["name"] = name
        renamed, vals, settings = resolvers.writes(self._store, board, raw, False)
        for column, new in settings:
            self._store.set_settings(column, new)
        self._store.update_item(item, renamed, vals, user_id=user_id)
        self._changed()
        return item.copy()

    def set_item_state(
        self, item_id: str | int, state: ItemState, *, user_id: int = events.PERSON_USER_ID
    ) -> None:
        """Archive, delete or restore an item, as someone on Monday's side would."""
        item = self._store.items.get(str(item_id))
        if item is None:
            raise errors.item_not_found(str(item_id))
        self._store.set_state(item, state, user_id=user_id)
        self._changed()

    # --- webhooks -----------------------------------------------------------------------

    def webhooks(self, board_id: str | int | None = None) -> list[Webhook]:
        """The registered webhooks (copies), optionally of one board."""
        return [
            dataclasses.replace(w)
            for w in self._store.webhooks.values()
            if board_id is None or w.board_id == str(board_id)
        ]

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook, as someone in Monday's UI would; KeyError when there is none."""
        if self._store.remove_webhook(str(webhook_id)) is None:
            raise KeyError(webhook_id)
        self._changed()

    @property
    def deliveries(self) -> list[Delivery]:
        """Records of the last delivery attempts (and dropped events), oldest first."""
        return list(self._deliverer.records)

    @property
    def webhook_faults(self) -> WebhookFaults:
        """The delivery faults now (the next_* counters count down as they strike)."""
        return self._deliverer.faults

    def set_webhook_faults(
        self, faults: WebhookFaults | None = None, **changes: Any
    ) -> WebhookFaults:
        """Replace the delivery faults or change some (`paused=True`, `next_drop=2`)."""
        new = dataclasses.replace(faults or self._deliverer.faults, **changes)
        self._deliverer.set_faults(new)
        return new

    @property
    def webhooks_pending(self) -> int:
        """Events not delivered yet: queued, in flight, waiting for a retry, or held."""
        return self._deliverer.pending

    async def settle_webhooks(self) -> None:
        """Return once no event is pending or held (never while paused with events waiting).

        Wrap in `asyncio.timeout` in tests.
        """
        await self._deliverer.settle()

    # --- POST /v2 -----------------------------------------------------------------------

    async def _v2(self, request: web.Request) -> web.StreamResponse:
        headers = request.headers
        ex = _Exchange(
            request_id=str(uuid.uuid4()),
            started=time.perf_counter(),
            api_version=headers.get("API-Version"),
            key=headers.get("Idempotency-Key") or None,
        )
        self.counters.requests += 1
        try:
            response = await self._authenticate(request, ex)
            latency = self._faults.faults.latency
            if latency > 0 and not ex.delayed:
                await asyncio.sleep(latency)
            return response
        finally:
            self._record(ex)

    async def _authenticate(self, request: web.Request, ex: _Exchange) -> web.StreamResponse:
        rejection = self._limiter.check_ip(request.remote or "")
        if rejection is not None:
            return self._reject(ex, rejection)
        # Monday documents the raw token; "Bearer <token>" is refused like a wrong token.
        scope = self._tokens.get(request.headers.get("Authorization", "").strip())
        if scope is None:
            body = errors.error_body("UNAUTHORIZED", "Unauthorized", ex.request_id, status_code=401)
            return self._answer(ex, 401, body)
        try:
            ex.served = versions.serving(ex.api_version)
        except errors.ApiError as exc:
            return self._answer(ex, 200, self._error(ex, exc))
        rejection = self._limiter.admit()
        ex.calls += self._limiter.counted
        if rejection is not None:
            return self._reject(ex, rejection)
        try:
            return await self._read(request, ex, scope)
        finally:
            self._limiter.release()

    async def _read(self, request: web.Request, ex: _Exchange, scope: str) -> web.StreamResponse:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            exc = errors.ApiError(
                "JsonParseException", "The request body is not valid JSON", status_code=400
            )
            return self._answer(ex, 400, self._error(ex, exc))
        problem = _payload_problem(payload)
        if problem is not None:
            exc = errors.ApiError(engine.BAD_REQUEST, problem, status_code=400)
            return self._answer(ex, 400, self._error(ex, exc))
        plan = engine.prepare(payload["query"], payload.get("operationName"))
        if isinstance(plan, tuple):
            body = {
                "errors": [engine.format_error(e) for e in plan],
                "extensions": {"request_id": ex.request_id},
            }
            return self._answer(ex, 200, body)
        ex.plan = plan
        if ex.key is None or not plan.is_mutation:
            return await self._execute(request, ex, plan, payload.get("variables"), None)
        try:
            cached = self._idempotency.begin(scope, ex.key)
        except InFlight:
            exc = errors.ApiError(
                "IDEMPOTENCY_CONFLICT",
                "A request with this Idempotency-Key is still being processed",
                status_code=409,
            )
            return self._answer(
                ex, 409, self._error(ex, exc, retry_in_seconds=1), {"Retry-After": "1"}
            )
        if cached is not None:
            ex.replayed = True
            self.counters.replays += 1
            return self._answer(ex, cached.status, cached.body, {"Idempotency-Replayed": "true"})
        try:
            return await self._execute(request, ex, plan, payload.get("variables"), (scope, ex.key))
        finally:
            self._idempotency.end(scope, ex.key)

    async def _execute(
        self,
        request: web.Request,
        ex: _Exchange,
        plan: engine.Prepared,
        variables: dict[str, Any] | None,
        slot: tuple[str, str] | None,
    ) -> web.StreamResponse:
        fault = ex.fault = self._faults.decide(plan.is_mutation)
        if fault == "hang":
            return await self._hang(request, ex)
        if fault == "http_500":
            exc = errors.ApiError("INTERNAL_SERVER_ERROR", "Internal server error", status_code=500)
            return self._answer(ex, 500, self._error(ex, exc))
        if fault == "http_429":
            self._limiter.refused()  # a refusal for a rate limit counts 0.1
            ex.calls += self._limiter.counted
            retry = self._faults.faults.retry_in_seconds
            return self._reject(
                ex, Rejection(429, "RATE_LIMIT_EXCEEDED", "Rate Limit Exceeded", retry)
            )
        ex.complexity = plan.cost(self.limits, variables)
        only_complexity = all(name in ("complexity", "__typename") for name in plan.root_fields)
        charge = self._limiter.charge(ex.complexity, complexity_only=only_complexity)
        ex.calls += self._limiter.counted
        if isinstance(charge, Rejection):
            return self._reject(ex, charge)
        assert ex.served is not None
        context = resolvers.Context(
            self._store, self._cursors, charge, ex.served, self._deliverer, self._limiter,
            gone_webhook=self.gone_webhook,
        )  # fmt: skip
        run = engine.run(plan, variables, context)
        result = await run if inspect.isawaitable(run) else run
        ex.executed = True
        body = _result_body(result, ex.request_id)
        raw = _encode(body)
        if slot is not None:
            self._idempotency.store(*slot, 200, raw)
        self._changed()
        latency = self._faults.faults.latency
        if latency > 0:
            # Inside the Idempotency-Key claim: a duplicate meanwhile still gets 409.
            ex.delayed = True
            await asyncio.sleep(latency)
        response = self._answer(ex, 200, raw, codes=_codes(body))
        if fault == "drop":
            # The work is done; the client must not learn whether it was.
            ex.status = None
            if request.transport is not None:
                request.transport.close()
        return response

    async def _hang(self, request: web.Request, ex: _Exchange) -> web.StreamResponse:
        released = self._release
        self._hung += 1
        self._notify()
        try:
            await released.wait()
        finally:
            self._hung -= 1
            self._notify()
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=503)  # never reaches the client

    # --- responses ----------------------------------------------------------------------

    def _error(self, ex: _Exchange, exc: errors.ApiError, **more: Any) -> dict[str, Any]:
        extensions = {k: v for k, v in exc.extensions.items() if k != "code"}
        return errors.error_body(exc.code, exc.message, ex.request_id, **extensions, **more)

    def _reject(self, ex: _Exchange, rejection: Rejection) -> web.Response:
        extensions: dict[str, Any] = {}
        if rejection.status == 429:
            extensions["status_code"] = 429
        if rejection.retry_in:
            extensions["retry_in_seconds"] = rejection.retry_in
        legacy = ex.served is not None and versions.legacy_complexity_error(ex.served)
        if rejection.code == "COMPLEXITY_BUDGET_EXHAUSTED" and legacy:
            extensions.update(status_code=429, **rejection.extra)
        body = errors.error_body(rejection.code, rejection.message, ex.request_id, **extensions)
        headers = {"Retry-After": str(rejection.retry_in)} if rejection.retry_in else {}
        return self._answer(ex, rejection.status, body, headers)

    def _answer(
        self,
        ex: _Exchange,
        status: int,
        body: dict[str, Any] | bytes,
        headers: Mapping[str, str] | None = None,
        *,
        codes: list[str] | None = None,
    ) -> web.Response:
        if isinstance(body, dict):
            codes, body = _codes(body), _encode(body)
        ex.status = status
        ex.codes = codes or []
        served = ex.served.value if ex.served is not None else versions.CURRENT
        all_headers = {
            "Content-Type": _JSON,
            "API-Version": served,
            "X-Request-Id": ex.request_id,
            **self._limiter.headers(),
            **(headers or {}),
        }
        return web.Response(status=status, body=body, headers=all_headers)

    # --- bookkeeping --------------------------------------------------------------------

    def _record(self, ex: _Exchange) -> None:
        plan = ex.plan
        self._records.append(
            RequestRecord(
                at=self._clock(),
                request_id=ex.request_id,
                api_version=ex.api_version,
                served_version=ex.served.value if ex.served else None,
                idempotency_key=ex.key,
                root_fields=plan.root_fields if plan else (),
                mutations=plan.mutations if plan else 0,
                complexity=ex.complexity,
                status=ex.status,
                error_codes=tuple(ex.codes),
                fault=ex.fault,
                replayed=ex.replayed,
                seconds=time.perf_counter() - ex.started,
                calls=round(ex.calls, 1),
            )
        )
        if ex.executed and plan is not None:
            self.counters.mutations += plan.mutations
        self.counters.errors.update(ex.codes)
        if ex.fault is not None:
            self.counters.faults[ex.fault] += 1
        self._notify()

    def _notify(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    def _fresh_store(self) -> Store:
        store = Store(self._clock)
        boards_from_mappings(store, self._tables)
        return store

    def _changed(self) -> None:
        """Send the new changes to the webhooks, and save the state file soon (a burst of
        changes is written once)."""
        webhooks.publish(self._store, self._deliverer)
        if self._state_file is None or self._store.version == self._saved_version:
            return
        if self._save_task is None and self._runner is not None:
            self._save_task = asyncio.get_running_loop().create_task(self._save_soon())

    async def _save_soon(self) -> None:
        try:
            await asyncio.sleep(self._save_interval)
            self.save()  # synchronous, so it never interleaves with a change
        finally:
            self._save_task = None


def _scope(token: str) -> str:
    # Idempotency keys are scoped by token; keep a digest, not the token itself.
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _payload_problem(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return "The request body must be a JSON object"
    if not isinstance(payload.get("query"), str):
        return "The request body must have a 'query' string"
    variables = payload.get("variables")
    if variables is not None and not isinstance(variables, dict):
        # Since 2025-04 a JSON-encoded string is refused as well.
        return "'variables' must be a JSON object"
    name = payload.get("operationName")
    if name is not None and not isinstance(name, str):
        return "'operationName' must be a string"
    return None


def _result_body(result: ExecutionResult, request_id: str) -> dict[str, Any]:
    for error in result.errors or ():
        if isinstance(error.original_error, errors.BareError):
            return {
                "errors": [{"message": str(error.original_error)}],
                "extensions": {"request_id": request_id},
            }
    body: dict[str, Any] = {}
    formatted = [engine.format_error(e) for e in result.errors or ()]
    # No data at all when the request failed before execution (bad variables).
    if result.data is not None or any(e.get("path") for e in formatted):
        body["data"] = result.data
    if formatted:
        body["errors"] = formatted
    body["extensions"] = {"request_id": request_id}
    return body


def _codes(body: Mapping[str, Any]) -> list[str]:
    # A bare error (create_webhook's failed challenge) has no code to count.
    codes = (e.get("extensions", {}).get("code") for e in body.get("errors", ()))
    return [str(code) for code in codes if code is not None]


def _encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
