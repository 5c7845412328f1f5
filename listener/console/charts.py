"""The overview's two charts, drawn on the server as inline SVG (pure functions).

The listeners write their counters to `npd_sync.throughput` once a minute (rows synced, failed,
retried, and a histogram of commit-to-Monday latency); `history` sums the listeners per minute
over the last hour, `quantile` reads a percentile off a histogram the way Prometheus'
`histogram_quantile` does, and `bars` / `lines` draw the series. Colours come from classes that
the console's stylesheet defines: the page's CSP allows no inline style.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from listener.metrics import LATENCY_BUCKETS

MINUTES = 60  # the charts show the last hour
WIDTH, HEIGHT = 600, 120  # the SVG's coordinate space; it scales to the page's width
PAD = 4  # above the highest value and below the axis


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG drawing, what it says in words (its title, for screen readers too), and the
    value at the top of its scale; the labels are HTML next to it, legible at any width."""

    svg: Markup
    summary: str
    top: str


@dataclass(frozen=True, slots=True)
class History:
    """The last MINUTES minutes, oldest first: one value per minute in each series."""

    minutes: tuple[dt.datetime, ...]
    synced: tuple[int, ...]
    failed: tuple[int, ...]
    retried: tuple[int, ...]
    p50: tuple[float | None, ...]  # seconds; None for a minute without synced rows
    p95: tuple[float | None, ...]
    hour_p50: float | None  # over the whole hour
    hour_p95: float | None

    @property
    def recorded(self) -> bool:
        """Whether any listener wrote anything in the hour."""
        return any(self.synced) or any(self.failed) or any(self.retried)


def history(rows: Iterable[Mapping[str, Any]], now: dt.datetime) -> History:
    """The per-minute series from `recent_minutes` rows (any number of listeners per minute);
    `now` is the database's current minute, the last one shown."""
    empty = (0,) * (len(LATENCY_BUCKETS) + 1)
    minutes = tuple(now - dt.timedelta(minutes=MINUTES - 1 - i) for i in range(MINUTES))
    index = {m: i for i, m in enumerate(minutes)}
    synced, failed, retried = [0] * MINUTES, [0] * MINUTES, [0] * MINUTES
    buckets = [list(empty) for _ in minutes]
    total = list(empty)
    for row in rows:
        i = index.get(row["minute"])
        if i is None:
            continue
        synced[i] += row["synced"]
        failed[i] += row["failed"]
        retried[i] += row["retried"]
        counts = list(row["latency_buckets"])
        if len(counts) == len(empty):  # written with other bounds: not comparable, left out
            buckets[i] = [a + b for a, b in zip(buckets[i], counts, strict=True)]
            total = [a + b for a, b in zip(total, counts, strict=True)]
    return History(
        minutes=minutes,
        synced=tuple(synced),
        failed=tuple(failed),
        retried=tuple(retried),
        p50=tuple(quantile(0.5, b) for b in buckets),
        p95=tuple(quantile(0.95, b) for b in buckets),
        hour_p50=quantile(0.5, total),
        hour_p95=quantile(0.95, total),
    )


def quantile(
    q: float, counts: Sequence[int], bounds: Sequence[float] = LATENCY_BUCKETS
) -> float | None:
    """The q-quantile of a histogram given as counts per bucket (`bounds` are the upper bounds,
    then one bucket for the rest), interpolating linearly inside a bucket; None when empty."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            if i >= len(bounds):
                return bounds[-1]  # past the last bound: the most it can say
            lower = bounds[i - 1] if i else 0.0
            return lower + (bounds[i] - lower) * (rank - seen) / count
        seen += count
    return bounds[-1]


def seconds(value: float | None) -> str:
    """A latency for people: 4 ms, 0.25 s, 12 s, 3 min."""
    if value is None:
        return "-"
    if value < 0.1:
        return f"{value * 1000:.0f} ms"
    if value < 10:
        return f"{value:.2g} s" if value < 1 else f"{value:.1f} s"
    if value < 120:
        return f"{value:.0f} s"
    return f"{value / 60:.0f} min"


def bars(h: History, *, label: str) -> Chart:
    """Rows synced (and failed, on top) per minute, as bars."""
    stacked = [s + f for s, f in zip(h.synced, h.failed, strict=True)]
    top = _nice(max(stacked, default=0))
    plot_h = HEIGHT - 2 * PAD
    step = WIDTH / MINUTES
    parts = []
    for i, (synced, failed) in enumerate(zip(h.synced, h.failed, strict=True)):
        x = i * step
        base = float(HEIGHT - PAD)
        for value, css in ((synced, "bar-synced"), (failed, "bar-failed")):
            if value:
                height = max(plot_h * value / top, 1.0)
                base -= height
                parts.append(
                    f'<rect class="{css}" x="{x + 0.5:.1f}" y="{base:.1f}" '
                    f'width="{max(step - 1, 1):.1f}" height="{height:.1f}"/>'
                )
    total, failed = sum(h.synced), sum(h.failed)
    summary = (
        f"{label}: {total:,} rows synced in the last hour, at most {max(h.synced):,} in a minute"
        f"; {failed:,} failed"
    )
    return Chart(_svg(summary, "".join(parts)), summary, f"{int(top):,} a minute")


def lines(h: History, *, label: str) -> Chart:
    """Median and 95th percentile latency per minute, as two lines."""
    values = [v for v in (*h.p50, *h.p95) if v is not None]
    top = _nice(max(values, default=0.0))
    parts = [_polyline(h.p95, top, "line-p95"), _polyline(h.p50, top, "line-p50")]
    if values:
        summary = (
            f"{label}: over the last hour, median {seconds(h.hour_p50)}, "
            f"95th percentile {seconds(h.hour_p95)}"
        )
    else:
        summary = f"{label}: no row synced in the last hour"
    return Chart(_svg(summary, "".join(parts)), summary, seconds(top))


def _polyline(series: Sequence[float | None], top: float, css: str) -> str:
    """One line per run of minutes with a value (a gap where no row was synced); a lone minute
    is a dot."""
    plot_h = HEIGHT - 2 * PAD
    step = WIDTH / MINUTES
    runs: list[list[tuple[float, float]]] = [[]]
    for i, value in enumerate(series):
        if value is None:
            if runs[-1]:
                runs.append([])
            continue
        x = (i + 0.5) * step
        y = HEIGHT - PAD - plot_h * min(value / top, 1.0)
        runs[-1].append((x, y))
    out = []
    for run in runs:
        if len(run) == 1:
            ((x, y),) = run
            out.append(f'<circle class="{css}" cx="{x:.1f}" cy="{y:.1f}" r="2"/>')
        elif run:
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            out.append(f'<polyline class="{css}" points="{points}"/>')
    return "".join(out)


def _svg(summary: str, body: str) -> Markup:
    base = HEIGHT - PAD
    axis = (
        f'<line class="axis" x1="0" y1="{base}" x2="{WIDTH}" y2="{base}"/>'
        f'<line class="grid" x1="0" y1="{PAD}" x2="{WIDTH}" y2="{PAD}"/>'
    )
    # Every text in it is escaped above; the rest are numbers.
    return Markup(  # noqa: S704
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" '
        f'role="img" aria-label="{escape(summary)}"><title>{escape(summary)}</title>'
        f"{axis}{body}</svg>"
    )


def _nice(value: float) -> float:
    """A round number at least `value` for the top of an axis (1, 2, 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)
