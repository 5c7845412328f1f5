"""A local monday.com GraphQL API for tests, benchmarks and trying npd-sync out.

    async with Emulator(token="t") as emu:      # boards from the default mapping
        url = emu.url                           # http://127.0.0.1:<port>/v2
        ...
        emu.items("1000000001")                 # what the board holds now

See `server.Emulator` for the Python API and `control` for the HTTP control endpoints.
"""

from listener.emulator.clock import Clock, ManualClock
from listener.emulator.conformance import (
    OfficialSchemaMissing,
    official_schema_path,
    validate_against_official,
)
from listener.emulator.errors import MondayError
from listener.emulator.faults import Faults
from listener.emulator.limits import Limits
from listener.emulator.model import Board, Column, Item
from listener.emulator.records import Counters, RequestRecord
from listener.emulator.serve import EmulatorOptions, serve
from listener.emulator.server import DEFAULT_TOKEN, Emulator
from listener.emulator.state import StateFileError

__all__ = [
    "DEFAULT_TOKEN",
    "Board",
    "Clock",
    "Column",
    "Counters",
    "Emulator",
    "EmulatorOptions",
    "Faults",
    "Item",
    "Limits",
    "ManualClock",
    "MondayError",
    "OfficialSchemaMissing",
    "RequestRecord",
    "StateFileError",
    "official_schema_path",
    "serve",
    "validate_against_official",
]
