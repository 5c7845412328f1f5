"""Items through the API: create, change, archive, delete, look up, page, errors."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from emulator import Emulator

from .helpers import CONTACTS, LOOKUP, MUTATION, ORGANIZATIONS, THINGS, Api, Reply, values

CREATE = (
    "mutation ($b: ID!, $n: String!, $v: JSON, $l: Boolean) {"
    " create_item(board_id: $b, item_name: $n, column_values: $v,"
    " create_labels_if_missing: $l) { id name state } }"
)
CHANGE = (
    "mutation ($b: ID!, $i: ID, $v: JSON!, $l: Boolean) {"
    " change_multiple_column_values(board_id: $b, item_id: $i, column_values: $v,"
    " create_labels_if_missing: $l) { id name } }"
)
ITEMS = (
    "query ($ids: [ID!], $limit: Int) { items(ids: $ids, limit: $limit) {"
    " id name state board { id } column_values { id type text value } } }"
)


async def create(api: Api, name: str = "Ada Lovelace", board: str = CONTACTS, **cols: Any) -> str:
    reply = await api.post(CREATE, {"b": board, "n": name, "v": values(**cols)})
    assert reply.errors == [], reply.body
    item_id: str = reply.data["create_item"]["id"]
    return item_id


async def test_create_item_stores_monday_json(api: Api, emu: Emulator) -> None:
    item_id = await create(
        api,
        email={"email": "ada@example.com", "text": "ada@example.com"},
        phone={"phone": "+442079460958", "countryShortName": "GB"},
        text="Countess",
        long_text={"text": "notes"},
        npd_id="17",
    )
    assert item_id == "2000000001"
    [item] = emu.items(CONTACTS)
    assert (item.id, item.name, item.state, item.board_id) == (
        item_id,
        "Ada Lovelace",
        "active",
        CONTACTS,
    )
    assert item.values == {
        "email": {"email": "ada@example.com", "text": "ada@example.com"},
        "phone": {"phone": "+442079460958", "countryShortName": "GB"},
        "text": "Countess",
        "long_text": {"text": "notes"},
        "npd_id": "17",
    }


async def test_item_ids_are_increasing_numeric_strings(api: Api) -> None:
    ids = [await create(api, f"n{i}") for i in range(3)]
    assert ids == ["2000000001", "2000000002", "2000000003"]


async def test_items_query_renders_column_values(api: Api) -> None:
    item_id = await create(
        api, board=THINGS, link={"url": "https://x.com", "text": "X"}, status={"label": "Done"}
    )
    reply = await api.post(ITEMS, {"ids": [item_id]})
    [item] = reply.data["items"]
    assert item["board"] == {"id": THINGS}
    cells = {c["id"]: c for c in item["column_values"]}
    assert "name" not in cells
    assert cells["link"] == {
        "id": "link",
        "type": "link",
        "text": "X - https://x.com",
        "value": json.dumps({"url": "https://x.com", "text": "X"}),
    }
    assert cells["status"]["text"] == "Done"
    assert cells["email"] == {"id": "email", "type": "email", "text": "", "value": None}


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("email", {"email": "nope", "text": "nope"}, "not a valid email"),
        ("email", {"email": "a@b.com"}, "text must be a string"),
        ("phone", {"phone": "+12025550169", "countryShortName": "GB"}, "not a valid GB number"),
        ("phone", {"phone": "+12025550169", "countryShortName": "us"}, "uppercase ISO"),
        ("text", 12, "must be a string"),
        ("long_text", {"text": "x" * 2001}, "longer than 2000"),
        ("numbers", "twelve", "number"),
        ("date", {"date": "2026-13-01"}, "YYYY-MM-DD"),
        ("link", {"url": "ftp://x.com", "text": "X"}, "http"),
        ("status", {"label": "Nope"}, "label does not exist"),
        ("dropdown", {"labels": ["Nope"]}, "label does not exist"),
    ],
)
async def test_each_bad_value_is_a_column_value_exception(
    api: Api, emu: Emulator, column: str, value: Any, reason: str
) -> None:
    reply = await api.post(CREATE, {"b": THINGS, "n": "x", "v": values(**{column: value})})
    assert reply.status == 200
    assert reply.data == {"create_item": None}
    error = reply.error()
    assert error["path"] == ["create_item"]
    assert error["locations"]
    assert error["extensions"] == {
        "code": "ColumnValueException",
        "status_code": 200,
        "error_data": {"column_type": column, "column_id": column},
    }
    assert reason in error["message"]
    assert emu.items(THINGS) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [("{not json", "not valid JSON"), ('["a"]', "JSON object"), ({"text": "x"}, "JSON-encoded")],
)
async def test_column_values_must_be_a_json_string_of_an_object(
    api: Api, raw: Any, message: str
) -> None:
    reply = await api.post(CREATE, {"b": CONTACTS, "n": "x", "v": raw})
    assert reply.codes == ["JsonParseException"]
    assert message in reply.error()["message"]


@pytest.mark.parametrize("name", ["", "x" * 256])
async def test_item_name_must_have_1_to_255_characters(api: Api, emu: Emulator, name: str) -> None:
    reply = await api.post(CREATE, {"b": CONTACTS, "n": name})
    assert reply.codes == ["ItemNameTooLongException"]
    assert emu.items() == []
    assert (await api.post(CREATE, {"b": CONTACTS, "n": "x" * 255})).errors == []


async def test_unknown_board_column_and_item(api: Api) -> None:
    reply = await api.post(CREATE, {"b": "999", "n": "x"})
    assert reply.codes == ["InvalidBoardIdException"]
    assert reply.error()["extensions"]["error_data"] == {"board_id": "999"}

    reply = await api.post(CREATE, {"b": CONTACTS, "n": "x", "v": values(status={"label": "x"})})
    assert reply.codes == ["InvalidColumnIdException"]
    assert reply.error()["extensions"]["error_data"] == {
        "column_id": "status",
        "board_id": CONTACTS,
    }

    reply = await api.post(CHANGE, {"b": CONTACTS, "i": "2000000999", "v": values(text="x")})
    assert reply.codes == ["ResourceNotFoundException"]
    assert reply.error()["extensions"]["status_code"] == 404
    assert reply.data == {"change_multiple_column_values": None}


async def test_deleted_items_and_items_of_another_board_are_not_found(api: Api) -> None:
    deleted = await create(api, "gone")
    assert (await api.post(f"mutation {{ delete_item(item_id: {deleted}) {{ state }} }}")).data == {
        "delete_item": {"state": "deleted"}
    }
    for mutation in (
        f"mutation {{ archive_item(item_id: {deleted}) {{ id }} }}",
        f"mutation {{ delete_item(item_id: {deleted}) {{ id }} }}",
    ):
        assert (await api.post(mutation)).codes == ["ResourceNotFoundException"]
    reply = await api.post(CHANGE, {"b": CONTACTS, "i": deleted, "v": values(text="x")})
    assert reply.codes == ["ResourceNotFoundException"]

    organization = await create(api, "Acme", board=ORGANIZATIONS)
    reply = await api.post(CHANGE, {"b": CONTACTS, "i": organization, "v": values(text="x")})
    assert reply.codes == ["ResourceNotFoundException"]
    assert "not found in board" in reply.error()["message"]


async def test_item_id_is_required_although_nullable(api: Api) -> None:
    reply = await api.post(CHANGE, {"b": CONTACTS, "v": values(text="x")})
    assert reply.codes == ["InvalidArgumentException"]


async def test_change_sets_renames_and_null_clears(api: Api, emu: Emulator) -> None:
    item_id = await create(api, text="old", long_text={"text": "keep"}, npd_id="1")
    reply = await api.post(
        CHANGE, {"b": CONTACTS, "i": item_id, "v": values(name="New Name", text=None, npd_id="2")}
    )
    assert reply.data == {"change_multiple_column_values": {"id": item_id, "name": "New Name"}}
    item = emu.item(item_id)
    assert item is not None
    assert item.name == "New Name"
    assert item.values == {"long_text": {"text": "keep"}, "npd_id": "2"}


async def test_a_bad_value_changes_nothing_of_that_mutation(api: Api, emu: Emulator) -> None:
    item_id = await create(api, text="old")
    bad = values(text="new", email={"email": "nope", "text": ""})
    reply = await api.post(CHANGE, {"b": CONTACTS, "i": item_id, "v": bad})
    assert reply.codes == ["ColumnValueException"]
    assert emu.items()[0].values == {"text": "old"}


async def test_rename_to_a_too_long_name_is_refused(api: Api) -> None:
    item_id = await create(api)
    reply = await api.post(CHANGE, {"b": CONTACTS, "i": item_id, "v": values(name="x" * 256)})
    assert reply.codes == ["ItemNameTooLongException"]


async def test_aliases_fail_one_by_one_with_partial_data(api: Api, emu: Emulator) -> None:
    document = (
        "mutation ($b: ID!, $v0: JSON, $v1: JSON, $v2: JSON) {"
        ' c0: create_item(board_id: $b, item_name: "a", column_values: $v0) { id }'
        ' c1: create_item(board_id: $b, item_name: "b", column_values: $v1) { id }'
        ' c2: create_item(board_id: $b, item_name: "c", column_values: $v2) { id } }'
    )
    reply = await api.post(
        document,
        {
            "b": CONTACTS,
            "v0": values(npd_id="0"),
            "v1": values(email="bad"),
            "v2": values(npd_id="2"),
        },
    )
    assert reply.status == 200
    assert reply.data == {"c0": {"id": "2000000001"}, "c1": None, "c2": {"id": "2000000002"}}
    assert reply.error()["path"] == ["c1"]
    assert [i.values["npd_id"] for i in emu.items()] == ["0", "2"]


async def test_the_listeners_batch_mutation(api: Api, emu: Emulator) -> None:
    first = await create(api, "First", npd_id="1")
    second = await create(api, "Second", npd_id="2")
    reply = await api.post(
        MUTATION,
        {
            "b": CONTACTS,
            "n0": "Third",
            "v0": values(npd_id="3", text="new"),
            "i1": first,
            "v1": values(text="changed"),
            "i2": second,
        },
    )
    assert reply.errors == []
    assert reply.data["c0"] == {"id": "2000000003"}
    assert reply.data["u1"] == {"id": first}
    assert reply.data["a2"] == {"id": second}
    assert reply.data["complexity"]["query"] == 3 * 30_001  # 30,000 a mutation, 1 its id
    assert [(i.name, i.state) for i in emu.items()] == [
        ("First", "active"),
        ("Second", "archived"),
        ("Third", "active"),
    ]


async def lookup(api: Api, column: str, wanted: list[str], board: str = CONTACTS) -> Reply:
    return await api.post(LOOKUP, {"b": board, "c": column, "v": wanted})


async def test_the_listeners_lookup_finds_active_items_only(api: Api) -> None:
    ids = [await create(api, f"n{i}", npd_id=str(i)) for i in range(4)]
    await api.post(f"mutation {{ archive_item(item_id: {ids[1]}) {{ id }} }}")
    await api.post(f"mutation {{ delete_item(item_id: {ids[2]}) {{ id }} }}")
    reply = await lookup(api, "npd_id", ["0", "1", "2", "3", "99"])
    page = reply.data["items_page_by_column_values"]
    assert page["cursor"] is None
    assert page["items"] == [
        {"id": ids[0], "name": "n0", "column_values": [{"id": "npd_id", "text": "0"}]},
        {"id": ids[3], "name": "n3", "column_values": [{"id": "npd_id", "text": "3"}]},
    ]


async def test_lookup_index_follows_changes(api: Api) -> None:
    item_id = await create(api, npd_id="1")
    assert (
        len((await lookup(api, "npd_id", ["1"])).data["items_page_by_column_values"]["items"]) == 1
    )
    await api.post(CHANGE, {"b": CONTACTS, "i": item_id, "v": values(npd_id="2")})
    assert (await lookup(api, "npd_id", ["1"])).data["items_page_by_column_values"]["items"] == []
    found = (await lookup(api, "npd_id", ["2"])).data["items_page_by_column_values"]["items"]
    assert [i["id"] for i in found] == [item_id]


async def test_lookup_matches_text_case_insensitively_and_email_exactly(api: Api) -> None:
    item_id = await create(api, "Ada", text="Countess", email={"email": "Ada@x.com", "text": ""})
    assert (await lookup(api, "text", ["COUNTESS"])).data["items_page_by_column_values"]["items"]
    assert (await lookup(api, "name", ["ada"])).data["items_page_by_column_values"]["items"]
    assert not (await lookup(api, "email", ["ada@x.com"])).data["items_page_by_column_values"][
        "items"
    ]
    found = (await lookup(api, "email", ["Ada@x.com"])).data["items_page_by_column_values"]["items"]
    assert [i["id"] for i in found] == [item_id]


async def test_lookup_columns_are_anded(api: Api) -> None:
    await create(api, "a", npd_id="1", text="x")
    both = await create(api, "b", npd_id="2", text="y")
    document = (
        "query ($b: ID!) { items_page_by_column_values(board_id: $b, limit: 10, columns: ["
        '{column_id: "npd_id", column_values: ["1", "2"]},'
        ' {column_id: "text", column_values: ["y"]}'
        "]) { items { id } } }"
    )
    reply = await api.post(document, {"b": CONTACTS})
    assert reply.data["items_page_by_column_values"]["items"] == [{"id": both}]


async def test_lookup_errors(api: Api) -> None:
    assert (await lookup(api, "nope", ["1"])).codes == ["InvalidColumnIdException"]
    reply = await lookup(api, "npd_id", ["1"], board="42")
    assert reply.codes == ["InvalidBoardIdException"]
    assert reply.data is None  # ItemsResponse! is non-null: the error reaches the root
    too_many = LOOKUP.replace("limit: 500", "limit: 501")
    reply = await api.post(too_many, {"b": CONTACTS, "c": "npd_id", "v": ["1"]})
    assert reply.codes == ["InvalidArgumentException"]


async def test_pages_follow_cursors(api: Api) -> None:
    ids = [await create(api, f"n{i}", text="same") for i in range(5)]
    first = await api.post(
        "query ($b: ID!) { items_page_by_column_values(board_id: $b, limit: 2,"
        ' columns: [{column_id: "text", column_values: ["same"]}]) { cursor items { id } } }',
        {"b": CONTACTS},
    )
    page = first.data["items_page_by_column_values"]
    seen = [i["id"] for i in page["items"]]
    cursor = page["cursor"]
    while cursor is not None:
        reply = await api.post(
            "query ($c: String!) { next_items_page(cursor: $c, limit: 2) { cursor items { id } } }",
            {"c": cursor},
        )
        seen += [i["id"] for i in reply.data["next_items_page"]["items"]]
        cursor = reply.data["next_items_page"]["cursor"]
    assert seen == ids

    board_page = await api.post(
        "query ($b: [ID!]) { boards(ids: $b) {"
        " items_count items_page(limit: 3) { cursor items { id } } } }",
        {"b": [CONTACTS]},
    )
    [board] = board_page.data["boards"]
    assert board["items_count"] == 5
    assert [i["id"] for i in board["items_page"]["items"]] == ids[:3]
    assert board["items_page"]["cursor"]

    both = await api.post(
        'query { items_page_by_column_values(board_id: 1, limit: 2, cursor: "x",'
        ' columns: [{column_id: "text", column_values: ["same"]}]) { cursor } }'
    )
    assert both.codes == ["InvalidArgumentException"]
    stale = await api.post('query { next_items_page(cursor: "nope", limit: 2) { cursor } }')
    assert stale.codes == ["InvalidArgumentException"]


async def test_items_query_returns_25_unless_told_otherwise(api: Api) -> None:
    ids = [await create(api, f"n{i}") for i in range(30)]
    reply = await api.post(ITEMS, {"ids": ids})
    assert len(reply.data["items"]) == 25
    reply = await api.post(ITEMS, {"ids": ids, "limit": 100})
    assert len(reply.data["items"]) == 30


async def test_items_query_shows_every_state(api: Api) -> None:
    archived = await create(api, "a")
    deleted = await create(api, "d")
    await api.post(f"mutation {{ archive_item(item_id: {archived}) {{ id }} }}")
    await api.post(f"mutation {{ delete_item(item_id: {deleted}) {{ id }} }}")
    reply = await api.post(ITEMS, {"ids": [archived, deleted, "2000000999"]})
    assert [(i["id"], i["state"]) for i in reply.data["items"]] == [
        (archived, "archived"),
        (deleted, "deleted"),
    ]


async def test_simple_and_single_column_changes(api: Api, emu: Emulator) -> None:
    item_id = await create(api, board=THINGS)
    simple = (
        "mutation ($b: ID!, $i: ID, $c: String!, $v: String) {"
        " change_simple_column_value(board_id: $b, item_id: $i, column_id: $c, value: $v) { id } }"
    )
    for column, value in [
        ("email", "a@b.com Main"),
        ("phone", "+12025550169 US"),
        ("status", "Stuck"),
        ("name", "Renamed"),
    ]:
        reply = await api.post(simple, {"b": THINGS, "i": item_id, "c": column, "v": value})
        assert reply.errors == [], reply.body
    reply = await api.post(simple, {"b": THINGS, "i": item_id, "c": "status", "v": "Nope"})
    assert reply.codes == ["ColumnValueException"]
    single = (
        "mutation ($b: ID!, $i: ID, $v: JSON!) { change_column_value(board_id: $b, item_id: $i,"
        ' column_id: "date", value: $v) { id } }'
    )
    reply = await api.post(
        single, {"b": THINGS, "i": item_id, "v": json.dumps({"date": "2026-01-02"})}
    )
    assert reply.errors == []
    item = emu.item(item_id)
    assert item is not None
    assert item.name == "Renamed"
    assert item.values == {
        "email": {"email": "a@b.com", "text": "Main"},
        "phone": {"phone": "+12025550169", "countryShortName": "US"},
        "status": {"index": 2},
        "date": {"date": "2026-01-02"},
    }


async def test_create_labels_if_missing(api: Api, emu: Emulator) -> None:
    v = values(status={"label": "Blocked"}, dropdown={"labels": ["red", "blue"]})
    reply = await api.post(CREATE, {"b": THINGS, "n": "x", "v": v})
    assert reply.codes == ["ColumnValueException"]
    reply = await api.post(CREATE, {"b": THINGS, "n": "x", "v": v, "l": True})
    assert reply.errors == []
    columns = emu.board(THINGS).columns
    assert columns["status"].settings["labels"][-1]["label"] == "Blocked"
    assert [o["name"] for o in columns["dropdown"].settings["labels"]] == ["red", "blue"]
    reply = await api.post(ITEMS, {"ids": [reply.data["create_item"]["id"]]})
    cells = {c["id"]: c["text"] for c in reply.data["items"][0]["column_values"]}
    assert (cells["status"], cells["dropdown"]) == ("Blocked", "red, blue")


async def test_create_column_and_use_it(api: Api, emu: Emulator) -> None:
    document = (
        "mutation ($b: ID!, $id: String, $d: JSON) { create_column(board_id: $b, id: $id,"
        ' title: "Stage", column_type: status, defaults: $d) { id title type settings archived } }'
    )
    labels = json.dumps({"labels": {"1": "Lead", "2": "Won"}})
    reply = await api.post(document, {"b": CONTACTS, "id": "stage", "d": labels})
    assert reply.data["create_column"] == {
        "id": "stage",
        "title": "Stage",
        "type": "status",
        "archived": False,
        "settings": {
            "labels": [
                {"id": 1, "index": 0, "label": "Lead"},
                {"id": 2, "index": 1, "label": "Won"},
            ]
        },
    }
    assert (await api.post(document, {"b": CONTACTS, "id": "stage"})).codes == [
        "InvalidArgumentException"
    ]
    assert (await api.post(document, {"b": CONTACTS, "id": "Bad Id"})).codes == [
        "InvalidArgumentException"
    ]
    await create(api, stage={"label": "Won"})
    assert emu.items()[0].values == {"stage": {"index": 2}}
    generated = await api.post(document, {"b": CONTACTS})
    assert generated.data["create_column"]["id"].startswith("status_")


async def test_create_column_ids_are_as_monday_has_them(api: Api, emu: Emulator) -> None:
    # Given: 1-20 lowercase letters or underscores; made by Monday: the type, "_mk" and a few
    # letters and digits, never one the board has.
    document = (
        "mutation ($b: ID!, $id: String, $t: ColumnType!) { create_column(board_id: $b, id: $id,"
        ' title: "Email", column_type: $t) { id title type } }'
    )
    made = []
    for column_type in ("email", "email", "long_text", "dropdown"):
        reply = await api.post(document, {"b": CONTACTS, "t": column_type})
        made.append(reply.data["create_column"]["id"])
    assert len(set(made)) == 4
    for column_id, column_type in zip(
        made, ("email", "email", "long_text", "dropdown"), strict=True
    ):
        assert re.fullmatch(column_type + r"_mk[a-z0-9]{6}", column_id), column_id
        assert len(column_id) <= 20
        assert emu.board(CONTACTS).columns[column_id].type == column_type
    for bad in ("email2", "Email", "a" * 21, ""):
        reply = await api.post(document, {"b": CONTACTS, "t": "email", "id": bad})
        assert reply.codes == ["InvalidArgumentException"], bad
    reply = await api.post(document, {"b": CONTACTS, "t": "email", "id": "work_email"})
    assert reply.data["create_column"] == {"id": "work_email", "title": "Email", "type": "email"}


async def test_create_board_and_query_boards(api: Api) -> None:
    reply = await api.post(
        'mutation { create_board(board_name: "Extra", board_kind: private) { id name board_kind } }'
    )
    assert reply.data["create_board"] == {
        "id": "1000000004",
        "name": "Extra",
        "board_kind": "private",
    }
    reply = await api.post(
        "query ($ids: [ID!]) { boards(ids: $ids) { id name state columns(types: [text]) { id } } }",
        {"ids": [CONTACTS, ORGANIZATIONS, "1"]},
    )
    assert reply.data["boards"] == [
        {
            "id": CONTACTS,
            "name": "contacts",
            "state": "active",
            "columns": [{"id": "text"}, {"id": "npd_id"}],
        },
        {
            "id": ORGANIZATIONS,
            "name": "organizations",
            "state": "active",
            "columns": [{"id": "address"}, {"id": "npd_id"}],
        },
    ]
    reply = await api.post("query { boards(limit: 2, page: 2) { id } }")
    assert reply.data["boards"] == [{"id": THINGS}, {"id": "1000000004"}]


async def test_concrete_column_value_types(api: Api) -> None:
    item_id = await create(
        api,
        board=THINGS,
        email={"email": "a@b.com", "text": "Work"},
        phone={"phone": "+12025550169", "countryShortName": "US"},
        numbers="4.5",
        date={"date": "2026-06-15", "time": "09:30"},
        link={"url": "https://x.com", "text": "X"},
        status={"index": 1},
    )
    reply = await api.post(
        "query ($i: [ID!]) { items(ids: $i) { column_values { __typename"
        " ... on EmailValue { email label } ... on PhoneValue { phone country_short_name }"
        " ... on NumbersValue { number } ... on DateValue { date time }"
        " ... on LinkValue { url url_text } ... on StatusValue { index label } } } }",
        {"i": [item_id]},
    )
    cells = reply.data["items"][0]["column_values"]
    assert cells == [
        {"__typename": "TextValue"},
        {"__typename": "LongTextValue"},
        {"__typename": "EmailValue", "email": "a@b.com", "label": "Work"},
        {"__typename": "PhoneValue", "phone": "+12025550169", "country_short_name": "US"},
        {"__typename": "NumbersValue", "number": 4.5},
        {"__typename": "DateValue", "date": "2026-06-15", "time": "09:30:00"},
        {"__typename": "LinkValue", "url": "https://x.com", "url_text": "X"},
        {"__typename": "StatusValue", "index": 1, "label": "Done"},
        {"__typename": "DropdownValue"},
        {"__typename": "BoardRelationValue"},
        {"__typename": "TextValue"},  # npd_id
    ]
