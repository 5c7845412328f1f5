"""Injected failures: latency, HTTP 500, HTTP 429, hangs, and answers lost after the work.

Shares (0..1) draw from a seedable RNG; `next_*` counters fire on the next N matching
requests first, so tests can be exact.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["hang", "http_500", "http_429", "drop"]
KINDS: tuple[Kind, ...] = ("hang", "http_500", "http_429", "drop")
AppliesTo = Literal["all", "mutations", "queries"]


@dataclass(frozen=True, slots=True)
class Faults:
    """What to break. Field names are also the JSON keys of POST /control/faults.

    hang, http_500 and http_429 happen before the request is processed (nothing
    changes); drop happens after: the mutations are applied and the connection is
    closed without an answer. latency (seconds) is added before answering.
    """

    latency: float = 0.0
    http_500: float = 0.0
    http_429: float = 0.0
    hang: float = 0.0
    drop: float = 0.0
    next_http_500: int = 0
    next_http_429: int = 0
    next_hang: int = 0
    next_drop: int = 0
    retry_in_seconds: int = 1
    applies_to: AppliesTo = "all"
    seed: int | None = None

    def __post_init__(self) -> None:
        for kind in KINDS:
            share = getattr(self, kind)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{kind} must be a share between 0 and 1, not {share}")
            if getattr(self, f"next_{kind}") < 0:
                raise ValueError(f"next_{kind} must not be negative")
        if self.latency < 0 or self.retry_in_seconds < 0:
            raise ValueError("latency and retry_in_seconds must not be negative")
        if self.applies_to not in ("all", "mutations", "queries"):
            raise ValueError("applies_to must be all, mutations or queries")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Faults:
        """Faults from JSON; unknown keys are an error, missing ones take defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON data."""
        return dataclasses.asdict(self)


class FaultPlan:
    """Decides, request by request, which fault (if any) strikes."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)

    def replace(self, faults: Faults) -> None:
        """New settings; the RNG restarts from the new seed."""
        self.faults = faults
        self._rng = random.Random(faults.seed)

    def decide(self, is_mutation: bool) -> Kind | None:
        """The fault for this request: counters first, then shares, hang before drop."""
        faults = self.faults
        wanted = {"all": True, "mutations": is_mutation, "queries": not is_mutation}
        if not wanted[faults.applies_to]:
            return None
        for kind in KINDS:
            counter = f"next_{kind}"
            if getattr(faults, counter) > 0:
                self.faults = dataclasses.replace(faults, **{counter: getattr(faults, counter) - 1})
                return kind
        for kind in KINDS:
            share = getattr(faults, kind)
            # Draw only for enabled faults so that a seed gives the same sequence.
            if share > 0 and self._rng.random() < share:
                return kind
        return None
