"""The webhook receiver: `POST /monday/webhook/<secret>`, served by `npd-sync listen
--webhook-port`.

A public endpoint, so every request is hostile until proven otherwise. In order: a POST with
the URL's secret (compared in constant time; one answer, 404, for any request that is not
Monday's, whatever its method or path, so that nothing can be learnt from it); a body of at
most 1 MiB, read within READ_TIMEOUT (so are the headers), that is JSON. Monday's challenge is
echoed then, since Monday never signs it. Anything else needs, when MONDAY_SIGNING_SECRET is
set, a JWT (HS256, signed with it, unexpired, its `aud`, where present, the registered URL:
board webhooks' tokens have been seen without one); webhooks created with a personal token
carry none, and the log says so. What is left is an event: stored durably before the answer
(deliveries that arrive together share one transaction), so that a 200 means it is kept; a
database that cannot take it gets a 503, and Monday tries again later. No other work happens
before the answer: the listener reads the item afterwards, and the payload's values are never
trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

import asyncpg
import jwt
from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from listener import db, sql
from listener.capture import notify
from listener.inbound import inbox
from listener.metrics import Metrics

log = logging.getLogger("npd_sync.receiver")

PATH = "/monday/webhook"
MAX_BODY = 1024 * 1024  # bytes
BATCH = 500  # deliveries stored in one transaction at most
SECRET_RECHECK = 5.0  # seconds between two reads of the secret after a mismatch
# Seconds a client has to send its headers, then its body (and that an unread body is drained
# for after the answer): Monday sends a few KiB at once, and the reverse proxy buffers them.
READ_TIMEOUT = 10.0
UNSIGNED_SAID_EVERY = 60.0  # seconds between two log lines about unsigned deliveries

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def webhook_url(public_url: str, secret: str) -> str:
    """The URL webhooks are registered with (it holds the secret)."""
    return f"{public_url}{PATH}/{secret}"


class _Id(BaseModel):
    """A field Monday sends as a number or a string; kept as text."""

    @field_validator("*", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class EventModel(_Id):
    """The fields of a webhook event npd-sync uses (the rest is ignored, the values too)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    type: str
    boardId: str | None = None
    pulseId: str | None = None
    itemId: str | None = None
    columnId: str | None = None
    userId: str | None = None
    triggerUuid: str | None = None
    changedAt: float | None = None
    triggerTime: str | None = None


def parse(body: Any, raw: bytes) -> inbox.Event | None:
    """The event of a delivery's JSON body; None when it holds no event npd-sync can use."""
    if not isinstance(body, dict) or not isinstance(body.get("event"), dict):
        return None
    try:
        event = EventModel.model_validate(body["event"])
    except ValidationError:
        return None
    changed = None
    if event.changedAt is not None:
        with contextlib.suppress(OverflowError, OSError, ValueError):
            changed = dt.datetime.fromtimestamp(event.changedAt, dt.UTC)
    if changed is None and event.triggerTime:
        with contextlib.suppress(ValueError):
            changed = dt.datetime.fromisoformat(event.triggerTime.replace("Z", "+00:00"))
    # A delivery without a triggerUuid is deduplicated by its whole body.
    uuid = event.triggerUuid or "sha256:" + hashlib.sha256(raw).hexdigest()
    return inbox.Event(
        trigger_uuid=uuid[:200],
        board_id=event.boardId,
        item_id=event.pulseId or event.itemId,
        type=event.type[:100],
        column_id=event.columnId,
        user_id=event.userId,
        changed_at=changed,
    )


class Receiver:
    """The receiver's state: the secret, the batch of deliveries waiting to be stored."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        public_url: str,
        boards: Sequence[str],
        signing_secret: str | None = None,
        metrics: Metrics | None = None,
        on_stored: Callable[[], None] | None = None,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.pool = pool
        self.public_url = public_url
        self.boards = list(boards)
        self.signing_secret = signing_secret
        self.metrics = metrics or Metrics()
        self.on_stored = on_stored  # wakes this process's listener at once
        self.read_timeout = read_timeout
        self._unsigned_said = -UNSIGNED_SAID_EVERY
        self._secret: str | None = None
        self._secret_read = -SECRET_RECHECK
        self._secret_lock = asyncio.Lock()
        self._waiting: list[tuple[inbox.Event, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def app(self) -> web.Application:
        """The aiohttp application: one route, the webhook's, for every method (any but POST
        gets the 404 of a wrong path, not a 405 that says the path exists)."""
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard])
        app.router.add_route("*", PATH + "/{secret}", self._handle)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _app: web.Application) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="receiver")

    async def _stop(self, _app: web.Application) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A bug answers 500 and is logged as one event; never the path (it holds the
        secret), never aiohttp's plain-text traceback."""
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            log.error("receiver.error", extra={"error": type(exc).__name__})
            raise web.HTTPInternalServerError() from None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST" or not await self._has_secret(request):
            self._refuse()
        raw = await self._read(request)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            self.metrics.webhooks.labels("refused").inc()
            deep = isinstance(exc, RecursionError)
            reason = "JSON nested too deeply" if deep else "not JSON"
            log.warning("receiver.bad_body", extra={"reason": reason, "bytes": len(raw)})
            raise web.HTTPBadRequest(text=reason) from None
        if isinstance(body, dict) and "challenge" in body and "event" not in body:
            # Before any JWT: Monday sends the challenge unsigned, even for an app's webhooks.
            self.metrics.webhooks.labels("challenge").inc()
            return web.json_response({"challenge": body["challenge"]})
        if not self._signed(request):
            self._refuse()
        event = parse(body, raw)
        if event is None:
            # Monday's, but nothing to act on: kept out of the queue, said once in the log.
            self.metrics.webhooks.labels("ignored").inc()
            log.warning("receiver.unusable_event", extra={"bytes": len(raw)})
            return web.json_response({})
        try:
            new = await self._store(event)
        except (TimeoutError, *db.ERRORS, asyncpg.PostgresError) as exc:
            self.metrics.webhooks.labels("unavailable").inc()
            log.warning("receiver.store_failed", extra={"error": str(exc) or type(exc).__name__})
            raise web.HTTPServiceUnavailable() from None
        self.metrics.webhooks.labels("stored" if new else "duplicate").inc()
        return web.json_response({})

    def _refuse(self) -> NoReturn:
        """The one answer to whatever is not Monday's."""
        self.metrics.webhooks.labels("refused").inc()
        raise web.HTTPNotFound()

    async def _read(self, request: web.Request) -> bytes:
        """The body, within the read timeout and the size limit."""
        try:
            async with asyncio.timeout(self.read_timeout):
                return await request.read()
        except TimeoutError:
            self.metrics.webhooks.labels("refused").inc()
            raise web.HTTPRequestTimeout() from None
        except web.HTTPRequestEntityTooLarge:
            self.metrics.webhooks.labels("refused").inc()
            raise

    async def _has_secret(self, request: web.Request) -> bool:
        given = request.match_info.get("secret", "")
        secret = await self._current_secret(given)
        return secret is not None and self._matches(given)

    def _signed(self, request: web.Request) -> bool:
        """Whether the JWT verifies, when MONDAY_SIGNING_SECRET asks for one."""
        if self.signing_secret is None:
            return True
        header = request.headers.get("Authorization")
        if header is None:
            self._say_unsigned()
            return False
        token = header.removeprefix("Bearer ").strip()
        try:
            claims = jwt.decode(
                token, self.signing_secret, algorithms=["HS256"],
                options={"require": ["exp"], "verify_aud": False},
            )  # fmt: skip
        except jwt.PyJWTError:
            return False
        # `aud` where present: board webhooks' tokens have been seen without it.
        audience = claims.get("aud")
        if audience is None:
            return True
        url = webhook_url(self.public_url, self._secret or "")
        return audience == url or (isinstance(audience, list) and url in audience)

    def _say_unsigned(self) -> None:
        """A delivery with the URL's secret and no Authorization at all: Monday's, most likely,
        from a webhook created with a personal token (only an app's carry a JWT). Said at most
        once a minute: Monday retries each delivery every minute for 30 minutes."""
        now = asyncio.get_running_loop().time()
        if now - self._unsigned_said >= UNSIGNED_SAID_EVERY:
            self._unsigned_said = now
            log.warning(
                "receiver.unsigned",
                extra={
                    "hint": "deliveries carry no JWT (webhooks created with a personal token): "
                    "unset MONDAY_SIGNING_SECRET, or create them with an app's token"
                },
            )

    async def _current_secret(self, given: str) -> str | None:
        # Read once, and again (at most every few seconds) when a request does not match:
        # `webhooks install` may have made the secret after this listener started.
        if self._matches(given):
            return self._secret
        async with self._secret_lock:  # requests arriving together wait for one read
            loop = asyncio.get_running_loop()
            if not self._matches(given) and loop.time() - self._secret_read >= SECRET_RECHECK:
                self._secret_read = loop.time()
                with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
                    async with self.pool.acquire(timeout=5) as conn:
                        self._secret = await conn.fetchval(sql.query("receiver_secret"))
        return self._secret

    def _matches(self, given: str) -> bool:
        known = self._secret
        return known is not None and hmac.compare_digest(given.encode(), known.encode())

    async def _store(self, event: inbox.Event) -> bool:
        """Store one delivery (with whatever else arrived meanwhile); True if it was new."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((event, done))
        self._wake.set()
        return await done

    async def _write_loop(self) -> None:
        """Store what arrived, in one transaction per batch; answer each delivery after."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
                events = list({e.trigger_uuid: e for e, _ in batch}.values())
                try:
                    async with self.pool.acquire() as conn, conn.transaction():
                        new = await inbox.store(conn, events, self.boards)
                        if new:
                            await notify.wake(conn)
                except Exception as exc:  # every waiting delivery must get its answer
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for event, done in batch:
                    if not done.done():
                        done.set_result(event.trigger_uuid in new)
                if new and self.on_stored is not None:
                    self.on_stored()


async def serve(receiver: Receiver, host: str, port: int) -> web.AppRunner:
    """Serve the receiver until the returned runner is cleaned up. A connection waiting for a
    request's headers (or idle between two) is closed after the read timeout, and an unread
    body is drained for no longer."""
    runner = web.AppRunner(
        receiver.app(),
        access_log=None,
        keepalive_timeout=receiver.read_timeout,
        lingering_time=receiver.read_timeout,
    )
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
