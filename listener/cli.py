"""npd-sync's command line: parse options, load settings, run one async command, map errors to
exit codes (0 ok, 1 an operation or check failed, 2 bad usage or configuration).

The `npd-sync` console script; `python cli.py` at the repository's top runs the same.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import asyncpg
import click

from listener import __version__, daemon, logs, settings
from listener.capture import install
from listener.commands import backfill as backfiller
from listener.commands import check, requeue, schema, status

ENVIRONMENT = """\b
Environment (a .env file in the working directory is read too):
  DATABASE_URL                   PostgreSQL URL (required)
  MONDAY_API_KEY                 Monday API token (secret; never printed)
  MONDAY_API_VERSION             API-Version header (default 2026-10)
  MONDAY_API_URL                 GraphQL endpoint (default https://api.monday.com/v2)
  MONDAY_CONTACTS_BOARD_ID       board for contacts (unset: not synced)
  MONDAY_ORGANIZATIONS_BOARD_ID  board for organizations (unset: not synced)
  NPD_SYNC_CONFIG                TOML file with mappings and tuning
"""


def fail(message: str, code: int) -> NoReturn:
    """Print one line to stderr and exit."""
    click.echo(f"npd-sync: {message}", err=True)
    sys.exit(code)


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command coroutine, turning known failures into one line and an exit code."""
    try:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is optional on some platforms
            return asyncio.run(coro)
        else:
            return uvloop.run(coro)
    except (settings.ConfigError, requeue.UsageError) as exc:
        fail(str(exc), 2)
    except (install.InstallError, install.NotInstalled, daemon.SideTaskFailed) as exc:
        fail(str(exc).replace("\n", "\nnpd-sync: "), 1)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # Never print the DSN: it may hold a password.
        fail(f"database error: {exc}", 1)


def load_settings(*, database: bool = True) -> settings.Settings:
    """The validated configuration, or exit 2 naming what to fix."""
    try:
        config = settings.load()
        if database:
            config.require_database()
    except settings.ConfigError as exc:
        fail(str(exc), 2)
    return config


@click.group(epilog=ENVIRONMENT, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="npd-sync")
@click.option(
    "--log-level",
    default="INFO",
    envvar="NPD_SYNC_LOG_LEVEL",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Least severe log level shown.",
)
@click.option(
    "--log-format",
    default="auto",
    envvar="NPD_SYNC_LOG_FORMAT",
    type=click.Choice(["auto", "text", "json"]),
    help="text on a terminal, json otherwise (auto).",
)
def main(log_level: str, log_format: logs.Format) -> None:
    """Mirror PostgreSQL contacts and organizations onto Monday.com boards."""
    logs.setup(log_level, log_format)


@main.command(name="install", epilog=ENVIRONMENT)
@click.option("--dry-run", is_flag=True, help="Print the SQL instead of running it.")
def install_cmd(dry_run: bool) -> None:
    """Create the npd_sync schema and the triggers on the configured tables (idempotent)."""
    config = load_settings()
    run(schema.install(config, dry_run=dry_run, echo=click.echo))


@main.command(epilog=ENVIRONMENT)
def uninstall() -> None:
    """Remove the triggers and the npd_sync schema (application rows are never touched)."""
    config = load_settings()
    run(schema.uninstall(config, echo=click.echo))


@main.command(epilog=ENVIRONMENT)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve Prometheus /metrics and /healthz on this port.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address for --metrics-port (0.0.0.0: every interface, for a remote Prometheus).",
)
def listen(metrics_port: int | None, metrics_host: str) -> None:
    """Sync every committed change to Monday until SIGTERM or SIGINT."""
    config = load_settings()
    run(daemon.listen(config, metrics_port=metrics_port, metrics_host=metrics_host))


@main.command(epilog=ENVIRONMENT)
@click.option("--table", metavar="TABLE", help="Only this table (as configured).")
@click.option("--all", "everything", is_flag=True, help="Also re-push rows already SYNCED.")
@click.option("--dry-run", is_flag=True, help="Say what would be pushed, with sample payloads.")
def backfill(table: str | None, everything: bool, dry_run: bool) -> None:
    """Push existing rows that were never synced or are not SYNCED, through the listener's
    queue: safe beside a running listener, safe to interrupt and run again. Items already on
    the board with the row's npd_id are adopted, not duplicated. Exit 1 if rows FAILED."""
    ok = run(
        backfiller.run(
            load_settings(), table=table, everything=everything, dry_run=dry_run, echo=click.echo
        )
    )
    sys.exit(0 if ok else 1)


@main.command(name="status", epilog=status.JSON_KEYS + "\n" + ENVIRONMENT)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (keys below).")
def status_cmd(as_json: bool) -> None:
    """Per table: pending, in-flight, failed and synced rows, the oldest pending change; the
    latest errors; the listeners; Monday's state. Exit 0 whatever the counts; 1 when
    npd-sync is not installed in the database."""
    run(status.run(load_settings(), as_json=as_json, echo=click.echo))


@main.command(name="retry", epilog=ENVIRONMENT)
@click.option("--table", metavar="TABLE", help="Only this table (as configured).")
@click.option(
    "--id",
    "ids",
    multiple=True,
    metavar="KEY",
    help="Only the row with this primary key; repeatable. Needs --table when several tables "
    "are configured.",
)
def retry_cmd(table: str | None, ids: tuple[str, ...]) -> None:
    """Put failed rows back in the queue: due now, with a fresh set of attempts, and their
    sync_status back to PENDING. The last error is kept until the next attempt."""
    ok = run(requeue.run(load_settings(), table=table, ids=ids, echo=click.echo))
    sys.exit(0 if ok else 1)


@main.command(name="check", epilog=ENVIRONMENT)
def check_cmd() -> None:
    """Check the database (reachable, tables and columns, capture installed and current), the
    Monday token, the API version and the boards (present, mapped columns with matching
    types). One line per check; exit 1 if any failed (⚠ warnings do not fail)."""
    config = load_settings(database=False)
    unicode = _can_print("✓⚠✗")
    ok = run(check.run(config, echo=click.echo, unicode=unicode))
    sys.exit(0 if ok else 1)


def _can_print(text: str) -> bool:
    """Whether stdout's encoding can show these characters (else check prints ASCII marks)."""
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


@main.command(name="emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    default="emulator-token",
    show_default=True,
    help="API token clients must send (MONDAY_API_KEY).",
)
@click.option(
    "--plan",
    default="pro",
    show_default=True,
    type=click.Choice(["free", "standard", "pro", "enterprise", "unlimited"]),
    help="Rate limits to enforce, as on that Monday plan (unlimited: none).",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep boards and items in this JSON file between runs.",
)
@click.option(
    "--signing-secret",
    envvar="MONDAY_SIGNING_SECRET",
    show_envvar=True,
    help="Sign webhook deliveries with this app signing secret (a JWT), as Monday does for an "
    "app token's webhooks; without it deliveries carry none, as for a personal token.",
)
@click.option(
    "--webhook-retry-interval",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds between retries of a failed webhook delivery.",
)
@click.option(
    "--webhook-retry-for",
    default=1800.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds after the first attempt during which a failed delivery is retried.",
)
def emulator_cmd(
    host: str,
    port: int,
    token: str,
    plan: str,
    state_file: Path | None,
    signing_secret: str | None,
    webhook_retry_interval: float,
    webhook_retry_for: float,
) -> None:
    """A local Monday.com-compatible GraphQL API, with boards for the configured tables (a
    development tool: it ships with the source checkout, with `pip install -e '.[emulator]'`)."""
    config = load_settings(database=False)
    try:
        import emulator
    except ImportError as exc:
        fail(
            f"the emulator is not installed here ({exc.name} is missing): it is a development "
            "tool; run it from a checkout of npd-sync after `make setup` (or pip install -e "
            "'.[emulator]')",
            2,
        )
    options = emulator.EmulatorOptions(
        host=host,
        port=port,
        token=token,
        plan=plan,
        state_file=state_file,
        tables=config.tables,
        signing_secret=signing_secret,
        webhook_retry_interval=webhook_retry_interval,
        webhook_retry_for=webhook_retry_for,
    )
    try:
        run(emulator.serve(options))
    except emulator.StateFileError as exc:
        fail(str(exc), 2)


if __name__ == "__main__":
    main()
