"""Logging: one line per event, a stable event name plus fields.

Call sites log the event name as the message and the fields as `extra`:
`log.info("sync.batch", extra={"rows": 100})`. On a terminal the line is readable text; with
`--log-format json` (the default when stderr is not a terminal) it is one JSON object.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Literal

_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

Format = Literal["text", "json", "auto"]


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The event's own fields: whatever was passed as `extra`."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


def _timestamp(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={_text(v)}" for k, v in fields(record).items())
        line = f"{_timestamp(record)} {record.levelname:<7} {record.getMessage()}"
        if extra:
            line += "  " + extra
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
        }
        data.update(fields(record))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text


def setup(level: str = "INFO", fmt: Format = "auto") -> None:
    """Send npd-sync's log lines to stderr in the chosen format."""
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if fmt == "text" else JsonFormatter())
    root = logging.getLogger("npd_sync")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
