"""A row's relations (issue 18), both ways, for the console's row page: the rows its
connect-boards columns link to (the rows its foreign keys name, each with its item), and the
rows of other tables whose foreign keys name it (a page of them, with a count).

The rows that point at a row are found through the application's foreign key column, which
has no index unless the application made one (PostgreSQL makes none for a foreign key): the
console reads them when the page is opened, not on each refresh of its live part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from listener import catalog, db, mapping, rows, sql
from listener.operations import items
from listener.settings import Settings

PER_PAGE = 20  # rows pointing at a row, a page


@dataclass(frozen=True, slots=True)
class Linked:
    """A row at the other end of a relation, and its item."""

    table: str
    key: str
    item_id: str | None
    item_url: str | None
    never: str | None = None  # why it will never have an item: "missing" or "not pushed"


@dataclass(frozen=True, slots=True)
class LinksTo:
    """What one connect-boards column of the row links to."""

    column: str  # the Monday column id
    source: str  # the row's foreign key column
    table: str  # the table it references
    rows: tuple[Linked, ...]


@dataclass(frozen=True, slots=True)
class LinkedFrom:
    """The rows of another table whose foreign key names the row: a page of them."""

    table: str
    column: str  # that table's connect-boards column
    source: str  # its foreign key column
    rows: tuple[Linked, ...]
    total: int
    page: int
    problem: str | None = None  # why they could not be read

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PER_PAGE))


def links_to(
    settings: Settings,
    item_template: str,
    table: mapping.TableMapping,
    row: rows.Row,
    names: Mapping[int, str],
) -> tuple[LinksTo, ...]:
    """The rows the row's connect-boards columns link to, as it was loaded (pure)."""
    boards = {t.table: t.board_id for t in settings.tables}
    found = []
    for column in table.relations:
        target = column.references or ""
        linked = tuple(
            Linked(
                names.get(ref.table_id, target),
                ref.key,
                ref.item_id,
                items.url(item_template, boards.get(target), ref.item_id),
                ref.never,
            )
            for ref in row.refs.get(column.id, ())
        )
        found.append(LinksTo(column.id, column.sources[0], target, linked))
    return tuple(found)


async def linked_from(
    conn: db.Conn, settings: Settings, item_template: str, table: str, key: str, page: int = 1
) -> tuple[LinkedFrom, ...]:
    """The rows of the synced tables whose connect-boards columns reference row `key` of
    `table`, a page of each."""
    found = []
    for other in settings.tables:
        for column in other.relations:
            if column.references == table:
                found.append(await _page(conn, item_template, other, column, key, page))
    return tuple(found)


async def _page(
    conn: db.Conn,
    item_template: str,
    table: mapping.TableMapping,
    column: mapping.Column,
    key: str,
    page: int,
) -> LinkedFrom:
    source = column.sources[0]
    empty = LinkedFrom(table.table, column.id, source, (), 0, page)
    info = await catalog.describe(conn, table.table)
    table_id = await conn.fetchval(sql.query("table_id"), table.table)
    if info is None or table_id is None or not info.has(source) or catalog.problems(info, table):
        return dataclasses.replace(empty, problem=f"{table.table} cannot be read")
    statement = sql.query("console_linked_from").format(
        table=info.relation,
        key=sql.quote_ident(table.key_column),
        monday_id=sql.quote_ident(mapping.MONDAY_ID),
        match=_match(source, info.columns[source].type),
    )
    async with conn.transaction():  # a savepoint: a key the foreign key cannot hold
        try:
            records = await conn.fetch(
                statement, key, PER_PAGE, (page - 1) * PER_PAGE, int(table_id)
            )
        except asyncpg.DataError:  # not a key its foreign key can hold: none points at it
            return empty
    linked = tuple(
        Linked(
            table.table,
            r["key"],
            r["item_id"],
            items.url(item_template, table.board_id, r["item_id"]),
        )
        for r in records
    )
    return LinkedFrom(
        table.table, column.id, source, linked, records[0]["total"] if records else 0, page
    )


def _match(source: str, type_: str) -> str:
    """The condition on a foreign key column (one key, or an array of keys) naming $1."""
    column = f"t.{sql.quote_ident(source)}"
    if type_.endswith("[]"):
        return f"$1::text::{type_[:-2]} = ANY ({column})"
    return f"{column} = $1::text::{type_}"


def names(referenced: Mapping[str, rows.Referenced]) -> dict[int, str]:
    """Table names by id, of the tables referenced."""
    return {ref.id: name for name, ref in referenced.items()}
