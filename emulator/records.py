"""What the emulator remembers about each request, for tests and benchmarks."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One POST /v2: what came in and what went out.

    `status` is None when no answer was sent (a hang the client gave up on, or a drop);
    `calls` is what it counted against the daily limit (1, 0.1 when refused for a rate limit
    or asking only for the complexity, 0 before the token was checked).
    """

    at: float
    request_id: str
    api_version: str | None
    served_version: str | None
    idempotency_key: str | None
    root_fields: tuple[str, ...]
    mutations: int
    complexity: int
    status: int | None
    error_codes: tuple[str, ...]
    fault: str | None
    replayed: bool
    seconds: float
    calls: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The record as JSON data."""
        return dataclasses.asdict(self)


@dataclass(slots=True)
class Counters:
    """Running totals since start (or the last reset)."""

    requests: int = 0
    mutations: int = 0
    replays: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        """The counters as JSON data."""
        return {
            "requests": self.requests,
            "mutations": self.mutations,
            "replays": self.replays,
            "errors": dict(self.errors),
            "faults": dict(self.faults),
        }
