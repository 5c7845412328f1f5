"""Delivery faults (drop, duplicate, delay and reorder, pause) and the control endpoints
that edit the board as a person and steer the webhooks over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from emulator import PERSON_USER_ID, Emulator, ManualClock, WebhookFaults

from .helpers import CONTACTS, TABLES, TOKEN, Api
from .receiver import Receiver
from .test_webhooks import PHONE, create, settle, subscribe


@pytest.fixture
async def emu(clock: ManualClock) -> AsyncIterator[Emulator]:
    async with Emulator(
        TOKEN, tables=TABLES, clock=clock, webhook_retry_interval=0.01, webhook_retry_for=2.0
    ) as e:
        yield e


@pytest.fixture
async def receiver(api: Api) -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    await subscribe(api, r.url, "create_item")
    yield r
    await r.stop()


def pulses(receiver: Receiver) -> list[str]:
    return [str(e["pulseId"]) for e in receiver.events]


async def test_drop_the_next_events(api: Api, emu: Emulator, receiver: Receiver) -> None:
    emu.set_webhook_faults(next_drop=2)
    items = [await create(api, f"n{i}") for i in range(3)]
    await settle(emu)
    assert pulses(receiver) == items[2:]
    dropped = [d for d in emu.deliveries if d.fault == "drop"]
    assert [(d.item_id, d.attempt, d.status) for d in dropped] == [
        (items[0], 0, None),
        (items[1], 0, None),
    ]
    assert emu.webhook_faults.next_drop == 0


async def test_drop_a_share_of_events(api: Api, emu: Emulator, receiver: Receiver) -> None:
    emu.set_webhook_faults(drop=1.0)
    await create(api)
    emu.set_webhook_faults(drop=0.5, seed=7)
    items = [await create(api, f"n{i}") for i in range(40)]
    await settle(emu)
    assert 0 < len(receiver.events) < 40
    assert set(pulses(receiver)) < set(items)
    assert len([d for d in emu.deliveries if d.fault == "drop"]) == 41 - len(receiver.events)


async def test_duplicate_delivers_the_same_event_twice(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    emu.set_webhook_faults(next_duplicate=1)
    item = await create(api)
    await settle(emu)
    first, second = receiver.events
    assert first == second
    assert pulses(receiver) == [item, item]
    assert sorted(str(d.fault) for d in emu.deliveries) == ["None", "duplicate"]


async def test_delay_holds_events_and_delivers_them_later_shuffled(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    emu.set_webhook_faults(next_delay=5, delay_seconds=0.05, seed=3)
    # Made in one go (no await), so that nothing is released before the last one.
    held = [emu.add_item(CONTACTS, f"held {i}").id for i in range(5)]
    assert emu.webhooks_pending == 5
    overtaking = emu.add_item(CONTACTS, "overtakes").id
    await settle(emu)
    assert pulses(receiver)[0] == overtaking
    assert sorted(pulses(receiver)[1:]) == held
    assert pulses(receiver)[1:] != held  # shuffled (seed 3)
    assert {d.fault for d in emu.deliveries if d.item_id in held} == {"delay"}


async def test_pause_holds_everything_and_resume_delivers_with_retries(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    emu.set_webhook_faults(paused=True)
    items = [await create(api, f"n{i}") for i in range(2)]
    await api.post("query { me { id } }")  # a round trip: the senders had their chance
    assert receiver.received == []
    assert emu.deliveries == []
    assert emu.webhooks_pending == 2
    receiver.statuses.append(503)
    emu.set_webhook_faults(paused=False)
    await settle(emu)
    assert sorted(set(pulses(receiver))) == items
    assert [d.status for d in emu.deliveries] == [503, 200, 200]
    assert emu.deliveries[-1].attempt == 2


async def test_pause_holds_retries_too(api: Api, emu: Emulator, receiver: Receiver) -> None:
    receiver.gate = asyncio.Event()
    receiver.statuses.append(500)
    await create(api)
    async with asyncio.timeout(10):
        await receiver.wait_for(lambda: len(receiver.received) == 1)
    emu.set_webhook_faults(paused=True)
    receiver.gate.set()
    async with asyncio.timeout(10):
        await emu.wait_for(lambda: len(emu.deliveries) == 1)
    await api.post("query { me { id } }")
    assert len(receiver.received) == 1  # the retry waits for the resume
    emu.set_webhook_faults(paused=False)
    await settle(emu)
    assert [d.status for d in emu.deliveries] == [500, 200]


def test_fault_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="share"):
        WebhookFaults(drop=1.5)
    with pytest.raises(ValueError, match="negative"):
        WebhookFaults(next_delay=-1)
    with pytest.raises(ValueError, match="unknown webhook fault settings: nope"):
        WebhookFaults.from_json({"nope": 1})


# --- control endpoints -------------------------------------------------------------------


async def test_webhook_faults_and_deliveries_over_http(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    status, body = await api.control("POST", "webhooks/faults", {"next_drop": 1})
    assert status == 200
    assert body["faults"] == WebhookFaults(next_drop=1).to_json()
    assert emu.webhook_faults == WebhookFaults(next_drop=1)
    await create(api)
    item = await create(api)
    await settle(emu)
    status, body = await api.control("GET", "webhooks")
    assert status == 200
    [webhook] = body["webhooks"]
    assert (webhook["board_id"], webhook["event"], webhook["url"]) == (
        CONTACTS,
        "create_item",
        receiver.url,
    )
    assert [(d["fault"], d["status"]) for d in body["deliveries"]] == [("drop", None), (None, 200)]
    assert body["deliveries"][1]["item_id"] == item
    assert body["deliveries"][1]["event_type"] == "create_pulse"
    assert body["pending"] == 0
    assert body["faults"]["next_drop"] == 0
    for bad in ({"drop": 2}, {"nope": True}):
        status, body = await api.control("POST", "webhooks/faults", bad)
        assert status == 400
        assert body["error"]
    assert (await api.control("POST", "webhooks/faults", {"paused": True}))[0] == 200
    assert emu.webhook_faults.paused
    await api.control("POST", "webhooks/faults", {})
    assert emu.webhook_faults == WebhookFaults()


async def test_control_edits_items_as_a_person(api: Api, emu: Emulator, receiver: Receiver) -> None:
    for event in ("change_column_value", "change_name", "item_archived"):
        await subscribe(api, receiver.url, event)
    item = await create(api, "Ada")
    status, body = await api.control(
        "POST", f"items/{item}", {"column_values": {"phone": PHONE}, "name": "Ada L."}
    )
    assert status == 200
    assert body["item"]["name"] == "Ada L."
    assert body["item"]["values"]["phone"] == PHONE
    status, body = await api.control("POST", f"items/{item}", {"state": "archived", "user_id": 42})
    assert (status, body["item"]["state"]) == (200, "archived")
    await settle(emu)
    assert [(e["type"], e["userId"]) for e in receiver.events] == [
        ("create_pulse", 1),
        ("update_name", PERSON_USER_ID),
        ("update_column_value", PERSON_USER_ID),
        ("archive_pulse", 42),
    ]
    status, body = await api.control("POST", f"items/{item}", {"state": "active"})
    assert (status, body["item"]["state"]) == (200, "active")


async def test_control_creates_items_as_a_person(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    status, body = await api.control(
        "POST", f"boards/{CONTACTS}/items", {"name": "Hedy", "column_values": {"text": "x"}}
    )
    assert status == 200
    assert body["item"]["values"] == {"text": "x"}
    await settle(emu)
    assert [(e["pulseName"], e["userId"]) for e in receiver.events] == [("Hedy", PERSON_USER_ID)]


@pytest.mark.parametrize(
    ("path", "payload", "status", "code"),
    [
        ("items/2000000999", {"name": "x"}, 404, "ResourceNotFoundException"),
        ("items/2000000999", {"state": "archived"}, 404, "ResourceNotFoundException"),
        ("items/{item}", {"column_values": {"email": "x"}}, 400, "ColumnValueException"),
        ("items/{item}", {"column_values": {"nope": "x"}}, 400, "InvalidColumnIdException"),
        ("items/{item}", {"name": ""}, 400, "ItemNameTooLongException"),
        ("items/{item}", {"state": "gone"}, 400, None),
        ("items/{item}", {"colour": "red"}, 400, None),
        ("items/{item}", {"user_id": "me"}, 400, None),
        ("items/{item}", {"column_values": "text=x"}, 400, None),
        ("boards/999/items", {"name": "x"}, 404, "InvalidBoardIdException"),
        (f"boards/{CONTACTS}/items", {}, 400, "ItemNameTooLongException"),
    ],
)
async def test_control_edits_that_monday_would_refuse(
    api: Api, emu: Emulator, path: str, payload: dict[str, object], status: int, code: str | None
) -> None:
    item = await create(api, "Ada")
    got, body = await api.control("POST", path.format(item=item), payload)
    assert (got, body.get("code")) == (status, code)
    assert body["error"]
    assert [(i.name, i.state, i.values) for i in emu.items()] == [("Ada", "active", {})]
