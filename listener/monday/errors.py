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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after

    def redacted(self, secrets: Iterable[str]) -> MondayError:
        """The same error, with every secret removed from its message."""
        return type(self)(
            redact(self.message, secrets), code=self.code, status=self.status,
            request_id=self.request_id, retry_after=self.retry_after,
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
) -> MondayError:
    """Build the typed exception for an error."""
    cls = _TYPES[classify(code, status)]
    return cls(message, code=code, status=status, request_id=request_id, retry_after=retry_after)


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


def parse_ratelimit(header: str) -> list[Limit]:
    """Parse `RateLimit: "minuteRate";r=4999, "complexityMinute";r=4950000;t=45`."""
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
        limits.append(Limit(parts[0].strip('"'), params.get("r"), params.get("t")))
    return limits
