"""Keys as people type them, made the table's own (`007` is key `7` of an integer key), and
the error of a request that cannot be met as given."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from listener import catalog, db, mapping, sql


class UsageError(Exception):
    """What was asked cannot be done as given; the message says what to give (exit 2 in the
    CLI, 400 in the console)."""


class NotAKey(UsageError):
    """The text given is not a key of the table (the message says so)."""

    def __init__(self, key: str, table: mapping.TableMapping, key_type: str) -> None:
        column = table.key_column
        super().__init__(f"{key!r} is not a key of {table.table} ({column} is {key_type})")


async def normalize(
    conn: db.Conn, table: mapping.TableMapping, info: catalog.TableInfo, keys: Sequence[str]
) -> list[str]:
    """The keys as the table's key type prints them, each once; NotAKey for one that cannot
    be a key."""
    key_type = info.columns[table.key_column].type
    statement = sql.query("normalize_keys").format(key_type=key_type)
    normalized = []
    for key in keys:
        try:
            normalized.append(str(await conn.fetchval(statement, [key])))
        except asyncpg.DataError:
            raise NotAKey(key, table, key_type) from None
    return list(dict.fromkeys(normalized))


async def normalize_one(conn: db.Conn, table: mapping.TableMapping, key: str) -> str:
    """One key as the table's key type prints it; UsageError if the table or the key cannot
    be found as such."""
    info = await catalog.describe(conn, table.table)
    if info is None or not info.has(table.key_column):
        raise UsageError(f"{table.table}: table not found")
    for problem in catalog.problems(info, table):
        if problem.kind == "foreign_code" and table.key_column in problem.columns:
            raise UsageError(f"{table.table}: {problem}")  # a cast to it would run that code
    [normalized] = await normalize(conn, table, info, [key])
    return normalized
