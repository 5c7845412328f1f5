"""The plumbing every figure shares: the cluster and its databases, the in-process emulator,
the `npd-sync listen` subprocess, /proc sampling and small statistics.

Everything runs on one event loop (uvloop when available, as the CLI does): the emulator
serves from it, the figures drive PostgreSQL and their subprocesses from it. Nothing here
blocks the loop for long, so that the emulator answers promptly while a figure waits.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import dataclasses
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler

from devtools import pgcluster
from emulator import AccountLimits, Emulator, Faults
from emulator.clock import Clock, system_clock
from listener import db, settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SCHEMA = (ROOT / "devtools" / "sample_schema.sql").read_text()
TOKEN = "bench-token"  # noqa: S105 - the emulator's token, not a secret
CONTACTS_BOARD = "1000000001"
ORGANIZATIONS_BOARD = "1000000002"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Databases every figure clones from: the sample schema alone, and the same with
# `npd-sync install` run on it.
PLAIN_TEMPLATE = "bench_plain"
INSTALLED_TEMPLATE = "bench_installed"


@dataclass(frozen=True)
class Sizes:
    """How much work each figure does; `QUICK` is for a smoke test, `FULL` for measurements."""

    # P1 and P6 share one pair of databases with this many contacts.
    write_rows: int = 100_000
    p1_slice_seconds: float = 2.0
    p1_pairs: int = 5
    p2_commits: int = 1_000
    p2_rate: float = 50.0
    p2_warmup: int = 25
    p3_rows: int = 20_000
    p3_single_rows: int = 1_000
    p3_runs: int = 3
    p10_rows: int = 10_000
    p5_changes: int = 200_000
    p5_backfill_rows: int = 100_000
    p6_rows: int = 100_000
    p6_pairs: int = 5
    p7_edits: int = 1_000
    p7_warmup: int = 25
    p7_rate: float = 20.0
    p8_items: int = 2_000
    p9_items: int = 10_000
    p15_contacts: int = 10_000
    p15_organizations: int = 1_000
    p16_contacts: int = 100_000


FULL = Sizes()
QUICK = Sizes(
    write_rows=20_000,
    p1_slice_seconds=1.0,
    p1_pairs=1,
    p2_commits=100,
    p2_warmup=5,
    p3_rows=2_000,
    p3_single_rows=100,
    p3_runs=1,
    p10_rows=1_000,
    p5_changes=10_000,
    p5_backfill_rows=5_000,
    p6_rows=20_000,
    p6_pairs=1,
    p7_edits=60,
    p7_warmup=5,
    p8_items=400,
    p9_items=1_000,
    p15_contacts=1_000,
    p15_organizations=100,
    p16_contacts=5_000,
)


# --- statistics ---------------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    """The median, or None for no values."""
    return percentile(values, 50)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The pct-th percentile with linear interpolation (numpy's default), or None."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of ys over xs, or None with fewer than two distinct xs."""
    if len(xs) < 2:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def rounded(values: Sequence[float], digits: int = 3) -> list[float]:
    """Samples for the JSON file, without float noise."""
    return [round(v, digits) for v in values]


# --- processes ----------------------------------------------------------------------------


def proc_cpu(pid: int, *, children: bool = False) -> float | None:
    """CPU seconds (user + system) of a process, plus its reaped children's if asked."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    # After the command name: state is fields[0], utime is field 14 of the man page (index 11).
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def proc_rss_mib(pid: int) -> float | None:
    """Resident set size of a process in MiB, from /proc/PID/status."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children_of(pid: int) -> list[int]:
    """Pids whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.name))
    return found


def child_env(**extra: str) -> dict[str, str]:
    """A clean environment for subprocesses: nothing of the developer's npd-sync or libpq
    settings leaks in (DATABASE_URL, MONDAY_*, PG*)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PG", "MONDAY_", "NPD_SYNC_")) and k != "DATABASE_URL"
    }
    env.update(extra)
    return env


async def run_command(
    args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str, str]:
    """Run a program to completion: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        env=dict(env) if env is not None else child_env(),
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


# --- PostgreSQL ---------------------------------------------------------------------------


class Server:
    """The suite's own throwaway cluster: durable defaults (fsync on), removed at the end."""

    def __init__(self, directory: Path | None = None) -> None:
        # Durable on purpose: P1 and P6 measure commit cost, and fsync is part of it.
        self.cluster = pgcluster.Cluster(directory, settings=dict(pgcluster.DEFAULT_SETTINGS))
        self.version = "?"
        self.settings: dict[str, str] = {}
        self._names = itertools.count(1)

    async def start(self) -> None:
        await asyncio.to_thread(self.cluster.start)
        conn = await asyncpg.connect(self.dsn())
        try:
            self.version = str(await conn.fetchval("SHOW server_version"))
            self.settings = {
                r["name"]: r["setting"]
                for r in await conn.fetch(
                    "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
                    ["fsync", "synchronous_commit", "shared_buffers", "wal_level", "max_wal_size"],
                )
            }
        finally:
            await conn.close()

    async def destroy(self) -> None:
        await asyncio.to_thread(self.cluster.destroy)

    def dsn(self, dbname: str = "postgres") -> str:
        return self.cluster.dsn(dbname)

    @property
    def pgbench(self) -> Path:
        """The cluster's own pgbench (same version as the server)."""
        binaries = self.cluster.binaries
        assert binaries is not None, "the cluster is not started"
        path = binaries.bindir / "pgbench"
        if not path.is_file():
            found = shutil.which("pgbench")
            if found is None:
                raise RuntimeError(f"no pgbench in {binaries.bindir} nor on PATH")
            return Path(found)
        return path

    @property
    def postmaster(self) -> int | None:
        return self.cluster.pid

    def cpu_seconds(self) -> float:
        """CPU used by the whole server so far: the postmaster, its live processes, and the
        backends that have exited (reaped by the postmaster, so in its children's times)."""
        pid = self.postmaster
        if pid is None:
            return 0.0
        total = proc_cpu(pid, children=True) or 0.0
        for child in children_of(pid):
            total += proc_cpu(child) or 0.0
        return total

    async def execute(self, dbname: str, *statements: str) -> None:
        conn = await asyncpg.connect(self.dsn(dbname))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def create_database(self, prefix: str, template: str | None = None) -> str:
        """A new database (cloned from `template`); returns its name."""
        name = f"{prefix}_{next(self._names)}"
        clause = f" TEMPLATE {template}" if template else ""
        await self.execute("postgres", f"CREATE DATABASE {name}{clause}")
        return name

    async def drop_database(self, name: str) -> None:
        await self.execute("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    async def install(self, dbname: str) -> None:
        """`npd-sync install` on a database, through the real CLI."""
        code, out, err = await run_command(
            [sys.executable, str(ROOT / "cli.py"), "install"],
            env=child_env(DATABASE_URL=self.dsn(dbname)),
        )
        if code != 0:
            raise RuntimeError(f"npd-sync install failed ({code}): {err or out}")

    async def make_templates(self) -> None:
        await self.execute("postgres", f"CREATE DATABASE {PLAIN_TEMPLATE}")
        await self.execute(PLAIN_TEMPLATE, SAMPLE_SCHEMA)
        await self.execute(
            "postgres", f"CREATE DATABASE {INSTALLED_TEMPLATE} TEMPLATE {PLAIN_TEMPLATE}"
        )
        await self.install(INSTALLED_TEMPLATE)


async def insert_contacts(
    dsn: str, count: int, *, captured: bool = True, chunk: int = 50_000, tag: str = "bench"
) -> None:
    """Insert `count` contacts in transactions of `chunk` rows. `captured=False` writes them as
    the listener would (a session marked as npd-sync's), so that the triggers record nothing."""
    conn = await (asyncpg.connect(dsn) if captured else db.connect(dsn))
    try:
        done = 0
        while done < count:
            n = min(chunk, count - done)
            await conn.execute(
                """
                INSERT INTO contacts (first_name, last_name, email, phone, role_title, notes)
                SELECT 'First' || g, 'Last' || g, 'person' || g || '@example.com',
                       NULL, 'role ' || (g % 17), $2 || ' note ' || g
                  FROM generate_series($1::int + 1, $1::int + $3::int) g
                """,
                done,
                tag,
                n,
            )
            done += n
    finally:
        await conn.close()


async def queue_empty(conn: asyncpg.Connection) -> bool:
    """Nothing left for the listener: no change record, no queue entry."""
    return bool(
        await conn.fetchval(
            "SELECT NOT EXISTS (SELECT FROM npd_sync.changes)"
            " AND NOT EXISTS (SELECT FROM npd_sync.queue)"
        )
    )


async def listener_waiting(conn: asyncpg.Connection) -> bool:
    """A listener has drained everything and asked writers to NOTIFY (capture/notify.py)."""
    armed = await conn.fetchval("SELECT pg_sequence_last_value('npd_sync.waiting')")
    return bool(armed) and await queue_empty(conn)


async def table_stats(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """npd-sync's own tables as autovacuum sees them: a stale ANALYZE of npd_sync.queue
    changes the claim's plan (see the P5 notes)."""
    rows = await conn.fetch(
        """
        SELECT relname, n_live_tup, n_dead_tup, autoanalyze_count, autovacuum_count,
               to_char(last_autoanalyze, 'HH24:MI:SS') AS last_autoanalyze
          FROM pg_stat_user_tables WHERE schemaname = 'npd_sync' ORDER BY relname
        """
    )
    return [dict(r) for r in rows]


async def wait_until(
    probe: Any, *, timeout: float, interval: float = 0.02, what: str = "condition"
) -> float:
    """Await `probe()` until it is true; returns the time.time() it was seen true."""
    deadline = time.monotonic() + timeout
    while True:
        if await probe():
            return time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g}s")
        await asyncio.sleep(interval)


# --- the Monday emulator ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrival:
    """A POST /v2 as it reached the emulator, before any work on it."""

    at: float  # time.time() once the body was read
    request_id: str | None
    npd_ids: tuple[str, ...]  # the npd_id of every create/update in it


def _npd_ids(raw: bytes) -> tuple[str, ...]:
    try:
        variables = json.loads(raw).get("variables") or {}
    except (ValueError, AttributeError):
        return ()
    ids = []
    for name, value in variables.items():
        if re.fullmatch(r"v\d+", name) and isinstance(value, str):
            with contextlib.suppress(ValueError, AttributeError):
                npd_id = json.loads(value).get("npd_id")
                if npd_id is not None:
                    ids.append(str(npd_id))
    return tuple(ids)


# An account whose figures Monday states far above the plan's (issue 17): 10^9 points and
# 10,000 requests a minute, in every answer (complexity.before, RateLimit-Policy), while the
# listener's plan is the default (10M points, 2,500 requests). P2 and P3 are measured with it
# too: where Monday states the figures, the listener books against them and pauses nobody.
ABOVE_PLAN = dataclasses.replace(
    AccountLimits.unlimited(), complexity_per_minute=1_000_000_000, requests_per_minute=10_000
)


class Monday:
    """The in-process emulator (same clock as the figures), optionally recording when each
    request arrives and which rows it carries (P2)."""

    def __init__(
        self,
        *,
        limits: AccountLimits | None = None,
        faults: Faults | None = None,
        track: bool = False,
        clock: Clock = system_clock,
    ) -> None:
        self.emulator = Emulator(
            TOKEN,
            limits=limits or AccountLimits.unlimited(),
            faults=faults,
            max_records=100_000,
            clock=clock,
        )
        self.arrivals: list[Arrival] = []
        if track:
            self.emulator.app.middlewares.append(self._track)

    @web.middleware
    async def _track(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/v2":
            return await handler(request)
        raw = await request.read()  # cached: the handler reads the same bytes
        at = time.time()
        response = await handler(request)
        self.arrivals.append(Arrival(at, response.headers.get("X-Request-Id"), _npd_ids(raw)))
        return response

    async def start(self) -> str:
        return await self.emulator.start()

    async def stop(self) -> None:
        await self.emulator.stop()

    @property
    def url(self) -> str:
        return self.emulator.url

    @property
    def mutations(self) -> int:
        return self.emulator.counters.mutations

    def reset(self) -> None:
        self.emulator.reset()
        self.arrivals.clear()


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the listener -------------------------------------------------------------------------


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


class Listener:
    """`python cli.py listen` as a subprocess, configured through the environment and a
    `[tuning]` TOML file, its JSON log in a file."""

    def __init__(
        self,
        dsn: str,
        monday_url: str,
        workdir: Path,
        *,
        name: str = "listener",
        tuning: Mapping[str, object] | None = None,
        log_level: str = "INFO",
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.env = dict(env or {})
        self.args = list(args)
        self.dsn = dsn
        self.monday_url = monday_url
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tuning = dict(tuning or {})
        self.log_level = log_level
        self.log_path = self.workdir / "listener.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.spawned_at = 0.0
        self.started_at = 0.0  # time.time() of its `listener.started` log line

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def environment(self) -> dict[str, str]:
        config = self.workdir / "npd-sync.toml"
        lines = ["[tuning]", *(f"{k} = {_toml_value(v)}" for k, v in self.tuning.items())]
        config.write_text("\n".join(lines) + "\n")
        return child_env(
            DATABASE_URL=self.dsn,
            MONDAY_API_KEY=TOKEN,
            MONDAY_API_URL=self.monday_url,
            MONDAY_CONTACTS_BOARD_ID=CONTACTS_BOARD,
            MONDAY_ORGANIZATIONS_BOARD_ID=ORGANIZATIONS_BOARD,
            NPD_SYNC_CONFIG=str(config),
            **self.env,
        )

    async def start(self, *, timeout: float = 30.0) -> None:
        """Spawn it and wait for its `listener.started` line."""
        log = self.log_path.open("ab")
        try:
            self.spawned_at = time.time()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(ROOT / "cli.py"),
                "--log-format",
                "json",
                "--log-level",
                self.log_level,
                "listen",
                *self.args,
                env=self.environment(),
                cwd=self.workdir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            started = self._started_line()
            if started is not None:
                self.started_at = started
                return
            if self.proc.returncode is not None:
                raise RuntimeError(
                    f"the listener exited with {self.proc.returncode}: {self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"the listener did not start in {timeout:g}s")
            await asyncio.sleep(0.01)

    def _started_line(self) -> float | None:
        for event in self.events():
            if event.get("event") == "listener.started":
                return _parse_ts(str(event.get("ts", ""))) or time.time()
        return None

    def events(self) -> Iterator[dict[str, Any]]:
        """The JSON log lines so far."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    yield event

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def rss_mib(self) -> float | None:
        return proc_rss_mib(self.pid)

    def cpu_seconds(self) -> float:
        return proc_cpu(self.pid) or 0.0

    async def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, then wait for a clean exit (SIGKILL after `timeout`)."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return None if proc is None else proc.returncode
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            return await proc.wait()


def _parse_ts(text: str) -> float | None:
    # logs.py writes "2026-01-01T12:00:00.123Z" (UTC).
    match = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z", text)
    if not match:
        return None
    y, mo, d, h, mi, s, ms = (int(g) for g in match.groups())
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + ms / 1000


# --- profiling ----------------------------------------------------------------------------


@dataclass
class Profile:
    """py-spy attached to a running process, writing collapsed stacks (`--format raw`)."""

    pid: int
    output: Path
    rate: int = 200
    proc: asyncio.subprocess.Process | None = None
    problem: str | None = None

    @staticmethod
    def available() -> str | None:
        """The py-spy executable, if installed next to this Python or on PATH."""
        candidate = Path(sys.executable).with_name("py-spy")
        if candidate.is_file():
            return str(candidate)
        return shutil.which("py-spy")

    async def start(self) -> bool:
        exe = self.available()
        if exe is None:
            self.problem = "py-spy is not installed (pip install py-spy)"
            return False
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.proc = await asyncio.create_subprocess_exec(
            exe, "record", "--pid", str(self.pid), "--rate", str(self.rate),
            "--format", "raw", "--output", str(self.output),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await asyncio.sleep(0.3)  # let it attach
        if self.proc.returncode is not None:
            assert self.proc.stderr is not None
            self.problem = (await self.proc.stderr.read()).decode(errors="replace").strip()
            return False
        return True

    async def stop(self) -> dict[str, Any]:
        """Stop recording; a summary of where the CPU went."""
        if self.proc is None:
            return {"error": self.problem or "not started"}
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if not self.output.exists():
            return {"error": self.problem or "py-spy wrote nothing"}
        return summarize_stacks(self.output.read_text(errors="replace"))


@dataclass
class _Tally:
    total: int = 0
    self_: dict[str, int] = field(default_factory=dict)
    inclusive: dict[str, int] = field(default_factory=dict)


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "run_once (listener/engine/worker.py:117)"; keep function
    # and file.
    match = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not match:
        return frame
    function, path = match.groups()
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{function}"


def summarize_stacks(raw: str, top: int = 15) -> dict[str, Any]:
    """Top functions by self and by inclusive samples, from py-spy's collapsed stacks."""
    tally = _Tally()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")]
        tally.total += count
        leaf = frames[-1]
        tally.self_[leaf] = tally.self_.get(leaf, 0) + count
        for name in set(frames):
            tally.inclusive[name] = tally.inclusive.get(name, 0) + count

    def share(counts: dict[str, int], only: str | None = None) -> list[list[object]]:
        items = [(k, v) for k, v in counts.items() if only is None or only in k]
        items.sort(key=lambda kv: kv[1], reverse=True)
        return [[k, round(100 * v / max(tally.total, 1), 1)] for k, v in items[:top]]

    by_package: dict[str, int] = {}
    for name, count in tally.self_.items():
        package = name.split("/", 1)[0].split(":", 1)[0]
        by_package[package] = by_package.get(package, 0) + count
    return {
        "samples": tally.total,
        "self_percent": share(tally.self_),
        "inclusive_percent_listener": share(tally.inclusive, "listener/"),
        "self_percent_by_package": share(by_package),
    }


# --- what every figure gets ---------------------------------------------------------------


@dataclass
class Options:
    """The command line."""

    quick: bool = False
    only: tuple[str, ...] = ()
    out: Path = ROOT / "bench" / "results" / "latest.json"
    profile: bool = False
    p5_changes: int | None = None


class Bench:
    """The context a figure runs in: options, sizes, the server, a scratch directory."""

    def __init__(self, options: Options, server: Server, workdir: Path) -> None:
        self.options = options
        self.sizes = QUICK if options.quick else FULL
        self.server = server
        self.workdir = workdir
        self.started = time.monotonic()
        self._figure = ""
        self._figure_started = time.monotonic()
        self._write_pair: tuple[str, str] | None = None

    @property
    def profiles_dir(self) -> Path:
        return self.options.out.parent / "profiles"

    def begin(self, figure: str) -> None:
        self._figure = figure
        self._figure_started = time.monotonic()

    def log(self, message: str) -> None:
        """A progress line on stderr: the table comes at the end, on stdout."""
        total = time.monotonic() - self.started
        here = time.monotonic() - self._figure_started
        print(
            f"[{total:6.1f}s {self._figure} +{here:5.1f}s] {message}", file=sys.stderr, flush=True
        )

    async def write_pair(self) -> tuple[str, str]:
        """Two databases with the same `write_rows` contacts, npd-sync installed on the first
        only (for P1 and P6): (with triggers, without)."""
        if self._write_pair is None:
            rows = max(self.sizes.write_rows, self.sizes.p6_rows)
            self.log(f"preparing two databases with {rows:,} contacts each")
            plain = await self.server.create_database("bench_plain_writes", PLAIN_TEMPLATE)
            await insert_contacts(self.server.dsn(plain), rows, captured=False)
            await self.server.execute(plain, "VACUUM ANALYZE contacts")
            # The same data, byte for byte: a clone, then `npd-sync install` on the clone.
            installed = await self.server.create_database("bench_installed_writes", plain)
            await self.server.install(installed)
            await self.server.execute(installed, "VACUUM ANALYZE")
            self._write_pair = (installed, plain)
        return self._write_pair


# --- where the listener's database time goes ---------------------------------------------

_STATEMENT = re.compile(
    r"^(?P<t>\d+\.\d+) \[\d+\] (?P<app>[^:]*): LOG:  duration: (?P<ms>[\d.]+) ms  "
    r"(?P<kind>statement|execute|bind|parse)[^:]*: (?P<text>.*)$"
)


class StatementLog:
    """Every statement of one database, logged with its duration (for `--profile`).

    Sets the server's log_line_prefix (the cluster is ours) and the database's
    log_min_duration_statement = 0; `summary()` reads the server log back from where it was
    when `start` ran and totals the time per statement of the listener's connections. Logging
    every statement slows them down a little: use it on runs whose speed is not reported.
    """

    def __init__(self, server: Server, dbname: str) -> None:
        self.server = server
        self.dbname = dbname
        self.offset = 0

    async def start(self) -> None:
        await self.server.execute(
            "postgres",
            "ALTER SYSTEM SET log_line_prefix = '%n [%p] %a: '",
            "SELECT pg_reload_conf()",
        )
        await self.server.execute(
            "postgres", f"ALTER DATABASE {self.dbname} SET log_min_duration_statement = 0"
        )
        self.offset = self.server.cluster.log_path.stat().st_size

    def summary(self, *, app: str = "npd-sync", top: int = 12) -> dict[str, Any]:
        totals: dict[str, list[float]] = {}
        with self.server.cluster.log_path.open(errors="replace") as log:
            log.seek(self.offset)
            for line in log:
                match = _STATEMENT.match(line.rstrip("\n"))
                if match is None or app not in match["app"]:
                    continue
                text = match["text"].strip().removeprefix("--").strip()
                label = f"{match['kind']}: {text[:60]}"
                entry = totals.setdefault(label, [0, 0.0])
                entry[0] += 1
                entry[1] += float(match["ms"])
        ranked = sorted(totals.items(), key=lambda kv: kv[1][1], reverse=True)
        return {
            "total_ms": round(sum(v[1] for v in totals.values()), 1),
            "statements": sum(int(v[0]) for v in totals.values()),
            "top": [
                {
                    "statement": k,
                    "count": int(n),
                    "total_ms": round(ms, 1),
                    "mean_ms": round(ms / n, 3),
                }
                for k, (n, ms) in ranked[:top]
            ],
        }


def inbound_settings(dsn: str, monday_url: str, public_url: str) -> settings.Settings:
    """The settings of a listener with inbound on: the bench's two boards, the emulator's URL,
    and the receiver's public URL."""
    return settings.load(
        environ={
            "DATABASE_URL": dsn, "MONDAY_API_KEY": TOKEN, "MONDAY_API_URL": monday_url,
            "NPD_SYNC_PUBLIC_URL": public_url, "MONDAY_CONTACTS_BOARD_ID": CONTACTS_BOARD,
            "MONDAY_ORGANIZATIONS_BOARD_ID": ORGANIZATIONS_BOARD,
        }
    )  # fmt: skip
