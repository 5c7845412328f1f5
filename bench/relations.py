"""P15: what relations cost a backfill: the requests to Monday for `p15_contacts` contacts over
`p15_organizations` organizations, with and without the contacts' organization_id mapped to a
connect-boards column (target: at most 10% more).

Each run starts from rows that were never captured (a backfill's case), every contact pointing
at an organization, and an emulator with no limits; `npd-sync backfill` pushes both tables and
every request it makes is counted at the emulator.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from bench import setup
from bench.report import Figure, Metric, Target
from bench.setup import Bench
from listener import db

RELATION = """
[tables.contacts]
name = "{first_name} {last_name}"
[tables.contacts.columns.email]
type = "email"
source = "email"
[tables.contacts.columns.company]
type = "board_relation"
source = "organization_id"
references = "organizations"

[tables.organizations]
name = "{name}"
"""
PLAIN = RELATION.replace(
    '[tables.contacts.columns.company]\ntype = "board_relation"\nsource = "organization_id"\n'
    'references = "organizations"\n',
    "",
)


async def _rows(dsn: str, contacts: int, organizations: int) -> None:
    """The rows, as they were before npd-sync (not captured)."""
    conn = await db.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO organizations (name) SELECT 'Org ' || g FROM generate_series(1, $1) g",
            organizations,
        )
        await conn.execute(
            "INSERT INTO contacts (first_name, last_name, email, organization_id)"
            " SELECT 'First' || g, 'Last' || g, 'person' || g || '@example.com', g % $2 + 1"
            "   FROM generate_series(1, $1) g",
            contacts,
            organizations,
        )
    finally:
        await conn.close()


async def _backfill(bench: Bench, mapping: str, *, relation: bool) -> dict[str, Any]:
    sizes = bench.sizes
    name = "relation" if relation else "plain"
    dbname = await bench.server.create_database(f"bench_p15_{name}", setup.INSTALLED_TEMPLATE)
    dsn = bench.server.dsn(dbname)
    monday = setup.Monday()
    if relation:
        monday.emulator.add_column(
            setup.CONTACTS_BOARD, "company", "board_relation",
            settings={"boardIds": [int(setup.ORGANIZATIONS_BOARD)]},
        )  # fmt: skip
    await monday.start()
    try:
        await _rows(dsn, sizes.p15_contacts, sizes.p15_organizations)
        config = bench.workdir / f"p15-{name}.toml"
        config.write_text(mapping)
        env = setup.Listener(dsn, monday.url, bench.workdir, name=f"p15-{name}").environment()
        env["NPD_SYNC_CONFIG"] = str(config)
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(setup.ROOT / "cli.py"), "backfill",
            env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await proc.communicate()
        counters = monday.emulator.counters
        linked = sum(
            1 for item in monday.emulator.items(setup.CONTACTS_BOARD)
            if item.values.get("company")
        )  # fmt: skip
        result: dict[str, Any] = {
            "exit_code": proc.returncode,
            "requests": counters.requests,
            "mutations": counters.mutations,
            "seconds": round(time.monotonic() - started, 2),
            "contacts_linked": linked,
        }
        if proc.returncode != 0:
            result["problem"] = err.decode(errors="replace").strip()[-500:]
        return result
    finally:
        await monday.stop()
        await bench.server.drop_database(dbname)


async def run(bench: Bench) -> Figure:
    figure = Figure("P15", "relations: requests of a backfill with a connect-boards column")
    sizes = bench.sizes
    bench.log(f"{sizes.p15_contacts:,} contacts over {sizes.p15_organizations:,} organizations")
    plain = await _backfill(bench, PLAIN, relation=False)
    bench.log(f"  without the relation: {plain['requests']} requests")
    related = await _backfill(bench, RELATION, relation=True)
    bench.log(f"  with it: {related['requests']} requests, {related['contacts_linked']} linked")
    figure.raw = {"plain": plain, "relation": related}
    ratio = related["requests"] / plain["requests"] if plain["requests"] else None
    figure.add(
        Metric(
            key="requests_ratio",
            label=f"requests with the relation / without ({related['requests']:,} / "
            f"{plain['requests']:,}), backfill of {sizes.p15_contacts:,} contacts over "
            f"{sizes.p15_organizations:,} organizations",
            value=ratio,
            unit="x",
            target=Target("<=", 1.10),
            better="lower",
        )
    )
    figure.notes.append(
        f"contacts linked to their organization's item: {related['contacts_linked']:,} of "
        f"{sizes.p15_contacts:,}"
    )
    if bench.options.quick:
        figure.scaled_down = {"why": "--quick", "contacts": sizes.p15_contacts}
    return figure
