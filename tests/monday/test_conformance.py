"""Every document the Monday client can send is valid against monday.com's official schema
(shared/monday/schema-2026-10.graphql), and so are the variables it sends with them.

Without the official schema file these tests skip and say so; they never pass silently.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from aioresponses import aioresponses
from graphql import GraphQLSchema, OperationDefinitionNode, parse
from graphql.execution.values import get_variable_values
from pydantic import SecretStr

from emulator import OfficialSchemaMissing, conformance, validate_against_official
from listener.monday import api
from listener.monday.api import Archive, Create, Delete, Update
from tests.fake_monday import API_KEY, URL, VERSION, mocked, sent

BOARD = "1000000001"

OPS: dict[str, api.Op] = {
    "create": Create("1", "Ada Lovelace", {"text": "Countess", "npd_id": "1"}),
    "update": Update("2", "2000000002", {"name": "Grace", "long_text": None, "npd_id": "2"}),
    "archive": Archive("3", "2000000003"),
    "delete": Delete("4", "2000000004"),
}

# Every sequence of up to three op kinds: 4 + 16 + 64 batches.
BATCHES = [combo for size in (1, 2, 3) for combo in itertools.product(sorted(OPS), repeat=size)]


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    try:
        return conformance.official_schema()
    except OfficialSchemaMissing as exc:
        pytest.skip(f"cannot check conformance with monday.com's schema: {exc}")


def problems(schema: GraphQLSchema, document: str, variables: dict[str, Any]) -> list[str]:
    """What Monday would reject: the document itself, then the variables sent with it."""
    found = validate_against_official(document)
    if found:
        return found
    [operation] = [d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode)]
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
    return [e.message for e in coerced] if isinstance(coerced, list) else []


def test_validation_is_real(schema: GraphQLSchema) -> None:
    # Negative controls: a wrong argument, a missing variable, a wrongly typed variable.
    assert validate_against_official("mutation { create_item(board: 1) { id } }")
    assert validate_against_official("query { me { id no_such_field } }")
    assert problems(schema, api.LOOKUP_QUERY, {"b": "1", "c": "npd_id", "v": ["1"]})
    assert problems(schema, api.LOOKUP_QUERY, {"b": "1", "c": "x", "v": ["1"], "l": "500"})


@pytest.mark.parametrize("kinds", BATCHES, ids="+".join)
def test_every_mutation_batch_is_valid(schema: GraphQLSchema, kinds: tuple[str, ...]) -> None:
    document, variables = api.build_mutation(BOARD, [OPS[k] for k in kinds])
    assert problems(schema, document, variables) == []


def test_a_full_batch_is_valid(schema: GraphQLSchema) -> None:
    ops = [OPS[k] for k in sorted(OPS)] * 25  # 100 ops: the default batch_size
    document, variables = api.build_mutation(BOARD, ops)
    assert problems(schema, document, variables) == []


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        (api.LOOKUP_QUERY, {"b": BOARD, "c": "npd_id", "v": ["1", "2"], "l": 500}),
        (api.NEXT_PAGE_QUERY, {"cursor": "MSw5NzI4MjM", "c": "npd_id", "l": 500}),
        (api.ABOUT_QUERY, {}),
        (api.BOARDS_QUERY, {"ids": [BOARD, "1000000002"], "l": 2}),
        (api.CREATE_COLUMN, {"b": BOARD, "t": "npd_id", "y": "text"}),
        (api.ITEM_BOARDS_QUERY, {"ids": ["1", "2"], "l": 100}),
        (api.DAILY_QUERY, {}),
    ],
    ids=[
        "LOOKUP_QUERY",
        "NEXT_PAGE_QUERY",
        "ABOUT_QUERY",
        "BOARDS_QUERY",
        "CREATE_COLUMN",
        "ITEM_BOARDS_QUERY",
        "DAILY_QUERY",
    ],
)
def test_every_query_is_valid(
    schema: GraphQLSchema, document: str, variables: dict[str, Any]
) -> None:
    assert problems(schema, document, variables) == []


@pytest.fixture
def http(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    with mocked(monkeypatch) as mock:
        yield mock


async def test_what_the_client_actually_sends_is_valid(
    schema: GraphQLSchema, http: aioresponses
) -> None:
    # Whatever the code paths put on the wire, taken from the wire.
    item = {"id": "2000000001", "column_values": [{"text": "1"}]}
    http.post(URL, payload={"data": {"me": {"id": "1", "name": "n", "email": "e"}}})
    http.post(URL, payload={"data": {"items_page_by_column_values": {"cursor": "c1", "items": []}}})
    http.post(URL, payload={"data": {"next_items_page": {"cursor": None, "items": [item]}}})
    http.post(URL, payload={"data": {f"o{i}": {"id": str(i)} for i in range(4)}})
    http.post(URL, payload={"data": {"o0": {"id": "9"}, "o1": {"id": "8"}}})
    async with api.Client(url=URL, api_key=SecretStr(API_KEY), version=VERSION) as client:
        await api.about(client)
        first, _ = await api.find_items(client, BOARD, "npd_id", ["1", "2"])
        assert first.cursor is not None
        second, _ = await api.find_items(client, BOARD, "npd_id", ["1", "2"], first.cursor)
        assert (first.found, second.found, second.cursor) == ({}, {"1": ["2000000001"]}, None)
        await api.mutate(client, BOARD, list(OPS.values()))
        await api.mutate(client, BOARD, [OPS["archive"], OPS["delete"]])
    requests = sent(http)
    assert len(requests) == 5
    for request in requests:
        assert problems(schema, request.query, request.variables) == [], request.query


async def test_what_check_sends_is_valid(schema: GraphQLSchema, http: aioresponses) -> None:
    # api.about and api.boards (npd-sync check), taken from the wire; 150 boards take
    # two requests.
    http.post(
        URL,
        payload={"data": {"me": {"id": "1", "name": "n", "email": "e"},
                          "version": {"value": "2026-07", "kind": "maintenance"}}},
        headers={"API-Version": "2026-07"},
    )  # fmt: skip
    column = {"id": "email", "title": "E-mail", "type": "email", "archived": False}
    first = [{"id": str(i), "name": f"b{i}", "state": "active", "columns": [column]}
             for i in range(100)]  # fmt: skip
    http.post(URL, payload={"data": {"boards": first}})
    http.post(URL, payload={"data": {"boards": [{"id": "120", "name": "x", "state": "archived"}]}})
    async with api.Client(url=URL, api_key=SecretStr(API_KEY), version=VERSION) as client:
        about, _ = await api.about(client)
        ids = [str(i) for i in range(150)]
        found: dict[str, api.BoardInfo] = {}
        for start in range(0, len(ids), api.BOARDS_PAGE):  # a request a page, as check does
            page, _ = await api.boards(client, ids[start : start + api.BOARDS_PAGE])
            found.update(page)
    assert (about.served_version, about.version_kind, about.user["name"]) == (
        "2026-07", "maintenance", "n",
    )  # fmt: skip
    assert len(found) == 101
    assert found["7"].columns["email"] == api.BoardColumn("email", "E-mail", "email", False)
    assert (found["120"].state, found["120"].columns) == ("archived", {})
    requests = sent(http)
    assert [len(r.variables.get("ids", [])) for r in requests] == [0, 100, 50]
    for request in requests:
        assert problems(schema, request.query, request.variables) == [], request.query
