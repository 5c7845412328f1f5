"""Polling support: a board's activity_logs record every change, and items(ids:) shows
updated_at, state and board."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import aiohttp

from emulator import API_USER_ID, PERSON_USER_ID, Emulator, ManualClock

from .helpers import CONTACTS, ORGANIZATIONS, TOKEN, Api, values
from .test_webhooks import CHANGE, PHONE, create

LOGS = (
    "query ($b: [ID!], $from: ISO8601DateTime, $to: ISO8601DateTime, $c: [String],"
    " $g: [String], $i: [ID!], $u: [ID!], $limit: Int, $page: Int) {"
    " boards(ids: $b) { activity_logs(from: $from, to: $to, column_ids: $c, group_ids: $g,"
    " item_ids: $i, user_ids: $u, limit: $limit, page: $page)"
    " { id event entity user_id created_at data account_id } } }"
)
ITEMS = "query ($ids: [ID!]) { items(ids: $ids, limit: 100) { id state updated_at board { id } } }"


async def logs(api: Api, board: str = CONTACTS, **args: Any) -> list[dict[str, Any]]:
    reply = await api.post(LOGS, {"b": [board], **args})
    assert reply.errors == [], reply.body
    return list(reply.data["boards"][0]["activity_logs"])


def iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_every_change_is_logged_newest_first(
    api: Api, emu: Emulator, clock: ManualClock
) -> None:
    started = clock.now
    item = await create(api, "Ada", text="Countess")
    clock.advance(1.5)
    await api.post(CHANGE, {"b": CONTACTS, "i": item, "v": values(name="Ada L.", phone=PHONE)})
    clock.advance(1)
    emu.edit_item(item, {"text": None})
    emu.set_item_state(item, "archived")
    found = await logs(api, limit=100)
    assert [(e["event"], e["user_id"]) for e in found] == [
        ("archive_pulse", str(PERSON_USER_ID)),
        ("update_column_value", str(PERSON_USER_ID)),
        ("update_column_value", str(API_USER_ID)),
        ("update_name", str(API_USER_ID)),
        ("create_pulse", str(API_USER_ID)),
    ]
    for entry in found:
        assert entry["entity"] == "pulse"
        assert entry["account_id"] == "1"
        assert len(entry["created_at"]) == 17
        assert entry["id"]
    assert len({e["id"] for e in found}) == len(found)
    assert int(found[-1]["created_at"]) == round(started * 10_000_000)
    assert int(found[-1]["created_at"]) // 10_000_000 == int(started)
    cleared, phone = (json.loads(e["data"]) for e in found[1:3])
    assert phone["pulse_id"] == int(item)
    assert phone["board_id"] == int(CONTACTS)
    assert phone["column_id"] == "phone"
    assert phone["value"]["phone"] == PHONE["phone"]
    assert phone["previous_value"] is None
    assert (cleared["column_id"], cleared["previous_value"], cleared["value"]) == (
        "text",
        {"value": "Countess"},
        None,
    )
    renamed = json.loads(found[3]["data"])
    assert (renamed["value"], renamed["previous_value"]) == ({"name": "Ada L."}, {"name": "Ada"})
    assert await logs(api, board=ORGANIZATIONS) == []


async def test_activity_logs_filters_and_pages(api: Api, emu: Emulator, clock: ManualClock) -> None:
    first = await create(api, "Ada")
    clock.advance(10)
    second = await create(api, "Grace")
    emu.edit_item(second, {"text": "by hand"})
    clock.advance(10)
    emu.edit_item(first, {"phone": PHONE}, name="Ada L.", user_id=42)

    def events(found: list[dict[str, Any]]) -> list[tuple[str, int]]:
        return [(e["event"], json.loads(e["data"])["pulse_id"]) for e in found]

    assert events(await logs(api, i=[first])) == [
        ("update_column_value", int(first)),
        ("update_name", int(first)),
        ("create_pulse", int(first)),
    ]
    assert events(await logs(api, u=["42"])) == [
        ("update_column_value", int(first)),
        ("update_name", int(first)),
    ]
    assert events(await logs(api, c=["text"])) == [("update_column_value", int(second))]
    assert events(await logs(api, c=["name"])) == [("update_name", int(first))]
    middle = clock.now - 10
    assert events(await logs(api, **{"from": iso(middle), "to": iso(middle)})) == [
        ("update_column_value", int(second)),
        ("create_pulse", int(second)),
    ]
    assert len(await logs(api, g=["topics"])) == 5
    assert await logs(api, g=["other"]) == []
    assert events(await logs(api, limit=2, page=2)) == [
        ("update_column_value", int(second)),
        ("create_pulse", int(second)),
    ]
    reply = await api.post(LOGS, {"b": [CONTACTS], "from": "yesterday"})
    assert reply.codes == ["InvalidArgumentException"]


async def test_activity_logs_default_to_25_entries(api: Api, emu: Emulator) -> None:
    for i in range(30):
        emu.add_item(CONTACTS, f"n{i}")
    assert len(await logs(api)) == 25


async def test_activity_logs_survive_the_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    async with Emulator(TOKEN, state_file=state) as first:
        item = first.add_item(CONTACTS, "Ada")
        first.edit_item(item.id, {"phone": PHONE})
    async with Emulator(TOKEN, state_file=state) as second, aiohttp.ClientSession() as session:
        found = await logs(Api(session, second))
    assert [e["event"] for e in found] == ["update_column_value", "create_pulse"]


async def test_items_show_state_updated_at_and_board(
    api: Api, emu: Emulator, clock: ManualClock
) -> None:
    kept, archived, deleted = [await create(api, n) for n in ("kept", "archived", "deleted")]
    [before] = (await api.post(ITEMS, {"ids": [kept]})).data["items"]
    clock.advance(5)
    emu.edit_item(kept, {"text": "x"})
    emu.set_item_state(archived, "archived")
    await api.post(f"mutation {{ delete_item(item_id: {deleted}) {{ id }} }}")
    reply = await api.post(ITEMS, {"ids": [kept, archived, deleted]})
    assert [(i["id"], i["state"], i["board"]) for i in reply.data["items"]] == [
        (kept, "active", {"id": CONTACTS}),
        (archived, "archived", {"id": CONTACTS}),
        (deleted, "deleted", {"id": CONTACTS}),
    ]
    updated = reply.data["items"][0]["updated_at"]
    assert updated == iso(clock.now)
    assert updated > before["updated_at"]
