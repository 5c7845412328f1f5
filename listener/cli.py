"""npd-sync's command line: parse options, load settings, run one async command, map errors to
exit codes (0 ok, 1 an operation or check failed, 2 bad usage or configuration).

The `npd-sync` console script; `python cli.py` at the repository's top runs the same.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import asyncpg
import click

from listener import __version__, console, daemon, logs, settings
from listener.capture import install
from listener.commands import backfill as backfiller
from listener.commands import check, mappings, pull, requeue, schema, status, webhooks
from listener.commands import conflicts as conflicting
from listener.inbound.webhooks import WebhookError
from listener.monday import errors as monday_errors
from listener.operations import keys

ENVIRONMENT = """\b
Environment (a .env file in the working directory is read too):
  DATABASE_URL                   PostgreSQL URL (required)
  MONDAY_API_KEY                 Monday API token (secret; never printed)
  MONDAY_API_VERSION             API-Version header (default 2026-10)
  MONDAY_API_URL                 GraphQL endpoint (default https://api.monday.com/v2)
  MONDAY_CONTACTS_BOARD_ID       board for contacts (unset: not synced)
  MONDAY_ORGANIZATIONS_BOARD_ID  board for organizations (unset: not synced)
  NPD_SYNC_CONFIG                TOML file with mappings and tuning
  NPD_SYNC_PUBLIC_URL            where Monday reaches the webhook receiver (inbound on)
  NPD_SYNC_WEBHOOK_PORT          default for listen --webhook-port
  MONDAY_SIGNING_SECRET          app token only: verify the webhooks' JWT (secret)
"""

CONSOLE_ENVIRONMENT = """\b
Console (a .env file in the working directory is read too):
  NPD_SYNC_CONSOLE_TOKEN         token people sign in with (secret; required when bound to
                                 anything but loopback; at least 16 characters)
  NPD_SYNC_CONSOLE_ITEM_URL      link to an item, with {board} and {item}
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
    except (settings.ConfigError, keys.UsageError, WebhookError) as exc:
        fail(str(exc), 2)
    except install.InstallError as exc:
        if exc.fixes:
            click.echo("npd-sync: " + str(exc).replace("\n", "\nnpd-sync: "), err=True)
            fail("run this as the tables' owner, then install again:\n" + "\n".join(exc.fixes), 1)
        fail(str(exc).replace("\n", "\nnpd-sync: "), 1)
    except (install.NotInstalled, daemon.SideTaskFailed, mappings.MondayFailed) as exc:
        fail(str(exc).replace("\n", "\nnpd-sync: "), 1)
    except monday_errors.MondayError as exc:
        # An operation Monday failed (the webhooks commands redact and raise it).
        fail(str(exc), 1)
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
@click.option(
    "--force",
    is_flag=True,
    help="Even while listeners run (their heartbeat is fresh): they fail until stopped.",
)
def uninstall(force: bool) -> None:
    """Remove the triggers and the npd_sync schema (application rows are never touched).
    Refused (exit 1) while listeners run: stop them first."""
    config = load_settings()
    run(schema.uninstall(config, force=force, echo=click.echo))


@main.command(epilog=ENVIRONMENT + "\n" + CONSOLE_ENVIRONMENT)
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
@click.option(
    "--webhook-port",
    type=click.IntRange(1, 65535),
    help="Serve Monday's webhooks (inbound sync) on this port; default NPD_SYNC_WEBHOOK_PORT. "
    "Needs NPD_SYNC_PUBLIC_URL, the address a reverse proxy serves it at.",
)
@click.option(
    "--webhook-host",
    default="127.0.0.1",
    show_default=True,
    help="Address for --webhook-port (the reverse proxy's side).",
)
@click.option(
    "--console-port",
    type=click.IntRange(1, 65535),
    help="Serve the web console (as `npd-sync console` does) on this port too.",
)
@click.option(
    "--console-host",
    default="127.0.0.1",
    show_default=True,
    help="Address for --console-port (not loopback: NPD_SYNC_CONSOLE_TOKEN is required).",
)
@click.option(
    "--item-url",
    envvar="NPD_SYNC_CONSOLE_ITEM_URL",
    default=console.DEFAULT_ITEM_URL,
    show_default=True,
    help="For --console-port: the link to an item on Monday ({board}, {item}).",
)
@click.option(
    "--secure-cookie",
    is_flag=True,
    help="For --console-port: mark the session cookie Secure (behind an HTTPS proxy).",
)
def listen(
    metrics_port: int | None,
    metrics_host: str,
    webhook_port: int | None,
    webhook_host: str,
    console_port: int | None,
    console_host: str,
    item_url: str,
    secure_cookie: bool,
) -> None:
    """Sync every committed change to Monday, and (with NPD_SYNC_PUBLIC_URL) every edit made on
    the boards back into the rows, until SIGTERM or SIGINT."""
    config = load_settings()
    webhook_port = webhook_port or config.webhook_port
    if webhook_port is not None and not config.inbound:
        fail(
            "--webhook-port (NPD_SYNC_WEBHOOK_PORT) needs NPD_SYNC_PUBLIC_URL: the base URL at "
            "which Monday reaches the receiver",
            2,
        )
    options = None
    if console_port is not None:
        options = console_options(console_host, console_port, item_url, secure_cookie)
    run(
        daemon.listen(
            config,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            webhook_port=webhook_port,
            webhook_host=webhook_host,
            console_options=options,
        )
    )


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
@click.option(
    "--discard",
    is_flag=True,
    help="Stop retrying instead: take the failed rows out of the queue. They stay FAILED in "
    "the table and wait for new data (a change to the row, or a retry naming it).",
)
def retry_cmd(table: str | None, ids: tuple[str, ...], discard: bool) -> None:
    """Put failed rows back in the queue: due now, with a fresh set of attempts, and their
    sync_status back to PENDING. The last error is kept until the next attempt. With
    --discard, take them out of the queue instead."""
    config = load_settings()
    ok = run(requeue.run(config, table=table, ids=ids, echo=click.echo, discard=discard))
    sys.exit(0 if ok else 1)


@main.command(name="console", epilog=CONSOLE_ENVIRONMENT + "\n" + ENVIRONMENT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=console.DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free one).",
)
@click.option(
    "--item-url",
    envvar="NPD_SYNC_CONSOLE_ITEM_URL",
    default=console.DEFAULT_ITEM_URL,
    show_default=True,
    help="The link to an item on Monday ({board}, {item}); with your account's address, "
    "e.g. https://acme.monday.com/boards/{board}/pulses/{item}.",
)
@click.option(
    "--secure-cookie",
    is_flag=True,
    help="Mark the session cookie Secure: when people reach the console over HTTPS (a proxy).",
)
def console_cmd(host: str, port: int, item_url: str, secure_cookie: bool) -> None:
    """A web console: each table's state, the last hour's throughput and latency, listeners,
    Monday's pause and budget; a search for rows (key, item id, email, name); failed rows by
    error, their retry and stop retrying; conflicts; one row's story and history; the mapping.
    It reads the database, with or without a listener running (Monday only when asked, within
    the shared limits). Bound to anything but loopback it requires NPD_SYNC_CONSOLE_TOKEN;
    every action is a POST with CSRF protection."""
    config = load_settings()
    options = console_options(host, port, item_url, secure_cookie)
    run(console.run(config, options, echo=click.echo))


def console_options(host: str, port: int, item_url: str, secure_cookie: bool) -> console.Options:
    """The console's options with its token from the environment, or exit 2 naming the
    setting to fix."""
    token = settings.read_environment(Path(".env")).get("NPD_SYNC_CONSOLE_TOKEN")
    try:
        return console.Options(host, port, token, secure_cookie, item_url).checked()
    except settings.ConfigError as exc:
        fail(str(exc), 2)


@main.command(name="check", epilog=ENVIRONMENT)
def check_cmd() -> None:
    """Check the database (reachable, tables and columns, capture installed and current), the
    Monday token, the API version and the boards (present, mapped columns with matching
    types), the webhooks, the daily call limit that holds and what reconciliation costs a day.
    One line per check; exit 1 if any failed (⚠ warnings do not fail)."""
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


@main.group(name="webhooks", epilog=ENVIRONMENT)
def webhooks_group() -> None:
    """The webhooks inbound sync needs on each board (at NPD_SYNC_PUBLIC_URL)."""


def _webhooks(action: Literal["install", "list", "uninstall"]) -> None:
    ok = run(webhooks.run(load_settings(), action=action, echo=click.echo))
    sys.exit(0 if ok else 1)


@webhooks_group.command(name="install", epilog=ENVIRONMENT)
def webhooks_install() -> None:
    """Create the webhooks missing on Monday (idempotent). The receiver must be running and
    reachable at NPD_SYNC_PUBLIC_URL: Monday checks it with a challenge. Exit 1 if any
    failed, or if MONDAY_SIGNING_SECRET is set and they carry no JWT (made with a personal
    token)."""
    _webhooks("install")


@webhooks_group.command(name="list", epilog=ENVIRONMENT)
def webhooks_list() -> None:
    """Each board's webhooks: present on Monday, or missing. Exit 1 if any is missing, or if
    MONDAY_SIGNING_SECRET is set and they carry no JWT (made with a personal token)."""
    _webhooks("list")


@webhooks_group.command(name="uninstall", epilog=ENVIRONMENT)
def webhooks_uninstall() -> None:
    """Delete the webhooks npd-sync created, and forget the URL's secret."""
    _webhooks("uninstall")


@main.command(name="pull", epilog=ENVIRONMENT)
@click.option("--table", metavar="TABLE", help="Only this table (as configured).")
@click.option("--full", is_flag=True, help="Read every item, not only the activity log.")
@click.option("--dry-run", is_flag=True, help="Say which items differ; change nothing.")
def pull_cmd(table: str | None, full: bool, dry_run: bool) -> None:
    """Bring edits made on the boards into the rows that take them (BIDIRECTIONAL,
    MONDAY_TO_NPD), with the same conflict rules as webhooks: the safety net for deliveries
    that never arrived. Exit 1 if rows FAILED."""
    ok = run(pull.run(load_settings(), table=table, full=full, dry_run=dry_run, echo=click.echo))
    sys.exit(0 if ok else 1)


@main.group(name="conflicts", epilog=ENVIRONMENT, invoke_without_command=True)
@click.option("--table", metavar="TABLE", help="Only this table (as configured).")
@click.option(
    "--all", "everything", is_flag=True, help="Resolved ones too, with the value that lost."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@click.pass_context
def conflicts_group(ctx: click.Context, table: str | None, everything: bool, as_json: bool) -> None:
    """Fields changed on both sides since they last agreed: the open ones (resolve them with
    `conflicts resolve`), or with --all every one, and the value that lost."""
    if ctx.invoked_subcommand is None:
        run(
            conflicting.run(
                load_settings(), table=table, everything=everything, as_json=as_json,
                echo=click.echo,
            )
        )  # fmt: skip


@conflicts_group.command(name="resolve", epilog=ENVIRONMENT)
@click.option("--table", metavar="TABLE", required=True, help="The table (as configured).")
@click.option("--id", "key", metavar="KEY", required=True, help="The row's primary key.")
@click.option("--field", metavar="FIELD", help="Only this field (default: every one).")
@click.option(
    "--take", type=click.Choice(["npd", "monday"]), required=True, help="The side that wins."
)
def conflicts_resolve(table: str, key: str, field: str | None, take: str) -> None:
    """Settle a row's open conflicts for one side: the next sync writes that side's value to
    the other. Exit 1 when the row has no open conflict."""
    side: Literal["npd", "monday"] = "npd" if take == "npd" else "monday"
    ok = run(
        conflicting.resolve(
            load_settings(), table=table, key=key, field=field, take=side, echo=click.echo
        )
    )
    sys.exit(0 if ok else 1)


@main.group(name="mapping", epilog=ENVIRONMENT)
def mapping_group() -> None:
    """The mapping: which board each table goes to, which table column feeds which board
    column. `init` writes a mapping file for your boards; `show` prints the one in effect."""


@mapping_group.command(name="init", epilog=ENVIRONMENT)
@click.option(
    "--table",
    "tables",
    multiple=True,
    metavar="TABLE",
    help="A table to map; repeatable (default: every configured table with a board).",
)
@click.option(
    "--board",
    metavar="ID",
    help="The table's board (default: MONDAY_<TABLE>_BOARD_ID); with one --table.",
)
@click.option(
    "--create-columns",
    is_flag=True,
    help="Create on the board the columns the mapping needs and the board lacks (at least "
    "the npd_id text column that holds each row's key).",
)
@click.option(
    "--write",
    "target",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the mapping file here (default: print it).",
)
def mapping_init(
    tables: tuple[str, ...], board: str | None, create_columns: bool, target: Path | None
) -> None:
    """Propose a mapping file for your boards: read each board's columns (id, title, type),
    match them to the table's columns by title and type, propose the item name, and comment
    every column left unmatched. Use the file with NPD_SYNC_CONFIG, then `npd-sync check`."""
    say = click.echo if target is not None else _stderr
    environ = settings.read_environment(Path(".env"))
    config = load_settings() if _config_exists(environ) else _without_config(environ, say)
    text = run(
        mappings.init(
            config, tables=tables, board=board, create_columns=create_columns,
            environ=environ, say=say,
        )
    )  # fmt: skip
    if target is None:
        click.echo(text, nl=False)
        return
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"--write {target}: {exc.strerror or exc}", 1)
    click.echo(f"wrote {target}: use it with NPD_SYNC_CONFIG={target}, then run `npd-sync check`")


def _config_exists(environ: dict[str, str]) -> bool:
    path = environ.get("NPD_SYNC_CONFIG", "").strip()
    return not path or Path(path).exists()


def _without_config(environ: dict[str, str], say: Callable[[str], None]) -> settings.Settings:
    """The settings as if NPD_SYNC_CONFIG were unset: the file it names is the one to write."""
    say(f"NPD_SYNC_CONFIG={environ['NPD_SYNC_CONFIG']} does not exist yet: starting from the "
        "built-in mapping")  # fmt: skip
    rest = {k: v for k, v in environ.items() if k != "NPD_SYNC_CONFIG"}
    try:
        config = settings.load(environ=rest)
        config.require_database()
    except settings.ConfigError as exc:
        fail(str(exc), 2)
    return config


def _stderr(line: str) -> None:
    click.echo(line, err=True)


@mapping_group.command(name="show", epilog=ENVIRONMENT)
def mapping_show() -> None:
    """Print the mapping in effect: per table its board, key and item name, and each column
    with its title on the board, its type, what feeds it and whether it flows back."""
    config = load_settings(database=False)
    source = settings.read_environment(Path(".env")).get("NPD_SYNC_CONFIG") or None
    run(mappings.show(config, source=source, echo=click.echo))


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
