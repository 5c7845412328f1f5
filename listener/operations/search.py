"""One search box for the console (`GET /rows?q=`): a key, a Monday item id, an email or a name,
across the synced tables.

What the text is taken for (`Wanted`, a pure function of it): a key in every table whose key
type accepts it; digits are a Monday item id too; text with an @ is an email, matched whole
(case aside) against the mapping's email columns; anything else is a name, each word the start
of a column of the item name (`{first_name} {last_name}`: 'ada lov' finds Ada Lovelace).

The application's tables are read as they are: a key is found through the primary key, an
item through npd-sync's own links (indexed); an email or a name through the table itself,
which has no index on those columns unless the application made one. So a search runs once per
submitted query (never per keystroke), stops at `LIMIT` rows, and each table's look-up is
bounded by `SEARCH_TIMEOUT`: a table too big to scan in time is named, with what to do. An
index on `lower(email)`, and on `lower(first_name) text_pattern_ops` and the like for names,
makes those look-ups use it (docs/console.md, "Finding rows").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from listener import catalog, db, mapping, sql
from listener.capture import install
from listener.operations import items, keys
from listener.settings import Settings

LIMIT = 50  # rows a table gives to one search
MAX_WORDS = 5
MIN_NAME = 2  # characters of a name to look for
SEARCH_TIMEOUT = "3s"  # each table's look-up by email or name
EMAIL = re.compile(r"[^\s@]+@[^\s@]+")


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a search's text is taken for."""

    text: str
    item: str | None = None  # a Monday item id
    email: str | None = None
    words: tuple[str, ...] = ()  # a name's words, lower case

    @property
    def by(self) -> str:
        """What is looked for, in words for people."""
        if self.email:
            return "a key or an email"
        if self.item:
            return "a key or a Monday item id"
        return "a key or a name" if self.words else "a key"

    @property
    def hint(self) -> str | None:
        """Why the text may find less than meant."""
        if "@" in self.text and not self.email:
            return "An email is looked for whole: name@example.com."
        if not (self.item or self.email or self.words):
            return f"A name needs {MIN_NAME} characters at least."
        return None


def wanted(text: str) -> Wanted:
    """What to look for (pure): see the module's docstring."""
    text = " ".join(text.split())
    if text.isdigit():
        return Wanted(text, item=text)
    if "@" in text:
        return Wanted(text, email=text if EMAIL.fullmatch(text) else None)
    words = tuple(w.lower() for w in text.split(" ")[:MAX_WORDS])
    return Wanted(text, words=words if len(text) >= MIN_NAME else ())


def like_prefix(word: str) -> str:
    """A LIKE pattern for text that starts with `word` (its wildcards taken literally)."""
    return re.sub(r"([\\%_])", r"\\\1", word) + "%"


@dataclass(frozen=True, slots=True)
class Found:
    """A row a search found."""

    table: str
    key: str
    name: str  # the item name the row gives
    status: str | None  # its sync_status
    item_id: str | None
    item_url: str | None
    by: str  # key, item, email or name


@dataclass(frozen=True, slots=True)
class Search:
    wanted: Wanted
    rows: tuple[Found, ...]
    notes: tuple[str, ...] = ()  # tables that could not be searched, and why
    full: tuple[str, ...] = field(default=())  # tables that gave LIMIT rows (maybe more)

    @property
    def one(self) -> Found | None:
        """The row found, when exactly one was."""
        return self.rows[0] if len(self.rows) == 1 and not self.full else None


RANK = {"key": 0, "item": 1, "email": 2, "name": 3}


async def search(conn: db.Conn, settings: Settings, item_template: str, text: str) -> Search:
    """The rows of the synced tables that the text finds (in a read-only transaction: each
    look-up's time is bounded)."""
    await install.require_current(conn)
    asked = wanted(text)
    items_of: dict[str, list[str]] = {}
    if asked.item:
        for table, key in await conn.fetch(sql.query("search_item"), asked.item):
            items_of.setdefault(table, []).append(key)
    found: dict[tuple[str, str], Found] = {}
    notes: list[str] = []
    full: list[str] = []
    for table in settings.tables:
        try:
            rows = await _in_table(conn, table, asked, items_of.get(table.table, []), item_template)
        except _Skipped as exc:
            notes.append(f"{table.table}: {exc}")
            continue
        if len(rows) >= LIMIT:
            full.append(table.table)
        for row in rows:
            known = found.get((row.table, row.key))
            if known is None or RANK[row.by] < RANK[known.by]:
                found[(row.table, row.key)] = row
    ordered = sorted(found.values(), key=lambda f: (RANK[f.by], f.table, _order(f.key)))
    return Search(asked, tuple(ordered), tuple(notes), tuple(full))


class _Skipped(Exception):
    """A table that cannot be searched; the message says why."""


async def _in_table(
    conn: db.Conn,
    table: mapping.TableMapping,
    asked: Wanted,
    item_keys: Sequence[str],
    item_template: str,
) -> list[Found]:
    """The table's rows the text finds: by key (its own, or the keys of the item's rows),
    then by email or name."""
    info = await catalog.describe(conn, table.table)
    table_id = await conn.fetchval(sql.query("table_id"), table.table)
    if info is None or table_id is None:
        raise _Skipped("not installed (run `npd-sync install`)")
    if problems := catalog.problems(info, table):
        raise _Skipped("; ".join(map(str, problems)))
    compiled = _Table(table, info, int(table_id), item_template)
    key = await _key(conn, table, info, asked.text)
    found = []
    wanted_keys = [k for k in (key, *item_keys) if k is not None]
    if wanted_keys:
        match = (
            f"t.{sql.quote_ident(table.key_column)} = ANY ($1::text[]::{_key_type(table, info)}[])"
        )
        by_key = await compiled.rows(conn, match, wanted_keys)
        found += [_by(row, "key" if row.key == key else "item") for row in by_key]
    condition = _condition(table, info, asked)
    if condition is None:
        return found
    match, argument, by = condition
    async with conn.transaction():  # a savepoint: a timeout costs this look-up only
        await conn.execute(f"SET LOCAL statement_timeout = '{SEARCH_TIMEOUT}'")
        try:
            found += [_by(row, by) for row in await compiled.rows(conn, match, argument)]
        except asyncpg.QueryCanceledError:
            raise _Skipped(
                f"looking through it by {by} took longer than {SEARCH_TIMEOUT}: search by key, "
                "item id or a whole email, or give the table an index for it (docs/console.md, "
                "'Finding rows')"
            ) from None
    return found


def _by(row: Found, by: str) -> Found:
    return Found(row.table, row.key, row.name, row.status, row.item_id, row.item_url, by)


async def _key(
    conn: db.Conn, table: mapping.TableMapping, info: catalog.TableInfo, text: str
) -> str | None:
    """The text as a key of the table, when its key type accepts it."""
    if not text or len(text) > 200:
        return None
    try:
        async with conn.transaction():  # a savepoint: a text that is no key fails its cast
            [key] = await keys.normalize(conn, table, info, [text])
    except keys.NotAKey:
        return None
    return key


def _key_type(table: mapping.TableMapping, info: catalog.TableInfo) -> str:
    return info.columns[table.key_column].type


def _condition(
    table: mapping.TableMapping, info: catalog.TableInfo, asked: Wanted
) -> tuple[str, str | list[str], str] | None:
    """The email or name condition for this table (and its argument), if it has the columns."""
    if asked.email:
        columns = [c.sources[0] for c in table.columns if c.type == "email" and len(c.sources) == 1]
        present = [sql.quote_ident(c) for c in columns if info.has(c)]
        if not present:
            return None
        return " OR ".join(f"lower(t.{c}::text) = lower($1)" for c in present), asked.email, "email"
    if asked.words:
        fields = [sql.quote_ident(f) for f in table.name_fields if info.has(f)]
        if not fields:
            return None
        each = [
            "(" + " OR ".join(f"lower(t.{f}::text) LIKE ($1::text[])[{i}]" for f in fields) + ")"
            for i in range(1, len(asked.words) + 1)
        ]
        return " AND ".join(each), [like_prefix(w) for w in asked.words], "name"
    return None


@dataclass(frozen=True, slots=True)
class _Table:
    """A table to search, and how its rows are read."""

    mapping: mapping.TableMapping
    info: catalog.TableInfo
    id: int
    item_template: str

    async def rows(self, conn: db.Conn, match: str, argument: str | list[str]) -> list[Found]:
        """Up to LIMIT rows that `match` (a condition on `t` and $1, which is `argument`)."""
        table, info = self.mapping, self.info
        fields = [f for f in table.name_fields if info.has(f)]
        statement = sql.query("search_rows").format(
            table=info.relation,
            key=sql.quote_ident(table.key_column),
            status=sql.quote_ident(mapping.SYNC_STATUS),
            monday_id=sql.quote_ident(mapping.MONDAY_ID),
            names="".join(f", t.{sql.quote_ident(f)}::text AS n{i}" for i, f in enumerate(fields)),
            match=match,
        )
        records = await conn.fetch(statement, argument, LIMIT, self.id)
        return [
            Found(
                table.table,
                r["key"],
                _name(table, r["key"], {f: r[f"n{i}"] for i, f in enumerate(fields)}),
                r["status"],
                r["item_id"],
                items.url(self.item_template, table.board_id, r["item_id"]),
                "",
            )
            for r in records
        ]


def _name(table: mapping.TableMapping, key: str, values: dict[str, str | None]) -> str:
    return mapping.item_name(values, table, key)


def _order(key: str) -> tuple[int, str]:
    return (len(key), key) if key.isdigit() else (1 << 30, key)
