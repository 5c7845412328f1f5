"""Monday errors as types, and the pure rules that classify them.

Five kinds, each with its own handling in the worker:

- Transient: retry later with backoff, counting an attempt (5xx, 423, network errors).
- RateLimited: wait as long as Monday says, without counting an attempt (429, complexity).
- Permanent: the row's data or the board is wrong; retrying cannot help (ColumnValueException).
- ItemGone: the item was deleted or archived on Monday; find or recreate it.
- Blocked: the whole account cannot be served (bad token, daily limit, API blocked): pause all
  traffic, fail no row.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from listener.redact import redact


class Kind(enum.Enum):
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    PERMANENT = "permanent"
    ITEM_GONE = "item_gone"
    BLOCKED = "blocked"


RATE_LIMIT_CODES = frozenset(
    {
        "COMPLEXITY_BUDGET_EXHAUSTED",
        "ComplexityException",
        "RATE_LIMIT_EXCEEDED",
        "Rate Limit Exceeded",
        "maxConcurrencyExceeded",
        "CONCURRENCY_LIMIT_EXCEEDED",
        "IP_RATE_LIMIT_EXCEEDED",
        "FIELD_LIMIT_EXCEEDED",
        "IDEMPOTENCY_CONFLICT",
    }
)
BLOCKED_CODES = frozenset(
    {
        "DAILY_LIMIT_EXCEEDED",
        "API_TEMPORARILY_BLOCKED",
        "USER_UNAUTHORIZED",
        "UserUnauthorizedException",
        "USER_ACCESS_DENIED",
        "Unauthorized",
        "InvalidVersionException",
        "missingRequiredPermissions",
    }
)
ITEM_GONE_CODES = frozenset(
    {"ResourceNotFoundException", "InvalidItemIdException", "ItemNotFoundInBoard"}
)
PERMANENT_CODES = frozenset(
    {
        "ColumnValueException",
        "CorrectedValueException",
        "InvalidArgumentException",
        "InvalidBoardIdException",
        "InvalidColumnIdException",
        "InvalidUserIdException",
        "ItemNameTooLongException",
        "ItemsLimitationException",
        "RecordInvalidException",
        "JsonParseException",
        "CreateBoardException",
        "GRAPHQL_VALIDATION_FAILED",
        # A document Monday cannot parse or validate (graphql-ruby's static validation codes,
        # as the emulator sends them): sending it again cannot help.
        "PARSE_ERROR",
        "INVALID_VARIABLES",
        "BAD_REQUEST",
        "undefinedField",
        "argumentLiteralsIncompatible",
        "argumentNotAccepted",
        "argumentNotUnique",
        "missingRequiredArguments",
        "missingOperationType",
        "variableMismatch",
        "variableRequiresValidType",
        "variableNotDefined",
        "variableNotUsed",
        "variableNotUnique",
        "undefinedType",
        "selectionMismatch",
        "fieldConflict",
        "undefinedFragment",
        "useAndDefineFragment",
    }
)
TRANSIENT_CODES = frozenset({"INTERNAL_SERVER_ERROR", "ResourceLocked"})
BUDGET_CODES = frozenset({"COMPLEXITY_BUDGET_EXHAUSTED", "ComplexityException"})
# One request over Monday's cap on a single query (5M points): "Query has complexity of N,
# which exceeds max complexity of M", with this code or none.
TOO_COMPLEX = "maxComplexityExceeded"
_TOO_COMPLEX = re.compile(r"complexity of (\d+),? which exceeds max complexity of (\d+)")


@dataclass(frozen=True, slots=True)
class Budget:
    """The complexity budget as a refusal reports it (any figure may be missing)."""

    left: float | None = None  # points left in the window
    limit: float | None = None  # points a window
    reset: float | None = None  # seconds until the window starts again
    window: float | None = None  # the window's length in seconds
    cost: float | None = None  # what the refused request would have cost
    max_query: float | None = None  # set when the request was over the cap on one query


class MondayError(Exception):
    """An error from Monday (or on the way to it). The message never holds the API key."""

    kind: Kind = Kind.TRANSIENT

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        budget: Budget | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after
        self.budget = budget  # set on a complexity refusal: what Monday said of the budget

    def redacted(self, secrets: Iterable[str]) -> MondayError:
        """The same error, with every secret removed from its message."""
        return type(self)(
            redact(self.message, secrets), code=self.code, status=self.status,
            request_id=self.request_id, retry_after=self.retry_after, budget=self.budget,
        )  # fmt: skip

    def __str__(self) -> str:
        parts = [self.message]
        if self.code:
            parts.append(f"code={self.code}")
        if self.status:
            parts.append(f"http={self.status}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class Transient(MondayError):
    kind = Kind.TRANSIENT


class OutcomeUnknown(Transient):
    """The request was sent but no answer came: it may or may not have been applied."""


class RateLimited(MondayError):
    kind = Kind.RATE_LIMITED


class Permanent(MondayError):
    kind = Kind.PERMANENT


class ItemGone(MondayError):
    kind = Kind.ITEM_GONE


class Blocked(MondayError):
    kind = Kind.BLOCKED


_TYPES: dict[Kind, type[MondayError]] = {
    Kind.TRANSIENT: Transient,
    Kind.RATE_LIMITED: RateLimited,
    Kind.PERMANENT: Permanent,
    Kind.ITEM_GONE: ItemGone,
    Kind.BLOCKED: Blocked,
}


def classify(code: str | None, status: int | None) -> Kind:
    """The kind of an error from its code and HTTP status; unknown errors are transient."""
    if code in RATE_LIMIT_CODES:
        return Kind.RATE_LIMITED
    if code in BLOCKED_CODES:
        return Kind.BLOCKED
    if code in ITEM_GONE_CODES:
        return Kind.ITEM_GONE
    if code in PERMANENT_CODES:
        return Kind.PERMANENT
    if code in TRANSIENT_CODES:
        return Kind.TRANSIENT
    if status == 429 or status == 409:
        return Kind.RATE_LIMITED
    if status in (401, 403):
        return Kind.BLOCKED
    if status == 404:
        return Kind.ITEM_GONE
    if status is not None and 400 <= status < 500 and status not in (408, 423):
        return Kind.PERMANENT
    # 5xx, 408, 423, no status (network), unknown codes: try again later. A 500 that really
    # means bad input runs out of attempts and ends FAILED with its message.
    return Kind.TRANSIENT


def make(
    message: str,
    *,
    code: str | None = None,
    status: int | None = None,
    request_id: str | None = None,
    retry_after: float | None = None,
    budget: Budget | None = None,
) -> MondayError:
    """Build the typed exception for an error."""
    cls = _TYPES[classify(code, status)]
    return cls(
        message, code=code, status=status, request_id=request_id, retry_after=retry_after,
        budget=budget,
    )  # fmt: skip


def retry_after(
    extensions: Mapping[str, object] | None, headers: Mapping[str, str]
) -> float | None:
    """Monday's own hint of when to try again: retry_in_seconds, Retry-After, RateLimit t=."""
    if extensions:
        value = extensions.get("retry_in_seconds")
        if isinstance(value, int | float) and value >= 0:
            return float(value)
    header = headers.get("Retry-After")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    resets = [limit.reset for limit in parse_ratelimit(headers.get("RateLimit", "")) if limit.reset]
    return max(resets) if resets else None


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    remaining: float | None
    reset: float | None
    quota: float | None = None  # RateLimit-Policy's q
    window: float | None = None  # RateLimit-Policy's w


def parse_ratelimit(header: str) -> list[Limit]:
    """Parse `RateLimit: "minuteRate";r=4999, "complexityMinute";r=4950000;t=45`, or the
    `RateLimit-Policy` header (`"complexityMinute";q=5000000;w=60`)."""
    limits = []
    for item in header.split(","):
        parts = [p.strip() for p in item.split(";")]
        if not parts or not parts[0]:
            continue
        params: dict[str, float] = {}
        for param in parts[1:]:
            key, _, value = param.partition("=")
            try:
                params[key.strip()] = float(value)
            except ValueError:
                continue
        limits.append(
            Limit(
                parts[0].strip('"'), params.get("r"), params.get("t"), params.get("q"),
                params.get("w"),
            )
        )  # fmt: skip
    return limits


COMPLEXITY_LIMIT = "complexityMinute"  # the complexity budget's name in the RateLimit headers
# The legacy refusal's text: "... query cost 30001 budget remaining 19986 out of 1000000 reset
# in 3 seconds".
_LEGACY = re.compile(
    r"query cost (\d+).*?remaining (\d+) out of (\d+).*?reset in (\d+) seconds?", re.IGNORECASE
)


def complexity_limit(headers: Mapping[str, str]) -> Limit | None:
    """The complexity budget from a response's RateLimit and RateLimit-Policy headers: points
    left and seconds to the reset (RateLimit), points a window and its length (the policy)."""
    state = _named(headers.get("RateLimit", ""))
    policy = _named(headers.get("RateLimit-Policy", ""))
    if state is None and policy is None:
        return None
    return Limit(
        COMPLEXITY_LIMIT,
        state.remaining if state else None,
        state.reset if state else None,
        policy.quota if policy else None,
        policy.window if policy else None,
    )


def _named(header: str) -> Limit | None:
    return next((x for x in parse_ratelimit(header) if x.name == COMPLEXITY_LIMIT), None)


def too_complex(message: str) -> Budget | None:
    """What a refusal for going over the cap on one query says: its cost and the cap."""
    found = _TOO_COMPLEX.search(message)
    if found is None:
        return None
    return Budget(cost=float(found[1]), max_query=float(found[2]))


def budget(
    message: str, extensions: Mapping[str, object] | None, headers: Mapping[str, str]
) -> Budget:
    """What a complexity refusal says of the budget: its extensions (2025-01 to 2025-04), the
    legacy message, and the RateLimit headers, the first one that has a figure winning."""
    ext = extensions or {}

    def number(key: str) -> float | None:
        value = ext.get(key)
        return float(value) if isinstance(value, int | float) else None

    found = Budget(
        left=number("complexity_budget_left"),
        limit=number("complexity_budget_limit"),
        reset=number("retry_in_seconds"),
        cost=number("complexity"),
    )
    legacy = _LEGACY.search(message)
    if legacy:
        cost, left, limit, reset = (float(g) for g in legacy.groups())
        found = replace(
            found,
            cost=found.cost if found.cost is not None else cost,
            left=found.left if found.left is not None else left,
            limit=found.limit if found.limit is not None else limit,
            reset=found.reset if found.reset is not None else reset,
        )
    header = complexity_limit(headers)
    if header is not None:
        found = replace(
            found,
            left=found.left if found.left is not None else header.remaining,
            limit=found.limit if found.limit is not None else header.quota,
            reset=found.reset if found.reset is not None else header.reset,
            window=header.window,
        )
    return found
