"""Registering the webhooks inbound sync needs, on each configured board.

One webhook per board and event (EVENTS), all at the same URL: NPD_SYNC_PUBLIC_URL, the
receiver's path and an unguessable secret kept in npd-sync's schema. `install` is idempotent:
it creates only what is missing on Monday (people can delete webhooks in Monday's UI), and
remembers the ids it created. Monday checks the URL with a challenge before it creates a
webhook, so the receiver must be running (and reachable at the public URL) during install.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from listener import db, mapping, sql
from listener.inbound.receiver import webhook_url
from listener.monday import api, errors
from listener.redact import redact

# The subscriptions inbound needs: values and names changed, items created, archived,
# deleted and restored.
EVENTS = (
    "change_column_value",
    "change_name",
    "create_item",
    "item_archived",
    "item_deleted",
    "item_restored",
)
URL_MAX = 255  # Monday's limit on a webhook's URL

State = Literal["created", "present", "missing", "removed", "failed"]


class WebhookError(Exception):
    """The webhooks cannot be set up; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """One board's event and what install, list or uninstall found or did."""

    table: str
    board_id: str
    event: str
    state: State
    webhook_id: str | None = None
    error: str | None = None


async def secret(conn: db.Conn) -> str:
    """The receiver's secret, made on first use."""
    made = secrets.token_urlsafe(32)
    return str(await conn.fetchval(sql.query("make_receiver_secret"), made))


def url(public_url: str, secret_: str) -> str:
    """The webhooks' URL; WebhookError when Monday would refuse it."""
    full = webhook_url(public_url, secret_)
    if len(full) > URL_MAX:
        raise WebhookError(
            f"NPD_SYNC_PUBLIC_URL is too long: the webhook URL would be {len(full)} characters "
            f"and Monday takes at most {URL_MAX}"
        )
    return full


async def stored(conn: db.Conn) -> dict[tuple[str, str], str]:
    """The ids of the webhooks npd-sync created, by (board, event)."""
    return {
        (r["board_id"], r["event"]): r["webhook_id"]
        for r in await conn.fetch(sql.query("stored_webhooks"))
    }


async def install(
    conn: db.Conn,
    client: api.Client,
    tables: Sequence[mapping.TableMapping],
    public_url: str,
) -> list[Subscription]:
    """Create the webhooks that are missing on Monday; report every subscription."""
    hidden = await secret(conn)
    target = url(public_url, hidden)
    known = await stored(conn)
    done: list[Subscription] = []
    for table in tables:
        if not table.board_id:
            continue
        board = table.board_id
        listed, _ = await api.webhooks(client, board)
        present = {w.id for w in listed}
        for event in EVENTS:
            existing = known.get((board, event))
            if existing is not None and existing in present:
                done.append(Subscription(table.table, board, event, "present", existing))
                continue
            try:
                created, _ = await api.create_webhook(client, board, target, event)
            except errors.MondayError as exc:
                # Monday's message may quote the URL, and the URL holds the secret.
                failed = redact(str(exc), [hidden])
                done.append(Subscription(table.table, board, event, "failed", error=failed))
                continue
            await conn.execute(sql.query("store_webhook"), board, event, created.id)
            done.append(Subscription(table.table, board, event, "created", created.id))
    return done


async def survey(
    conn: db.Conn, client: api.Client, tables: Sequence[mapping.TableMapping]
) -> list[Subscription]:
    """Each subscription inbound needs, present on Monday or missing (`list`, `check`)."""
    known = await stored(conn)
    found: list[Subscription] = []
    for table in tables:
        if not table.board_id:
            continue
        listed, _ = await api.webhooks(client, table.board_id)
        present = {w.id for w in listed}
        for event in EVENTS:
            webhook = known.get((table.board_id, event))
            state: State = "present" if webhook is not None and webhook in present else "missing"
            found.append(Subscription(table.table, table.board_id, event, state, webhook))
    return found


async def uninstall(
    conn: db.Conn, client: api.Client, tables: Sequence[mapping.TableMapping]
) -> list[Subscription]:
    """Delete the webhooks npd-sync created, and forget the secret."""
    names = {t.board_id: t.table for t in tables if t.board_id}
    done = []
    for (board, event), webhook in (await stored(conn)).items():
        table = names.get(board, "-")
        try:
            await api.delete_webhook(client, webhook)
        except errors.MondayError as exc:
            done.append(Subscription(table, board, event, "failed", webhook, str(exc)))
            continue
        done.append(Subscription(table, board, event, "removed", webhook))
    if not any(s.state == "failed" for s in done):
        await conn.execute(sql.query("forget_webhooks"))
    return done
