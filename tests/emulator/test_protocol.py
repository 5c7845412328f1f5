"""The HTTP side of /v2: token, API-Version, body format, errors, request ids."""

from __future__ import annotations

import json

import pytest

from emulator import Emulator, engine

from .helpers import CONTACTS, Api

ME = "query { me { id name email } }"


async def test_a_good_request_gets_data_request_id_and_headers(api: Api) -> None:
    reply = await api.post(ME)
    assert reply.status == 200
    assert reply.data == {
        "me": {"id": "1", "name": "Emulator User", "email": "emulator@example.com"}
    }
    assert "errors" not in reply.body
    request_id = reply.body["extensions"]["request_id"]
    assert reply.headers["X-Request-Id"] == request_id
    assert reply.headers["API-Version"] == "2026-10"
    assert reply.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("token", [None, "wrong", "Bearer test-token", "test-token2"])
async def test_anything_but_the_raw_token_gets_401(api: Api, token: str | None) -> None:
    reply = await api.post(ME, token=token)
    assert reply.status == 401
    assert reply.body["errors"] == [
        {"message": "Unauthorized", "extensions": {"code": "UNAUTHORIZED", "status_code": 401}}
    ]
    assert reply.body["extensions"]["request_id"]
    assert "RateLimit" in reply.headers


async def test_extra_tokens_are_accepted(api: Api) -> None:
    assert (await api.post(ME, token="other-token")).status == 200


@pytest.mark.parametrize(
    ("sent", "served"),
    [
        (None, "2026-10"),  # no header: Current
        ("2026-07", "2026-07"),
        ("2025-04", "2025-04"),
        ("2027-01", "2027-01"),
        ("2024-02", "2026-10"),  # a name that does not exist: Current
        ("2024-10", "2026-07"),  # deprecated: served by Maintenance
    ],
)
async def test_api_version_is_recorded_and_echoed(
    api: Api, emu: Emulator, sent: str | None, served: str
) -> None:
    reply = await api.post("query { version { value kind } }", version=sent)
    assert reply.headers["API-Version"] == served
    assert reply.data["version"]["value"] == served
    record = emu.requests[-1]
    assert (record.api_version, record.served_version) == (sent, served)


async def test_a_malformed_version_is_invalid_version_exception(api: Api) -> None:
    reply = await api.post(ME, version="2023")
    assert reply.status == 200
    assert "data" not in reply.body
    assert reply.codes == ["InvalidVersionException"]


async def test_versions_lists_the_served_versions(api: Api) -> None:
    reply = await api.post("query { versions { value kind } }")
    kinds = {v["value"]: v["kind"] for v in reply.data["versions"]}
    assert kinds["2026-10"] == "current"
    assert kinds["2026-07"] == "maintenance"
    assert kinds["2027-01"] == "release_candidate"


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"{not json", "JsonParseException", "not valid JSON"),
        ([1, 2], "BAD_REQUEST", "must be a JSON object"),
        ({"variables": {}}, "BAD_REQUEST", "'query' string"),
        ({"query": ME, "variables": "{}"}, "BAD_REQUEST", "'variables' must be a JSON object"),
        ({"query": ME, "operationName": 5}, "BAD_REQUEST", "'operationName'"),
    ],
)
async def test_a_malformed_body_is_400(api: Api, body: object, code: str, message: str) -> None:
    reply = await api.post("", body=body)
    assert reply.status == 400
    error = reply.error()
    assert error["extensions"] == {"code": code, "status_code": 400}
    assert message in error["message"]


async def test_a_parse_error_is_200_with_its_location(api: Api) -> None:
    reply = await api.post("query { me { id }")
    assert reply.status == 200
    assert "data" not in reply.body
    error = reply.error()
    assert error["extensions"]["code"] == "PARSE_ERROR"
    assert error["locations"] == [{"line": 1, "column": 18}]


async def test_validation_errors_carry_graphql_ruby_codes(api: Api) -> None:
    reply = await api.post("query { boards { pos } me(x: 1) { id } }")
    assert reply.status == 200
    assert "data" not in reply.body
    assert sorted(reply.codes) == ["argumentNotAccepted", "undefinedField"]
    assert all(e["locations"] for e in reply.errors)


async def test_bad_variables_give_no_data(api: Api) -> None:
    reply = await api.post("query ($b: ID!) { boards(ids: [$b]) { id } }", {})
    assert reply.status == 200
    assert "data" not in reply.body
    assert reply.codes == ["INVALID_VARIABLES"]


async def test_operation_name_picks_the_operation(api: Api) -> None:
    document = "query A { me { id } } query B { version { value } }"
    reply = await api.post("", body={"query": document, "operationName": "B"})
    assert reply.data == {"version": {"value": "2026-10"}}
    reply = await api.post("", body={"query": document})
    assert reply.codes == ["BAD_REQUEST"]


async def test_only_post_is_served(api: Api) -> None:
    async with api.session.get(api.emu.url) as response:
        assert response.status == 405


def test_documents_are_parsed_and_validated_once_per_text() -> None:
    document = f"query {{ boards(ids: [{CONTACTS}]) {{ id name }} }}"
    assert engine.prepare(document, None) is engine.prepare(document, None)
    again = engine.prepare(document + " ", None)
    assert again is not engine.prepare(document, None)


async def test_an_emulator_bug_is_an_internal_error_not_a_crash(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(engine.SCHEMA.query_type.fields["me"], "resolve", broken)  # type: ignore[union-attr]
    reply = await api.post(ME)
    assert reply.status == 200
    assert reply.data == {"me": None}
    assert reply.error()["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "status_code": 500}
    assert reply.error()["path"] == ["me"]


async def test_responses_are_compact_json(api: Api) -> None:
    async with api.session.post(
        api.emu.url,
        data=json.dumps({"query": ME}),
        headers={"Authorization": "test-token"},
    ) as response:
        assert b": " not in await response.read()


def test_document_cache_is_bounded_by_entries_and_by_size() -> None:
    cache = engine.DocumentCache(max_entries=2, max_chars=10)
    plan = engine.prepare("query { me { id } }", None)
    for text in ("aaa", "bbb", "ccc"):
        cache.put((text, None), plan)
    assert len(cache) == 2
    assert cache.get(("aaa", None)) is None
    assert cache.get(("bbb", None)) is plan  # now the most recent
    cache.put(("dddddddd", None), plan)  # 3 + 3 + 8 characters > 10
    assert cache.get(("ccc", None)) is None
    assert cache.get(("bbb", None)) is None
    assert cache.get(("dddddddd", None)) is plan
    cache.put(("x" * 11, None), plan)  # larger than the whole cache: not kept
    assert cache.get(("x" * 11, None)) is None
