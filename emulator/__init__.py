"""A local monday.com GraphQL API for tests, benchmarks and trying npd-sync out.

    async with Emulator(token="t") as emu:      # boards from the default mapping
        url = emu.url                           # http://127.0.0.1:<port>/v2
        ...
        emu.items("1000000001")                 # what the board holds now
        emu.edit_item(item_id, {"phone": ...})  # as a person would: webhooks hear of it
        await emu.settle_webhooks()             # every event delivered (or given up)

    # A Standard account (1,000 calls a day) with 4 calls left, a day lasting 10 minutes:
    async with Emulator(limits=AccountLimits.standard(), clock=ScaledClock(144)) as emu:
        emu.set_daily_calls_used(996)
        ...
        emu.daily_calls_used                    # what Monday counted today (996.0 + ...)

See `server.Emulator` for the Python API and `control` for the HTTP control endpoints.

A development and demo tool, not part of the product: it lives in the source checkout (not in
the wheel), needs the `emulator` extra (graphql-core), and `npd-sync emulator` imports it only
when run. It uses the product's mapping to build its boards, nothing else.
"""

from emulator.clock import Clock, ManualClock, ScaledClock
from emulator.conformance import (
    OfficialSchemaMissing,
    official_schema_path,
    validate_against_official,
)
from emulator.daily import Usage
from emulator.errors import ApiError
from emulator.events import API_USER_ID, PERSON_USER_ID
from emulator.faults import Faults
from emulator.limits import AccountLimits
from emulator.model import Board, Column, Item, Webhook
from emulator.records import Counters, RequestRecord
from emulator.serve import EmulatorOptions, serve
from emulator.server import DEFAULT_LIMITS, DEFAULT_TOKEN, Emulator
from emulator.state import StateFileError
from emulator.webhooks import Delivery, WebhookFaults

__all__ = [
    "API_USER_ID",
    "DEFAULT_LIMITS",
    "DEFAULT_TOKEN",
    "PERSON_USER_ID",
    "AccountLimits",
    "ApiError",
    "Board",
    "Clock",
    "Column",
    "Counters",
    "Delivery",
    "Emulator",
    "EmulatorOptions",
    "Faults",
    "Item",
    "ManualClock",
    "OfficialSchemaMissing",
    "RequestRecord",
    "ScaledClock",
    "StateFileError",
    "Usage",
    "Webhook",
    "WebhookFaults",
    "official_schema_path",
    "serve",
    "validate_against_official",
]
