"""Experiments behind the suite's proposals, kept to be rerun (not part of `make bench`).

    python -m bench.experiments claim      the claim query's plan on stale vs fresh statistics
    python -m bench.experiments triggers   a 100,000-row UPDATE under other capture triggers
                                           (--pgbench: and P1's single-row UPDATE)

Each starts its own throwaway cluster (durable settings) and prints what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from bench import pgbench, setup
from listener import db, sql
from listener.engine import source

# --- the claim's plan ---------------------------------------------------------------------


async def claim(server: setup.Server, pending: int) -> None:
    """Queue `pending` entries the way a backlog is (ingest), then time and explain the
    claim before and after an ANALYZE of npd_sync.queue."""
    dbname = await server.create_database("exp_claim", setup.INSTALLED_TEMPLATE)
    await setup.insert_contacts(server.dsn(dbname), pending, captured=True)
    conn = await db.connect(server.dsn(dbname))
    try:
        while await conn.fetchval("SELECT EXISTS (SELECT FROM npd_sync.changes)"):
            await source.ingest(conn, 5_000)
        query = sql.query("claim")
        for label in ("statistics from install time (queue analysed empty)", "after ANALYZE"):
            if label == "after ANALYZE":
                await conn.execute("ANALYZE npd_sync.queue")
            times = []
            for i in range(5):
                started = time.perf_counter()
                await conn.fetch(query, 100, [1, 2], f"exp-{i}", 60.0)
                times.append((time.perf_counter() - started) * 1000)
            plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {query}", 100, [1, 2], "x", 60.0)
            lines = [r[0] for r in plan]
            shape = [ln.strip() for ln in lines if "Scan" in ln or "Sort" in ln][:6]
            print(f"claim of 100 among {pending:,} pending, {label}:")
            print(f"  median {statistics.median(times):.2f} ms  ({[round(t, 2) for t in times]})")
            for line in shape:
                print(f"    {line}")
    finally:
        await conn.close()
        await server.drop_database(dbname)


# --- capture triggers ---------------------------------------------------------------------

_ROW_INSERT = """
CREATE FUNCTION npd_sync.exp_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO npd_sync.changes (table_id, row_key) VALUES (1, NEW.id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER exp AFTER UPDATE OF first_name, last_name, email, phone, role_title, notes
    ON contacts FOR EACH ROW
    WHEN (pg_catalog.current_setting('npd_sync.origin', true) IS DISTINCT FROM 'listener')
    EXECUTE FUNCTION npd_sync.exp_row();
"""
_STATEMENT_ROWS = """
CREATE FUNCTION npd_sync.exp_stmt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_catalog.current_setting('npd_sync.origin', true) IS DISTINCT FROM 'listener' THEN
        INSERT INTO npd_sync.changes (table_id, row_key) SELECT 1, n.id::text FROM new_rows n;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER exp AFTER UPDATE ON contacts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION npd_sync.exp_stmt();
"""
_STATEMENT_ARRAY = """
CREATE TABLE npd_sync.exp_changes (
    table_id smallint NOT NULL, row_keys text[] NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION npd_sync.exp_arr() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_catalog.current_setting('npd_sync.origin', true) IS DISTINCT FROM 'listener' THEN
        INSERT INTO npd_sync.exp_changes (table_id, row_keys)
        SELECT 1, array_agg(n.id::text) FROM new_rows n;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER exp AFTER UPDATE ON contacts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION npd_sync.exp_arr();
"""
_CHANGES = """
CREATE SCHEMA npd_sync;
CREATE TABLE npd_sync.changes (
    table_id smallint NOT NULL, row_key text NOT NULL, archive_id text,
    changed_at timestamptz NOT NULL DEFAULT now()
);
"""
VARIANTS = {
    "no trigger": None,
    "npd-sync install (row triggers + wake check)": "install",
    "row trigger, INSERT only (no wake check)": _CHANGES + _ROW_INSERT,
    "statement trigger, NEW TABLE, one change row per row": _CHANGES + _STATEMENT_ROWS,
    "statement trigger, NEW TABLE, one change row of all keys": _CHANGES + _STATEMENT_ARRAY,
}


async def triggers(server: setup.Server, rows: int, runs: int, *, single_row: bool) -> None:
    """A `rows`-row UPDATE (as P6) under each capture variant, runs alternating."""
    base = await server.create_database("exp_base", setup.PLAIN_TEMPLATE)
    await setup.insert_contacts(server.dsn(base), rows, captured=False)
    await server.execute(base, "VACUUM ANALYZE contacts")
    dbs: dict[str, str] = {}
    for name, ddl in VARIANTS.items():
        dbname = await server.create_database("exp_variant", base)
        if ddl == "install":
            await server.install(dbname)
        elif ddl is not None:
            await server.execute(dbname, ddl)
        dbs[name] = dbname
    times: dict[str, list[float]] = {name: [] for name in dbs}
    for i in range(runs):
        order = list(dbs.items()) if i % 2 == 0 else list(reversed(dbs.items()))
        for name, dbname in order:
            conn = await asyncpg.connect(server.dsn(dbname))
            try:
                await conn.execute(
                    "DO $$ BEGIN IF to_regclass('npd_sync.changes') IS NOT NULL THEN"
                    " TRUNCATE npd_sync.changes; END IF;"
                    " IF to_regclass('npd_sync.exp_changes') IS NOT NULL THEN"
                    " TRUNCATE npd_sync.exp_changes; END IF; END $$"
                )
                await conn.execute("VACUUM contacts")
                await conn.execute("CHECKPOINT")
                started = time.perf_counter()
                await conn.execute(
                    "UPDATE contacts SET role_title = $1 WHERE id <= $2", f"run {i}", rows
                )
                times[name].append(time.perf_counter() - started)
            finally:
                await conn.close()
    none = statistics.median(times["no trigger"])
    print(f"one UPDATE of {rows:,} rows, median of {runs} alternating runs:")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {median:6.3f} s  {median / none:4.2f}x  {name}")
    if single_row:
        await _single_row(server, dbs, rows, runs)


async def _single_row(server: setup.Server, dbs: dict[str, str], rows: int, runs: int) -> None:
    """The same variants under P1's single-row UPDATE (pgbench, 3 s slices, alternating)."""
    with tempfile.TemporaryDirectory(prefix="npd-sync-exp-pgbench-") as scratch:
        script = Path(scratch) / "update.sql"
        script.write_text(pgbench.UPDATE_SCRIPT.format(rows=rows))
        bench = setup.Bench(setup.Options(), server, Path(scratch))
        for clients in (1, 4):
            tps: dict[str, list[float]] = {name: [] for name in dbs}
            for i in range(runs):
                order = list(dbs.items()) if i % 2 == 0 else list(reversed(dbs.items()))
                for name, dbname in order:
                    result = await pgbench.pgbench(bench, dbname, script, clients, 3)
                    tps[name].append(result["tps"])
            none = statistics.median(tps["no trigger"])
            print(f"single-row UPDATE, {clients} client(s), median tps of {runs} runs of 3 s:")
            for name, samples in tps.items():
                median = statistics.median(samples)
                print(f"  {median:8.0f} tps  {median / none:4.2f}  {name}")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="npd-sync-exp-") as scratch:
        await asyncio.to_thread(Path(scratch).chmod, 0o755)
        server = setup.Server()
        await server.start()
        try:
            await server.make_templates()
            if args.experiment == "claim":
                await claim(server, args.rows)
            else:
                await triggers(server, args.rows, args.runs, single_row=args.pgbench)
        finally:
            await server.destroy()


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.experiments", description=__doc__)
    parser.add_argument("experiment", choices=["claim", "triggers"])
    parser.add_argument("--rows", type=int, default=None, help="claim: 200,000; triggers: 100,000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--pgbench", action="store_true", help="triggers: also P1's single-row UPDATE"
    )
    args = parser.parse_args(argv)
    if args.rows is None:
        args.rows = 200_000 if args.experiment == "claim" else 100_000
    asyncio.run(main(args))
    return 0


if __name__ == "__main__":
    sys.exit(run())
