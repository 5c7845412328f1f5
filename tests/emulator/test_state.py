"""Boards from the mapping, inspection (Python and /control), reset, and the state file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from emulator import AccountLimits, ApiError, Emulator, ManualClock, StateFileError
from listener import mapping

from .helpers import CONTACTS, ORGANIZATIONS, TOKEN, Api, values

CREATE = (
    "mutation ($b: ID!, $n: String!, $v: JSON) { create_item(board_id: $b, item_name: $n,"
    " column_values: $v) { id } }"
)


def columns(emu: Emulator, board_id: str) -> list[tuple[str, str]]:
    return [(c.id, c.type) for c in emu.board(board_id).columns.values()]


def test_default_boards_follow_the_default_mapping() -> None:
    emu = Emulator()
    assert [(b.id, b.name) for b in emu.boards()] == [
        (CONTACTS, "contacts"),
        (ORGANIZATIONS, "organizations"),
    ]
    assert columns(emu, CONTACTS) == [
        ("name", "name"),
        ("email", "email"),
        ("phone", "phone"),
        ("text", "text"),
        ("long_text", "long_text"),
        ("npd_id", "text"),
    ]
    assert columns(emu, ORGANIZATIONS) == [
        ("name", "name"),
        ("long_text", "long_text"),
        ("address", "text"),
        ("npd_id", "text"),
    ]


def test_boards_from_given_mappings() -> None:
    tables = [
        mapping.TableMapping("people", board_id="1000000001", npd_id_column="key"),
        mapping.TableMapping("firms", npd_id_column=None),
        mapping.TableMapping("public.deals", board_id="77"),
    ]
    emu = Emulator(tables=tables)
    assert [(b.id, b.name) for b in emu.boards()] == [
        ("1000000001", "people"),
        ("1000000002", "firms"),
        ("77", "public.deals"),
    ]
    assert columns(emu, "1000000001") == [("name", "name"), ("key", "text")]
    assert columns(emu, "1000000002") == [("name", "name")]
    with pytest.raises(ValueError, match="two tables map to one board"):
        Emulator(tables=[mapping.TableMapping("a", "5"), mapping.TableMapping("b", "5")])


async def test_python_api_to_seed_and_change_items(api: Api, emu: Emulator) -> None:
    seeded = emu.add_item(
        CONTACTS, "Seeded", {"npd_id": "9", "email": {"email": "a@b.co", "text": ""}}
    )
    assert seeded.id == "2000000001"
    with pytest.raises(ApiError) as caught:
        emu.add_item(CONTACTS, "Bad", {"email": "x"})
    assert caught.value.code == "ColumnValueException"
    with pytest.raises(ApiError, match="between 1 and 255"):
        emu.add_item(CONTACTS, "")
    emu.add_item(CONTACTS, "Old", {"npd_id": "8"}, state="archived")
    emu.set_item_state(seeded.id, "deleted")
    assert [(i.name, i.state) for i in emu.items(CONTACTS)] == [
        ("Seeded", "deleted"),
        ("Old", "archived"),
    ]
    assert [i.name for i in emu.items(states=["archived"])] == ["Old"]
    assert emu.item("123") is None

    copy = emu.items()[0]
    copy.values["npd_id"] = "changed"  # copies: the emulator's state is untouched
    assert emu.items()[0].values["npd_id"] == "9"


async def test_python_api_to_break_a_board(api: Api, emu: Emulator) -> None:
    emu.remove_column(CONTACTS, "email")
    reply = await api.post(
        CREATE, {"b": CONTACTS, "n": "x", "v": values(email={"email": "a@b.co", "text": ""})}
    )
    assert reply.codes == ["InvalidColumnIdException"]
    emu.add_column(CONTACTS, "email", "text", title="E-mail")
    reply = await api.post(
        'query ($b: [ID!]) { boards(ids: $b) { columns(ids: ["email"]) { id title type } } }',
        {"b": [CONTACTS]},
    )
    assert reply.data["boards"][0]["columns"] == [
        {"id": "email", "title": "E-mail", "type": "text"}
    ]


async def test_requests_and_counters_are_recorded(api: Api, emu: Emulator) -> None:
    await api.post("query { me { id } }", version="2026-07")
    batch = (
        'mutation ($b: ID!, $v: JSON) { a: create_item(board_id: $b, item_name: "a") { id }'
        ' b: create_item(board_id: $b, item_name: "b", column_values: $v) { id }'
        " complexity { query } }"
    )
    await api.post(batch, {"b": CONTACTS, "v": values(email="bad")}, key="k")
    await api.post("query { me { id } }", token="nope")
    first, second, third = emu.requests
    assert (first.api_version, first.root_fields, first.mutations, first.status) == (
        "2026-07",
        ("me",),
        0,
        200,
    )
    assert first.complexity == 11  # an object (10) and a scalar (1)
    assert second.idempotency_key == "k"
    assert second.root_fields == ("create_item", "create_item", "complexity")
    assert (second.mutations, second.complexity, second.error_codes) == (
        2,
        60_002,
        ("ColumnValueException",),
    )
    assert second.seconds > 0
    assert (third.status, third.error_codes) == (401, ("UNAUTHORIZED",))
    assert emu.counters.to_json() == {
        "requests": 3,
        "mutations": 2,
        "replays": 0,
        "errors": {"ColumnValueException": 1, "UNAUTHORIZED": 1},
        "faults": {},
    }
    status, body = await api.control("GET", "requests")
    assert status == 200
    assert [r["root_fields"] for r in body["requests"]] == [
        ["me"],
        ["create_item", "create_item", "complexity"],
        [],
    ]


async def test_control_state_and_reset(api: Api, emu: Emulator) -> None:
    first = await api.post(CREATE, {"b": CONTACTS, "n": "Ada", "v": values(npd_id="1")})
    await api.post(
        f"mutation {{ archive_item(item_id: {first.data['create_item']['id']}) {{ id }} }}"
    )
    status, state = await api.control("GET", "state")
    assert status == 200
    contacts = state["boards"][0]
    assert (contacts["id"], contacts["name"]) == (CONTACTS, "contacts")
    assert contacts["columns"][0] == {
        "id": "name",
        "title": "Name",
        "type": "name",
        "settings": {},
        "description": None,
        "archived": False,
    }
    assert [(i["name"], i["state"], i["column_values"]) for i in contacts["items"]] == [
        ("Ada", "archived", {"npd_id": "1"})
    ]
    assert state["counters"]["requests"] == 2
    assert state["limits"]["requests_per_minute"] == 2_500
    assert state["usage"]["requests_this_minute"] == 2
    assert state["hung"] == 0

    emu.set_faults(next_drop=3)
    assert await api.control("POST", "reset") == (200, {"ok": True})
    assert emu.items() == []
    assert emu.requests == []
    assert emu.counters.requests == 0
    assert emu.faults.next_drop == 0
    created = await api.post(CREATE, {"b": CONTACTS, "n": "Again"})
    assert created.data == {"create_item": {"id": "2000000001"}}


async def test_state_file_round_trip(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "state" / "monday.json"
    async with Emulator(TOKEN, state_file=path, clock=clock) as emu, aiohttp.ClientSession() as s:
        api = Api(s, emu)
        ada = await api.post(CREATE, {"b": CONTACTS, "n": "Ada", "v": values(npd_id="1")})
        await api.post(CREATE, {"b": ORGANIZATIONS, "n": "Acme", "v": values(address="1 Road")})
        await api.post(
            f"mutation {{ archive_item(item_id: {ada.data['create_item']['id']}) {{ id }} }}"
        )
        emu.add_column(CONTACTS, "stage", "status")
        before = emu.items()
    assert json.loads(path.read_text())["format"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["monday.json"]  # no temporary files left

    again = Emulator(TOKEN, state_file=path, clock=clock)
    assert again.items() == before
    assert [b.id for b in again.boards()] == [CONTACTS, ORGANIZATIONS]
    assert "stage" in again.board(CONTACTS).columns
    async with again, aiohttp.ClientSession() as s:
        reply = await Api(s, again).post(CREATE, {"b": CONTACTS, "n": "Next"})
        assert reply.data == {"create_item": {"id": "2000000003"}}


def test_a_state_file_from_before_webhooks_is_read(tmp_path: Path) -> None:
    path = tmp_path / "monday.json"
    emu = Emulator(TOKEN, state_file=path)
    emu.add_item(CONTACTS, "Ada")
    emu.save()
    saved = json.loads(path.read_text())
    assert {"webhooks", "next_webhook_id", "activity"} <= set(saved)
    for key in ("webhooks", "next_webhook_id", "activity"):
        del saved[key]
    path.write_text(json.dumps(saved))
    again = Emulator(TOKEN, state_file=path)
    assert [i.name for i in again.items()] == ["Ada"]
    assert again.webhooks() == []


async def test_state_is_saved_soon_after_a_change(tmp_path: Path) -> None:
    path = tmp_path / "monday.json"
    emu = Emulator(TOKEN, state_file=path, save_interval=0.01, limits=AccountLimits.unlimited())
    async with emu, aiohttp.ClientSession() as s:
        await Api(s, emu).post(CREATE, {"b": CONTACTS, "n": "Ada"})
        async with asyncio.timeout(5):
            while not path.exists():
                await asyncio.sleep(0.01)
        saved = json.loads(path.read_text())
        assert [i["name"] for i in saved["items"]] == ["Ada"]


def test_an_unreadable_state_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "monday.json"
    path.write_text("{not json")
    with pytest.raises(StateFileError, match=r"monday\.json"):
        Emulator(state_file=path)
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(StateFileError, match="unknown format"):
        Emulator(state_file=path)


async def test_started_twice_is_an_error() -> None:
    async with Emulator() as emu:
        with pytest.raises(RuntimeError, match="running already"):
            await emu.start()
    with pytest.raises(RuntimeError, match="not started"):
        _ = Emulator().url
