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
UNSIGNED = (
    "MONDAY_SIGNING_SECRET is set, but Monday lists {webhooks} as made by no app of the API "
    "token (a personal token's): {their} deliveries carry no JWT, and the receiver refuses "
    "every one"
)
UNSIGNED_HINT = (
    "unset MONDAY_SIGNING_SECRET (the URL's secret still guards the receiver), or make the "
    "webhooks with an app's OAuth token"
)

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
    app: bool | None = None  # made by the API token's app (None: not known)


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
        present = {w.id: w for w in listed}
        for event in EVENTS:
            existing = known.get((board, event))
            if existing is not None and existing in present:
                app = present[existing].app
                done.append(Subscription(table.table, board, event, "present", existing, app=app))
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
        present = {w.id: w for w in listed}
        for event in EVENTS:
            webhook = known.get((table.board_id, event))
            if webhook is not None and webhook in present:
                app = present[webhook].app
                found.append(
                    Subscription(table.table, table.board_id, event, "present", webhook, app=app)
                )
            else:
                found.append(Subscription(table.table, table.board_id, event, "missing", webhook))
    return found


def unsigned(found: Sequence[Subscription]) -> list[Subscription]:
    """Our webhooks on Monday that no app of the API token made: made with a personal token,
    their deliveries carry no JWT (only an app's do), so MONDAY_SIGNING_SECRET refuses them."""
    return [s for s in found if s.state in ("present", "created") and s.app is False]


async def uninstall(
    conn: db.Conn, client: api.Client, tables: Sequence[mapping.TableMapping]
) -> list[Subscription]:
    """Delete the webhooks npd-sync created, and forget the secret once none is left."""
    names = {t.board_id: t.table for t in tables if t.board_id}
    known = await stored(conn)
    done = []
    for board in dict.fromkeys(board for board, _ in known):
        ours = {event: webhook for (b, event), webhook in known.items() if b == board}
        done += await _remove(client, names.get(board, "-"), board, ours)
    if not any(s.state == "failed" for s in done):
        await conn.execute(sql.query("forget_webhooks"))
    return done


async def _remove(
    client: api.Client, table: str, board: str, ours: dict[str, str]
) -> list[Subscription]:
    """Delete one board's webhooks of ours. What delete_webhook answers for an id already gone
    is undocumented (a not-found error, a 500, a null): the board's list decides, read before
    (gone ones are not deleted again) and after (what is still there failed)."""
    try:
        listed, _ = await api.webhooks(client, board)
        before = {w.id for w in listed}
    except errors.MondayError as exc:
        return [Subscription(table, board, e, "failed", w, str(exc)) for e, w in ours.items()]
    said: dict[str, str] = {}
    for webhook in ours.values():
        if webhook in before:
            try:
                await api.delete_webhook(client, webhook)
            except errors.MondayError as exc:
                said[webhook] = str(exc)
    after = set()
    if any(w in before for w in ours.values()):
        try:
            listed, _ = await api.webhooks(client, board)
            after = {w.id for w in listed}
        except errors.MondayError as exc:
            after, said = before, {w: str(exc) for w in ours.values()}
    return [
        Subscription(table, board, event, "failed", webhook, said.get(webhook, "still on it"))
        if webhook in after
        else Subscription(table, board, event, "removed", webhook)
        for event, webhook in ours.items()
    ]
