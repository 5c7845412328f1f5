"""The Idempotency-Key cache, as Monday documents it: replay for 30 minutes, 409 meanwhile."""

from __future__ import annotations

from dataclasses import dataclass

from emulator.clock import Clock

TTL_SECONDS = 30 * 60.0
MAX_BODY_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class Cached:
    """A stored response, replayed as is."""

    status: int
    body: bytes
    expires_at: float


class InFlight(Exception):
    """The same key is still being processed by an earlier request."""


class IdempotencyCache:
    """Responses by (scope, key); the scope separates tokens.

    A key is claimed by `begin` and stays claimed (a duplicate gets InFlight) until
    `end`, even once `store` has saved the response, because the answer is not out yet.
    """

    def __init__(
        self, clock: Clock, ttl: float = TTL_SECONDS, max_body: int = MAX_BODY_BYTES
    ) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max_body = max_body
        self._done: dict[tuple[str, str], Cached] = {}
        self._busy: set[tuple[str, str]] = set()

    def begin(self, scope: str, key: str) -> Cached | None:
        """The cached response to replay, or None after claiming the key."""
        self._expire()
        slot = (scope, key)
        if slot in self._busy:
            raise InFlight(key)
        cached = self._done.get(slot)
        if cached is not None:
            return cached
        self._busy.add(slot)
        return None

    def store(self, scope: str, key: str, status: int, body: bytes) -> bool:
        """Keep a response for replay; False when it is too large to cache."""
        if len(body) > self._max_body:
            return False
        self._done[(scope, key)] = Cached(status, body, self._clock() + self._ttl)
        return True

    def end(self, scope: str, key: str) -> None:
        """Release the claim taken by `begin`."""
        self._busy.discard((scope, key))

    def clear(self) -> None:
        """Forget every stored response (claims in flight stay)."""
        self._done.clear()

    def __len__(self) -> int:
        self._expire()
        return len(self._done)

    def _expire(self) -> None:
        # Entries are stored in time order with one TTL, so the oldest come first.
        now = self._clock()
        while self._done:
            slot, cached = next(iter(self._done.items()))
            if cached.expires_at > now:
                break
            del self._done[slot]
