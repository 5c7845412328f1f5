"""Test helpers: board ids, a small HTTP client for the emulator, and its replies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from emulator import Emulator
from listener import mapping

TOKEN = "test-token"
CONTACTS = "1000000001"
ORGANIZATIONS = "1000000002"
THINGS = "1000000003"

# A third board with one column of every type the emulator implements.
THINGS_TABLE = mapping.TableMapping(
    table="things", columns=tuple(mapping.Column(t, t, (t,)) for t in mapping.COLUMN_TYPES)
)
TABLES = (*mapping.default_mappings(), THINGS_TABLE)


@dataclass
class Reply:
    """One HTTP answer from the emulator."""

    status: int
    headers: Mapping[str, str]  # case-insensitive (aiohttp's CIMultiDictProxy)
    body: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.body.get("errors", []))

    @property
    def codes(self) -> list[str]:
        return [e["extensions"]["code"] for e in self.errors]

    def error(self) -> dict[str, Any]:
        """The single error of the reply."""
        assert len(self.errors) == 1, self.body
        return self.errors[0]


class Api:
    """A thin client: POST a document with variables and headers, get a Reply."""

    def __init__(self, session: aiohttp.ClientSession, emu: Emulator) -> None:
        self.session = session
        self.emu = emu

    async def post(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        token: str | None = TOKEN,
        version: str | None = "2026-10",
        key: str | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Reply:
        headers = {}
        if token is not None:
            headers["Authorization"] = token
        if version is not None:
            headers["API-Version"] = version
        if key is not None:
            headers["Idempotency-Key"] = key
        payload = {"query": query, "variables": dict(variables or {})} if body is None else body
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
        client_timeout = aiohttp.ClientTimeout(total=timeout) if timeout else None
        async with self.session.post(
            self.emu.url, data=data, headers=headers, timeout=client_timeout
        ) as response:
            return Reply(response.status, response.headers, await response.json())

    async def control(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        url = f"{self.emu.base_url}/control/{path}"
        async with self.session.request(method, url, json=payload) as response:
            return response.status, await response.json()


def values(**columns: Any) -> str:
    """column_values as Monday wants them: a JSON-encoded string."""
    return json.dumps(columns)


# The document shapes the listener sends: a mixed mutation batch, and the npd_id lookup.
MUTATION = (
    "mutation ($b: ID!, $n0: String!, $v0: JSON, $i1: ID, $v1: JSON!, $i2: ID) {"
    " c0: create_item(board_id: $b, item_name: $n0, column_values: $v0) { id }"
    " u1: change_multiple_column_values(board_id: $b, item_id: $i1, column_values: $v1) { id }"
    " a2: archive_item(item_id: $i2) { id }"
    " complexity { query before after reset_in_x_seconds } }"
)
LOOKUP = (
    "query ($b: ID!, $c: String!, $v: [String]!) {"
    " items_page_by_column_values(board_id: $b, limit: 500,"
    " columns: [{column_id: $c, column_values: $v}]) {"
    " cursor items { id name column_values(ids: [$c]) { id text } } } }"
)
