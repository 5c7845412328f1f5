"""`npd-sync install` / `uninstall`: the versioned schema and the capture on each table.

Install runs in one transaction under an advisory lock, so two concurrent installs cannot
interleave and a failure leaves the database as it was. (The schema may not exist yet, so the
lock cannot be a row of it: any role may take the lock too, and install waits for it a while
only, then names the session that holds it.) It applies the numbered migrations not
yet recorded in `npd_sync.migrations`, then (re)attaches capture to each configured table whose
generated DDL differs from what is installed: running it twice is a no-op.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import asyncpg

from listener import catalog, db, mapping, sql
from listener.capture import notify

INSTALL_LOCK = 7237733  # pg_advisory_xact_lock key serialising installs
LOCK_WAIT = 30.0  # seconds install waits for another session's install lock
TRIGGERS = 5  # npd_sync_insert, _update, _rekey, _delete, _truncate on each table

BOOTSTRAP = """\
CREATE SCHEMA IF NOT EXISTS npd_sync;
CREATE TABLE IF NOT EXISTS npd_sync.migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);"""

# The mark of npd-sync's own sessions (listener/db.py): each sets npd_sync.origin to this
# secret, and the triggers skip the sessions whose setting hashes to its digest. Anyone may set
# the setting; only roles that can read this table know the value that hides their writes.
# Created here rather than by a migration: the capture DDL holds its digest.
ORIGIN = """\
CREATE TABLE IF NOT EXISTS npd_sync.origin (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    secret text NOT NULL
);
INSERT INTO npd_sync.origin (secret) VALUES ({secret});"""

DETACH = """\
DROP TRIGGER IF EXISTS npd_sync_insert ON {table};
DROP TRIGGER IF EXISTS npd_sync_update ON {table};
DROP TRIGGER IF EXISTS npd_sync_rekey ON {table};
DROP TRIGGER IF EXISTS npd_sync_delete ON {table};
DROP TRIGGER IF EXISTS npd_sync_truncate ON {table};"""


class InstallError(Exception):
    """Install cannot proceed; the message lists every problem, one per line, and `fixes` the
    SQL that would mend some of them (printed as it is, to be run by the tables' owner)."""

    def __init__(self, message: str, fixes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.fixes = tuple(fixes)


class NotInstalled(Exception):
    """The database has no npd_sync schema (or an old one), or a configured table has no
    capture; the message says to run `npd-sync install`."""


StepKind = Literal["schema", "migration", "origin", "attach", "update", "restore", "detach"]


@dataclass(frozen=True, slots=True)
class Step:
    """One thing install does: `kind` says what, for `table` or migration `version`."""

    kind: StepKind
    description: str
    sql: str
    table: str | None = None
    version: int | None = None
    secret: str | None = None  # in `sql`, and never to be shown (`--dry-run` hides it)

    @property
    def shown(self) -> str:
        """The SQL as `--dry-run` prints it: any secret in it replaced by a placeholder."""
        return self.sql if self.secret is None else self.sql.replace(self.secret, "<secret>")


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)  # SQL for the tables' owner to run


def data_columns(info: catalog.TableInfo, table: mapping.TableMapping) -> list[str]:
    """The columns whose update is a change: all but the key, bookkeeping and generated ones."""
    skip = {table.key_column, *mapping.BOOKKEEPING_COLUMNS}
    return [c.name for c in info.columns.values() if c.name not in skip and not c.generated]


def capture_ddl(
    table_id: int, info: catalog.TableInfo, table: mapping.TableMapping, secret: str
) -> str:
    """The capture DDL for one table, from the template, with every name quoted; `secret` is
    the one npd-sync's own sessions are marked with (only its digest goes into the DDL)."""
    key = sql.quote_ident(table.key_column)
    key_literal = sql.quote_literal(table.key_column)
    return sql.capture_template().format(
        table=info.relation,
        key=key,
        key_literal=key_literal,
        data_columns=", ".join(sql.quote_ident(c) for c in data_columns(info, table)),
        id=int(table_id),
        wake_lock=f"{notify.WAKE_LOCK[0]}, {notify.WAKE_LOCK[1]}",
        channel=notify.CHANNEL,
        mark=f"'\\x{db.origin_digest(secret).hex()}'::bytea",
        # The function bodies hold the key's name: their quotes must not end inside it.
        fn=sql.dollar_tag(key, key_literal),
    )


def _hash(ddl: str) -> str:
    return hashlib.sha256(ddl.encode()).hexdigest()


async def plan(conn: db.Conn, tables: Sequence[mapping.TableMapping]) -> Plan:
    """Work out what install would do, without changing anything."""
    result = Plan()
    attached = await _schema_steps(conn, result)
    secret = await _origin_step(conn, result)
    next_id = max((r["id"] for r in attached.values()), default=0) + 1
    wanted: set[str] = set()
    infos = {t.table: await catalog.describe(conn, t.table) for t in tables}
    keys = catalog.key_columns(tables, infos)
    for table in tables:
        info = infos[table.table]
        if info is None:
            if table.board_id:
                result.problems.append(f"{table.table}: table not found")
            else:
                result.notes.append(f"{table.table}: no such table, skipped (no board configured)")
            continue
        wanted.add(info.relation)
        issues = catalog.problems(info, table) + catalog.relation_problems(info, table, keys)
        _sync_columns(result, table.table, info, missing=bool(issues))
        if issues:
            result.problems.extend(f"{table.table}: {issue}" for issue in issues)
            continue
        known = attached.get(info.relation)
        table_id = known["id"] if known else next_id
        next_id += 0 if known else 1
        await _capture_step(conn, result, table, info, table_id, known, secret)
    _detach_steps(result, attached, wanted)
    return result


async def _schema_steps(conn: db.Conn, result: Plan) -> dict[str, asyncpg.Record]:
    """The schema and the migrations not applied yet; the tables attached already."""
    schema = await conn.fetchval("SELECT to_regnamespace('npd_sync') IS NOT NULL")
    applied: set[int] = set()
    if schema and await conn.fetchval("SELECT to_regclass('npd_sync.migrations') IS NOT NULL"):
        applied = {
            r["version"] for r in await conn.fetch("SELECT version FROM npd_sync.migrations")
        }
    if not schema or not applied:
        result.steps.append(Step("schema", "create schema npd_sync", BOOTSTRAP))
    for migration in sql.migrations():
        if migration.version not in applied:
            result.steps.append(
                Step(
                    "migration",
                    f"apply migration {migration.version:03d} {migration.name}",
                    migration.sql
                    + "\nINSERT INTO npd_sync.migrations (version, name) VALUES "
                    + f"({migration.version}, {sql.quote_literal(migration.name)});",
                    version=migration.version,
                )
            )
    if not applied:
        return {}
    return {r["relation"]: r for r in await conn.fetch(sql.query("attached_tables"))}


async def _origin_step(conn: db.Conn, result: Plan) -> str:
    """The secret npd-sync's sessions are marked with: the one in place, or a new one."""
    secret = await db.origin_secret(conn)
    if secret is not None:
        return secret
    secret = secrets.token_hex(32)
    result.steps.append(
        Step(
            "origin",
            "create the secret that keeps npd-sync's own writes out of the capture",
            ORIGIN.format(secret=sql.quote_literal(secret)),
            secret=secret,
        )
    )
    return secret


async def _capture_step(
    conn: db.Conn,
    result: Plan,
    table: mapping.TableMapping,
    info: catalog.TableInfo,
    table_id: int,
    known: asyncpg.Record | None,
    secret: str,
) -> None:
    """Attach, update or restore one table's capture, unless it is up to date."""
    ddl = capture_ddl(table_id, info, table, secret)
    whole = known is not None and (
        await conn.fetchval(sql.query("enabled_triggers"), info.relation) == TRIGGERS
    )
    if known and whole and known["ddl_hash"] == _hash(ddl) and known["name"] == table.table:
        result.notes.append(f"{table.table}: capture up to date")
        return
    record = (
        "INSERT INTO npd_sync.tables (id, relation, name, key_column, ddl_hash) VALUES "
        f"({table_id}, {sql.quote_literal(info.relation)}::regclass, "
        f"{sql.quote_literal(table.table)}, {sql.quote_literal(table.key_column)}, "
        f"{sql.quote_literal(_hash(ddl))})\nON CONFLICT (id) DO UPDATE SET "
        "name = excluded.name, key_column = excluded.key_column, "
        "ddl_hash = excluded.ddl_hash, attached_at = now();"
    )
    kind: StepKind = "attach"
    verb = "attach capture to"
    if known and whole:
        kind, verb = "update", "update capture on"
    elif known:
        kind, verb = "restore", "restore capture (triggers dropped or disabled) on"
    result.steps.append(
        Step(kind, f"{verb} {table.table} (table id {table_id})", ddl + "\n" + record,
             table=table.table)
    )  # fmt: skip


def _detach_steps(result: Plan, attached: Mapping[str, asyncpg.Record], wanted: set[str]) -> None:
    """Detach the capture of tables no longer configured."""
    for relation, row in attached.items():
        if relation not in wanted:
            result.steps.append(
                Step(
                    "detach",
                    f"detach capture from {row['name']} (no longer configured)",
                    DETACH.format(table=relation)
                    + f"\nDELETE FROM npd_sync.tables WHERE id = {int(row['id'])};",
                    table=row["name"],
                )
            )


def _sync_columns(result: Plan, name: str, info: catalog.TableInfo, *, missing: bool) -> None:
    """Say which sync columns the table lacks, with the ALTER TABLE that adds them: a fix when
    it keeps the table from syncing, else a note (the optional ones are written when present)."""
    alter = catalog.add_sync_columns(info)
    if alter is None:
        return
    lacking = ", ".join(catalog.missing_sync_columns(info))
    if missing and any(not info.has(c) for c in mapping.REQUIRED_COLUMNS):
        result.fixes.append(f"-- {name}: the sync columns it lacks ({lacking})\n{alter}")
    elif not missing:
        result.notes.append(
            f"{name}: no {lacking} (optional: npd-sync writes them when present); to add them:"
            f"\n{alter}"
        )


async def lock(conn: db.Conn, wait: float = LOCK_WAIT) -> None:
    """Take install's lock for the transaction, waiting at most `wait` seconds for another
    session to release it; then InstallError names that session."""
    deadline = time.monotonic() + wait
    delay = 0.01
    while not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", INSTALL_LOCK):
        if time.monotonic() >= deadline:
            holder = await conn.fetchrow(sql.query("install_lock_holder"), INSTALL_LOCK)
            who = (
                f"pid {holder['pid']}, user {holder['usename']}, application "
                f"{holder['application_name'] or '(none)'!r}"
                if holder
                else "a session that has ended since"
            )
            raise InstallError(
                f"another session has held npd-sync's install lock ({INSTALL_LOCK}) for "
                f"{wait:g}s: {who}; end it (SELECT pg_terminate_backend(pid)) and run again"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


async def install(
    conn: db.Conn,
    tables: Sequence[mapping.TableMapping],
    *,
    dry_run: bool = False,
    wait: float = LOCK_WAIT,
) -> Plan:
    """Bring the database up to date; with dry_run, only plan. Raises InstallError on problems."""
    async with conn.transaction():
        await lock(conn, wait)
        # Attaching takes a brief lock on each application table; never queue behind a long
        # application transaction for ever.
        await conn.execute("SET LOCAL lock_timeout = '10s'")
        result = await plan(conn, tables)
        if result.problems:
            raise InstallError("\n".join(result.problems), result.fixes)
        if not dry_run:
            for step in result.steps:
                await conn.execute(step.sql)
    if not dry_run:
        await db.mark(conn)  # this session is npd-sync's too, from now on
    return result


async def uninstall(
    conn: db.Conn, *, wait: float = LOCK_WAIT, alive_within: float | None = None
) -> list[str]:
    """Remove the triggers and the npd_sync schema; application rows are not touched. Raises
    InstallError while a listener's heartbeat is younger than `alive_within` seconds."""
    done: list[str] = []
    async with conn.transaction():
        await lock(conn, wait)
        await conn.execute("SET LOCAL lock_timeout = '10s'")
        if not await conn.fetchval("SELECT to_regnamespace('npd_sync') IS NOT NULL"):
            return done
        if alive_within is not None:
            await _refuse_while_listening(conn, alive_within)
        if await conn.fetchval("SELECT to_regclass('npd_sync.tables') IS NOT NULL"):
            for row in await conn.fetch(sql.query("attached_tables")):
                await conn.execute(DETACH.format(table=row["relation"]))
                done.append(f"{row['name']}: capture removed")
        hooks = []
        if await conn.fetchval("SELECT to_regclass('npd_sync.webhooks') IS NOT NULL"):
            hooks = [r["webhook_id"] for r in await conn.fetch(sql.query("stored_webhooks"))]
        await conn.execute("DROP SCHEMA npd_sync CASCADE")
        done.append("schema npd_sync dropped")
    if hooks:
        # Their ids are gone with the schema: say them, so that they can be deleted on Monday.
        done.append(
            f"left on Monday: webhooks {', '.join(hooks)}, whose deliveries are now refused; "
            "delete them in Monday's UI (`npd-sync webhooks uninstall` before `uninstall` does)"
        )
    return done


async def _refuse_while_listening(conn: db.Conn, alive_within: float) -> None:
    """Dropping the schema under running listeners makes them fail, and a supervisor that
    restarts them (the README's systemd unit) makes them fail in a loop."""
    if not await conn.fetchval("SELECT to_regclass('npd_sync.listeners') IS NOT NULL"):
        return
    rows = await conn.fetch(sql.query("status_listeners"), alive_within)
    alive = [f"{r['hostname']} pid {r['pid']}" for r in rows if r["alive"]]
    if alive:
        many = len(alive) > 1
        raise InstallError(
            f"{len(alive)} listener{'s are' if many else ' is'} running ({', '.join(alive)}): "
            f"stop {'them' if many else 'it'} first (under systemd: systemctl stop npd-sync), "
            "or uninstall --force"
        )


async def installed_version(conn: db.Conn) -> int | None:
    """The schema version npd-sync is installed at here, or None when it is not installed."""
    if not await conn.fetchval(sql.query("schema_present")):
        return None
    return int(await conn.fetchval(sql.query("schema_version")))


async def require_current(conn: db.Conn) -> int:
    """The installed schema version; raises NotInstalled when absent or older than this code."""
    version = await installed_version(conn)
    if version is None:
        raise NotInstalled("npd-sync is not installed in this database: run `npd-sync install`")
    latest = sql.migrations()[-1].version
    if version < latest:
        raise NotInstalled(
            f"npd-sync's schema here is at version {version}, this npd-sync needs {latest}: "
            "run `npd-sync install`"
        )
    return version
