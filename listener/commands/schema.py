"""`npd-sync install` / `uninstall`: run `listener.capture.install` and say what it did."""

from __future__ import annotations

from collections.abc import Callable

from listener import db
from listener.capture import install as installer
from listener.operations import report
from listener.settings import Settings

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
            echo(f"-- {step.description}\n{step.shown}\n")
        if not plan.steps:
            echo("-- nothing to do: npd-sync is installed and up to date")
        return
    for note in plan.notes:
        echo(note)
    for step in plan.steps:
        echo(f"done: {step.description}")
    if not plan.steps:
        echo("nothing to do: npd-sync is installed and up to date")


async def uninstall(settings: Settings, *, force: bool = False, echo: Echo) -> None:
    """Remove capture and the npd_sync schema; refused while listeners run, unless forced."""
    conn = await db.connect(settings.require_database(), application_name="npd-sync uninstall")
    try:
        alive_within = None if force else report.ALIVE_SECONDS
        done = await installer.uninstall(conn, alive_within=alive_within)
    finally:
        await conn.close()
    for line in done or ["nothing to do: npd-sync is not installed"]:
        echo(line)
