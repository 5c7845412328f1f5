"""The boards as Monday holds them, for `npd-sync mapping init` and `mapping show` and the
console's Mapping page: their columns (id, title, type), read through the governor within the
budget every listener shares once npd-sync is installed (before `install` there is no shared
budget yet, and they go straight, as `check`'s do); and the mapping in effect, each column with
its title on its board and whether it flows back (`view`, pure).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from listener import db, mapping, sql
from listener.capture import install
from listener.monday import api, cost, errors, governor
from listener.settings import Settings

T = TypeVar("T")
MONDAY_TIMEOUT = 30.0


class MondayFailed(Exception):
    """Monday refused or did not answer; the message says what, without secrets."""


@dataclass
class Monday:
    """The two requests the mapping commands make, each within the shared budget when there is
    one (`meter`)."""

    client: api.Client
    meter: governor.Governor | None = None

    async def boards(self, ids: Sequence[str]) -> dict[str, api.BoardInfo]:
        """The boards among `ids` that the token can see, with their columns."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, api.BoardInfo] = {}
        for start in range(0, len(wanted), api.BOARDS_PAGE):
            page = wanted[start : start + api.BOARDS_PAGE]
            found.update(await self._send(functools.partial(api.boards, self.client, page),
                                          cost.Kind.QUERY))  # fmt: skip
        return found

    async def create_column(self, board_id: str, title: str, column_type: str) -> api.BoardColumn:
        """Add a column to a board; Monday makes its id."""
        return await self._send(
            lambda: api.create_column(self.client, board_id, title, column_type),
            cost.Kind.COLUMN,
            board_id,
        )

    async def _send(
        self,
        send: Callable[[], Awaitable[tuple[T, api.Reply]]],
        kind: cost.Kind,
        board_id: str | None = None,
    ) -> T:
        """One request, within the shared budget when there is one."""
        if self.meter is None:
            value, _ = await send()
            return value
        paced = await self.meter.next_call_in()
        if paced > 0:
            raise errors.RateLimited(
                f"the day's calls to Monday are paced to last the day: the next may go in "
                f"{paced:.0f} s",
                retry_after=paced,
            )
        async with self.meter.reserve([kind], kind=kind, board=board_id) as grant:
            try:
                value, reply = await send()
            except errors.MondayError as exc:
                raise await grant.settle(exc) or exc from None
            await grant.settle(reply)
        return value


@contextlib.asynccontextmanager
async def open_monday(
    config: Settings, pool: asyncpg.Pool | None, *, max_wait: float | None = None
) -> AsyncIterator[Monday]:
    """A client for Monday, governed when npd-sync's schema here is current (`max_wait`: how
    long a request may wait for room in the limits; `[tuning] max_rate_wait` by default)."""
    meter = None
    if pool is not None:
        async with pool.acquire() as conn:
            version = await install.installed_version(conn)
        if version == sql.migrations()[-1].version:
            tuning = config.tuning
            wait = tuning.max_rate_wait if max_wait is None else max_wait
            meter = governor.Governor(pool, governor.limits_for(tuning), max_wait=wait)
    try:
        async with api.client(config, timeout=MONDAY_TIMEOUT) as client:
            yield Monday(client, meter)
    except errors.MondayError as exc:
        raise MondayFailed(f"Monday: {exc.redacted(config.secrets())}") from None


async def read(
    config: Settings, pool: asyncpg.Pool | None = None, *, max_wait: float | None = None
) -> dict[str, api.BoardInfo]:
    """The configured boards with their columns; raises MondayFailed. Without `pool`, one of
    its own when the database answers (to go through the governor)."""
    ids = [t.board_id for t in config.tables if t.board_id]
    if not ids:
        return {}
    own = None
    if pool is None and config.database_url:
        with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
            own = await db.create_pool(
                config.database_url, application_name="npd-sync mapping", size=2
            )
    try:
        async with open_monday(config, pool or own, max_wait=max_wait) as monday:
            return await monday.boards(ids)
    finally:
        if own is not None:
            await own.close()


# --- the mapping in effect ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnView:
    """A Monday column of the mapping: its title on the board, and whether it flows back."""

    id: str
    title: str  # as `mapping show` prints it: '?' when the board was not read
    type: str
    sources: str  # the database columns it is fed from, or what it holds
    flows_back: str  # "yes", or "no: why"


@dataclass(frozen=True, slots=True)
class TableView:
    """One table of the mapping in effect, as `mapping show` prints it."""

    table: mapping.TableMapping
    board: str  # 'board 123 'Contacts'', or why it has none
    name_flows_back: str
    columns: tuple[ColumnView, ...]

    @property
    def synced(self) -> bool:
        return self.table.board_id is not None


def view(
    table: mapping.TableMapping, board: api.BoardInfo | None, unknown: str | None
) -> TableView:
    """A table of the mapping in effect, each column with its title on `board` (None: not
    read, `unknown` says why, or not found) and whether it flows back (pure)."""
    if not table.board_id:
        return TableView(table, f"not synced ({table.board_env} is not set)", "", ())
    where = f"board {table.board_id}"
    if board is not None:
        where += f" {board.name!r}"
    elif unknown is None:
        where += " (not found on Monday)"
    split = table.name_split
    back = (
        "no: not one field, nor two separated by a space" if split is None
        else "yes" if len(split) == 1
        else f"yes: the first word to {split[0]}, the rest to {split[1]}"
    )  # fmt: skip
    inbound = {c.id for c in table.inbound_columns}
    columns = [
        ColumnView(
            c.id, title(board, c.id, c.type), c.type, ", ".join(c.sources),
            "yes" if c.id in inbound else "no: several columns joined",
        )
        for c in table.columns
    ]  # fmt: skip
    if table.npd_id_column:
        columns.append(
            ColumnView(
                table.npd_id_column, title(board, table.npd_id_column, "text"), "text",
                f"the key ({table.key_column})", "no: npd-sync's own",
            )
        )  # fmt: skip
    return TableView(table, where, back, tuple(columns))


def title(board: api.BoardInfo | None, column_id: str, wanted: str) -> str:
    """A column's title on its board as people read it, and what is wrong with it."""
    if board is None:
        return "?"
    column = board.columns.get(column_id)
    if column is None:
        return "(not on the board)"
    shown = repr(column.title)
    if column.archived:
        return f"{shown} (archived)"
    return shown if column.type == wanted else f"{shown} (a {column.type} column)"


def views(
    config: Settings, boards: Mapping[str, api.BoardInfo], unknown: str | None
) -> tuple[TableView, ...]:
    """Every configured table of the mapping in effect."""
    return tuple(view(t, boards.get(t.board_id or ""), unknown) for t in config.tables)
