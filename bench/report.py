"""Figures, their table on the terminal, and the JSON file (with the previous run's kept).

A figure (P1..P6) holds metrics; each metric has a value, a unit, an optional target and its
raw samples. `met` is computed from the target, never asserted: this is a report.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

SCHEMA = 1
COMPARED = ("P1", "P2", "P3")  # figures whose change vs the previous run is printed
REGRESSION = 0.20  # a change for the worse beyond this is flagged


@dataclass(frozen=True)
class Target:
    """`value op threshold`, e.g. ratio >= 0.85."""

    op: Literal[">=", "<="]
    threshold: float

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value >= self.threshold if self.op == ">=" else value <= self.threshold

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "threshold": self.threshold}


@dataclass
class Metric:
    """One measured number of a figure."""

    key: str  # stable within its figure: the JSON key and what runs are compared by
    label: str
    value: float | None
    unit: str  # ratio, rows/s, ms, MiB, %, count, s
    target: Target | None = None
    # Which way is better, for the comparison with the previous run (None: not compared).
    better: Literal["higher", "lower"] | None = None
    samples: list[float] = field(default_factory=list)
    note: str = ""
    # For metrics whose verdict is not a plain threshold (a 429 storm, flatness).
    verdict: bool | None = None
    target_text: str | None = None

    @property
    def met(self) -> bool | None:
        if self.verdict is not None:
            return self.verdict
        return self.target.met(self.value) if self.target else None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "target": self.target.to_json() if self.target else None,
            "target_text": self.target_text or (_target_text(self) if self.target else None),
            "met": self.met,
            "better": self.better,
            "samples": self.samples,
            "note": self.note,
        }


@dataclass
class Figure:
    """One figure of the issue (P1..P6): its metrics, notes, raw data and how long it took."""

    id: str
    title: str
    metrics: list[Metric] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    # Set when the figure ran on less work than the issue asks (time budget, --quick).
    scaled_down: dict[str, Any] | None = None

    def add(self, metric: Metric) -> Metric:
        self.metrics.append(metric)
        return metric

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "seconds": round(self.seconds, 1),
            "error": self.error,
            "scaled_down": self.scaled_down,
            "notes": self.notes,
            "metrics": [m.to_json() for m in self.metrics],
            "raw": self.raw,
        }


# --- formatting ---------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{value:.2f}"
    if unit == "%":
        return f"{value:.1f}%"
    if unit in ("ms", "s", "MiB"):
        return f"{value:,.1f} {unit}" if value >= 10 else f"{value:.2f} {unit}"
    if unit == "count":
        return f"{value:,.0f}"
    if unit.endswith("/s"):
        return f"{value:,.0f} {unit}"
    if unit.endswith("/min") or unit == "values":
        return f"{value:,.1f} {unit}"
    return f"{value:g} {unit}"


def _target_text(metric: Metric) -> str:
    if metric.target_text:
        return metric.target_text
    if metric.target is None:
        return ""
    threshold = metric.target.threshold
    if metric.unit == "ratio":
        shown = f"{threshold:g}"
    elif metric.unit == "%":
        shown = f"{threshold:g}%"
    elif metric.unit.endswith("/s"):
        shown = f"{threshold:,.0f} {metric.unit}"
    else:
        shown = f"{threshold:g} {metric.unit}"
    return f"{metric.target.op} {shown}"


def _met_text(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: ""}[met]


def compare(
    figures: Sequence[dict[str, Any]], previous: dict[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """Change vs the previous run's value for the metrics of P1-P3, by figure.key."""
    out: dict[str, dict[str, Any]] = {}
    if not previous:
        return out
    before = {
        f"{fid}.{m['key']}": m
        for fid, fig in (previous.get("figures") or {}).items()
        for m in fig.get("metrics", [])
    }
    for fig in figures:
        if fig["id"] not in COMPARED:
            continue
        for m in fig["metrics"]:
            key = f"{fig['id']}.{m['key']}"
            old = before.get(key)
            if not m.get("better") or old is None:
                continue
            new_value, old_value = m.get("value"), old.get("value")
            if new_value is None or not old_value:
                continue
            change = (new_value - old_value) / abs(old_value)
            worse = -change if m["better"] == "higher" else change
            out[key] = {
                "previous": old_value,
                "change": round(change, 4),
                "regression": worse > REGRESSION,
            }
    return out


def table(result: dict[str, Any]) -> str:
    """The readable summary of a run."""
    env = result["environment"]
    lines = [
        "",
        f"npd-sync benchmarks ({result['mode']}), {result['started_at']}, "
        f"{result['seconds']:.0f} s in all",
        f"commit {env['git_commit'][:12]}{' (dirty)' if env.get('git_dirty') else ''}, "
        f"PostgreSQL {env['postgresql']}, {env['cpu_count']} CPUs, "
        f"load {env['load_before']} before / {env['load_after']} after, "
        f"Python {env['python']}",
        "",
    ]
    comparison = result.get("comparison", {})
    rows: list[tuple[str, str, str, str, str, str]] = [
        ("fig", "measure", "value", "target", "met", "vs previous")
    ]
    for fig in result["figures"].values():
        if fig.get("error"):
            rows.append((fig["id"], f"{fig['title']}: FAILED ({fig['error']})", "", "", "", ""))
            continue
        first = True
        for m in fig["metrics"]:
            change = comparison.get(f"{fig['id']}.{m['key']}")
            vs = ""
            if change is not None:
                vs = f"{change['change'] * 100:+.0f}%"
                if change["regression"]:
                    vs += " REGRESSION"
            elif fig["id"] in COMPARED and m.get("better"):
                vs = "-"
            target = m.get("target_text") or ""
            label = m["label"] + (f" [{m['note']}]" if m.get("note") else "")
            rows.append(
                (
                    fig["id"] if first else "",
                    label,
                    fmt(m["value"], m["unit"]),
                    target,
                    _met_text(m["met"]),
                    vs,
                )
            )
            first = False
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    widths[1] = min(widths[1], 72)
    for i, row in enumerate(rows):
        label = row[1] if len(row[1]) <= widths[1] else row[1][: widths[1] - 1] + "…"
        cells = [row[0], label, row[2], row[3], row[4], row[5]]
        lines.append(
            "  ".join(
                c.rjust(widths[j]) if j == 2 else c.ljust(widths[j]) for j, c in enumerate(cells)
            ).rstrip()
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [
        (fig["id"], note)
        for fig in result["figures"].values()
        for note in (
            [f"SCALED DOWN: {fig['scaled_down']['why']}"] if fig.get("scaled_down") else []
        )
        + fig.get("notes", [])
    ]
    if notes:
        lines.append("")
        lines.extend(f"{fid}: {note}" for fid, note in notes)
    regressions = [k for k, v in comparison.items() if v["regression"]]
    if regressions:
        lines.append("")
        lines.append(
            f"regressions > {REGRESSION:.0%} vs the previous run: {', '.join(regressions)}"
        )
    return "\n".join(lines)


# --- environment and files ----------------------------------------------------------------


def _git(*args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        out = subprocess.run(  # noqa: S603 (no shell; read-only git commands)
            [git, *args],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def environment(pg_version: str, pg_settings: dict[str, str]) -> dict[str, Any]:
    """What the figures were measured on."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "executable": sys.executable,
        "postgresql": pg_version,
        "postgresql_settings": pg_settings,
        "git_commit": _git("rev-parse", "HEAD") or "unknown",
        "git_dirty": bool(status) if status is not None else None,
        "load_before": None,
        "load_after": None,
    }


def load_average() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def previous_path(out: Path) -> Path:
    """Where the run before `out` is kept: previous.json beside latest.json (the default),
    NAME.previous.json beside any other NAME.json."""
    if out.name == "latest.json":
        return out.with_name("previous.json")
    return out.with_name(f"{out.stem}.previous.json")


def write(result: dict[str, Any], out: Path) -> Path | None:
    """Write `out`, first moving the file there to previous_path(out); returns where the
    previous run's file is (None when there was none)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = previous_path(out)
    kept: Path | None = None
    if out.exists():
        out.replace(previous)
        kept = previous
    elif previous.exists():
        kept = previous
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(out)
    return kept


def read_previous(out: Path, mode: str) -> dict[str, Any] | None:
    """The run to compare with: what is at `out` now (about to become the previous run), or
    the previous run's file; only a run of the same mode (quick or full) compares."""
    for path in (out, previous_path(out)):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("schema") == SCHEMA:
            return data if data.get("mode") == mode else None
    return None


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
