"""`make demo` end to end: devtools.demo as a subprocess, with a PostgreSQL of its own (so this
works whichever server the rest of the suite uses), checked on its output and on what it
leaves behind: nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.conftest import ROOT


def table_line(output: str, name: str) -> str:
    """The line of section 8's tables that shows the row or item called `name`."""
    tables = output.partition("\n8. ")[2].partition("\n9. ")[0]
    lines = [line for line in tables.splitlines() if name in line and " | " in line]
    assert len(lines) == 1, f"{name!r} in {tables}"
    return lines[0]


def running_with(text: str) -> list[str]:
    """Command lines of the processes that mention `text`."""
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [args for args in map(command_line, pids) if text in args]


def command_line(pid: int) -> str:
    """What process `pid` runs ("" when there is none)."""
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_syncs_shows_and_leaves_nothing_behind() -> None:
    # Its own temporary directory, for the demo's cluster and logs, so that what remains in it
    # afterwards is what the demo left behind. Traversable: as root, PostgreSQL runs as
    # another user, who must reach the cluster directory in it.
    tmp = Path(tempfile.mkdtemp(prefix="npd-sync-test-demo-"))
    tmp.chmod(0o755)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "devtools.demo"],
            cwd=ROOT,
            env={**os.environ, "TMPDIR": str(tmp)},
            capture_output=True,
            text=True,
            timeout=100,
            check=False,
        )
        output = result.stdout
        assert result.returncode == 0, output + result.stderr
        leftovers = list(tmp.iterdir())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    synced = ["Ada Lovelace", "Grace Hopper", "Hedy Lamarr"]
    synced += ["Analytical Engines Ltd", "Rive Gauche Logiciels"]
    for name in synced:
        assert re.search(r" SYNCED +\d+ +\| +\d+ +active ", table_line(output, name)), name
    for name, why in [
        ("Alan Turing", "sync_enabled is false"),
        ("Katherine Johnson", "sync_direction is MONDAY_TO_NPD"),
    ]:
        assert re.search(rf" \| +- +- +\(not pushed: {why}\)$", table_line(output, name)), name
    assert re.search(
        r"\(row deleted\) +\| +\d+ +archived +Harbour Bridge Consulting$",
        table_line(output, "Harbour Bridge Consulting"),
    )
    assert "text: Chief Inventor;" in output  # the update reached the item
    # Inbound: the board's edit reached the row; the conflict was found, shown and resolved.
    assert re.search(r"^     phone = \+61255509876$", output, re.M)
    assert "contacts 1 role_title: open, found " in output
    assert "npd:    Chief Analyst" in output
    assert "monday: Countess of Lovelace" in output
    assert "contacts 1: role_title resolved for monday" in output
    assert re.search(r"^     the console is at http://127\.0\.0\.1:\d+/$", output, re.M)
    assert "console stopped (exit code 0)" in output
    assert "listener stopped (exit code 0)" in output
    assert "emulator stopped (exit code 0)" in output

    # Nothing left running or behind: no server on the demo's data directory, no process of
    # the demo's, no port still listening, no file.
    assert leftovers == []
    data_dir = re.search(r"data directory: (\S+)", output)
    assert data_dir is not None
    assert running_with(data_dir.group(1)) == []
    pids = re.findall(r"&    # pid (\d+)", output)
    assert len(pids) == 3, pids  # the emulator's, the listener's and the console's
    for pid in pids:
        assert "npd-sync" not in command_line(int(pid)), pid
    ports = re.findall(r"127\.0\.0\.1:(\d+)\b", output)
    # PostgreSQL's, the emulator's, the receiver's and the console's
    assert len(set(ports)) == 4, ports
    assert not any(listening(int(port)) for port in set(ports))
