"""The commands behind the CLI, as async functions: `cli.py` only parses and prints."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Callable, Sequence

from listener import backfill as backfiller
from listener import check as checker
from listener import daemon, db, monday, sql, worker
from listener import install as installer
from listener import retry as retrier
from listener import status as reporter
from listener.settings import ConfigError, Settings

Echo = Callable[[str], None]


async def install(settings: Settings, *, dry_run: bool, echo: Echo) -> None:
    """Create or upgrade the npd_sync schema and attach capture to the configured tables."""
    conn = await db.connect(settings.require_database(), application_name="npd-sync install")
    try:
        plan = await installer.install(conn, settings.tables, dry_run=dry_run)
    finally:
        await conn.close()
    if dry_run:
        for step in plan.steps:
            echo(f"-- {step.description}\n{step.sql}\n")
        if not plan.steps:
            echo("-- nothing to do: npd-sync is installed and up to date")
        return
    for note in plan.notes:
        echo(note)
    for step in plan.steps:
        echo(f"done: {step.description}")
    if not plan.steps:
        echo("nothing to do: npd-sync is installed and up to date")


async def uninstall(settings: Settings, *, echo: Echo) -> None:
    """Remove capture and the npd_sync schema."""
    conn = await db.connect(settings.require_database(), application_name="npd-sync uninstall")
    try:
        done = await installer.uninstall(conn)
    finally:
        await conn.close()
    for line in done or ["nothing to do: npd-sync is not installed"]:
        echo(line)


async def listen(settings: Settings, *, metrics_port: int | None = None) -> None:
    """Run the listener until SIGTERM or SIGINT."""
    listener = daemon.Daemon(settings, metrics_port=metrics_port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, listener.request_stop)
    await listener.run()


NOT_INSTALLED = "npd-sync is not installed in this database: run `npd-sync install`"


async def backfill(
    settings: Settings, *, table: str | None, everything: bool, dry_run: bool, echo: Echo
) -> bool:
    """Push existing rows that need it; False when some ended FAILED."""
    if table is not None:
        settings.table(table)  # an unknown name is a ConfigError (exit 2)
    pool = await db.create_pool(settings.require_database(), application_name="npd-sync backfill")
    try:
        async with pool.acquire() as conn:
            tables = backfiller.choose(await worker.load_tables(conn, settings), table)
        if not tables:
            raise ConfigError("no table to backfill: set a board id (MONDAY_<TABLE>_BOARD_ID)")
        if dry_run:
            await backfiller.dry_run(pool, tables, everything=everything, echo=echo)
            return True
        if settings.api_key is None:
            raise ConfigError("MONDAY_API_KEY is not set: backfill needs to reach Monday")
        async with monday.client(settings) as client:
            report = await backfiller.run(
                settings, pool, client, tables, everything=everything, echo=echo
            )
    finally:
        await pool.close()
    echo(f"done: {report.synced} synced, {report.failed} failed, {report.left} left pending")
    if report.left:
        echo("the rows left pending are retried by `npd-sync listen` (or the next backfill)")
    return report.failed == 0


async def _schema_version(conn: db.Conn) -> int:
    """The installed schema version; raises worker.NotInstalled (exit 1) if absent or old."""
    version = await reporter.installed_version(conn)
    if version is None:
        raise worker.NotInstalled(NOT_INSTALLED)
    latest = sql.migrations()[-1].version
    if version < latest:
        raise worker.NotInstalled(
            f"npd-sync's schema here is at version {version}, this npd-sync needs {latest}: "
            "run `npd-sync install`"
        )
    return version


async def status(settings: Settings, *, as_json: bool, echo: Echo) -> None:
    """Print the queue's state per table, the latest errors, the listeners and Monday's state."""
    conn = await db.connect(settings.require_database(), application_name="npd-sync status")
    try:
        version = await _schema_version(conn)
        report = await reporter.collect(conn, settings, version)
    finally:
        await conn.close()
    if as_json:
        echo(json.dumps(reporter.to_json(report), indent=2, ensure_ascii=False))
    else:
        for line in reporter.render(report):
            echo(line)


async def retry(settings: Settings, *, table: str | None, ids: Sequence[str], echo: Echo) -> bool:
    """Put failed rows back in the queue; False when a table named could not be handled."""
    wanted = retrier.targets(settings, table, ids)
    conn = await db.connect(settings.require_database(), application_name="npd-sync retry")
    try:
        await _schema_version(conn)
        results = await retrier.retry(conn, wanted)
        listeners = await conn.fetch(sql.command("status_listeners"), reporter.ALIVE_SECONDS)
    finally:
        await conn.close()
    total = 0
    for result in results:
        if result.note:
            echo(f"{result.table}: {result.note}")
        elif result.requeued:
            count = len(result.requeued)
            total += count
            echo(f"{result.table}: {count} row{'' if count == 1 else 's'} back in the queue")
        if result.not_failed:
            echo(f"{result.table}: not failed, left as they are: {', '.join(result.not_failed)}")
    if total == 0 and not any(r.note for r in results):
        echo("no failed rows")
    elif total and settings.api_key is None:
        echo("MONDAY_API_KEY is not set: they stay pending until it is")
    elif total and not any(r["alive"] for r in listeners):
        echo("no listener is running: they are synced when `npd-sync listen` runs")
    return not any(r.note for r in results)


async def check(settings: Settings, *, echo: Echo, unicode: bool = True) -> bool:
    """Check the database, the capture, the token and the boards; True when nothing failed."""

    def report(result: checker.Result) -> None:
        for line in checker.format_result(result, unicode=unicode):
            echo(line)

    return await checker.run(settings, report)
