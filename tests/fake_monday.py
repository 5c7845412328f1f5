"""Monday faked at the HTTP boundary with aioresponses, for the client's unit tests.

aioresponses 0.7.9 builds `aiohttp.ClientResponse` without the `stream_writer` argument that
aiohttp 3.14 made required (pnuckowski/aioresponses#289, fix pending in #288); `mocked`
passes a stand-in until a release of aioresponses does.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from aioresponses import core as aioresponses_core

URL = "https://monday.test/v2"
API_KEY = "sk-live-THIS-MUST-NEVER-LEAK-0123456789"
VERSION = "2026-10"

_NEEDS_STREAM_WRITER = "stream_writer" in inspect.signature(aiohttp.ClientResponse).parameters


class _CompatResponse(aiohttp.ClientResponse):
    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


@dataclass(frozen=True)
class Sent:
    """One request as the client sent it."""

    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def query(self) -> str:
        return str(self.body["query"])

    @property
    def variables(self) -> dict[str, Any]:
        return dict(self.body["variables"])


def sent(mock: aioresponses) -> list[Sent]:
    """Every request made through `mock`, in order."""
    calls = [call for calls in mock.requests.values() for call in calls]
    return [Sent(dict(c.kwargs["headers"]), json.loads(c.kwargs["data"])) for c in calls]


@contextmanager
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    """aioresponses, working with the installed aiohttp (use in a fixture)."""
    if _NEEDS_STREAM_WRITER:
        monkeypatch.setattr(aioresponses_core, "ClientResponse", _CompatResponse)
    with aioresponses() as mock:
        yield mock
