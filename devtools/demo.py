"""``make demo``: npd-sync end to end, on a machine with nothing set up but Python.

Printing each step as it goes, it

1. starts a throwaway PostgreSQL of its own (``devtools.pgcluster``, in a temporary directory;
   a server already running on the machine is never used or touched),
2. creates the sample ``contacts`` and ``organizations`` tables (``sample_schema.sql``), and a
   mapping file: the built-in mapping, with each contact's ``organization_id`` as a link from
   its item to its organization's (a connect-boards column),
3. runs the real ``npd-sync install``,
4. starts the Monday emulator (``npd-sync emulator``) on a free port,
5. starts the real listener (``npd-sync listen``) with its webhook receiver, and registers the
   webhooks (``npd-sync webhooks install``),
6. writes rows with plain SQL, as the application would, and waits for the listener,
7. updates a row and deletes a synced one, and waits again,
8. shows each table next to what landed on its Monday board, and checks it,
9. edits a phone number on the board as a person would, and waits for it in the row,
10. changes one field on both sides while Monday's deliveries are held back: the listener
    finds the conflict before it pushes; ``npd-sync conflicts`` shows it, and ``conflicts
    resolve`` settles it,
11. starts the web console (``npd-sync console``) and prints its address; on a terminal it
    keeps everything running until Ctrl-C, so that you can look around (``--no-wait``: not
    even then),
12. stops everything it started and removes what it wrote: also on failure, Ctrl-C or SIGTERM.

Exit status: 0 when everything synced as expected; 1 when not (the reason is printed, then the
end of the listener's log); 130 when interrupted before the end.

    python -m devtools.demo [--no-wait]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeVar

import asyncpg

from devtools import pgcluster

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "devtools" / "sample_schema.sql"

TOKEN = "demo-token"  # noqa: S105 (the emulator's token, printed on purpose)
PLAN = "standard"  # the demo's few requests are far inside its rate limits
BOARDS = {"contacts": "1000000001", "organizations": "1000000002"}

START_TIMEOUT = 20.0  # seconds for a subprocess to come up
SYNC_TIMEOUT = 30.0  # seconds for the listener to sync one round of writes
STOP_TIMEOUT = 15.0  # seconds for a subprocess to exit after SIGTERM
POLL_INTERVAL = 0.05
LOG_TAIL_LINES = 30
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

T = TypeVar("T")

# (comment, statement): what the application does, in plain SQL. Phones must be valid numbers
# for their country, as Monday (and the emulator) check them with libphonenumber; these are
# from the ranges set aside for drama (Ofcom, ACMA, ARCEP).
WRITES = (
    (
        "three organizations",
        "INSERT INTO organizations (name, address_line1, city, postal_code, country, notes)"
        " VALUES\n"
        "  ('Analytical Engines Ltd', '12 St James''s Square', 'London', 'SW1Y 4LB',"
        " 'United Kingdom', 'Key account since 2019'),\n"
        "  ('Harbour Bridge Consulting', '1 Macquarie Street', 'Sydney', '2000', 'Australia',"
        " NULL),\n"
        "  ('Rive Gauche Logiciels', '8 Rue de Rivoli', 'Paris', '75004', 'France',"
        " 'Prefers email')",
    ),
    (
        "three contacts at those organizations (one without a phone number)",
        "INSERT INTO contacts (first_name, last_name, email, phone, role_title, organization_id)"
        " VALUES\n"
        "  ('Ada', 'Lovelace', 'ada@analytical-engines.example', '+44 20 7946 0958',"
        " 'Head of Research', 1),\n"
        "  ('Grace', 'Hopper', 'grace@harbour-bridge.example', '+61 2 5550 1234',"
        " 'Engineering Lead', 2),\n"
        "  ('Hedy', 'Lamarr', 'hedy@rive-gauche.example', NULL, 'Inventor', 3)",
    ),
    (
        "a contact who opted out: sync_enabled = false, so never pushed",
        "INSERT INTO contacts (first_name, last_name, email, sync_enabled)\n"
        "  VALUES ('Alan', 'Turing', 'alan@example.org', false)",
    ),
    (
        "a contact kept up to date on Monday: MONDAY_TO_NPD, so not pushed from here",
        "INSERT INTO contacts (first_name, last_name, email, sync_direction)\n"
        "  VALUES ('Katherine', 'Johnson', 'katherine@example.org', 'MONDAY_TO_NPD')",
    ),
)
UPDATED_EMAIL, UPDATED_ROLE = "hedy@rive-gauche.example", "Chief Inventor"
# Inbound: a sales rep fixes Grace's phone on the board; Ada's title changes on both sides.
PHONE_EMAIL, BOARD_PHONE = "grace@harbour-bridge.example", "+61 2 5550 9876"
CONFLICT_EMAIL = "ada@analytical-engines.example"
BOARD_ROLE, DATABASE_ROLE = "Countess of Lovelace", "Chief Analyst"
DELETED_ORGANIZATION = "Harbour Bridge Consulting"
CHANGES = (
    (
        "Hedy gets a phone number and a new title: her item is updated",
        f"UPDATE contacts SET phone = '+33 1 99 00 12 34', role_title = '{UPDATED_ROLE}'\n"
        f"  WHERE email = '{UPDATED_EMAIL}'",
    ),
    (
        "an organization is deleted: its item is archived, and its contact's link cleared",
        f"DELETE FROM organizations WHERE name = '{DELETED_ORGANIZATION}'",
    ),
)

# Each table's rows as the tables below show them; `name` as the default mapping builds it.
ROWS = {
    "contacts": "SELECT id, trim(concat_ws(' ', first_name, last_name)) AS name, sync_enabled,"
    " sync_direction, sync_status, monday_id, sync_error,"
    " (SELECT o.monday_id FROM organizations o WHERE o.id = organization_id) AS company"
    " FROM contacts ORDER BY id",
    "organizations": "SELECT id, name, sync_enabled, sync_direction, sync_status, monday_id,"
    " sync_error FROM organizations ORDER BY id",
}
PUSHED_DIRECTIONS = ("BIDIRECTIONAL", "NPD_TO_MONDAY")
# The built-in mapping, and the contacts' organization as a connect-boards column ("company")
# linking each contact's item to its organization's item.
MAPPING = """\
[tables.contacts]
name = "{first_name} {last_name}"
columns.email = { type = "email", source = "email" }
columns.phone = { type = "phone", source = "phone" }
columns.text = { type = "text", source = "role_title" }
columns.long_text = { type = "long_text", source = "notes" }

[tables.contacts.columns.company]
type = "board_relation"
source = "organization_id"
references = "organizations"

[tables.organizations]
name = "{name}"
columns.long_text = { type = "long_text", source = "notes" }
columns.address = { type = "text", separator = ", ", sources = [
    "address_line1", "address_line2", "city", "state", "postal_code", "country"] }
"""


class DemoError(Exception):
    """Something did not work as the demo expects; the message says what."""


# What makes the demo fail with a message rather than a traceback (those are for bugs).
FAILURES = (
    DemoError,
    pgcluster.ClusterError,
    OSError,  # urllib's URLError among them
    subprocess.SubprocessError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


# --- output -------------------------------------------------------------------------------


def heading(text: str) -> None:
    print(f"\n{text}")


def say(text: str = "", indent: int = 3) -> None:
    """Print ``text`` indented under the current heading."""
    for line in text.splitlines() or [""]:
        print(f"{' ' * indent}{line}".rstrip())


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain-text columns, each as wide as its widest cell."""
    widths = [max(len(cells[i]) for cells in (headers, *rows)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = [h if h == "|" else "-" * w for h, w in zip(headers, widths, strict=True)]
    return [line(headers), line(rule), *(line(r) for r in rows)]


def shown_value(value: Any) -> str:
    """A column value, as Monday stores it (JSON), in the short form a person reads."""
    if isinstance(value, dict):
        if "linkedPulseIds" in value:
            return "-> " + ", ".join(f"item {p['linkedPulseId']}" for p in value["linkedPulseIds"])
        if "phone" in value:
            return f"{value['phone']} ({value.get('countryShortName', '?')})"
        for key in ("email", "url", "text", "date"):
            if key in value:
                return str(value[key])
    return value if isinstance(value, str) else json.dumps(value)


# --- what the demo runs -------------------------------------------------------------------


class Database:
    """A blocking face on one asyncpg connection, for a demo that is a plain script.

    A plain connection, as the application's would be: its writes are captured.
    """

    def __init__(self, dsn: str) -> None:
        self._runner = asyncio.Runner()
        try:
            self._conn: asyncpg.Connection = self._runner.run(asyncpg.connect(dsn))
        except BaseException:
            self._runner.close()
            raise

    def execute(self, sql: str) -> str:
        """Run ``sql``; its command tag (``INSERT 0 3``), as psql prints it."""
        return self._runner.run(self._conn.execute(sql))

    def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        return self._runner.run(self._conn.fetch(sql, *args))

    def fetchval(self, sql: str, *args: object) -> Any:
        return self._runner.run(self._conn.fetchval(sql, *args))

    def fetchrow(self, sql: str, *args: object) -> asyncpg.Record | None:
        return self._runner.run(self._conn.fetchrow(sql, *args))

    def close(self) -> None:
        try:
            self._runner.run(self._conn.close(timeout=5))
        finally:
            self._runner.close()


class Background:
    """A subprocess running in the background, its output going to a log file."""

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str], workdir: Path):
        self.name = name
        self.log_path = workdir / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 (no shell; our own arguments)
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,  # not the user's: a .env there must not change the demo
                env=env,
                # A session of its own: a Ctrl-C in the terminal reaches only the demo, which
                # then stops everything in order (the listener before what it talks to).
                start_new_session=True,
            )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def check_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise DemoError(f"the {self.name} exited with code {code}")

    def wait_for_log(self, pattern: str) -> re.Match[str]:
        """The first match of ``pattern`` (multi-line mode) in the log, once there is one."""

        def found() -> re.Match[str] | None:
            self.check_running()
            return re.search(pattern, self.log(), re.MULTILINE)

        return poll(found, START_TIMEOUT, f"the {self.name} did not log {pattern!r}")

    def tail(self) -> str:
        lines = self.log().splitlines()[-LOG_TAIL_LINES:]
        return "\n".join(f"  {line}" for line in lines) or "  (nothing)"

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it is still there after STOP_TIMEOUT; its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                return self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def poll(probe: Callable[[], T | None], timeout: float, failure: str) -> T:
    """Call ``probe`` until it returns something, or raise DemoError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (result := probe()) is None:
        if time.monotonic() > deadline:
            raise DemoError(f"{failure} within {timeout:g} s")
        time.sleep(POLL_INTERVAL)
    return result


def npd_sync_command() -> list[str]:
    """The ``npd-sync`` console script next to this Python, else ``python cli.py``."""
    script = Path(sys.executable).with_name("npd-sync")
    return [str(script)] if script.is_file() else [sys.executable, str(ROOT / "cli.py")]


def pushed(row: asyncpg.Record) -> bool:
    """The rule for a row to go to Monday (NULL counts as false / NONE)."""
    return bool(row["sync_enabled"]) and row["sync_direction"] in PUSHED_DIRECTIONS


# --- the demo -----------------------------------------------------------------------------


class Demo:
    """The demo's steps and what they started; leaving the ``with`` block stops it all."""

    def __init__(self, workdir: Path, *, wait: bool = False) -> None:
        self.workdir = workdir
        self.wait = wait  # keep everything running after the last step, until Ctrl-C
        # The environment of the npd-sync commands. Nothing of the user's DATABASE_URL,
        # MONDAY_* or NPD_SYNC_CONFIG: the demo must never reach a real database or board.
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "NPD_SYNC_CONFIG") and not k.startswith("MONDAY_")
        }
        self.npd_sync = npd_sync_command()
        self.cluster: pgcluster.Cluster | None = None
        self.db: Database | None = None
        self.psql: Path | None = None
        self.emulator: Background | None = None
        self.listener: Background | None = None
        self.console: Background | None = None
        self.emulator_url = ""

    def run(self) -> None:
        self.start_postgres()
        self.create_tables()
        self.install()
        self.start_emulator()
        self.start_listener()

        heading("6. The application writes rows (plain SQL; triggers record each change)")
        self.run_statements(WRITES)
        self.wait_until_synced()

        heading("7. The application updates a row and deletes a synced one")
        db = self.database()
        deleted = db.fetchval(
            "SELECT monday_id FROM organizations WHERE name = $1", DELETED_ORGANIZATION
        )
        updated = db.fetchval("SELECT monday_id FROM contacts WHERE email = $1", UPDATED_EMAIL)
        self.run_statements(CHANGES)
        self.wait_until_synced(archived=[deleted], roles={updated: UPDATED_ROLE})

        heading("8. The database rows, next to what landed on the Monday boards")
        self.show_boards()

        self.board_edit()
        self.conflict()
        self.start_console()
        if self.wait:
            say("open it in a browser; press Ctrl-C to stop everything")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print()

    # -- steps

    def start_postgres(self) -> None:
        heading("1. Starting a throwaway PostgreSQL (a server of its own, on a free port)")
        # Assigned before start(): whatever a failed start leaves behind, stop() removes.
        self.cluster = pgcluster.Cluster(settings=pgcluster.FAST_SETTINGS)
        say(f"data directory: {self.cluster.directory}")
        self.cluster.start()
        binaries = self.cluster.binaries
        assert binaries is not None  # known once started
        self.db = Database(self.cluster.dsn())
        version = self.db.fetchval("SHOW server_version")
        say(f"PostgreSQL {version}, {binaries.kind} binaries from {binaries.bindir}")
        say(f"listening at {self.cluster.dsn()}")
        psql = binaries.bindir / "psql"
        self.psql = psql if psql.is_file() else None
        if self.psql is None:
            say(f"(no psql in {binaries.bindir}: the demo's SQL goes through asyncpg)")

    def create_tables(self) -> None:
        schema = SCHEMA.relative_to(ROOT)
        heading(f"2. Creating the application's tables ({schema})")
        if self.psql is not None:
            say(f"$ psql -f {schema}")
            say(self.run_psql("-f", str(SCHEMA)), indent=5)
        else:
            say("(the file's SQL, through asyncpg)")
            say(self.database().execute(SCHEMA.read_text()), indent=5)

    def install(self) -> None:
        heading("3. Installing npd-sync: its own schema, and capture triggers on the tables")
        assert self.cluster is not None
        mapping = self.workdir / "mapping.toml"
        mapping.write_text(MAPPING)
        say(f"(the mapping: the built-in one, and {mapping.name}'s `company` column linking")
        say(" each contact's item to its organization's item)")
        self.export(DATABASE_URL=self.cluster.dsn(), NPD_SYNC_CONFIG=str(mapping))
        self.npd_sync_run("install")

    def start_emulator(self) -> None:
        heading("4. Starting the Monday emulator (a local stand-in for Monday's GraphQL API)")
        self.export(
            MONDAY_CONTACTS_BOARD_ID=BOARDS["contacts"],
            MONDAY_ORGANIZATIONS_BOARD_ID=BOARDS["organizations"],
        )
        # Port 0: it takes a free port and names it in its first line.
        args = ["emulator", "--port", "0", "--plan", PLAN, "--token", TOKEN]
        self.emulator = Background("emulator", [*self.npd_sync, *args], self.env, self.workdir)
        say(f"$ npd-sync {shlex.join(args)} &    # pid {self.emulator.process.pid}")
        banner = self.emulator.wait_for_log(r"^Monday emulator at (http://\S+/v2)\b.*$")
        self.emulator_url = banner.group(1)
        say(banner.group(0), indent=5)

    def start_listener(self) -> None:
        heading(
            "5. Starting the listener (the daemon that pushes each change to Monday, and takes"
            " the board's edits back through webhooks)"
        )
        port = free_port()
        # In production NPD_SYNC_PUBLIC_URL is the address a reverse proxy serves the
        # receiver at; here Monday (the emulator) reaches it directly.
        self.export(
            MONDAY_API_URL=self.emulator_url, MONDAY_API_KEY=TOKEN,
            NPD_SYNC_PUBLIC_URL=f"http://127.0.0.1:{port}",
        )  # fmt: skip
        # Text logs: the log file is for a person to read when something goes wrong.
        listen = ["listen", "--webhook-port", str(port)]
        args = [*self.npd_sync, "--log-format", "text", *listen]
        self.listener = Background("listener", args, self.env, self.workdir)
        say(f"$ npd-sync {shlex.join(listen)} &    # pid {self.listener.process.pid}")
        say(self.listener.wait_for_log(r"^.*listener\.started.*$").group(0), indent=5)
        # Monday checks the URL with a challenge before it creates a webhook.
        self.npd_sync_run("webhooks", "install")

    def board_edit(self) -> None:
        heading("9. Someone fixes a phone number on the board (inbound: Monday to PostgreSQL)")
        item = self.database().fetchval(
            "SELECT monday_id FROM contacts WHERE email = $1", PHONE_EMAIL
        )
        phone = {"phone": BOARD_PHONE, "countryShortName": "AU"}
        say(f"(a sales rep, in Monday's web page: item {item}, phone {BOARD_PHONE})")
        self.edit_item(item, {"phone": phone})
        say("Monday sends a webhook; the listener reads the item and writes the row ...")
        began = time.monotonic()
        expected = "+61255509876"
        query = "SELECT phone FROM contacts WHERE email = $1"
        poll(
            lambda: self.database().fetchval(query, PHONE_EMAIL) == expected or None,
            SYNC_TIMEOUT, "the board's phone number never reached the row",
        )  # fmt: skip
        say(f"in the row {time.monotonic() - began:.2f} s later:")
        say(f'$ psql -c "{query.replace("$1", repr(PHONE_EMAIL))}"')
        say(f"phone = {expected}", indent=5)

    def conflict(self) -> None:
        heading("10. Both sides change the same field: a conflict, not a silent overwrite")
        db = self.database()
        item = db.fetchval("SELECT monday_id FROM contacts WHERE email = $1", CONFLICT_EMAIL)
        key = db.fetchval("SELECT id FROM contacts WHERE email = $1", CONFLICT_EMAIL)
        say("(Monday's deliveries are held back, as when the receiver is unreachable)")
        self.control("webhooks/faults", {"paused": True})
        say(f"(someone on the board: item {item}, text = {BOARD_ROLE!r})")
        self.edit_item(item, {"text": BOARD_ROLE})
        sql = f"UPDATE contacts SET role_title = '{DATABASE_ROLE}' WHERE id = {key}"
        self.run_statements([("the application changes the same field", sql)])
        say("the listener reads the item before it pushes: Monday's side changed too ...")
        status = "SELECT sync_status FROM contacts WHERE id = $1"
        poll(
            lambda: db.fetchval(status, key) == "CONFLICT" or None,
            SYNC_TIMEOUT, "the conflict was not found",
        )  # fmt: skip
        self.npd_sync_run("conflicts")
        self.npd_sync_run(
            "conflicts", "resolve", "--table", "contacts", "--id", str(key),
            "--field", "role_title", "--take", "monday",
        )  # fmt: skip
        self.control("webhooks/faults", {})
        role = "SELECT role_title, sync_status FROM contacts WHERE id = $1"
        poll(
            lambda: tuple(db.fetchrow(role, key) or ()) == (BOARD_ROLE, "SYNCED") or None,
            SYNC_TIMEOUT, "the resolution never reached the row",
        )  # fmt: skip
        say(f"the row now says role_title = {BOARD_ROLE!r}, SYNCED; the value that lost,")
        say(f"{DATABASE_ROLE!r}, is kept: `npd-sync conflicts --all` shows it")

    def start_console(self) -> None:
        heading(
            "11. Starting the web console (what the sync is doing, failed rows, conflicts, one"
            " row's story)"
        )
        args = ["console", "--port", "0"]
        self.console = Background("console", [*self.npd_sync, *args], self.env, self.workdir)
        say(f"$ npd-sync {shlex.join(args)} &    # pid {self.console.process.pid}")
        url = self.console.wait_for_log(r"^npd-sync console at (http://\S+)$").group(1)
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (http://127.0.0.1)
            page = response.read().decode()
        if '<h3 id="table-1">contacts</h3>' not in page:
            raise DemoError(f"the console at {url} does not show the tables")
        say(f"the console is at {url}", indent=5)

    def run_statements(self, statements: Sequence[tuple[str, str]]) -> None:
        for comment, sql in statements:
            say(f"-- {comment}")
            say(f"{sql};")
            if self.psql is not None:
                say(self.run_psql("-c", sql), indent=5)
            else:
                say(self.database().execute(sql), indent=5)

    def wait_until_synced(
        self, archived: Sequence[str] = (), roles: Mapping[str, str] | None = None
    ) -> None:
        """Wait until every row to push is SYNCED with an item, the ``archived`` items are,
        and the contacts' items show the ``roles`` (their `text` column) given by item id."""
        say("waiting for the listener ...")
        began = time.monotonic()
        poll(lambda: self.synced(archived, roles or {}), SYNC_TIMEOUT, "not all synced")
        say(f"synced in {time.monotonic() - began:.2f} s")

    def synced(self, archived: Sequence[str], roles: Mapping[str, str]) -> bool | None:
        """True once all is synced, else None; raises when waiting longer is pointless."""
        assert self.listener is not None
        self.listener.check_running()
        items = {item["id"]: item for board in self.boards() for item in board["items"]}
        for table in BOARDS:
            for row in self.database().fetch(ROWS[table]):
                if not pushed(row):
                    continue
                if row["sync_status"] == "FAILED":
                    raise DemoError(f"{table} {row['id']} FAILED: {row['sync_error']}")
                if row["sync_status"] != "SYNCED" or row["monday_id"] not in items:
                    return None
                if table == "contacts" and linked(items[row["monday_id"]]) != _ids(row["company"]):
                    return None  # its link to its organization's item is still to come
        if any(items.get(i, {}).get("state") != "archived" for i in archived):
            return None
        for item_id, role in roles.items():
            if items.get(item_id, {}).get("column_values", {}).get("text") != role:
                return None
        return True

    def show_boards(self) -> None:
        boards = {board["id"]: board for board in self.boards()}
        problems: list[str] = []
        for number, (table, board_id) in enumerate(BOARDS.items()):
            board = boards[board_id]
            if number:
                say()
            say(f'{table}  ->  Monday board {board_id} "{board["name"]}"')
            for line in self.board_table(table, board, problems):
                say(line, indent=5)
        if problems:
            raise DemoError("; ".join(problems))

    def board_table(self, table: str, board: dict[str, Any], problems: list[str]) -> list[str]:
        """Each row of ``table`` next to its item (matched by the npd_id column, the
        idempotency key), the item's column values on the line below, and the items whose
        row was deleted among them. Adds to ``problems`` what is not as the demo expects."""
        items = {item["column_values"].get("npd_id"): item for item in board["items"]}
        columns = [c["id"] for c in board["columns"] if c["id"] != "name"]
        lines: list[tuple[str, list[str], str]] = []  # (id, cells, values)
        for row in self.database().fetch(ROWS[table]):
            cells = [str(row["id"]), row["name"], str(row["sync_enabled"]).lower()]
            cells += [row["sync_direction"], row["sync_status"], row["monday_id"] or "-", "|"]
            item = items.pop(str(row["id"]), None)
            if item is None:
                if not row["sync_enabled"]:
                    why = "sync_enabled is false"
                else:
                    why = f"sync_direction is {row['sync_direction']}"
                lines.append((cells[0], [*cells, "-", "-", f"(not pushed: {why})"], ""))
            else:
                lines.append((cells[0], [*cells, *item_cells(item)], values(item, columns)))
            found = "no item" if item is None else f"item {item['id']} {item['state']}"
            if pushed(row) != found.endswith(" active"):
                expected = "an active item" if pushed(row) else "no item"
                problems.append(f"{table} {row['id']}: expected {expected}, found {found}")
        for npd_id, item in items.items():
            cells = [str(npd_id), "(row deleted)", "", "", "", "", "|", *item_cells(item)]
            lines.append((cells[0], cells, values(item, columns)))
            if item["state"] != "archived":
                problems.append(f"{table} {npd_id} was deleted but item {item['id']} is not")
        headers = ["id", "name", "sync_enabled", "sync_direction", "sync_status", "monday_id"]
        headers += ["|", "item", "state", "item name"]
        lines.sort(key=lambda line: int(line[0]) if line[0].isdigit() else 0)
        table_lines = format_table(headers, [cells for _, cells, _ in lines])
        output = table_lines[:2]
        for (_, _, shown), text in zip(lines, table_lines[2:], strict=True):
            output.append(text)
            if shown:
                output.append(f"{' ' * 6}{shown}")
        return output

    # -- helpers

    def npd_sync_run(self, *args: str) -> None:
        """Run one npd-sync command, as a person would, and show what it printed."""
        say(f"$ npd-sync {shlex.join(args)}")
        result = subprocess.run(  # noqa: S603 (no shell; our own arguments)
            [*self.npd_sync, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env=self.env,
            timeout=60,
            check=False,
        )
        say((result.stdout + result.stderr).strip(), indent=5)
        if result.returncode != 0:
            raise DemoError(f"npd-sync {args[0]} exited with code {result.returncode}")

    def edit_item(self, item_id: str, column_values: dict[str, Any]) -> None:
        """Change an item as a person on the board would (the emulator's control endpoint)."""
        self.control(f"items/{item_id}", {"column_values": column_values})

    def control(self, path: str, body: dict[str, Any]) -> None:
        url = self.emulator_url.removesuffix("/v2") + f"/control/{path}"
        request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1)
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            response.read()

    def database(self) -> Database:
        assert self.db is not None, "PostgreSQL is not started"
        return self.db

    def export(self, **variables: str) -> None:
        """Set variables for the npd-sync commands, and show them as a shell would."""
        self.env.update(variables)
        say("$ export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items()))

    def run_psql(self, *args: str) -> str:
        """Run the cluster's own psql, as a person would; what it printed."""
        assert self.psql is not None
        assert self.cluster is not None
        result = subprocess.run(  # noqa: S603 (no shell; our own arguments)
            [str(self.psql), "-X", "-v", "ON_ERROR_STOP=1", "-d", self.cluster.dsn(), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise DemoError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def boards(self) -> list[dict[str, Any]]:
        """The emulator's boards with their items, from its control endpoint (a window on
        the emulator, not part of Monday's API)."""
        url = self.emulator_url.removesuffix("/v2") + "/control/state"
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (http://127.0.0.1)
            boards: list[dict[str, Any]] = json.load(response)["boards"]
        return boards

    # -- stopping

    def __enter__(self) -> Demo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A second Ctrl-C must not cut the clean-up short and leave a server running.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
        try:
            problems = self.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if problems and exc_type is None:
            raise DemoError("; ".join(problems))

    def stop(self) -> list[str]:
        """Stop everything started, the listener first; what did not go as it should."""
        heading("12. Stopping everything the demo started")
        problems = []
        for process in (self.console, self.listener, self.emulator):
            if process is not None:
                code = process.stop()
                say(f"{process.name} stopped (exit code {code})")
                if code != 0:
                    problems.append(f"the {process.name} exited with code {code}")
        if self.db is not None:
            with contextlib.suppress(Exception):  # the server goes next anyway
                self.db.close()
        if self.cluster is not None:
            try:
                self.cluster.destroy()
            except (pgcluster.ClusterError, OSError) as exc:
                problems.append(f"PostgreSQL: {exc}")
            else:
                say(f"PostgreSQL stopped, {self.cluster.directory} removed")
        return problems


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def linked(item: dict[str, Any]) -> list[str]:
    """The items an item's `company` column links to, as the emulator keeps them."""
    stored = item.get("column_values", {}).get("company") or {}
    return sorted(str(p["linkedPulseId"]) for p in stored.get("linkedPulseIds", []))


def _ids(item_id: str | None) -> list[str]:
    return [item_id] if item_id else []


def item_cells(item: dict[str, Any]) -> list[str]:
    return [item["id"], item["state"], item["name"]]


def values(item: dict[str, Any], columns: Sequence[str]) -> str:
    """The item's non-empty column values, in the board's column order."""
    stored = item["column_values"]
    return "; ".join(f"{c}: {shown_value(stored[c])}" for c in columns if stored.get(c))


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="leave once the console's address is printed, even on a terminal",
    )
    options = parser.parse_args(argv)
    # Keep things running only for someone who can press Ctrl-C (not a test, not CI).
    wait = not options.no_wait and sys.stdin.isatty() and sys.stdout.isatty()
    # Line by line, so that the output interleaves right with make's and reads live in a pipe.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    # SIGTERM (a CI timeout, say) cleans up as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupted)
    # libpq's PG* variables would point psql and asyncpg elsewhere than our own server.
    for name in [n for n in os.environ if n.startswith("PG")]:
        del os.environ[name]
    began = time.monotonic()
    print("npd-sync demo: PostgreSQL rows -> npd-sync listen -> a (local) Monday.com board")
    workdir = Path(tempfile.mkdtemp(prefix="npd-sync-demo-"))
    demo = Demo(workdir, wait=wait)
    try:
        with demo:
            demo.run()
    except FAILURES as exc:
        why = str(exc) if isinstance(exc, DemoError) else f"{type(exc).__name__}: {exc}"
        print(f"\nDEMO FAILED: {why}", file=sys.stderr)
        # The listener's log says why rows did not sync; before it runs, the emulator's.
        process = demo.listener or demo.emulator
        if process is not None:
            print(f"last lines of the {process.name}'s log:", file=sys.stderr)
            print(process.tail(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: everything the demo started is stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nDone in {time.monotonic() - began:.1f} s. Every row to push is SYNCED, each")
    print("contact's item links to its organization's, the skipped rows have no item, the")
    print("deleted row's item is archived (and its contact's link cleared), the board's edit")
    print("reached its row, and the conflict was found, kept and resolved.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
