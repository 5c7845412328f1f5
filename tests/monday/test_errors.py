"""listener.monday.errors: classification, Monday's retry hints, and the typed exceptions."""

from __future__ import annotations

import pytest

from emulator import engine
from listener.monday import errors
from listener.monday.errors import Kind

CODE_SETS = [
    (errors.RATE_LIMIT_CODES, Kind.RATE_LIMITED),
    (errors.BLOCKED_CODES, Kind.BLOCKED),
    (errors.ITEM_GONE_CODES, Kind.ITEM_GONE),
    (errors.PERMANENT_CODES, Kind.PERMANENT),
    (errors.TRANSIENT_CODES, Kind.TRANSIENT),
]
EVERY_CODE = [(code, kind) for codes, kind in CODE_SETS for code in sorted(codes)]


def test_the_code_sets_do_not_overlap() -> None:
    seen: set[str] = set()
    for codes, _ in CODE_SETS:
        assert not (seen & codes), seen & codes
        seen |= codes


@pytest.mark.parametrize(("code", "kind"), EVERY_CODE)
@pytest.mark.parametrize("status", [None, 200, 404, 429])
def test_a_known_code_decides_whatever_the_status(
    code: str, kind: Kind, status: int | None
) -> None:
    assert errors.classify(code, status) is kind


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        # Monday's error codes, by name
        ("COMPLEXITY_BUDGET_EXHAUSTED", Kind.RATE_LIMITED),
        ("ComplexityException", Kind.RATE_LIMITED),
        ("maxConcurrencyExceeded", Kind.RATE_LIMITED),
        ("IP_RATE_LIMIT_EXCEEDED", Kind.RATE_LIMITED),
        ("FIELD_LIMIT_EXCEEDED", Kind.RATE_LIMITED),
        ("IDEMPOTENCY_CONFLICT", Kind.RATE_LIMITED),
        ("DAILY_LIMIT_EXCEEDED", Kind.BLOCKED),
        ("API_TEMPORARILY_BLOCKED", Kind.BLOCKED),
        ("USER_UNAUTHORIZED", Kind.BLOCKED),
        ("UserUnauthorizedException", Kind.BLOCKED),
        ("USER_ACCESS_DENIED", Kind.BLOCKED),
        ("ResourceNotFoundException", Kind.ITEM_GONE),
        ("InvalidItemIdException", Kind.ITEM_GONE),
        ("ItemNotFoundInBoard", Kind.ITEM_GONE),
        ("ColumnValueException", Kind.PERMANENT),
        ("CorrectedValueException", Kind.PERMANENT),
        ("InvalidColumnIdException", Kind.PERMANENT),
        ("InvalidBoardIdException", Kind.PERMANENT),
        ("ItemNameTooLongException", Kind.PERMANENT),
        ("ItemsLimitationException", Kind.PERMANENT),
        ("RecordInvalidException", Kind.PERMANENT),
        ("JsonParseException", Kind.PERMANENT),
        ("undefinedField", Kind.PERMANENT),
        ("INTERNAL_SERVER_ERROR", Kind.TRANSIENT),
        ("ResourceLocked", Kind.TRANSIENT),
    ],
)
def test_codes_named_in_monday_api_md(code: str, kind: Kind) -> None:
    assert errors.classify(code, None) is kind


@pytest.mark.parametrize(
    "code",
    sorted(
        {
            engine.PARSE_ERROR,
            engine.VALIDATION_FAILED,
            engine.INVALID_VARIABLES,
            *engine._RULE_CODES.values(),
        }
    ),
)
def test_documents_monday_cannot_parse_or_validate_are_permanent(code: str) -> None:
    # Every such code the emulator (like graphql-ruby) sends, on HTTP 200 without status_code.
    assert errors.classify(code, None) is Kind.PERMANENT


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, Kind.RATE_LIMITED),
        (409, Kind.RATE_LIMITED),
        (401, Kind.BLOCKED),
        (403, Kind.BLOCKED),
        (404, Kind.ITEM_GONE),
        (400, Kind.PERMANENT),
        (422, Kind.PERMANENT),
        (413, Kind.PERMANENT),
        (423, Kind.TRANSIENT),
        (408, Kind.TRANSIENT),
        (500, Kind.TRANSIENT),
        (502, Kind.TRANSIENT),
        (503, Kind.TRANSIENT),
        (504, Kind.TRANSIENT),
        (200, Kind.TRANSIENT),
        (None, Kind.TRANSIENT),
    ],
)
@pytest.mark.parametrize("code", [None, "SomethingNew"])
def test_without_a_known_code_the_status_decides(
    status: int | None, kind: Kind, code: str | None
) -> None:
    assert errors.classify(code, status) is kind


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        (Kind.TRANSIENT, errors.Transient),
        (Kind.RATE_LIMITED, errors.RateLimited),
        (Kind.PERMANENT, errors.Permanent),
        (Kind.ITEM_GONE, errors.ItemGone),
        (Kind.BLOCKED, errors.Blocked),
    ],
)
def test_each_kind_has_its_exception_type(kind: Kind, cls: type[errors.MondayError]) -> None:
    assert cls.kind is kind
    assert issubclass(cls, errors.MondayError)


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        ("COMPLEXITY_BUDGET_EXHAUSTED", None, errors.RateLimited),
        ("DAILY_LIMIT_EXCEEDED", 200, errors.Blocked),
        ("ColumnValueException", 200, errors.Permanent),
        ("ResourceNotFoundException", 404, errors.ItemGone),
        (None, 503, errors.Transient),
    ],
)
def test_make_builds_the_typed_exception(
    code: str | None, status: int | None, cls: type[errors.MondayError]
) -> None:
    exc = errors.make("boom", code=code, status=status, request_id="r-1", retry_after=2.5)
    assert type(exc) is cls
    assert (exc.message, exc.code, exc.status, exc.request_id, exc.retry_after) == (
        "boom",
        code,
        status,
        "r-1",
        2.5,
    )


def test_outcome_unknown_is_transient() -> None:
    exc = errors.OutcomeUnknown("no answer")
    assert isinstance(exc, errors.Transient)
    assert exc.kind is Kind.TRANSIENT


# --- str(MondayError) -------------------------------------------------------------------------


def test_str_has_message_code_http_status_and_request_id() -> None:
    exc = errors.RateLimited(
        "Complexity budget exhausted",
        code="COMPLEXITY_BUDGET_EXHAUSTED",
        status=429,
        request_id="8c1b6f0e-req",
        retry_after=30,
    )
    assert str(exc) == (
        "Complexity budget exhausted code=COMPLEXITY_BUDGET_EXHAUSTED http=429 "
        "request_id=8c1b6f0e-req"
    )


def test_str_leaves_out_what_is_unknown() -> None:
    assert str(errors.Transient("cannot connect")) == "cannot connect"
    assert str(errors.Transient("x", status=502)) == "x http=502"
    assert str(errors.Permanent("x", code="C")) == "x code=C"
    assert str(errors.Blocked("x", request_id="r")) == "x request_id=r"


# --- retry_after: retry_in_seconds, then Retry-After, then the largest RateLimit t= ----------

RATELIMIT = '"minuteRate";r=0;t=12, "concurrency";r=249, "complexityMinute";r=4950000;t=45'


@pytest.mark.parametrize(
    ("extensions", "headers", "wait"),
    [
        ({"retry_in_seconds": 60}, {"Retry-After": "5", "RateLimit": RATELIMIT}, 60.0),
        ({"retry_in_seconds": 0}, {"Retry-After": "5"}, 0.0),
        ({"retry_in_seconds": 1.5}, {}, 1.5),
        ({"code": "X"}, {"Retry-After": "5", "RateLimit": RATELIMIT}, 5.0),
        (None, {"Retry-After": "7"}, 7.0),
        (None, {"Retry-After": "2.5"}, 2.5),
        (None, {"Retry-After": "-3"}, 0.0),
        (None, {"RateLimit": RATELIMIT}, 45.0),
        (None, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT", "RateLimit": RATELIMIT}, 45.0),
        ({"retry_in_seconds": -1}, {"Retry-After": "9"}, 9.0),
        ({"retry_in_seconds": "60"}, {"Retry-After": "9"}, 9.0),
        (None, {"RateLimit": '"minuteRate";r=4999, "concurrency";r=249'}, None),
        (None, {"RateLimit": '"minuteRate";r=0;t=0'}, None),
        (None, {}, None),
        ({}, {"Retry-After": ""}, None),
    ],
)
def test_retry_after_preference(
    extensions: dict[str, object] | None, headers: dict[str, str], wait: float | None
) -> None:
    assert errors.retry_after(extensions, headers) == wait


# --- parse_ratelimit: Monday's RateLimit header ------------------------------------------------


def test_parse_ratelimit_of_the_documented_header() -> None:
    header = '"minuteRate";r=4999, "concurrency";r=249, "complexityMinute";r=4950000;t=45'
    assert errors.parse_ratelimit(header) == [
        errors.Limit("minuteRate", 4999.0, None),
        errors.Limit("concurrency", 249.0, None),
        errors.Limit("complexityMinute", 4950000.0, 45.0),
    ]


@pytest.mark.parametrize(
    ("header", "limits"),
    [
        ("", []),
        (" , ,", []),
        ('"minuteRate"', [errors.Limit("minuteRate", None, None)]),
        ('"minuteRate";r=abc;t=3', [errors.Limit("minuteRate", None, 3.0)]),
        ('"daily";r=0;t=3600;x=1', [errors.Limit("daily", 0.0, 3600.0)]),
        ("minuteRate;r=1", [errors.Limit("minuteRate", 1.0, None)]),
    ],
)
def test_parse_ratelimit_is_lenient(header: str, limits: list[errors.Limit]) -> None:
    assert errors.parse_ratelimit(header) == limits
