"""Connect boards (board_relation) columns: created connected to boards, written with
{"item_ids": [...]} and checked, read through BoardRelationValue, in webhooks and activity logs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from emulator import Emulator, ManualClock
from emulator.state import Store, boards_from_mappings
from listener import mapping

from .helpers import CONTACTS, ORGANIZATIONS, THINGS, Api, Reply, values
from .receiver import Receiver
from .test_webhooks import CHANGE, CREATE, subscribe

CREATE_COLUMN = (
    'mutation ($b: ID!, $d: JSON) { create_column(board_id: $b, id: "company",'
    ' title: "Company", column_type: board_relation, defaults: $d) { id type settings } }'
)
READ = (
    'query ($ids: [ID!]) { items(ids: $ids) { id column_values(ids: ["company"]) {'
    " id type text value ... on BoardRelationValue { display_value linked_item_ids"
    " linked_items { id name } } } } }"
)
SET_ONE = (
    "mutation ($b: ID!, $i: ID, $v: JSON!) { change_column_value(board_id: $b, item_id: $i,"
    ' column_id: "company", value: $v) { id } }'
)
LOOKUP = (
    "query ($b: ID!, $v: [String]!) { items_page_by_column_values(board_id: $b, limit: 10,"
    ' columns: [{column_id: "company", column_values: $v}]) { items { id } } }'
)


@pytest.fixture
async def orgs(api: Api, emu: Emulator) -> list[str]:
    reply = await api.post(
        CREATE_COLUMN, {"b": CONTACTS, "d": json.dumps({"boardIds": [int(ORGANIZATIONS)]})}
    )
    assert reply.errors == [], reply.body
    return [emu.add_item(ORGANIZATIONS, name).id for name in ("Acme", "Globex", "Initech")]


async def contact(api: Api, **cols: Any) -> str:
    reply = await api.post(CREATE, {"b": CONTACTS, "n": "Ada", "v": values(**cols)})
    assert reply.errors == [], reply.body
    return str(reply.data["create_item"]["id"])


async def change(api: Api, item: str, **cols: Any) -> Reply:
    return await api.post(CHANGE, {"b": CONTACTS, "i": item, "v": values(**cols)})


async def read(api: Api, item: str) -> dict[str, Any]:
    reply = await api.post(READ, {"ids": [item]})
    assert reply.errors == [], reply.body
    [cell] = reply.data["items"][0]["column_values"]
    return dict(cell)


async def linked(api: Api, item: str) -> list[str]:
    return list((await read(api, item))["linked_item_ids"])


def links(*ids: str) -> dict[str, list[int]]:
    return {"item_ids": [int(i) for i in ids]}


async def test_create_column_connects_boards_as_monday_keeps_them(api: Api, emu: Emulator) -> None:
    defaults = {"boardIds": [int(ORGANIZATIONS)], "allowMultipleItems": False}
    reply = await api.post(CREATE_COLUMN, {"b": CONTACTS, "d": json.dumps(defaults)})
    assert reply.data["create_column"] == {
        "id": "company",
        "type": "board_relation",
        "settings": {
            "allowMultipleItems": False,
            "allowCreateReflectionColumn": False,
            "boardIds": [int(ORGANIZATIONS)],
        },
    }
    # Monday's own example passes `defaults` as an object literal.
    reply = await api.post(
        'mutation { create_column(board_id: 1000000003, title: "Rel", column_type:'
        " board_relation, defaults: {boardIds: [1000000001, 1000000002]}) { id settings } }"
    )
    assert reply.data["create_column"]["settings"]["boardIds"] == [1000000001, 1000000002]
    assert emu.board(THINGS).columns[reply.data["create_column"]["id"]].type == "board_relation"


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        ({"boardIds": [42]}, "Board with id 42 does not exist"),
        ({"boardIds": ["x"]}, "boardIds must be a list of board ids"),
        ({"boardIds": [1000000002], "colour": "red"}, "unknown board_relation settings: colour"),
        ({"allowMultipleItems": "yes"}, "allowMultipleItems must be true or false"),
    ],
)
async def test_create_column_refuses_what_monday_refuses(
    api: Api, emu: Emulator, defaults: dict[str, Any], message: str
) -> None:
    reply = await api.post(CREATE_COLUMN, {"b": CONTACTS, "d": json.dumps(defaults)})
    assert reply.codes == ["InvalidArgumentException"]
    assert message in reply.error()["message"]
    assert "company" not in emu.board(CONTACTS).columns


async def test_links_written_every_way_and_read_back(
    api: Api, emu: Emulator, orgs: list[str]
) -> None:
    acme, globex, initech = orgs
    item = await contact(api, company=links(acme))
    assert await read(api, item) == {
        "id": "company",
        "type": "board_relation",
        "text": None,  # null since API 2025-04
        "value": None,
        "display_value": "Acme",
        "linked_item_ids": [acme],
        "linked_items": [{"id": acme, "name": "Acme"}],
    }
    assert (await change(api, item, company=links(globex, initech))).errors == []
    assert await linked(api, item) == [globex, initech]  # the write replaced the whole set
    reply = await api.post(SET_ONE, {"b": CONTACTS, "i": item, "v": json.dumps(links(acme))})
    assert reply.errors == []
    assert (await read(api, item))["display_value"] == "Acme"
    stored = emu.item(item)
    assert stored is not None
    assert stored.values["company"] == {"linkedPulseIds": [{"linkedPulseId": int(acme)}]}
    # Ids as strings, repeated: the same links.
    assert (await change(api, item, company={"item_ids": [globex, globex]})).errors == []
    assert await linked(api, item) == [globex]


@pytest.mark.parametrize("empty", [{"item_ids": []}, None, {}, {"item_ids": None}])
async def test_an_empty_list_or_null_clears(api: Api, orgs: list[str], empty: Any) -> None:
    item = await contact(api, company=links(*orgs))
    assert (await change(api, item, company=empty)).errors == []
    assert await read(api, item) == {
        "id": "company",
        "type": "board_relation",
        "text": None,
        "value": None,
        "display_value": "",
        "linked_item_ids": [],
        "linked_items": [],
    }


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        ("contact", "is not on a board connected to the column"),
        ("2999999999", "item 2999999999 is not on a board connected"),
        ({"item_ids": "1"}, "expected a list"),
        ({"item_ids": [0]}, "item_ids must be item ids"),
        ({"item_ids": [True]}, "item_ids must be item ids"),
        ({"linkedPulseIds": [{"linkedPulseId": 1}]}, 'expected {"item_ids"'),
        ("12", "expected a JSON object"),
    ],
)
async def test_links_are_checked_and_a_bad_write_changes_nothing(
    api: Api, emu: Emulator, orgs: list[str], sent: Any, reason: str
) -> None:
    item = await contact(api, company=links(orgs[0]))
    if sent == "contact":
        sent = links(item)  # an item of the contacts board itself: not connected
    elif sent in ("2999999999",):
        sent = links(sent)
    elif sent == "12":
        sent = 12
    reply = await change(api, item, company=sent, text="changed")
    assert reply.codes == ["ColumnValueException"]
    assert reason in reply.error()["message"]
    assert reply.error()["extensions"]["error_data"] == {
        "column_type": "board_relation",
        "column_id": "company",
    }
    assert await linked(api, item) == [orgs[0]]
    stored = emu.item(item)
    assert stored is not None
    assert "text" not in stored.values


async def test_create_item_with_a_bad_link_creates_nothing(
    api: Api, emu: Emulator, orgs: list[str]
) -> None:
    reply = await api.post(
        CREATE, {"b": CONTACTS, "n": "Ada", "v": values(company=links("2999999999"))}
    )
    assert reply.codes == ["ColumnValueException"]
    assert emu.items(CONTACTS) == []


async def test_a_column_connected_to_no_board_takes_no_link(api: Api, emu: Emulator) -> None:
    emu.add_column(CONTACTS, "company", "board_relation")
    org = emu.add_item(ORGANIZATIONS, "Acme").id
    item = await contact(api)
    reply = await change(api, item, company=links(org))
    assert "not connected to any board" in reply.error()["message"]


async def test_one_item_only_when_the_column_says_so(api: Api, emu: Emulator) -> None:
    emu.add_column(
        CONTACTS,
        "company",
        "board_relation",
        settings={"boardIds": [ORGANIZATIONS], "allowMultipleItems": False},
    )
    assert emu.board(CONTACTS).columns["company"].settings == {
        "allowMultipleItems": False,
        "allowCreateReflectionColumn": False,
        "boardIds": [int(ORGANIZATIONS)],  # an int, as Monday keeps it
    }
    a, b = (emu.add_item(ORGANIZATIONS, n).id for n in ("A", "B"))
    item = await contact(api, company=links(a))
    reply = await change(api, item, company=links(a, b))
    assert "links to one item only" in reply.error()["message"]


async def test_simple_strings_are_refused(api: Api, orgs: list[str]) -> None:
    item = await contact(api)
    reply = await api.post(
        "mutation ($i: ID, $v: String) { change_simple_column_value(board_id: 1000000001,"
        ' item_id: $i, column_id: "company", value: $v) { id } }',
        {"i": item, "v": orgs[0]},
    )
    assert reply.codes == ["ColumnValueException"]
    assert "not a simple string" in reply.error()["message"]


async def test_archived_or_deleted_linked_items_drop_out_until_restored(
    api: Api, emu: Emulator, orgs: list[str]
) -> None:
    acme, globex, _ = orgs
    item = await contact(api, company=links(acme, globex))
    emu.set_item_state(acme, "archived")
    emu.set_item_state(globex, "deleted")
    assert await read(api, item) == {
        "id": "company",
        "type": "board_relation",
        "text": None,
        "value": None,
        "display_value": "",
        "linked_item_ids": [],
        "linked_items": [],
    }
    reply = await change(api, item, company=links(acme))
    assert "not on a board connected" in reply.error()["message"]  # no new link to it
    emu.set_item_state(acme, "active")
    assert await linked(api, item) == [acme]


async def test_items_page_by_column_values_cannot_search_connect_boards(
    api: Api, orgs: list[str]
) -> None:
    await contact(api, company=links(orgs[0]))
    reply = await api.post(LOOKUP, {"b": CONTACTS, "v": [orgs[0]]})
    assert reply.codes == ["InvalidArgumentException"]
    assert "cannot be searched" in reply.error()["message"]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def test_webhooks_carry_linked_pulse_ids_in_monday_s_order(
    api: Api, emu: Emulator, orgs: list[str], receiver: Receiver
) -> None:
    await subscribe(api, receiver.url, "change_column_value")
    await subscribe(api, receiver.url, "create_item")
    item = await contact(api, company=links(orgs[0]))
    assert (await change(api, item, company=links(*orgs))).errors == []
    emu.edit_item(item, {"company": None})
    async with asyncio.timeout(10):
        await emu.settle_webhooks()
    created, linked_all, cleared = receiver.events
    at = created["triggerTime"]
    one = [{"linkedPulseId": int(orgs[0])}]
    assert created["columnValues"]["company"] == {"linkedPulseIds": one, "changed_at": at}
    assert linked_all["columnType"] == "board-relation"
    assert linked_all["previousValue"] == {"linkedPulseIds": one, "changed_at": at}
    sent = [link["linkedPulseId"] for link in linked_all["value"]["linkedPulseIds"]]
    assert sorted(sent) == sorted(int(i) for i in orgs)
    assert sent != [int(i) for i in orgs]  # not the order written: compare as sets
    assert cleared["value"] is None
    assert cleared["userId"] == emu.PERSON_USER_ID


async def test_activity_logs_record_link_changes(
    api: Api, orgs: list[str], clock: ManualClock
) -> None:
    item = await contact(api)
    await change(api, item, company=links(orgs[1]))
    reply = await api.post(
        'query { boards(ids: [1000000001]) { activity_logs(column_ids: ["company"])'
        " { event data } } }"
    )
    [entry] = reply.data["boards"][0]["activity_logs"]
    data = json.loads(entry["data"])
    assert entry["event"] == "update_column_value"
    assert (data["column_type"], data["previous_value"]) == ("board-relation", None)
    assert data["value"]["linkedPulseIds"] == [{"linkedPulseId": int(orgs[1])}]


async def test_the_control_api_adds_the_column_and_links_as_a_person(
    api: Api, emu: Emulator
) -> None:
    body = {"id": "company", "type": "board_relation", "defaults": {"boardIds": [ORGANIZATIONS]}}
    status, answer = await api.control("POST", f"boards/{CONTACTS}/columns", body)
    assert status == 200
    assert answer["column"]["settings"]["boardIds"] == [int(ORGANIZATIONS)]
    assert answer["column"]["title"] == "company"
    org = emu.add_item(ORGANIZATIONS, "Acme").id
    item = emu.add_item(CONTACTS, "Ada").id
    path = f"items/{item}"
    status, answer = await api.control("POST", path, {"column_values": {"company": links(org)}})
    assert status == 200
    assert await linked(api, item) == [org]
    status, answer = await api.control("POST", path, {"column_values": {"company": links(item)}})
    assert (status, answer["code"]) == (400, "ColumnValueException")
    for bad, code in [
        ({"id": "company", "type": "board_relation"}, 400),  # exists already
        ({"id": "x", "type": "mirror"}, 400),
        ({"id": "x", "type": "board_relation", "defaults": {"boardIds": [7]}}, 400),
        ({"type": "text"}, 400),
    ]:
        status, _ = await api.control("POST", f"boards/{CONTACTS}/columns", bad)
        assert status == code, bad
    status, _ = await api.control("POST", "boards/7/columns", {"id": "x", "type": "text"})
    assert status == 404


def test_a_mapped_relation_is_connected_to_the_referenced_table_s_board(
    clock: ManualClock,
) -> None:
    # The mapping of issue 18: a board_relation column that `references` a synced table.
    company = SimpleNamespace(id="company", type="board_relation", references="organizations")
    contacts = SimpleNamespace(
        table="contacts", board_id=None, columns=(company,), npd_id_column="npd_id"
    )
    organizations = mapping.TableMapping(table="organizations")
    store = Store(clock)
    boards_from_mappings(store, [contacts, organizations])  # type: ignore[list-item]
    column = store.boards[CONTACTS].columns["company"]
    assert column.type == "board_relation"
    assert column.settings["boardIds"] == [int(ORGANIZATIONS)]
