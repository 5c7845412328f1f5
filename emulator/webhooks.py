"""Webhook deliveries as Monday makes them: the challenge, retries, signing, faults, a log.

`send` only queues: sender tasks POST `{"event": ...}` to the webhook's URL afterwards, never
inside the GraphQL request that made the change. Anything but a 200 (an error status, a
refused connection, a timeout) is retried every `retry_interval` seconds for `retry_for`
seconds after the first attempt (Monday: every minute for 30 minutes), with `isRetry` and
`retryCount` set; then the event is lost. The schedule runs on the event loop's clock (real
time), not on the emulator's clock. With a signing secret (an app token's webhooks) every
delivery carries `Authorization: <JWT>` (HS256, no "Bearer"); without one, no header.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt

from emulator import events
from emulator.clock import Clock
from emulator.state import Store

log = logging.getLogger(__name__)

TOKEN_SECONDS = 300  # a JWT's lifetime: Monday's shortLivedToken lasts 5 minutes [inferred]

_KINDS = ("drop", "delay", "duplicate")


@dataclass(frozen=True, slots=True)
class WebhookFaults:
    """What goes wrong with deliveries. Field names are the JSON keys of
    POST /control/webhooks/faults.

    drop: the event is never sent. duplicate: it is sent twice. delay: it is held back;
    held events are released together `delay_seconds` after the first was held, shuffled,
    so that later events overtake them. paused: nothing is sent (first attempts and retries
    wait) until it is set back to False. Shares (0..1) draw from a seedable RNG; `next_*`
    counters strike the next N events first. One fault per event, in the order drop,
    delay, duplicate; an event to two webhooks counts twice.
    """

    drop: float = 0.0
    delay: float = 0.0
    duplicate: float = 0.0
    next_drop: int = 0
    next_delay: int = 0
    next_duplicate: int = 0
    delay_seconds: float = 0.05
    paused: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        for kind in _KINDS:
            share = getattr(self, kind)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{kind} must be a share between 0 and 1, not {share}")
            if getattr(self, f"next_{kind}") < 0:
                raise ValueError(f"next_{kind} must not be negative")
        if self.delay_seconds < 0:
            raise ValueError("delay_seconds must not be negative")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookFaults:
        """Faults from JSON; unknown keys are an error, missing ones take defaults."""
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown webhook fault settings: {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON data."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery attempt (or an event a fault dropped: attempt 0, nothing sent).

    `status` is the receiver's HTTP status, None when there was no answer (then `error`
    says why); `gave_up` marks the last attempt of an event that never got a 200.
    `at` is the emulator's clock.
    """

    at: float
    webhook_id: str
    url: str
    event_type: str
    item_id: str
    trigger_uuid: str
    attempt: int
    status: int | None
    error: str | None = None
    fault: str | None = None
    gave_up: bool = False

    def to_json(self) -> dict[str, Any]:
        """The record as JSON data."""
        return dataclasses.asdict(self)


@dataclass(slots=True)
class _Outgoing:
    webhook_id: str
    url: str
    event: dict[str, Any]
    fault: str | None = None
    attempt: int = 0
    first: float | None = None  # loop time of the first attempt

    @property
    def item_id(self) -> str:
        return str(self.event.get("pulseId", self.event.get("itemId")))


@dataclass(slots=True)
class _Tally:
    outstanding: int = 0  # queued, in flight, waiting for a retry, or held
    held: list[_Outgoing] = field(default_factory=list)


class Deliverer:
    """Queues events, sends them with retries, and applies the webhook faults."""

    def __init__(
        self,
        clock: Clock,
        *,
        retry_interval: float = 60.0,
        retry_for: float = 1800.0,
        timeout: float = 10.0,
        concurrency: int = 1,
        signing_secret: str | None = None,
        account_id: int,
        user_id: int,
        max_records: int = 10_000,
        on_record: Callable[[], None] = lambda: None,
    ) -> None:
        if retry_interval <= 0 or retry_for < 0 or timeout <= 0 or concurrency < 1:
            raise ValueError("retry_interval, timeout, concurrency > 0 and retry_for >= 0")
        self._clock = clock
        self._interval = retry_interval
        self._retry_for = retry_for
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._concurrency = concurrency
        self._secret = signing_secret
        self._account_id = account_id
        self._user_id = user_id
        self._on_record = on_record
        self.records: deque[Delivery] = deque(maxlen=max_records)
        self._faults = WebhookFaults()
        self._rng = random.Random()
        self._queue: asyncio.Queue[_Outgoing] = asyncio.Queue()
        self._tally = _Tally()
        self._timers: set[asyncio.TimerHandle] = set()
        self._release: asyncio.TimerHandle | None = None
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._tick = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._senders: list[asyncio.Task[None]] = []

    @property
    def signed(self) -> bool:
        """Whether deliveries carry a JWT (an app token's webhooks)."""
        return self._secret is not None

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP client and start the senders."""
        self._session = aiohttp.ClientSession()
        loop = asyncio.get_running_loop()
        self._senders = [loop.create_task(self._sender()) for _ in range(self._concurrency)]

    async def stop(self) -> None:
        """Stop sending; what is still pending is forgotten."""
        self.clear()
        for task in self._senders:
            task.cancel()
        for task in self._senders:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._senders = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    def clear(self) -> None:
        """Forget pending, held and retrying events and the records (keeps the faults)."""
        for timer in (*self._timers, self._release):
            if timer is not None:
                timer.cancel()
        self._timers.clear()
        self._release = None
        while not self._queue.empty():
            self._queue.get_nowait()
        self._tally = _Tally()
        self.records.clear()
        self._notify()

    # --- faults -------------------------------------------------------------------------

    @property
    def faults(self) -> WebhookFaults:
        """The fault settings now (next_* counters count down as they strike)."""
        return self._faults

    def set_faults(self, faults: WebhookFaults) -> None:
        """New settings; the RNG restarts from the seed; resuming lets held sends go."""
        self._faults = faults
        self._rng = random.Random(faults.seed)
        if faults.paused:
            self._resumed.clear()
        else:
            self._resumed.set()

    def _strike(self) -> str | None:
        faults = self._faults
        for kind in _KINDS:
            counter = f"next_{kind}"
            if getattr(faults, counter) > 0:
                self._faults = dataclasses.replace(
                    faults, **{counter: getattr(faults, counter) - 1}
                )
                return kind
        for kind in _KINDS:
            share = getattr(faults, kind)
            if share > 0 and self._rng.random() < share:
                return kind
        return None

    # --- the challenge ------------------------------------------------------------------

    async def challenge(self, url: str) -> str | None:
        """POST {"challenge": <random>} to `url`; None when it answered 200 with the same
        JSON, else what went wrong. Not signed: nothing says Monday signs it, so a receiver
        must answer it without a JWT."""
        token = secrets.token_urlsafe(24)
        try:
            async with self._client().post(
                url, json={"challenge": token}, timeout=self._timeout
            ) as response:
                if response.status != 200:
                    return self._refused(url, f"HTTP {response.status}")
                body = json.loads(await response.read())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return self._refused(url, _describe(exc))
        if not isinstance(body, dict) or body.get("challenge") != token:
            return self._refused(url, "the answer does not echo the challenge")
        return None

    @staticmethod
    def _refused(url: str, reason: str) -> str:
        # Monday tells the client nothing; the emulator's log tells the developer.
        log.info("webhook challenge to %s failed: %s", url, reason)
        return reason

    # --- deliveries ---------------------------------------------------------------------

    def send(self, webhook_id: str, url: str, event: dict[str, Any]) -> None:
        """Queue one event for one webhook, unless a fault drops, holds or doubles it."""
        out = _Outgoing(webhook_id, url, event)
        fault = self._strike()
        if fault == "drop":
            self._record(out, status=None, error="dropped by a fault", fault="drop")
            return
        self._tally.outstanding += 1
        if fault == "delay":
            out.fault = "delay"
            self._tally.held.append(out)
            if self._release is None:
                loop = asyncio.get_running_loop()
                self._release = loop.call_later(self._faults.delay_seconds, self._release_held)
            return
        self._queue.put_nowait(out)
        if fault == "duplicate":
            self._tally.outstanding += 1
            self._queue.put_nowait(_Outgoing(webhook_id, url, dict(event), fault="duplicate"))

    @property
    def pending(self) -> int:
        """Events not delivered yet: queued, in flight, waiting for a retry, or held."""
        return self._tally.outstanding

    @property
    def held(self) -> int:
        """Events held by the delay fault right now."""
        return len(self._tally.held)

    async def settle(self) -> None:
        """Return once nothing is pending or held (never while paused with work waiting).

        Wrap in `asyncio.timeout` in tests.
        """
        while self._tally.outstanding:
            await self._tick.wait()

    def _release_held(self) -> None:
        self._release = None
        held, self._tally.held = self._tally.held, []
        self._rng.shuffle(held)
        for out in held:
            self._queue.put_nowait(out)

    async def _sender(self) -> None:
        while True:
            out = await self._queue.get()
            tally = self._tally  # `clear` replaces it: events taken before are forgotten
            await self._resumed.wait()
            if tally is self._tally:
                await self._attempt(out, tally)

    async def _attempt(self, out: _Outgoing, tally: _Tally) -> None:
        loop = asyncio.get_running_loop()
        out.attempt += 1
        if out.first is None:
            out.first = loop.time()
        event = dict(out.event)
        if out.attempt > 1:
            event |= {"isRetry": True, "retryCount": out.attempt - 1}
        headers = {"Content-Type": "application/json"}
        if self._secret is not None:
            headers["Authorization"] = self._token(out.url)
        status: int | None = None
        error: str | None = None
        try:
            async with self._client().post(
                out.url, data=json.dumps({"event": event}), headers=headers, timeout=self._timeout
            ) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            error = _describe(exc)
        if tally is not self._tally:
            return
        if status == 200:
            self._record(out, status=status, error=None, fault=out.fault)
            self._finish()
        elif loop.time() + self._interval - out.first <= self._retry_for:
            self._record(out, status=status, error=error, fault=out.fault)
            self._retry_later(out)
        else:
            self._record(out, status=status, error=error, fault=out.fault, gave_up=True)
            self._finish()

    def _retry_later(self, out: _Outgoing) -> None:
        def due() -> None:
            self._timers.discard(timer)
            self._queue.put_nowait(out)

        timer = asyncio.get_running_loop().call_later(self._interval, due)
        self._timers.add(timer)

    def _finish(self) -> None:
        self._tally.outstanding -= 1
        self._notify()

    def _token(self, url: str) -> str:
        assert self._secret is not None
        now = int(self._clock())
        claims = {
            "accountId": self._account_id,
            "userId": self._user_id,
            "aud": url,
            "iat": now,
            "exp": now + TOKEN_SECONDS,
            "shortLivedToken": secrets.token_urlsafe(24),
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the emulator is not started")
        return self._session

    def _record(
        self,
        out: _Outgoing,
        *,
        status: int | None,
        error: str | None,
        fault: str | None,
        gave_up: bool = False,
    ) -> None:
        self.records.append(
            Delivery(
                at=self._clock(),
                webhook_id=out.webhook_id,
                url=out.url,
                event_type=str(out.event["type"]),
                item_id=out.item_id,
                trigger_uuid=str(out.event["triggerUuid"]),
                attempt=out.attempt,
                status=status,
                error=error,
                fault=fault,
                gave_up=gave_up,
            )
        )
        self._notify()
        self._on_record()

    def _notify(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()


def publish(store: Store, deliverer: Deliverer) -> None:
    """Send the store's new changes to the webhooks that subscribe to them."""
    for change in store.take_unpublished():
        board = store.boards[change.board_id]
        for webhook in store.webhooks.values():
            if events.subscribes(webhook, change):
                deliverer.send(webhook.id, webhook.url, events.payload(change, board, webhook))


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
