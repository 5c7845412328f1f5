"""Monday's rate limits (developer.monday.com, "Rate limits"): plan presets and accounting.

Every limit is optional (None disables it); the daily calls are counted in `emulator.daily`.
Windows are fixed windows (60 s; the complexity window's length is configurable) that start
with the first call after the previous one ran out, as Monday describes its "sliding" budget.
The clock is injected so tests can move time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from emulator.clock import DAY as DAY  # re-exported: tests and callers count days here
from emulator.clock import Clock
from emulator.daily import DailyCalls, Usage

MINUTE = 60.0
INT_MAX = 2**31 - 1  # GraphQL Int is 32-bit: the budget reported when it is disabled

# What a query costs, as Monday computes it (developer.monday.com "Rate limits" and
# "Complexity"; community.monday.com "Complexity Field Weights", by Monday's staff): every field
# has a weight, a scalar 1 and an object 10, multiplied by how many of it the query may return
# (the number of `ids` when given, else the `limit`, else a default page), and a mutation 30,000
# (Monday's own error text quotes "query cost 30001": a create_item returning its id). The apps
# docs of 2025 put a create at 10,000 instead; nothing official lists per-field figures, so every
# one of them is configurable (`costs` per root field, the weights, the default page).
MUTATION_COST = 30_000
OBJECT_COST = 10
SCALAR_COST = 1
LIST_DEFAULT = 25  # Monday's default `limit` for lists (items, boards)
# Root fields that cost nothing, whatever they select: asking for the complexity is free.
FREE_FIELDS = frozenset({"complexity", "__typename"})


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
    # The complexity budget's window: Monday's is a minute; shorter ones let tests and
    # benchmarks see many windows (reported in RateLimit-Policy `w` and in reset times).
    complexity_window_seconds: float = 60.0
    # The daily limit: `daily_calls` is Monday's `daily_limit.base`, plus `daily_calls_extra`
    # (an Enterprise increase) its `total`, the figure calls are refused at.
    daily_calls_extra: int = 0
    # How often platform_api's daily_analytics catch up with the count ("approximately every
    # 10 minutes", the API analytics page); 0: live.
    usage_refresh_seconds: float = 600.0
    # Whether the token may read platform_api (else USER_UNAUTHORIZED): "Enterprise accounts
    # can retrieve this data" in one version of Monday's page, any account in another.
    platform_api_readable: bool = True
    # "High complexity queries" count "1+ calls": with a figure, a query counts one call per
    # started `calls_per_complexity` points. Monday publishes no threshold: off unless set.
    calls_per_complexity: int | None = None
    # Weight of a root field by name (per element returned), overriding the defaults below.
    costs: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    mutation_cost: int = MUTATION_COST
    object_cost: int = OBJECT_COST
    scalar_cost: int = SCALAR_COST
    list_default: int = LIST_DEFAULT

    @property
    def daily_total(self) -> int | None:
        """The calls a day Monday refuses beyond (`daily_limit.total`), None without a limit."""
        return None if self.daily_calls is None else self.daily_calls + self.daily_calls_extra

    @classmethod
    def standard(cls) -> AccountLimits:
        """Basic and Standard plans: 1,000/min, 40 concurrent, 1,000 calls a day."""
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
        """Trial, NGO and free accounts: a tenth of the complexity budget, 1,000/min, 200 calls a
        day (Monday's support page and the contract; the developer page says 1,000)."""
        return cls(
            complexity_per_minute=1_000_000, requests_per_minute=1_000, concurrency=40,
            daily_calls=200,
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

    def cost(self, field_name: str, *, mutation: bool = True, scalar: bool = False) -> int:
        """The weight of a root field (of each element, for a list), before what it selects."""
        if field_name in FREE_FIELDS:
            return 0
        if field_name in self.costs:
            return self.costs[field_name]
        if mutation:
            return self.mutation_cost
        return self.scalar_cost if scalar else self.object_cost


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


@dataclass(frozen=True, slots=True)
class Spent:
    """One complexity window: when its first call came, and the points charged in it."""

    start: float
    used: int


class _Window:
    """A fixed window that starts at its first use and ends `length` seconds later."""

    __slots__ = ("closed", "length", "start", "used")

    def __init__(self, length: float, closed: list[Spent] | None = None) -> None:
        self.length = length
        self.start: float | None = None
        self.used = 0
        self.closed = closed  # where ended windows are kept, if anywhere

    def roll(self, now: float) -> None:
        if self.start is not None and now >= self.start + self.length:
            if self.closed is not None:
                self.closed.append(Spent(self.start, self.used))
            self.start, self.used = None, 0

    def add(self, now: float, amount: int) -> None:
        if self.start is None:
            self.start = now
        self.used += amount

    def reset_in(self, now: float) -> int:
        end = now + self.length if self.start is None else self.start + self.length
        return max(1, math.ceil(end - now))


class RateLimiter:
    """The accounting of all limits of one account; not thread-safe (one event loop).

    `counted` is what the last `admit` or `charge` added to the day's calls (negative when a
    call turned out to count 0.1), for the request's record.
    """

    def __init__(self, limits: AccountLimits, clock: Clock) -> None:
        self.limits = limits
        self._clock = clock
        self.in_flight = 0
        self.counted = 0.0
        self.reset()

    def reset(self) -> None:
        """Forget all usage (keeps requests in flight)."""
        self._minute = _Window(MINUTE)
        self.spent: list[Spent] = []  # the complexity windows that ended, oldest first
        self._complexity = _Window(self.limits.complexity_window_seconds, self.spent)
        self._ips: dict[str, _Window] = {}
        self.daily = DailyCalls(self._clock)

    @property
    def daily_used(self) -> float:
        """Calls counted today (every token of the account together)."""
        return self.daily.today()

    def set_daily_used(self, used: float, *, reported: bool = True) -> None:
        """Make today's count `used`, as if other apps had spent the calls."""
        self.daily.set_today(used, reported=reported)

    def daily_usage(self) -> Usage:
        """What platform_api's daily_analytics show now (the copy of the last refresh)."""
        return self.daily.report(self.limits.usage_refresh_seconds)

    def _count(self, amount: float) -> None:
        self.daily.count(amount, self.limits.usage_refresh_seconds)
        self.counted += amount

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
        self.counted = 0.0
        limits = self.limits
        total = limits.daily_total
        # Tenths add up in binary floating point: 10 + ten times (1 - 0.9) is 10.999999999999996.
        if total is not None and self.daily_used >= total - 1e-6:
            self._count(0.1)  # calls that hit a limit count 0.1, as Monday counts them
            return Rejection(
                429,
                "DAILY_LIMIT_EXCEEDED",
                "Daily limit exceeded",
                max(1, math.ceil(self.daily.resets_in())),
            )
        self._minute.roll(now)
        self._minute.add(now, 1)  # "all requests count, including failed ones"
        if (
            limits.requests_per_minute is not None
            and self._minute.used > limits.requests_per_minute
        ):
            self._count(0.1)
            return Rejection(
                429, "RATE_LIMIT_EXCEEDED", "Rate Limit Exceeded", self._minute.reset_in(now)
            )
        if limits.concurrency is not None and self.in_flight >= limits.concurrency:
            self._count(0.1)
            return Rejection(429, "maxConcurrencyExceeded", "Concurrency limit exceeded", 1)
        self.in_flight += 1
        self._count(1)
        return None

    def release(self) -> None:
        """The end of a request admitted by `admit`."""
        self.in_flight -= 1

    def refused(self) -> None:
        """An admitted call answered with a rate-limit refusal after all: it counts 0.1."""
        self.counted = 0.0
        self._count(-0.9)

    def charge(self, cost: int, *, complexity_only: bool = False) -> Charge | Rejection:
        """Take `cost` from the complexity budget, or say why not (nothing is taken)."""
        now = self._clock()
        self.counted = 0.0
        limits = self.limits
        if limits.max_query_complexity is not None and cost > limits.max_query_complexity:
            return Rejection(
                200,
                "maxComplexityExceeded",
                f"Query has complexity of {cost}, which exceeds max complexity of "
                f"{limits.max_query_complexity}",
                0,
            )
        window = self._complexity_window(now)
        budget = limits.complexity_per_minute
        remaining = (INT_MAX if budget is None else budget) - window.used
        if budget is not None and cost > remaining:
            self._count(-0.9)  # a call refused by a limit counts 0.1
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
            self._count(-0.9)  # a complexity-only query counts 0.1 call
        elif limits.calls_per_complexity:
            self._count(max(1, math.ceil(cost / limits.calls_per_complexity)) - 1)
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
            self._complexity_window(now)
            budget = limits.complexity_per_minute
            w = f"{limits.complexity_window_seconds:g}"
            policy.append(f'"complexityMinute";q={budget};w={w};qu="content-bytes"')
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
        self._complexity_window(now)
        return {
            "requests_this_minute": self._minute.used,
            "complexity_this_minute": self._complexity.used,
            "daily_calls": round(self.daily_used, 1),
            "in_flight": self.in_flight,
        }

    def windows(self) -> list[Spent]:
        """Every complexity window so far, oldest first, the current one last."""
        current = self._complexity_window(self._clock())
        if current.start is None:
            return list(self.spent)
        return [*self.spent, Spent(current.start, current.used)]

    def _complexity_window(self, now: float) -> _Window:
        window = self._complexity
        window.length = self.limits.complexity_window_seconds
        window.roll(now)
        return window

    @staticmethod
    def _t(window: _Window, now: float) -> str:
        return "" if window.start is None else f";t={window.reset_in(now)}"


NULLABLE = frozenset(
    {
        "complexity_per_minute", "max_query_complexity", "requests_per_minute", "concurrency",
        "daily_calls", "ip_requests", "calls_per_complexity",
    }
)  # fmt: skip
FLAGS = frozenset({"platform_api_readable"})


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
        "complexity_window_seconds": limits.complexity_window_seconds,
        "daily_calls_extra": limits.daily_calls_extra,
        "usage_refresh_seconds": limits.usage_refresh_seconds,
        "platform_api_readable": limits.platform_api_readable,
        "calls_per_complexity": limits.calls_per_complexity,
        "costs": dict(limits.costs),
        "mutation_cost": limits.mutation_cost,
        "object_cost": limits.object_cost,
        "scalar_cost": limits.scalar_cost,
        "list_default": limits.list_default,
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
        if name in FLAGS:
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false")
            continue
        nullable = name in NULLABLE
        if (value is None and not nullable) or (
            value is not None and (not isinstance(value, int | float) or value < 0)
        ):
            raise ValueError(f"{name} must be a non-negative number{' or null' * nullable}")
    if "costs" in fields:
        costs = fields["costs"]
        if not isinstance(costs, Mapping):
            raise ValueError("costs must be an object of field name to cost")
        fields["costs"] = MappingProxyType({**base.costs, **costs})
    if not fields.get("complexity_window_seconds", 1):
        raise ValueError("complexity_window_seconds must be positive")
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]
