"""listener.fault: an entry's last error, who said it, its stored form and the one formatter
that the CLI and the console show it with. Pure: no database, no network."""

from __future__ import annotations

import asyncpg
import pytest

from listener import fault
from listener.monday import errors

FULL = fault.Fault("monday", "invalid value", "ColumnValueException", 200, "abc-1")


@pytest.mark.parametrize(
    ("exc", "source"),
    [
        # an answer came: Monday said it (its status, or its request id on a 200)
        (errors.Permanent("invalid value", code="ColumnValueException", status=200,
                          request_id="abc-1"), "monday"),
        (errors.Permanent("bad", code="ColumnValueException", request_id="abc-2"), "monday"),
        (errors.Transient("HTTP 502 without data", status=502), "monday"),
        # no answer, or npd-sync held the request back itself: npd-sync said it
        (errors.Transient("cannot connect to Monday: refused"), "npd-sync"),
        (errors.OutcomeUnknown("no answer within 65s"), "npd-sync"),
        (errors.RateLimited("board busy with another listener", code="BOARD_BUSY",
                            retry_after=1.0), "npd-sync"),
    ],
)  # fmt: skip
def test_who_said_an_error_met_on_the_way_to_monday(
    exc: errors.MondayError, source: fault.Source
) -> None:
    found = fault.from_monday(exc)
    assert found.source == source
    assert (found.message, found.code, found.http, found.request_id) == (
        exc.message, exc.code, exc.status, exc.request_id,
    )  # fmt: skip
    # On one line it reads as it always did (the row's sync_error, status --json's error).
    assert fault.line(found) == str(exc)


def test_the_database_says_its_sqlstate() -> None:
    exc = asyncpg.CheckViolationError('violates check constraint "c"')
    assert fault.from_database(exc) == fault.Fault(
        "database", 'violates check constraint "c"', "23514"
    )
    assert fault.from_database(exc, "cannot insert a row for item 5").message == (
        'cannot insert a row for item 5: violates check constraint "c"'
    )


def test_reasons_added_to_a_fault_keep_who_said_it() -> None:
    assert fault.gave_up(FULL, 3) == fault.Fault(
        "monday", "gave up after 3 attempts: invalid value", "ColumnValueException", 200, "abc-1"
    )
    assert fault.also(FULL, "write-back refused: x").message == (
        "invalid value; write-back refused: x"
    )
    assert fault.ours("row busy") == fault.Fault("npd-sync", "row busy")


@pytest.mark.parametrize(
    "value",
    [FULL, fault.ours('a "quoted" reason\nover two lines'), fault.Fault("database", "x", "23514")],
)
def test_the_stored_form_reads_back_as_written(value: fault.Fault) -> None:
    assert fault.from_json(value.to_json()) == value


def test_the_stored_form_holds_no_nul() -> None:
    # PostgreSQL's jsonb cannot hold NUL: one such message must not fail a batch.
    stored = fault.Fault("monday", "bad\x00value", "C\x00", None, "r\x00").to_json()
    assert "\\u0000" not in stored
    assert fault.from_json(stored) == fault.Fault("monday", "badvalue", "C", None, "r")


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        (None, None),
        # keys it does not know, and values of the wrong type, read as missing
        ('{"source": "monday", "message": "m", "http": "500", "code": 7, "later": 1}',
         fault.Fault("monday", "m")),
        ('{"source": "someone", "message": "m", "http": true}', fault.Fault("npd-sync", "m")),
        ('"just text"', fault.Fault("npd-sync", "just text")),
    ],
)  # fmt: skip
def test_what_another_version_stored_still_reads(
    stored: str | None, read: fault.Fault | None
) -> None:
    assert fault.from_json(stored) == read


@pytest.mark.parametrize(
    ("value", "headline", "details", "line"),
    [
        (FULL, "ColumnValueException: invalid value",
         "from Monday · code ColumnValueException · HTTP 200 · request abc-1",
         "invalid value code=ColumnValueException http=200 request_id=abc-1"),
        (fault.Fault("monday", "HTTP 500 without data", http=500, request_id="r"),
         "HTTP 500 without data", "from Monday · HTTP 500 · request r",
         "HTTP 500 without data http=500 request_id=r"),
        (fault.ours("gave up after 3 attempts: boom"), "gave up after 3 attempts: boom",
         "from npd-sync", "gave up after 3 attempts: boom"),
        (fault.Fault("database", "write-back refused: c", "23514"),
         "23514: write-back refused: c", "from the database · code 23514",
         "write-back refused: c code=23514"),
    ],
)  # fmt: skip
def test_the_one_formatter(value: fault.Fault, headline: str, details: str, line: str) -> None:
    assert (fault.headline(value), fault.details(value), fault.line(value)) == (
        headline, details, line,
    )  # fmt: skip


def test_no_secret_survives_redaction() -> None:
    echoed = fault.Fault("monday", "token s3cret refused", "s3cret", 401, "r-s3cret")
    shown = fault.redacted(echoed, ["s3cret"])
    assert "s3cret" not in repr(shown)
    assert shown == fault.Fault(
        "monday", "token [redacted] refused", "[redacted]", 401, "r-[redacted]"
    )
