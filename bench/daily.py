"""P12-P14: Monday's daily call limit (guarantee 10) over a day.

P12 a Standard day: 2,000 row changes (1-5 rows a transaction) and 500 board edits spread over
    ten hours of a 1,000-call day, inbound (webhooks) and reconciliation on: the calls the day
    cost (the emulator's count), the calls refused, the changes landed by midnight, and the
    delay from a commit to its row written back after Monday answered (and from a board edit
    to its row).
P13 a trickle: a new row a second for ten minutes from the start of a day, on a 1,000-call and
    on a 25,000-call account at once: the calls spent next to the even share of those ten
    minutes plus the burst, and the delay from the commit to the row written back.
P14 an idle day: inbound on, nothing changes: the day's calls as a share of the limit.

How the day is compressed. The emulator can live a day fast (`ScaledClock`), the listener
cannot: its clock is the database's (`now()` in sql/queries/governor.sql gives the UTC day and
the seconds to midnight its pacing spreads the calls over) and its timers run in real seconds.
So rather than running the listener's clock fast, P12 and P14 give it a short day: the
figure's own PostgreSQL cluster runs under libfaketime with its clock shifted (not sped up) so
that its midnight comes `day` real seconds after the day starts, and the emulator's clock is
shifted the same way (a ScaledClock at speed 1), so the two agree on the time and on midnight.
The listener paces the calls left over the seconds left until midnight, with a burst of 1% of
the limit: starting `day` seconds before midnight with the whole limit left, it paces exactly
as over a whole day run 86,400 / `day` times as fast. What the listener and the emulator are
told in seconds is scaled by the same factor (`reconcile_interval`; the emulator's analytics
refresh and complexity window, 10M points in a 60 s / factor window); what is fixed in the code
is not: a listener asks Monday for the day's figures at most every half hour of real time
(`daily.ask_every`), so once in a compressed day rather than every 2.4 h; each reconciliation
pass reads the activity log again from 30 real seconds before the last one (`OVERLAP`), which
is 30 x factor seconds of the day (more entries a page, never fewer). The delays are shown in
the day's time (real seconds x the factor): work that takes real milliseconds (a request, a
write) counts as that many seconds x the factor.

What was set up before the day (the rows synced, the webhooks installed, reconciliation's
first full read) was done by a listener the day before: its calls are not the day's. Both
counts (the database's ledger and the emulator's) start the day at zero, as at 00:00 UTC. The
day before ends a minute or more (real) before the day starts (`quiet_before_day_s` in the
JSON), so that neither its complexity window nor reconciliation's overlap reaches into the day.

P13 needs no compression (ten real minutes): its cluster's clock is shifted so that the
trickle starts at 00:00 UTC, the day's even share being the limit over 86,400 s then.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench import setup
from bench.report import Figure, Metric, Target
from bench.setup import Bench
from emulator import AccountLimits, ScaledClock
from emulator.clock import DAY
from emulator.records import RequestRecord
from listener import settings
from listener.commands import webhooks as webhook_commands
from listener.monday import daily

FAKETIME_LIBRARIES = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1",
)
RECONCILE_INTERVAL = 600.0  # [tuning] reconcile_interval's default, in the day's seconds
ANALYTICS_REFRESH = 600.0  # Monday refreshes daily_analytics about every 10 minutes
COMPLEXITY_WINDOW = 60.0  # Monday's complexity budget is a minute's
STANDARD = 1_000
ENTERPRISE = 25_000


def libfaketime() -> str | None:
    """Debian's libfaketime (package faketime), or NPD_SYNC_LIBFAKETIME; None when absent."""
    named = os.environ.get("NPD_SYNC_LIBFAKETIME")
    candidates = (named,) if named else FAKETIME_LIBRARIES
    return next((c for c in candidates if c and Path(c).is_file()), None)


def offset_for_midnight(at: float) -> tuple[int, float]:
    """Whole seconds to add to the machine's clock for 00:00 UTC to fall at `at` (within half
    a second), and the moment of the machine's clock it then falls at."""
    offset = round(-at % DAY) % int(DAY)
    return offset, round((at + offset) / DAY) * DAY - offset


class ShiftedServer(setup.Server):
    """A throwaway cluster whose clock reads `offset` seconds ahead of the machine's (libfaketime,
    preloaded into the server's processes only): the listener's "now" and midnight."""

    def __init__(self, offset: int) -> None:
        super().__init__()
        self.offset = offset

    async def start(self) -> None:
        library = libfaketime()
        if library is None:
            raise RuntimeError(
                "P12-P14 need libfaketime to shift the database's clock: apt-get install "
                "faketime (or set NPD_SYNC_LIBFAKETIME to libfaketimeMT.so.1)"
            )
        shift = {
            "LD_PRELOAD": library,
            "FAKETIME": f"+{self.offset}",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
        saved = {k: os.environ.get(k) for k in shift}
        # pgcluster passes the environment to the server it starts; put it back at once so
        # that no other process (a listener, pgbench) inherits the shift.
        os.environ.update(shift)
        try:
            await super().start()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@dataclass
class Day:
    """A figure's world: the shifted cluster, a database, the emulator on the same clock."""

    bench: Bench
    name: str
    offset: int
    limits: AccountLimits
    server: ShiftedServer | None = None
    monday: setup.Monday | None = None
    dsn: str = ""
    port: int = 0
    conn: asyncpg.Connection | None = None

    async def start(self) -> asyncpg.Connection:
        self.server = ShiftedServer(self.offset)
        await self.server.start()
        await self.server.make_templates()
        dbname = await self.server.create_database(self.name, setup.INSTALLED_TEMPLATE)
        self.dsn = self.server.dsn(dbname)
        clock = ScaledClock(1.0, start=time.time() + self.offset)
        self.monday = setup.Monday(limits=self.limits, clock=clock)
        await self.monday.start()
        self.port = setup.free_port()
        self.conn = await asyncpg.connect(self.dsn)
        return self.conn

    async def stop(self) -> None:
        if self.conn is not None:
            await self.conn.close()
        if self.monday is not None:
            await self.monday.stop()
        if self.server is not None:
            await self.server.destroy()

    def emulated(self, real: float) -> float:
        """A moment of the machine's clock on the emulator's and the database's."""
        return real + self.offset

    def listener(self, name: str, tuning: dict[str, object], inbound: bool) -> setup.Listener:
        assert self.monday is not None
        env = {"NPD_SYNC_PUBLIC_URL": self.public_url} if inbound else {}
        args = ["--webhook-port", str(self.port)] if inbound else []
        return setup.Listener(
            self.dsn, self.monday.url, self.bench.workdir, name=name, tuning=tuning, env=env,
            args=args,
        )  # fmt: skip

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> settings.Settings:
        assert self.monday is not None
        return setup.inbound_settings(self.dsn, self.monday.url, self.public_url)

    async def the_day_before(self, rows: int, interval: float) -> dict[int, str]:
        """`rows` contacts synced, the webhooks installed and reconciliation's first full read
        done, by a listener that then stops; then both counts of the day start at zero.
        Returns row key -> item id."""
        assert self.monday is not None
        assert self.conn is not None
        conn = self.conn
        before = self.listener(
            f"{self.name}-before", {"reconcile_interval": interval}, inbound=True
        )
        await setup.insert_contacts(self.dsn, rows)
        await before.start()
        try:

            async def synced() -> bool:
                return await setup.queue_empty(conn)

            await setup.wait_until(synced, timeout=300, interval=0.1, what=f"{rows} rows synced")
            self.bench.log("  synced")
            out: list[str] = []
            ok = await webhook_commands.run(self.settings(), action="install", echo=out.append)
            if not ok:
                raise RuntimeError(f"webhooks install failed: {' '.join(out)}")
            self.bench.log("  webhooks installed")

            async def reconciled() -> bool:
                return bool(
                    await conn.fetchval(
                        "SELECT last_pull_at IS NOT NULL FROM npd_sync.boards WHERE board_id = $1",
                        setup.CONTACTS_BOARD,
                    )
                )

            await setup.wait_until(reconciled, timeout=120, interval=0.1, what="a first pass")
            self.bench.log("  reconciled: the day before is done")
        finally:
            await before.stop()
        await self.new_day()
        return {
            int(i.values["npd_id"]): i.id
            for i in self.monday.emulator.items(setup.CONTACTS_BOARD)
            if "npd_id" in i.values
        }

    async def new_day(self) -> None:
        """Both counts of the day at zero: the database's ledger and the emulator's."""
        assert self.monday is not None
        assert self.conn is not None
        await self.conn.execute(
            "UPDATE npd_sync.monday_day SET own_calls = 0, unpaid = 0, tokens = NULL,"
            " tokens_at = NULL, daily_limit = NULL, others_used = NULL, account_used = NULL,"
            " account_updated_at = NULL, learnt_at = NULL"
        )
        await self.conn.execute("DELETE FROM npd_sync.monday_minutes")
        self.monday.emulator.set_daily_calls_used(0)

    def records(self, start: float, end: float) -> list[RequestRecord]:
        """The requests between two moments of the machine's clock."""
        assert self.monday is not None
        a, b = self.emulated(start), self.emulated(end)
        return [r for r in self.monday.emulator.requests if a <= r.at < b]


def standard_day(factor: float) -> AccountLimits:
    """A Standard account for a day run `factor` times as fast: the analytics' refresh and the
    complexity budget's window (10M points) shortened by the factor, the same points a second
    of the day as on Monday."""
    return dataclasses.replace(
        AccountLimits.standard(),
        usage_refresh_seconds=ANALYTICS_REFRESH / factor,
        complexity_window_seconds=COMPLEXITY_WINDOW / factor,
    )


def calls_by_kind(records: list[RequestRecord]) -> dict[str, float]:
    """Calls counted per request kind (its root fields), most first."""
    kinds: dict[str, float] = collections.defaultdict(float)
    for r in records:
        kinds[",".join(sorted(set(r.root_fields))) or "?"] += r.calls
    return {k: round(v, 1) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])}


def refused(records: list[RequestRecord]) -> list[RequestRecord]:
    """Requests a limit refused (the daily limit, the minute's, complexity, 429)."""
    return [r for r in records if r.status == 429 or r.error_codes]


async def sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def written(conn: asyncpg.Connection, keys: list[int], offset: int) -> dict[int, float]:
    """Rows synced: key -> when last written back, on the machine's clock."""
    rows = await conn.fetch(
        "SELECT id, extract(epoch FROM last_synced_at)::float8 AS at FROM contacts"
        " WHERE id = ANY($1::int[]) AND sync_status = 'SYNCED' AND last_synced_at IS NOT NULL",
        keys,
    )
    return {r["id"]: r["at"] - offset for r in rows}


# --- P12 ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class P12Sizes:
    day: float  # real seconds the day lasts
    changes: int
    edits: int
    margin: float  # real seconds for the cluster and the day before


P12_FULL = P12Sizes(day=600.0, changes=2_000, edits=500, margin=80.0)
P12_QUICK = P12Sizes(day=15.0, changes=60, edits=15, margin=12.0)
WORK_FROM, WORK_TO = 7.0, 17.0  # the ten hours of the day the work is spread over


@dataclass
class Landed:
    """Changes made (key -> the machine's time) and when each was first seen written."""

    made: dict[int, float] = dataclasses.field(default_factory=dict)
    seen: dict[int, float] = dataclasses.field(default_factory=dict)

    async def look(self, conn: asyncpg.Connection, offset: int) -> None:
        waiting = [k for k in self.made if k not in self.seen]
        if not waiting:
            return
        for key, at in (await written(conn, waiting, offset)).items():
            if at >= self.made[key] - 0.001:
                self.seen[key] = at

    def delays(self) -> list[float]:
        return [self.seen[k] - self.made[k] for k in self.seen]


def p12_schedule(sizes: P12Sizes, seed: int = 12) -> tuple[list[tuple[float, int]], list[float]]:
    """Commits (hour of the day, rows) adding up to `changes`, and edits (hour), at random
    moments of the working hours."""
    rng = random.Random(seed)  # a workload, not a secret
    groups = []
    left = sizes.changes
    while left:
        n = min(rng.randint(1, 5), left)
        groups.append((rng.uniform(WORK_FROM, WORK_TO), n))
        left -= n
    edits = sorted(rng.uniform(WORK_FROM, WORK_TO) for _ in range(sizes.edits))
    return sorted(groups), edits


async def run_p12(bench: Bench) -> Figure:
    figure = Figure("P12", "a Standard day: 2,000 changes, 500 board edits, 1,000 calls")
    sizes = P12_QUICK if bench.options.quick else P12_FULL
    factor = DAY / sizes.day
    commits, edit_hours = p12_schedule(sizes)
    updates = sizes.changes // 2  # half the changes update synced rows, half insert new ones
    offset, end = offset_for_midnight(time.time() + sizes.margin + sizes.day)
    start = end - sizes.day  # end: 00:00 UTC on the shifted clocks
    world = Day(bench, "bench_p12", offset, AccountLimits.unlimited())
    changes, edits = Landed(), Landed()
    raw: dict[str, Any] = {"day_s": sizes.day, "factor": factor}
    try:
        conn = await world.start()
        assert world.monday is not None
        bench.log(f"the day before: {updates + sizes.edits} rows synced, webhooks, a first read")
        items = await world.the_day_before(updates + sizes.edits, RECONCILE_INTERVAL / factor)
        keys = sorted(items)
        to_update, to_edit = keys[:updates], keys[updates : updates + sizes.edits]
        world.monday.emulator.set_limits(standard_day(factor))
        late = time.time() - start
        raw["setup_late_s"] = round(max(late, 0.0), 2)
        raw["quiet_before_day_s"] = round(-late, 1)
        await sleep_until(start)
        day_start = time.time()
        tuning = {"plan": "standard", "reconcile_interval": RECONCILE_INTERVAL / factor}
        listener = world.listener("p12", tuning, inbound=True)
        bench.log(
            f"a day of {end - day_start:.0f} s (x{factor:g}): {len(commits)} commits of "
            f"{sizes.changes} rows, {sizes.edits} edits from {WORK_FROM:g}:00 to {WORK_TO:g}:00"
        )
        await listener.start()
        try:

            async def write() -> None:
                writer = await asyncpg.connect(world.dsn)
                try:
                    pending = list(to_update)
                    inserts = sizes.changes - updates
                    for i, (hour, n) in enumerate(commits):
                        await sleep_until(end - (24 - hour) * 3600 / factor)
                        async with writer.transaction():
                            if pending and (i % 2 or inserts <= 0):
                                batch, pending = pending[:n], pending[n:]
                                await writer.execute(
                                    "UPDATE contacts SET notes = 'p12 ' || id WHERE id = ANY($1)",
                                    batch,
                                )
                                got = batch
                            else:
                                got = [
                                    r["id"]
                                    for r in await writer.fetch(
                                        "INSERT INTO contacts (first_name, last_name, email)"
                                        " SELECT 'Day', 'p12-' || g, 'p12-' || g || '@example.com'"
                                        " FROM generate_series(1, $1) g RETURNING id",
                                        n,
                                    )
                                ]
                                inserts -= n
                        at = time.time()  # right after COMMIT returned
                        changes.made.update(dict.fromkeys(got, at))
                finally:
                    await writer.close()

            async def edit() -> None:
                assert world.monday is not None
                for i, (hour, key) in enumerate(zip(edit_hours, to_edit, strict=True)):
                    await sleep_until(end - (24 - hour) * 3600 / factor)
                    world.monday.emulator.edit_item(items[key], {"text": f"p12e-{i}"})
                    edits.made[key] = time.time()

            async def watch() -> None:
                while time.time() < end - 0.25:
                    await changes.look(conn, offset)
                    await edits.look(conn, offset)
                    await asyncio.sleep(min(1.0, sizes.day / 200))

            await asyncio.gather(write(), edit(), watch())
            await sleep_until(end - 0.2)
            day = world.records(day_start, end - 0.2)
        finally:
            await listener.stop()
        await changes.look(conn, offset)  # what was written before midnight but not yet seen
        await edits.look(conn, offset)
        changes.seen = {k: v for k, v in changes.seen.items() if v < end}
        edits.seen = {k: v for k, v in edits.seen.items() if v < end}
    finally:
        await world.stop()
    spent = sum(r.calls for r in day)
    no = refused(day)
    delays = [d * factor / 60 for d in changes.delays()]
    edit_delays = [d * factor / 60 for d in edits.delays()]
    raw.update(
        calls=round(spent, 1),
        requests=len(day),
        by_kind=calls_by_kind(day),
        refused_codes=sorted({c for r in no for c in r.error_codes} | {str(r.status) for r in no}),
        changes=len(changes.made),
        changes_landed=len(changes.seen),
        edits=len(edits.made),
        edits_landed=len(edits.seen),
        change_delay_day_min=setup.rounded(delays),
        edit_delay_day_min=setup.rounded(edit_delays),
        offset_s=offset,
    )
    figure.raw = raw
    figure.add(
        Metric(
            key="calls", label="calls the day cost (of 1,000)", value=spent, unit="count",
            target=Target("<=", 800), better="lower",
        )
    )  # fmt: skip
    figure.add(
        Metric(
            key="refused", label="calls refused (any limit)", value=len(no), unit="count",
            target=Target("<=", 0), better="lower",
        )
    )  # fmt: skip
    figure.add(
        Metric(
            key="landed", label=f"changes landed by midnight (of {len(changes.made)})",
            value=len(changes.seen), unit="count", target=Target(">=", len(changes.made)),
        )
    )  # fmt: skip
    figure.add(
        Metric(
            key="edits_landed", label=f"board edits landed by midnight (of {len(edits.made)})",
            value=len(edits.seen), unit="count", target=Target(">=", len(edits.made)),
        )
    )  # fmt: skip
    for key, label, values in (
        ("change", "commit -> row written back", delays),
        ("edit", "board edit -> row written", edit_delays),
    ):
        for pct in (50, 95):
            figure.add(
                Metric(
                    key=f"{key}_p{pct}_min", label=f"{label}, p{pct} (the day's minutes)",
                    value=setup.percentile(values, pct), unit="min", better="lower",
                )
            )  # fmt: skip
    figure.notes.append(
        f"the day compressed x{factor:g} into {sizes.day:g} real s (see bench/daily.py); "
        f"{len(commits)} commits of 1-5 rows and {sizes.edits} edits between "
        f"{WORK_FROM:g}:00 and {WORK_TO:g}:00; reconcile_interval {RECONCILE_INTERVAL:g} s of "
        f"the day; calls by kind: {raw['by_kind']}"
    )
    if bench.options.quick:
        figure.scaled_down = {"why": "--quick", "changes": sizes.changes, "edits": sizes.edits}
    return figure


# --- P13 ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class P13Sizes:
    seconds: int  # a change a second for this long
    wait: float  # then at most this long for the last ones
    margin: float


P13_FULL = P13Sizes(seconds=600, wait=180.0, margin=25.0)
P13_QUICK = P13Sizes(seconds=10, wait=5.0, margin=12.0)


async def p13_account(
    world: Day, calls: int, plan: str, sizes: P13Sizes, start: float
) -> dict[str, Any]:
    """One account: a listener started in the day before, a row a second from 00:00."""
    assert world.monday is not None
    conn = world.conn
    assert conn is not None
    listener = world.listener(f"p13-{calls}", {"plan": plan}, inbound=False)
    await listener.start()
    landed = Landed()
    try:
        writer = await asyncpg.connect(world.dsn)
        try:
            for i in range(sizes.seconds):
                await sleep_until(start + i)
                key = await writer.fetchval(
                    "INSERT INTO contacts (first_name, last_name) VALUES ('Trickle', $1)"
                    " RETURNING id",
                    f"t{i}",
                )
                landed.made[key] = time.time()
                await landed.look(conn, world.offset)
        finally:
            await writer.close()
        stop = start + sizes.seconds
        during = world.records(start, stop)
        deadline = stop + sizes.wait
        while len(landed.seen) < len(landed.made) and time.time() < deadline:
            await asyncio.sleep(0.2)
            await landed.look(conn, world.offset)
    finally:
        await listener.stop()
    spent = sum(r.calls for r in during)
    share = calls * sizes.seconds / DAY
    return {
        "limit": calls,
        "calls": round(spent, 1),
        "even_share": round(share, 2),
        "burst": daily.burst(calls),
        "requests": len(during),
        "refused": len(refused(during)),
        "by_kind": calls_by_kind(during),
        "changes": len(landed.made),
        "landed": len(landed.seen),
        "delay_s": setup.rounded(landed.delays()),
    }


async def run_p13(bench: Bench) -> Figure:
    figure = Figure("P13", "calls per change under a trickle: a change a second, ten minutes")
    sizes = P13_QUICK if bench.options.quick else P13_FULL
    offset, start = offset_for_midnight(time.time() + sizes.margin)
    runs = []
    for calls, plan, limits in (
        (STANDARD, "standard", AccountLimits.standard()),
        (ENTERPRISE, "enterprise", AccountLimits.enterprise()),
    ):
        runs.append((calls, plan, Day(bench, f"bench_p13_{plan}", offset, limits)))
    try:
        for _, _, world in runs:
            await world.start()
        late = time.time() - start
        bench.log(f"from 00:00 UTC on the shifted clocks, {sizes.seconds} s on two accounts")
        results = await asyncio.gather(
            *(p13_account(world, calls, plan, sizes, start) for calls, plan, world in runs)
        )
    finally:
        for _, _, world in runs:
            await world.stop()
    figure.raw = {"seconds": sizes.seconds, "setup_late_s": round(max(late, 0.0), 2)}
    for result in results:
        figure.raw[str(result["limit"])] = result
        n = f"{result['limit']:,}"
        bound = result["even_share"] + result["burst"]
        figure.add(
            Metric(
                key=f"calls_{result['limit']}",
                label=f"{n}-call account: calls in the {sizes.seconds} s", value=result["calls"],
                unit="count", target=Target("<=", round(bound, 2)), better="lower",
            )
        )  # fmt: skip
        figure.add(
            Metric(
                key=f"share_{result['limit']}",
                label=f"  the even share of {sizes.seconds} s + the burst "
                f"({result['even_share']:g} + {result['burst']:g})",
                value=bound, unit="count",
            )
        )  # fmt: skip
        figure.add(
            Metric(
                key=f"p50_{result['limit']}_s",
                label=f"{n}-call account: commit -> row written back, p50",
                value=setup.percentile(result["delay_s"], 50), unit="s", better="lower",
                target=Target("<=", 1.0) if result["limit"] == ENTERPRISE else None,
            )
        )  # fmt: skip
        figure.add(
            Metric(
                key=f"landed_{result['limit']}",
                label=f"{n}-call account: changes landed (of {result['changes']})",
                value=result["landed"], unit="count",
            )
        )  # fmt: skip
    figure.notes.append(
        f"a row a second from 00:00 UTC (the database's and the emulator's clocks shifted), "
        f"calls counted by the emulator during the {sizes.seconds} s; the last changes waited "
        f"at most {sizes.wait:g} s more"
    )
    if bench.options.quick:
        figure.scaled_down = {"why": "--quick", "seconds": sizes.seconds}
    return figure


# --- P14 ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class P14Sizes:
    day: float
    rows: int
    margin: float


P14_FULL = P14Sizes(day=300.0, rows=500, margin=60.0)
P14_QUICK = P14Sizes(day=10.0, rows=20, margin=10.0)


async def run_p14(bench: Bench) -> Figure:
    figure = Figure("P14", "an idle day: inbound on, nothing changes")
    sizes = P14_QUICK if bench.options.quick else P14_FULL
    factor = DAY / sizes.day
    offset, end = offset_for_midnight(time.time() + sizes.margin + sizes.day)
    start = end - sizes.day
    world = Day(bench, "bench_p14", offset, AccountLimits.unlimited())
    try:
        await world.start()
        assert world.monday is not None
        bench.log(f"the day before: {sizes.rows} rows synced, webhooks, a first read")
        await world.the_day_before(sizes.rows, RECONCILE_INTERVAL / factor)
        world.monday.emulator.set_limits(standard_day(factor))
        late = time.time() - start
        await sleep_until(start)
        day_start = time.time()
        tuning = {"plan": "standard", "reconcile_interval": RECONCILE_INTERVAL / factor}
        listener = world.listener("p14", tuning, inbound=True)
        bench.log(f"an idle day of {end - day_start:.0f} s (x{factor:g})")
        await listener.start()
        try:
            await sleep_until(end - 0.2)
            day = world.records(day_start, end - 0.2)
        finally:
            await listener.stop()
    finally:
        await world.stop()
    spent = sum(r.calls for r in day)
    figure.raw = {
        "day_s": sizes.day, "factor": factor, "calls": round(spent, 1), "requests": len(day),
        "by_kind": calls_by_kind(day), "refused": len(refused(day)),
        "refused_codes": sorted({c for r in refused(day) for c in r.error_codes}),
        "timeline": [
            [round(r.at - world.emulated(day_start), 2), ",".join(r.root_fields), r.calls]
            for r in day
        ],
        "setup_late_s": round(max(late, 0.0), 2), "quiet_before_day_s": round(-late, 1),
        "offset_s": offset,
    }  # fmt: skip
    figure.add(
        Metric(
            key="share", label="the day's calls, of the 1,000-call limit",
            value=spent / STANDARD * 100, unit="%", target=Target("<=", 5), better="lower",
        )
    )  # fmt: skip
    figure.add(Metric(key="calls", label="  calls", value=spent, unit="count"))
    figure.notes.append(
        f"the day compressed x{factor:g} into {sizes.day:g} real s, reconcile_interval "
        f"{RECONCILE_INTERVAL:g} s of the day (the default); calls by kind: "
        f"{figure.raw['by_kind']}"
    )
    if bench.options.quick:
        figure.scaled_down = {"why": "--quick", "day_s": sizes.day}
    return figure
