"""Item changes as Monday reports them: webhook payloads and activity log entries (pure).

Webhook payloads use the legacy `type` names (create_pulse, update_column_value, ...), not
the subscription names, and carry the fields seen in captured payloads (see
../shared/inbound-research.md). The per-column `value` shapes of text, long_text and
status are captured; those of the other types are inferred from the stored JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from emulator import values
from emulator.model import Board, Change, Column, Stored, Webhook

ACCOUNT_ID = 1
API_USER_ID = 1  # the API token's user (`me`): its mutations come back signed with this id
PERSON_USER_ID = 2  # someone editing the board in the browser
# Every item sits in the board's first group: the emulator has no groups.
GROUP = {"groupId": "topics", "groupName": "Group Title", "groupColor": "#579bfc"}

# Which subscriptions (WebhookEventType) hear an event, by its legacy type.
SUBSCRIBERS: dict[str, tuple[str, ...]] = {
    "create_pulse": ("create_item",),
    "update_column_value": ("change_column_value", "change_specific_column_value"),
    "update_name": ("change_name",),
    "archive_pulse": ("item_archived",),
    "delete_pulse": ("item_deleted",),
    "restore_pulse": ("item_restored",),
}
_STATE_EVENTS = {"archived": "archive_pulse", "deleted": "delete_pulse", "active": "restore_pulse"}
_STATE_CODES = {"active": 1, "archived": 2, "deleted": 3}  # restore_pulse's {state: n} [inferred]
# columnType in payloads uses Monday's internal names: "color" for status and "board-relation"
# for connect boards are captured, the others are inferred.
_LEGACY_TYPES = {
    "status": "color",
    "long_text": "long-text",
    "numbers": "numeric",
    "board_relation": "board-relation",
}
_STATUS_COLORS = {"Done": "#00c875", "Working on it": "#fdab3d", "Stuck": "#df2f4a"}


def event_type(change: Change) -> str:
    """The payload's legacy `type` (also the activity log's `event`)."""
    if change.kind == "create":
        return "create_pulse"
    if change.kind == "value":
        return "update_column_value"
    if change.kind == "name":
        return "update_name"
    return _STATE_EVENTS[str(change.value)]


def subscribes(webhook: Webhook, change: Change) -> bool:
    """Whether `webhook` is told about `change`."""
    if webhook.board_id != change.board_id:
        return False
    if webhook.event not in SUBSCRIBERS[event_type(change)]:
        return False
    if webhook.event == "change_specific_column_value":
        return (webhook.config or {}).get("columnId") == change.column_id
    return True


def payload(change: Change, board: Board, webhook: Webhook) -> dict[str, Any]:
    """The `event` object of a delivery (the POST body is {"event": ...})."""
    kind = event_type(change)
    board_id, item_id = int(change.board_id), int(change.item_id)
    event: dict[str, Any] = {"app": "monday", "type": kind}
    if kind == "create_pulse":
        columns = change.value or {}
        event |= {
            "pulseId": item_id,
            "pulseName": change.item_name,
            "boardId": board_id,
            **GROUP,
            "isTopGroup": True,
            "columnValues": {
                column_id: render(board.columns.get(column_id), stored, change.at)
                for column_id, stored in columns.items()
            },
        }
    elif kind == "update_column_value":
        column = board.columns.get(change.column_id or "")
        event |= {
            "pulseId": item_id,
            "pulseName": change.item_name,
            "boardId": board_id,
            "groupId": GROUP["groupId"],
            "columnId": change.column_id,
            "columnType": column_type(column),
            "columnTitle": column.title if column else change.column_id,
            "value": render(column, change.value, change.at),
            "previousValue": render(column, change.previous, change.at),
            "changedAt": change.at,
            "isTopGroup": True,
        }
    elif kind == "update_name":
        event |= {
            "pulseId": item_id,
            "boardId": board_id,
            "groupId": GROUP["groupId"],
            "value": {"name": change.value},
            "previousValue": {"name": change.previous},
        }
    else:  # archive, delete, restore: itemId, not pulseId
        event |= {"itemId": item_id, "itemName": change.item_name, "boardId": board_id}
        if kind == "restore_pulse":
            event["value"] = {"state": _STATE_CODES["active"], "is_undo": False}
            event["previousValue"] = {"state": _STATE_CODES[str(change.previous)]}
    event |= {
        "userId": change.user_id,
        "originalTriggerUuid": None,
        "triggerTime": iso(change.at),
        "subscriptionId": int(webhook.id),
        "triggerUuid": uuid.uuid4().hex,
        "isRetry": False,
    }
    return event


def activity_log(change: Change, board: Board) -> dict[str, Any]:
    """One ActivityLogType: `data` is a JSON string, `created_at` 100-ns ticks (17 digits)."""
    data: dict[str, Any] = {
        "board_id": int(change.board_id),
        "group_id": GROUP["groupId"],
        "is_top_group": True,
        "pulse_id": int(change.item_id),
        "pulse_name": change.item_name,
    }
    if change.kind == "value":
        column = board.columns.get(change.column_id or "")
        data |= {
            "column_id": change.column_id,
            "column_type": column_type(column),
            "column_title": column.title if column else change.column_id,
            "value": render(column, change.value, change.at),
            "previous_value": render(column, change.previous, change.at),
        }
    elif change.kind == "name":
        data |= {"value": {"name": change.value}, "previous_value": {"name": change.previous}}
    elif change.kind == "state":
        data |= {
            "value": {"state": _STATE_CODES[str(change.value)]},
            "previous_value": {"state": _STATE_CODES[str(change.previous)]},
        }
    return {
        "id": change.id,
        "event": event_type(change),
        "entity": "pulse",
        "user_id": str(change.user_id),
        "created_at": ticks(change.at),
        "data": json.dumps(data),
        "account_id": str(ACCOUNT_ID),
    }


def column_type(column: Column | None) -> str | None:
    """A column's type as payloads name it."""
    return None if column is None else _LEGACY_TYPES.get(column.type, column.type)


def render(column: Column | None, stored: Stored | None, at: float) -> Any:
    """A stored value as payloads show it; None when the column is empty."""
    if stored is None or column is None:
        return stored
    changed_at = iso(at)
    match column.type:
        case "text":
            return {"value": stored}
        case "numbers":
            number = float(stored)
            return {"value": int(number) if number.is_integer() else number, "unit": None}
        case "status":
            label = values.text(column, stored)
            return {
                "label": {
                    "index": stored["index"],
                    "text": label,
                    "style": {"color": _STATUS_COLORS.get(label, "#c4c4c4")},
                    "is_done": label == "Done",
                },
                "post_id": None,
            }
        case "dropdown":
            names = {o["id"]: o["name"] for o in column.settings.get("labels", [])}
            return {"chosenValues": [{"id": i, "name": names.get(i)} for i in stored["ids"]]}
        case "board_relation":
            # Monday does not keep the order of linkedPulseIds (its support, community thread
            # 84908): a fixed shuffle, so that a client comparing lists meets it every time.
            links = sorted(stored["linkedPulseIds"], key=lambda link: _scramble(link))
            return {"linkedPulseIds": links, "changed_at": changed_at}
        case _:  # long_text, email, phone, date, link: the stored JSON plus changed_at
            return {**stored, "changed_at": changed_at}


def _scramble(link: dict[str, int]) -> int:
    return (int(link["linkedPulseId"]) * 2_654_435_761) % 2**32  # Knuth's multiplicative hash


def iso(at: float) -> str:
    """Epoch seconds as Monday's ISO timestamps with milliseconds."""
    moment = dt.datetime.fromtimestamp(at, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def ticks(at: float) -> str:
    """Epoch seconds as activity logs' created_at: a count of 100-ns ticks."""
    return str(round(at * 10_000_000))
