"""The benchmark suite's smoke test: `python -m bench --quick` runs and writes the JSON.

It checks the shape of the file, never a figure's value: timings belong to `make bench`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devtools import pgcluster

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(240)
def test_quick_bench_writes_the_expected_json(tmp_path: Path) -> None:
    try:
        bindir = pgcluster.find_binaries().bindir
    except pgcluster.ClusterError as exc:
        pytest.skip(str(exc))
    if not (bindir / "pgbench").is_file() and shutil.which("pgbench") is None:
        pytest.skip("no pgbench: P1 needs the cluster's own (or one on PATH)")
    out = tmp_path / "results" / "latest.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "MONDAY_"))}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "P1,P3", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(out.read_text())

    assert data["schema"] == 1
    assert data["mode"] == "quick"
    assert {"cpu_count", "postgresql", "git_commit", "python"} <= set(data["environment"])
    assert set(data["figures"]) == {"P1", "P3"}
    expected = {
        "P1": {
            f"{op}_c{clients}_{variant}"
            for op in ("update", "insert")
            for clients in (1, 4)
            for variant in ("idle", "listening")
        },
        "P3": {"rows_per_s", "single_rows_per_s", "batch_vs_single"},
    }
    for fid, keys in expected.items():
        figure = data["figures"][fid]
        assert figure["error"] is None
        assert {m["key"] for m in figure["metrics"]} == keys
        for metric in figure["metrics"]:
            assert {"value", "unit", "target", "met", "samples", "label"} <= set(metric)
            assert isinstance(metric["value"], int | float)
            assert metric["samples"]
        assert figure["raw"]
    assert "comparison" in data
    # The table went to stdout.
    assert "P1" in result.stdout
    assert "batched / one request per row" in result.stdout

    # A second run keeps the first as previous.json and compares with it.
    again = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "P3", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out.parent / "previous.json").exists()  # beside latest.json
    assert "P3.rows_per_s" in json.loads(out.read_text())["comparison"]
