"""Webhooks: create (with the challenge), list, delete; events for every change; delivery
with retries, after the request, signed with a JWT for an app token."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from emulator import API_USER_ID, PERSON_USER_ID, Emulator, ManualClock

from .helpers import CONTACTS, ORGANIZATIONS, TABLES, TOKEN, Api, values
from .receiver import Receiver

CREATE_WEBHOOK = (
    "mutation ($b: ID!, $u: String!, $e: WebhookEventType!, $c: JSON) {"
    " create_webhook(board_id: $b, url: $u, event: $e, config: $c)"
    " { id board_id event config } }"
)
WEBHOOKS = "query ($b: ID!) { webhooks(board_id: $b) { id board_id event config } }"
DELETE_WEBHOOK = "mutation ($i: ID!) { delete_webhook(id: $i) { id board_id event } }"
CREATE = (
    "mutation ($b: ID!, $n: String!, $v: JSON) {"
    " create_item(board_id: $b, item_name: $n, column_values: $v) { id } }"
)
CHANGE = (
    "mutation ($b: ID!, $i: ID, $v: JSON!) {"
    " change_multiple_column_values(board_id: $b, item_id: $i, column_values: $v) { id } }"
)
ITEM_EVENTS = (
    "create_item",
    "change_column_value",
    "change_name",
    "item_archived",
    "item_deleted",
    "item_restored",
)
SECRET = "0123456789abcdef0123456789abcdef"  # PyJWT warns below 32 bytes
PHONE = {"phone": "+442079460958", "countryShortName": "GB"}


@pytest.fixture
async def emu(clock: ManualClock) -> AsyncIterator[Emulator]:
    # Retries every 10 ms for 2 s: the schedule is real time, so keep it short.
    async with Emulator(
        TOKEN, tables=TABLES, clock=clock, webhook_retry_interval=0.01, webhook_retry_for=2.0
    ) as e:
        yield e


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def subscribe(
    api: Api, url: str, event: str, board: str = CONTACTS, config: Any = None
) -> str:
    variables = {"b": board, "u": url, "e": event, "c": config}
    reply = await api.post(CREATE_WEBHOOK, variables)
    assert reply.errors == [], reply.body
    return str(reply.data["create_webhook"]["id"])


async def subscribe_all(api: Api, url: str, board: str = CONTACTS) -> None:
    for event in ITEM_EVENTS:
        await subscribe(api, url, event, board)


async def create(api: Api, name: str = "Ada", board: str = CONTACTS, **cols: Any) -> str:
    reply = await api.post(CREATE, {"b": board, "n": name, "v": values(**cols)})
    assert reply.errors == [], reply.body
    return str(reply.data["create_item"]["id"])


async def settle(emu: Emulator) -> None:
    async with asyncio.timeout(10):
        await emu.settle_webhooks()


def types(receiver: Receiver) -> list[str]:
    return [e["type"] for e in receiver.events]


# --- management --------------------------------------------------------------------------


async def test_create_webhook_answers_the_challenge_first(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    reply = await api.post(CREATE_WEBHOOK, {"b": CONTACTS, "u": receiver.url, "e": "create_item"})
    created = reply.data["create_webhook"]
    expected = {"id": created["id"], "board_id": CONTACTS, "event": "create_item", "config": None}
    assert created == expected
    [challenge] = receiver.challenges
    assert set(challenge.body) == {"challenge"}
    assert len(challenge.body["challenge"]) >= 16
    assert "Authorization" not in challenge.headers
    reply = await api.post(WEBHOOKS, {"b": CONTACTS})
    assert reply.data["webhooks"] == [created]
    assert (await api.post(WEBHOOKS, {"b": ORGANIZATIONS})).data["webhooks"] == []
    [webhook] = emu.webhooks()
    assert (webhook.id, webhook.url, webhook.app) == (created["id"], receiver.url, False)


@pytest.mark.parametrize("failure", ["wrong echo", "http 500", "refused"])
async def test_a_url_that_fails_the_challenge_gets_a_bare_internal_server_error(
    api: Api, emu: Emulator, receiver: Receiver, failure: str
) -> None:
    if failure == "wrong echo":
        receiver.echo = False
    url = receiver.url
    if failure == "http 500":
        url = url.replace("/hook", "/nowhere")  # aiohttp answers 404; any non-200 fails
    if failure == "refused":
        await receiver.stop()
    reply = await api.post(CREATE_WEBHOOK, {"b": CONTACTS, "u": url, "e": "create_item"})
    assert reply.status == 200
    assert reply.body == {
        "errors": [{"message": "Internal Server Error"}],
        "extensions": {"request_id": reply.body["extensions"]["request_id"]},
    }
    assert emu.webhooks() == []


async def test_long_urls_unknown_boards_and_bad_configs_are_invalid_arguments(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    long_url = receiver.url + "?" + "x" * 256
    nope = json.dumps({"columnId": "nope"})
    cases = [
        {"b": CONTACTS, "u": long_url, "e": "create_item"},
        {"b": "999", "u": receiver.url, "e": "create_item"},
        {"b": CONTACTS, "u": receiver.url, "e": "change_specific_column_value"},
        {"b": CONTACTS, "u": receiver.url, "e": "change_specific_column_value", "c": "{}"},
        {"b": CONTACTS, "u": receiver.url, "e": "change_specific_column_value", "c": nope},
    ]
    for variables in cases:
        reply = await api.post(CREATE_WEBHOOK, variables)
        assert reply.codes == ["InvalidArgumentException"], variables
        assert reply.data == {"create_webhook": None}
    assert receiver.challenges == []
    assert emu.webhooks() == []
    reply = await api.post(WEBHOOKS, {"b": "999"})
    assert reply.codes == ["InvalidArgumentException"]
    reply = await api.post(CREATE_WEBHOOK, {"b": CONTACTS, "u": receiver.url, "e": "no_such"})
    assert reply.codes == ["INVALID_VARIABLES"]


async def test_delete_webhook(api: Api, emu: Emulator, receiver: Receiver) -> None:
    first = await subscribe(api, receiver.url, "create_item")
    second = await subscribe(api, receiver.url, "change_name")
    reply = await api.post(DELETE_WEBHOOK, {"i": first})
    deleted = {"id": first, "board_id": CONTACTS, "event": "create_item"}
    assert reply.data["delete_webhook"] == deleted
    assert [w.id for w in emu.webhooks()] == [second]
    reply = await api.post(DELETE_WEBHOOK, {"i": first})
    assert reply.codes == ["ResourceNotFoundException"]
    await create(api)
    await settle(emu)
    assert receiver.events == []  # nobody listens to create_item any more


async def test_app_webhooks_only_lists_webhooks_an_app_created(receiver: Receiver) -> None:
    query = "query ($b: ID!) { webhooks(board_id: $b, app_webhooks_only: true) { id } }"
    async with Emulator(TOKEN, signing_secret=SECRET) as app, aiohttp.ClientSession() as s:
        api = Api(s, app)
        created = await subscribe(api, receiver.url, "create_item")
        assert (await api.post(query, {"b": CONTACTS})).data["webhooks"] == [{"id": created}]
    async with Emulator(TOKEN) as personal, aiohttp.ClientSession() as s:
        api = Api(s, personal)
        await subscribe(api, receiver.url, "create_item")
        assert (await api.post(query, {"b": CONTACTS})).data["webhooks"] == []


async def test_webhooks_persist_in_the_state_file(tmp_path: Path, receiver: Receiver) -> None:
    state = tmp_path / "state.json"
    async with Emulator(TOKEN, state_file=state) as first, aiohttp.ClientSession() as s:
        webhook_id = await subscribe(Api(s, first), receiver.url, "create_item")
    async with Emulator(TOKEN, state_file=state) as second, aiohttp.ClientSession() as s:
        assert [(w.id, w.url, w.event) for w in second.webhooks()] == [
            (webhook_id, receiver.url, "create_item")
        ]
        item = await create(Api(s, second))
        await settle(second)
        assert [(e["type"], str(e["pulseId"])) for e in receiver.events] == [("create_pulse", item)]
        newer = await subscribe(Api(s, second), receiver.url, "change_name")
        assert int(newer) > int(webhook_id)


async def test_reset_forgets_webhooks(api: Api, emu: Emulator, receiver: Receiver) -> None:
    await subscribe(api, receiver.url, "create_item")
    emu.reset()
    assert emu.webhooks() == []
    await create(api)
    await settle(emu)
    assert receiver.events == []


# --- events ------------------------------------------------------------------------------


async def test_api_mutations_come_back_as_events_of_the_tokens_user(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    await subscribe_all(api, receiver.url)
    item = await create(api, "Ada", npd_id="1", text="Countess")
    change = values(name="Ada Lovelace", npd_id="1", phone=PHONE, text=None)
    await api.post(CHANGE, {"b": CONTACTS, "i": item, "v": change})
    await api.post(
        "mutation ($b: ID!, $i: ID) {"
        ' a: change_column_value(board_id: $b, item_id: $i, column_id: "text",'
        ' value: "\\"Analyst\\"") { id }'
        ' b: change_simple_column_value(board_id: $b, item_id: $i, column_id: "long_text",'
        ' value: "Notes") { id }'
        " c: archive_item(item_id: $i) { id } d: delete_item(item_id: $i) { id } }",
        {"b": CONTACTS, "i": item},
    )
    await settle(emu)
    assert [(e["type"], e.get("columnId")) for e in receiver.events] == [
        ("create_pulse", None),
        ("update_name", None),
        ("update_column_value", "phone"),
        ("update_column_value", "text"),  # cleared; npd_id did not change: no event
        ("update_column_value", "text"),
        ("update_column_value", "long_text"),
        ("archive_pulse", None),
        ("delete_pulse", None),
    ]
    webhooks = {w.event: int(w.id) for w in emu.webhooks()}
    for event in receiver.events:
        assert event["userId"] == API_USER_ID
        assert event["app"] == "monday"
        assert event["boardId"] == int(CONTACTS)
        assert event["originalTriggerUuid"] is None
        assert event["isRetry"] is False
        assert "retryCount" not in event
        assert re.fullmatch(r"[0-9a-f]{32}", event["triggerUuid"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["triggerTime"])
    assert len({e["triggerUuid"] for e in receiver.events}) == len(receiver.events)
    created, renamed, phone, cleared, text, notes, archived, deleted = receiver.events
    assert created["pulseId"] == int(item)
    assert created["pulseName"] == "Ada"
    assert created["subscriptionId"] == webhooks["create_item"]
    assert created["groupId"] == "topics"
    assert created["columnValues"] == {"npd_id": {"value": "1"}, "text": {"value": "Countess"}}
    assert renamed["value"] == {"name": "Ada Lovelace"}
    assert renamed["previousValue"] == {"name": "Ada"}
    assert renamed["subscriptionId"] == webhooks["change_name"]
    assert phone["columnType"] == "phone"
    assert phone["columnTitle"] == "phone"
    assert phone["value"] == {**PHONE, "changed_at": phone["triggerTime"]}
    assert phone["previousValue"] is None
    assert isinstance(phone["changedAt"], float)
    assert phone["subscriptionId"] == webhooks["change_column_value"]
    assert (cleared["value"], cleared["previousValue"]) == (None, {"value": "Countess"})
    assert (text["value"], text["previousValue"]) == ({"value": "Analyst"}, None)
    assert notes["columnType"] == "long-text"
    assert notes["value"]["text"] == "Notes"
    for gone in (archived, deleted):
        assert gone["itemId"] == int(item)
        assert gone["itemName"] == "Ada Lovelace"
        assert "pulseId" not in gone


async def test_person_edits_are_events_of_another_user(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    await subscribe_all(api, receiver.url)
    item = emu.add_item(CONTACTS, "Grace", {"npd_id": "2"})
    emu.edit_item(item.id, {"phone": PHONE}, name="Grace Hopper")
    emu.edit_item(item.id, {"phone": PHONE})  # the same value again: nothing changed
    emu.set_item_state(item.id, "archived")
    emu.set_item_state(item.id, "active", user_id=77)
    emu.set_item_state(item.id, "deleted")
    emu.set_item_state(item.id, "active")
    await settle(emu)
    assert [(e["type"], e["userId"]) for e in receiver.events] == [
        ("create_pulse", PERSON_USER_ID),
        ("update_name", PERSON_USER_ID),
        ("update_column_value", PERSON_USER_ID),
        ("archive_pulse", PERSON_USER_ID),
        ("restore_pulse", 77),
        ("delete_pulse", PERSON_USER_ID),
        ("restore_pulse", PERSON_USER_ID),
    ]
    restored = receiver.events[4]
    assert restored["itemId"] == int(item.id)
    assert restored["value"] == {"state": 1, "is_undo": False}
    assert restored["previousValue"] == {"state": 2}
    assert receiver.events[6]["previousValue"] == {"state": 3}
    assert PERSON_USER_ID != API_USER_ID


async def test_only_subscribed_events_of_the_board_are_sent(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    await subscribe(api, receiver.url, "change_name")
    phone_only = json.dumps({"columnId": "phone"})
    await subscribe(api, receiver.url, "change_specific_column_value", config=phone_only)
    await subscribe(api, receiver.url, "create_item", board=ORGANIZATIONS)
    item = await create(api, "Ada")
    emu.edit_item(item, {"text": "x", "phone": PHONE})
    emu.edit_item(item, name="Ada L.")
    emu.set_item_state(item, "archived")
    await settle(emu)
    assert [(e["type"], e.get("columnId")) for e in receiver.events] == [
        ("update_column_value", "phone"),
        ("update_name", None),
    ]
    specific = {w.event: w for w in emu.webhooks()}["change_specific_column_value"]
    assert receiver.events[0]["subscriptionId"] == int(specific.id)
    reply = await api.post(WEBHOOKS, {"b": CONTACTS})
    configs = {w["event"]: w["config"] for w in reply.data["webhooks"]}
    assert json.loads(configs["change_specific_column_value"]) == {"columnId": "phone"}


async def test_each_webhook_of_a_change_gets_its_own_delivery(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    await subscribe(api, receiver.url, "create_item")
    await subscribe(api, receiver.url + "?second", "create_item")
    await create(api)
    await settle(emu)
    assert len(receiver.events) == 2
    assert len({e["subscriptionId"] for e in receiver.events}) == 2


# --- delivery ----------------------------------------------------------------------------


async def test_nothing_is_delivered_inside_the_request(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    await subscribe(api, receiver.url, "create_item")
    receiver.gate = asyncio.Event()  # the receiver takes the event but does not answer
    receiver.statuses.append(500)
    item = await create(api)  # answered although the delivery is not
    assert emu.deliveries == []
    async with asyncio.timeout(10):
        await receiver.wait_for(lambda: len(receiver.received) == 1)
    assert emu.deliveries == []
    assert emu.webhooks_pending == 1
    receiver.gate.set()
    await settle(emu)
    assert [(d.event_type, d.item_id, d.status, d.attempt) for d in emu.deliveries] == [
        ("create_pulse", item, 500, 1),
        ("create_pulse", item, 200, 2),
    ]


async def test_failed_deliveries_are_retried_until_a_200(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    await subscribe(api, receiver.url, "create_item")
    receiver.statuses.extend([500, 404])
    item = await create(api)
    await settle(emu)
    first, second, third = receiver.events
    assert len({e["triggerUuid"] for e in receiver.events}) == 1
    assert (first["isRetry"], "retryCount" in first) == (False, False)
    assert (second["isRetry"], second["retryCount"]) == (True, 1)
    assert (third["isRetry"], third["retryCount"]) == (True, 2)
    assert [(d.attempt, d.status, d.gave_up) for d in emu.deliveries] == [
        (1, 500, False),
        (2, 404, False),
        (3, 200, False),
    ]
    record = emu.deliveries[0]
    assert (record.url, record.item_id, record.event_type) == (receiver.url, item, "create_pulse")
    assert record.at == emu.deliveries[-1].at  # the emulator's (manual) clock


async def test_a_receiver_that_is_down_gets_the_event_once_it_is_back(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    await subscribe(api, receiver.url, "create_item")
    await receiver.stop()
    item = await create(api)

    async with asyncio.timeout(10):
        await emu.wait_for(lambda: len(emu.deliveries) >= 2)
    assert all(d.status is None and d.error for d in emu.deliveries)
    await receiver.start()  # the same port
    await settle(emu)
    assert [str(e["pulseId"]) for e in receiver.events] == [item]
    assert receiver.events[0]["isRetry"] is True
    assert emu.deliveries[-1].status == 200


async def test_after_retry_for_the_event_is_lost(clock: ManualClock, receiver: Receiver) -> None:
    async with (
        Emulator(TOKEN, clock=clock, webhook_retry_interval=0.01, webhook_retry_for=0.1) as emu,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, emu)
        await subscribe(api, receiver.url, "create_item")
        receiver.statuses.extend([500] * 100)
        await create(api)
        await settle(emu)
        records = emu.deliveries
        assert 2 <= len(records) <= 11  # attempts at 0, 0.01, ... 0.1 s at the most
        assert [r.attempt for r in records] == list(range(1, len(records) + 1))
        assert [r.gave_up for r in records] == [False] * (len(records) - 1) + [True]
        assert all(r.status == 500 for r in records)


async def test_app_token_deliveries_carry_a_jwt(receiver: Receiver) -> None:
    secret = SECRET
    async with Emulator(TOKEN, signing_secret=secret) as emu, aiohttp.ClientSession() as s:
        await subscribe(Api(s, emu), receiver.url, "create_item")
        emu.add_item(CONTACTS, "Ada")
        await settle(emu)
    [got] = receiver.received
    token = got.headers["Authorization"]
    assert not token.startswith("Bearer")
    claims = jwt.decode(token, secret, algorithms=["HS256"], audience=receiver.url)
    assert set(claims) == {"accountId", "userId", "aud", "exp", "iat", "shortLivedToken"}
    assert claims["userId"] == API_USER_ID
    assert claims["exp"] > claims["iat"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, secret.upper(), algorithms=["HS256"], audience=receiver.url)
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, secret, algorithms=["HS256"], audience="https://elsewhere/")
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


async def test_personal_token_deliveries_carry_no_authorization(
    api: Api, emu: Emulator, receiver: Receiver
) -> None:
    await subscribe(api, receiver.url, "create_item")
    await create(api)
    await settle(emu)
    [got] = receiver.received
    assert "Authorization" not in got.headers
    assert got.headers["Content-Type"].startswith("application/json")
    assert set(got.body) == {"event"}
