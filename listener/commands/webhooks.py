"""`npd-sync webhooks install | list | uninstall`: the webhooks inbound sync needs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from listener import db
from listener.capture import install as installed
from listener.inbound import receiver, webhooks
from listener.monday import api, errors
from listener.redact import PLACEHOLDER
from listener.settings import ConfigError, Settings

Echo = Callable[[str], None]
Action = Literal["install", "list", "uninstall"]

UNREACHABLE = (
    "Monday could not reach the receiver at NPD_SYNC_PUBLIC_URL: it must be running "
    "(`npd-sync listen --webhook-port N`) behind the address that serves that URL"
)


async def run(settings: Settings, *, action: Action, echo: Echo) -> bool:
    """Install, list or remove the webhooks; False when one could not be handled."""
    if settings.public_url is None and action != "uninstall":
        raise ConfigError(
            "NPD_SYNC_PUBLIC_URL is not set: give the base URL at which Monday reaches this "
            "deployment's receiver (inbound is off without it)"
        )
    if settings.api_key is None:
        raise ConfigError("MONDAY_API_KEY is not set: webhooks are registered through Monday")
    boards = [t for t in settings.tables if t.board_id]
    if not boards:
        raise ConfigError("no board is configured (MONDAY_<TABLE>_BOARD_ID)")
    conn = await db.connect(settings.require_database(), application_name="npd-sync webhooks")
    try:
        await installed.require_current(conn)
        async with api.client(settings) as client:
            unsigned: list[webhooks.Subscription] = []
            if action == "install":
                assert settings.public_url is not None
                done = await webhooks.install(conn, client, boards, settings.public_url)
                if settings.signing_secret is not None:
                    # Whether an app made them is known once they exist: read them back.
                    unsigned = webhooks.unsigned(await webhooks.survey(conn, client, boards))
            elif action == "list":
                done = await webhooks.survey(conn, client, boards)
                if settings.signing_secret is not None:
                    unsigned = webhooks.unsigned(done)
            else:
                done = await webhooks.uninstall(conn, client, boards)
    except errors.MondayError as exc:
        raise errors.Blocked(f"Monday: {exc.redacted(settings.secrets())}") from None
    finally:
        await conn.close()
    show(settings, done, echo)
    if unsigned:
        echo(unsigned_line(len(unsigned)))
    return not unsigned and not any(s.state in ("failed", "missing") for s in done)


def unsigned_line(n: int) -> str:
    """Why every delivery would be refused, and what to do (one line)."""
    many = n > 1
    text = webhooks.UNSIGNED.format(
        webhooks=f"{n} webhooks" if many else "a webhook", their="their" if many else "its"
    )
    return f"{text}: {webhooks.UNSIGNED_HINT}"


def show(settings: Settings, done: Sequence[webhooks.Subscription], echo: Echo) -> None:
    """One line per board, one per event under it; the secret never shown."""
    if settings.public_url is not None:
        echo(f"url: {receiver.webhook_url(settings.public_url, PLACEHOLDER)}")
    if not done:
        echo("no webhooks")
    board = None
    for s in done:
        if s.board_id != board:
            board = s.board_id
            echo(f"{s.table} (board {s.board_id}):")
        ident = f"webhook {s.webhook_id}" if s.webhook_id else "no webhook"
        line = f"  {s.event:<20} {ident:<22} {s.state}"
        if s.error:
            hint = UNREACHABLE if "Internal Server Error" in s.error else s.error
            line += f": {hint}"
        echo(line)
