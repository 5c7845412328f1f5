"""Monday's rate limits (developer.monday.com, "Rate limits"): plan presets and accounting.

Every limit is optional (None disables it). Windows are fixed 60 s windows that start
with the first call after the previous one ran out, as Monday describes its "sliding"
budget. The clock is injected so tests can move time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from emulator.clock import Clock

MINUTE = 60.0
DAY = 86_400.0
INT_MAX = 2**31 - 1  # GraphQL Int is 32-bit: the budget reported when it is disabled

# Complexity points per root field. Monday does not publish per-field costs: the apps
# docs say a create_item costs 10,000 (older community posts said 30,000 per mutation).
# With 10,000, one request of 500 aliased mutations is exactly at the 5M per-query cap.
DEFAULT_COSTS: Mapping[str, int] = MappingProxyType(
    {
        "create_item": 10_000,
        "change_multiple_column_values": 10_000,
        "change_column_value": 10_000,
        "change_simple_column_value": 10_000,
        "archive_item": 10_000,
        "delete_item": 10_000,
        "create_column": 10_000,
        "create_board": 10_000,
        "create_webhook": 10_000,
        "delete_webhook": 10_000,
        "items_page_by_column_values": 5_000,
        "next_items_page": 5_000,
        "boards": 1_000,
        "items": 1_000,
        "webhooks": 1_000,
        "me": 10,
        "complexity": 0,
        "version": 0,
        "versions": 0,
        "__typename": 0,
    }
)
DEFAULT_COST = 1_000


@dataclass(frozen=True, slots=True)
class AccountLimits:
    """Rate limits of one account; the presets are Monday's published plan figures."""

    complexity_per_minute: int | None = 10_000_000
    max_query_complexity: int | None = 5_000_000
    requests_per_minute: int | None = 2_500
    concurrency: int | None = 100
    daily_calls: int | None = 10_000
    ip_requests: int | None = 5_000
    ip_window_seconds: float = 10.0
    costs: Mapping[str, int] = field(default_factory=lambda: DEFAULT_COSTS)
    default_cost: int = DEFAULT_COST

    @classmethod
    def standard(cls) -> AccountLimits:
        """Free, Basic and Standard plans: 1,000/min, 40 concurrent, 1,000 calls a day."""
        return cls(requests_per_minute=1_000, concurrency=40, daily_calls=1_000)

    @classmethod
    def pro(cls) -> AccountLimits:
        """Pro plan: 2,500/min, 100 concurrent, 10,000 calls a day (the default)."""
        return cls()

    @classmethod
    def enterprise(cls) -> AccountLimits:
        """Enterprise plan: 5,000/min, 250 concurrent, 25,000 calls a day."""
        return cls(requests_per_minute=5_000, concurrency=250, daily_calls=25_000)

    @classmethod
    def free(cls) -> AccountLimits:
        """Trial, NGO and free accounts: a tenth of the complexity budget, 1,000/min."""
        return cls(
            complexity_per_minute=1_000_000, requests_per_minute=1_000, concurrency=40,
            daily_calls=1_000,
        )  # fmt: skip

    @classmethod
    def unlimited(cls) -> AccountLimits:
        """No limit at all (complexity is still counted and reported)."""
        return cls(
            complexity_per_minute=None,
            max_query_complexity=None,
            requests_per_minute=None,
            concurrency=None,
            daily_calls=None,
            ip_requests=None,
        )

    @classmethod
    def plan(cls, name: str) -> AccountLimits:
        """A preset by name: free, standard, pro, enterprise (Monday's plans, the names `[tuning]
        plan` takes), or unlimited (no limit at all: not a Monday plan)."""
        presets = {
            "free": cls.free,
            "standard": cls.standard,
            "pro": cls.pro,
            "enterprise": cls.enterprise,
            "unlimited": cls.unlimited,
        }
        if name not in presets:
            raise ValueError(f"unknown plan {name!r} (one of {', '.join(presets)})")
        return presets[name]()

    def cost(self, field_name: str) -> int:
        """Complexity of one root field."""
        return self.costs.get(field_name, self.default_cost)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A request refused by a limit, with what Monday answers."""

    status: int
    code: str
    message: str
    retry_in: int
    extra: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Charge:
    """The complexity accounting of one query, as the `complexity` field reports it."""

    before: int
    query: int
    after: int
    reset_in_x_seconds: int


class _Window:
    """A fixed window that starts at its first use and ends `length` seconds later."""

    __slots__ = ("length", "start", "used")

    def __init__(self, length: float) -> None:
        self.length = length
        self.start: float | None = None
        self.used = 0

    def roll(self, now: float) -> None:
        if self.start is not None and now >= self.start + self.length:
            self.start, self.used = None, 0

    def add(self, now: float, amount: int) -> None:
        if self.start is None:
            self.start = now
        self.used += amount

    def reset_in(self, now: float) -> int:
        end = now + self.length if self.start is None else self.start + self.length
        return max(1, math.ceil(end - now))


class RateLimiter:
    """The accounting of all limits of one account; not thread-safe (one event loop)."""

    def __init__(self, limits: AccountLimits, clock: Clock) -> None:
        self.limits = limits
        self._clock = clock
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Forget all usage (keeps requests in flight)."""
        self._minute = _Window(MINUTE)
        self._complexity = _Window(MINUTE)
        self._ips: dict[str, _Window] = {}
        self._day = -1
        self.daily_used = 0.0

    def check_ip(self, ip: str) -> Rejection | None:
        """Count a request from `ip` (before authentication) against the IP limit."""
        limit = self.limits.ip_requests
        if limit is None:
            return None
        now = self._clock()
        window = self._ips.setdefault(ip, _Window(self.limits.ip_window_seconds))
        window.roll(now)
        window.add(now, 1)
        if window.used > limit:
            return Rejection(
                429, "IP_RATE_LIMIT_EXCEEDED", "IP rate limit exceeded", window.reset_in(now)
            )
        return None

    def admit(self) -> Rejection | None:
        """Count an authenticated request: daily, per-minute and concurrency limits.

        On None the request is in flight until `release`.
        """
        now = self._clock()
        self._roll_day(now)
        limits = self.limits
        if limits.daily_calls is not None and self.daily_used >= limits.daily_calls:
            self.daily_used += 0.1  # calls that hit a limit count 0.1, as Monday counts them
            return Rejection(
                429,
                "DAILY_LIMIT_EXCEEDED",
                "Daily limit exceeded",
                max(1, math.ceil((self._day + 1) * DAY - now)),
            )
        self._minute.roll(now)
        self._minute.add(now, 1)  # "all requests count, including failed ones"
        if (
            limits.requests_per_minute is not None
            and self._minute.used > limits.requests_per_minute
        ):
            self.daily_used += 0.1
            return Rejection(
                429, "RATE_LIMIT_EXCEEDED", "Rate Limit Exceeded", self._minute.reset_in(now)
            )
        if limits.concurrency is not None and self.in_flight >= limits.concurrency:
            self.daily_used += 0.1
            return Rejection(429, "maxConcurrencyExceeded", "Concurrency limit exceeded", 1)
        self.in_flight += 1
        self.daily_used += 1
        return None

    def release(self) -> None:
        """The end of a request admitted by `admit`."""
        self.in_flight -= 1

    def charge(self, cost: int, *, complexity_only: bool = False) -> Charge | Rejection:
        """Take `cost` from the complexity budget, or say why not (nothing is taken)."""
        now = self._clock()
        limits = self.limits
        if limits.max_query_complexity is not None and cost > limits.max_query_complexity:
            return Rejection(
                200,
                "maxComplexityExceeded",
                f"Query has complexity of {cost}, which exceeds max complexity of "
                f"{limits.max_query_complexity}",
                0,
            )
        window = self._complexity
        window.roll(now)
        budget = limits.complexity_per_minute
        remaining = (INT_MAX if budget is None else budget) - window.used
        if budget is not None and cost > remaining:
            self.daily_used -= 0.9  # a call refused by a limit counts 0.1
            retry = window.reset_in(now)
            extra = {
                "complexity": cost,
                "complexity_budget_left": remaining,
                "complexity_budget_limit": budget,
            }
            return Rejection(
                200, "COMPLEXITY_BUDGET_EXHAUSTED", "Complexity budget exhausted", retry, extra
            )
        window.add(now, cost)
        if complexity_only:
            self.daily_used -= 0.9  # a complexity-only query counts 0.1 call
        return Charge(remaining, cost, remaining - cost, window.reset_in(now))

    def headers(self) -> dict[str, str]:
        """RateLimit-Policy and RateLimit headers (IETF draft structured fields)."""
        now = self._clock()
        limits = self.limits
        policy: list[str] = []
        state: list[str] = []
        if limits.requests_per_minute is not None:
            self._minute.roll(now)
            policy.append(f'"minuteRate";q={limits.requests_per_minute};w=60')
            state.append(
                f'"minuteRate";r={max(0, limits.requests_per_minute - self._minute.used)}'
                + self._t(self._minute, now)
            )
        if limits.concurrency is not None:
            policy.append(f'"concurrency";q={limits.concurrency};qu="concurrent-requests"')
            state.append(f'"concurrency";r={max(0, limits.concurrency - self.in_flight)}')
        if limits.complexity_per_minute is not None:
            self._complexity.roll(now)
            budget = limits.complexity_per_minute
            policy.append(f'"complexityMinute";q={budget};w=60;qu="content-bytes"')
            state.append(
                f'"complexityMinute";r={max(0, budget - self._complexity.used)}'
                + self._t(self._complexity, now)
            )
        if not policy:
            return {}
        return {"RateLimit-Policy": ", ".join(policy), "RateLimit": ", ".join(state)}

    def usage(self) -> dict[str, object]:
        """The current counters, for the control endpoint."""
        now = self._clock()
        self._minute.roll(now)
        self._complexity.roll(now)
        self._roll_day(now)
        return {
            "requests_this_minute": self._minute.used,
            "complexity_this_minute": self._complexity.used,
            "daily_calls": round(self.daily_used, 1),
            "in_flight": self.in_flight,
        }

    def _roll_day(self, now: float) -> None:
        day = int(now // DAY)  # days reset at midnight UTC
        if day != self._day:
            self._day, self.daily_used = day, 0.0

    @staticmethod
    def _t(window: _Window, now: float) -> str:
        return "" if window.start is None else f";t={window.reset_in(now)}"


def limits_to_json(limits: AccountLimits) -> dict[str, object]:
    """AccountLimits as JSON data (the shape POST /control/limits accepts)."""
    return {
        "complexity_per_minute": limits.complexity_per_minute,
        "max_query_complexity": limits.max_query_complexity,
        "requests_per_minute": limits.requests_per_minute,
        "concurrency": limits.concurrency,
        "daily_calls": limits.daily_calls,
        "ip_requests": limits.ip_requests,
        "ip_window_seconds": limits.ip_window_seconds,
        "costs": dict(limits.costs),
        "default_cost": limits.default_cost,
    }


def limits_from_json(data: Mapping[str, object]) -> AccountLimits:
    """AccountLimits from {"plan": "pro", ...field overrides}; unknown keys are an error."""
    fields = dict(data)
    base = AccountLimits.plan(str(fields.pop("plan", "pro")))
    known = set(limits_to_json(base))
    unknown = set(fields) - known
    if unknown:
        raise ValueError(f"unknown limit settings: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        if name == "costs":
            continue
        nullable = name not in ("ip_window_seconds", "default_cost")
        if (value is None and not nullable) or (
            value is not None and (not isinstance(value, int | float) or value < 0)
        ):
            raise ValueError(f"{name} must be a non-negative number{' or null' * nullable}")
    if "costs" in fields:
        costs = fields["costs"]
        if not isinstance(costs, Mapping):
            raise ValueError("costs must be an object of field name to cost")
        fields["costs"] = MappingProxyType({**base.costs, **costs})
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]
