"""`npd-sync check`: is everything in place for the sync to work? One result per check.

In order: the database (reachable; each configured table present, with the required columns
and usable types; npd-sync's schema and each table's capture installed and current, the
triggers present and enabled), then Monday (MONDAY_API_KEY set; the token accepted; the API
version served; each configured board present and active, with every mapped column present
and of the type the mapping writes; the `npd_id` column), inbound (the webhooks), and the day's
calls (the daily limit that holds, and what reconciliation costs a day within it, after
widening its interval to keep to `[tuning] reconcile_share`). A failed check comes with a hint on
how to fix it; a warning (⚠) does not fail the run. Secrets never reach a message: Monday's
errors come without the API key, and the database is named without its password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import unquote, urlsplit

import asyncpg

from listener import catalog, db, mapping, sql
from listener.capture import install
from listener.inbound import receiver, reconcile, webhooks
from listener.monday import api, daily, errors, governor, ledger
from listener.redact import PLACEHOLDER, redact
from listener.settings import Settings, Tuning
from listener.text import counted

Mark = Literal["ok", "warn", "fail"]
MARKS: dict[Mark, str] = {"ok": "✓", "warn": "⚠", "fail": "✗"}
ASCII_MARKS: dict[Mark, str] = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}

# npd_id's Monday column type (every other mapped column is of its mapping type).
NPD_ID_TYPE = "text"
# A board without the npd_id column: a failure while the listener writes the key into it.
NPD_ID_MISSING: Mark = "fail"
TRIGGERS = ("npd_sync_delete", "npd_sync_insert", "npd_sync_rekey", "npd_sync_truncate")
UPDATE_TRIGGER = "npd_sync_update"
# API versions that still answer but should not be relied on (Monday's versioning policy).
UNSTABLE_KINDS = frozenset({"release_candidate", "dev"})
RETIRING_KINDS = frozenset({"deprecated", "old__maintenance", "old_previous_maintenance"})

DATABASE_TIMEOUT = 10.0
MONDAY_TIMEOUT = 20.0
INSTALL_HINT = "run `npd-sync install`"
EXPECTED_TYPES = {
    mapping.SYNC_ENABLED: "boolean",
    mapping.SYNC_DIRECTION: "text (or an enum)",
    mapping.MONDAY_ID: "text (or bigint)",
    mapping.SYNC_STATUS: "text (or an enum with PENDING, SYNCED, FAILED)",
}


@dataclass(frozen=True, slots=True)
class Result:
    """One check's outcome: `subject: message`, and how to fix it when it is not ok."""

    mark: Mark
    subject: str
    message: str
    hint: str | None = None


Report = Callable[[Result], None]


def format_result(result: Result, *, unicode: bool = True) -> list[str]:
    """The lines `check` prints for a result: the mark and message, then the hint."""
    mark = (MARKS if unicode else ASCII_MARKS)[result.mark]
    lines = [f"{mark} {result.subject}: {result.message}"]
    if result.hint and result.mark != "ok":
        lines.append(f"    {'fix' if result.mark == 'fail' else 'hint'}: {result.hint}")
    return lines


async def run(settings: Settings, *, echo: Callable[[str], None], unicode: bool = True) -> bool:
    """`npd-sync check`: print each result as it is known; True when nothing failed."""

    def report(result: Result) -> None:
        for line in format_result(result, unicode=unicode):
            echo(line)

    return await checks(settings, report)


async def checks(settings: Settings, report: Report) -> bool:
    """Run every check, reporting each result as it is known; True when none failed."""
    failed = False
    secrets = settings.secrets()

    def add(result: Result) -> None:
        nonlocal failed
        failed = failed or result.mark == "fail"
        report(
            replace(
                result,
                message=redact(result.message, secrets),
                hint=redact(result.hint, secrets) if result.hint else None,
            )
        )

    await _database(settings, add)
    told = await _monday(settings, add)
    await _inbound(settings, add)
    await _day(settings, told, add)
    return not failed


# --- the database ---------------------------------------------------------------------------


async def _database(settings: Settings, add: Report) -> None:
    dsn = settings.database_url
    if not dsn:
        add(
            Result(
                "fail",
                "database",
                "DATABASE_URL is not set",
                "set DATABASE_URL to the application's PostgreSQL URL",
            )
        )
        return
    where = safe_dsn(dsn)
    try:
        conn = await db.connect(dsn, application_name="npd-sync check", timeout=DATABASE_TIMEOUT)
    except (*db.ERRORS, asyncpg.PostgresError) as exc:
        add(
            Result(
                "fail",
                "database",
                f"cannot connect to {where}: {_reason(exc)}",
                "check DATABASE_URL (host, port, database, user, password) and that "
                "PostgreSQL is running and reachable from here",
            )
        )
        return
    try:
        version = await conn.fetchval(sql.query("server_version"))
        version = str(version).split(" ", 1)[0]
        add(Result("ok", "database", f"reachable ({where}, PostgreSQL {version})"))
        infos = {t.table: await _table(conn, t, add) for t in settings.tables}
        _relations(settings.tables, infos, add)
        await _capture(conn, settings.tables, infos, add)
    except (*db.ERRORS, asyncpg.PostgresError) as exc:
        add(Result("fail", "database", f"error while checking: {_reason(exc)}"))
    finally:
        await conn.close()


def _relations(
    tables: Sequence[mapping.TableMapping],
    infos: Mapping[str, catalog.TableInfo | None],
    add: Report,
) -> None:
    """Each connect-boards column's foreign key is of the referenced table's key type."""
    keys = catalog.key_columns(tables, infos)
    for table in tables:
        info = infos.get(table.table)
        for problem in catalog.relation_problems(info, table, keys) if info else []:
            add(Result("fail", table.table, str(problem), "map a foreign key of that type"))


async def _table(
    conn: db.Conn, table: mapping.TableMapping, add: Report
) -> catalog.TableInfo | None:
    """Check one table's columns; its catalog entry when it can be synced, else None."""
    info = await catalog.describe(conn, table.table)
    if info is None:
        if table.board_id:
            add(
                Result(
                    "fail",
                    table.table,
                    "table not found",
                    f"create it, or stop syncing it (unset {table.board_env}, or remove it "
                    "from the NPD_SYNC_CONFIG file)",
                )
            )
        else:
            add(Result("warn", table.table, "no such table; skipped (no board configured)"))
        return None
    problems = catalog.problems(info, table)
    for problem in problems:
        add(Result("fail", table.table, str(problem), _column_hint(problem)))
    if problems:
        return None
    add(
        Result(
            "ok",
            table.table,
            f"table {info.relation} has the sync columns and the "
            f"{len(table.source_columns)} mapped ones",
        )
    )
    return info


def _column_hint(problem: catalog.Problem) -> str:
    match problem.kind:
        case "missing_required":
            wanted = [
                f"{name} {EXPECTED_TYPES.get(name, 'integer or uuid (the primary key)')}"
                for name in problem.columns
            ]
            return "add " + "; ".join(wanted)
        case "missing_mapped":
            return "add them, or map other columns (NPD_SYNC_CONFIG: the table's column sources)"
        case "enum_lacks":
            return f"ALTER TYPE ... ADD VALUE for each missing label of {mapping.SYNC_STATUS}"
        case "foreign_code":
            return (
                "have a superuser or npd-sync's role own that code (ALTER DOMAIN/FUNCTION ... "
                "OWNER TO), or give the column a built-in type"
            )
        case "key_not_unique":
            column = sql.quote_ident(problem.columns[0])
            return f"ALTER TABLE ... ADD PRIMARY KEY ({column}), or set key in NPD_SYNC_CONFIG"
    return "change the column's type (ALTER TABLE ... ALTER COLUMN ... TYPE ...)"


async def _capture(
    conn: db.Conn,
    tables: Sequence[mapping.TableMapping],
    infos: dict[str, catalog.TableInfo | None],
    add: Report,
) -> None:
    """npd-sync's schema and each table's triggers, judged by what `install` would do."""
    plan = await install.plan(conn, tables)
    if any(step.kind == "schema" for step in plan.steps):
        add(Result("fail", "npd-sync", "not installed in this database", INSTALL_HINT))
        return
    pending = [step.description.removeprefix("apply migration ")
               for step in plan.steps if step.kind == "migration"]  # fmt: skip
    if pending:
        add(
            Result(
                "fail",
                "npd-sync",
                f"schema out of date: migration {', '.join(pending)} not applied",
                INSTALL_HINT,
            )
        )
    else:
        version = int(await conn.fetchval(sql.query("schema_version")))
        add(Result("ok", "npd-sync", f"schema installed, version {version}"))
    steps: set[tuple[str, str | None]] = {(step.kind, step.table) for step in plan.steps}
    for table in tables:
        info = infos.get(table.table)
        if info is not None:
            await _table_capture(conn, table, info, steps, add)
    for step in plan.steps:
        if step.kind == "detach" and step.table is not None:
            add(
                Result(
                    "warn",
                    step.table,
                    "capture still attached, but the table is not configured",
                    f"{INSTALL_HINT} to detach it",
                )
            )


async def _table_capture(
    conn: db.Conn,
    table: mapping.TableMapping,
    info: catalog.TableInfo,
    steps: set[tuple[str, str | None]],
    add: Report,
) -> None:
    name = table.table
    triggers = {
        r["name"]: r for r in await conn.fetch(sql.query("capture_triggers"), info.relation)
    }
    if ("attach", name) in steps:
        add(Result("fail", name, "capture not installed: changes are not recorded", INSTALL_HINT))
        return
    if ("update", name) in steps:
        watched = set(triggers[UPDATE_TRIGGER]["columns"]) if UPDATE_TRIGGER in triggers else set()
        added = [c for c in install.data_columns(info, table) if c not in watched]
        detail = ""
        if watched and added:
            detail = "; changes to columns added since install are not recorded: "
            detail += ", ".join(added)
        add(Result("fail", name, f"capture out of date{detail}", INSTALL_HINT))
        return
    missing = [t for t in (*TRIGGERS, UPDATE_TRIGGER) if t not in triggers]
    if missing:
        add(
            Result(
                "fail",
                name,
                f"trigger {', '.join(sorted(missing))} missing: changes are not recorded",
                INSTALL_HINT,
            )
        )
        return
    disabled = sorted(t for t, r in triggers.items() if not r["enabled"])
    if disabled:
        enable = "; ".join(
            f"ALTER TABLE {info.relation} ENABLE TRIGGER {sql.quote_ident(t)}" for t in disabled
        )
        add(
            Result(
                "fail",
                name,
                f"trigger {', '.join(disabled)} disabled: changes are not recorded",
                enable,
            )
        )
        return
    add(Result("ok", name, "capture installed and current"))


# --- Monday ---------------------------------------------------------------------------------


async def _monday(settings: Settings, add: Report) -> int | None:
    """The token, the version, the boards; Monday's daily call limit when it says it."""
    key = settings.api_key
    if key is None:
        add(
            Result(
                "fail",
                "MONDAY_API_KEY",
                "not set: nothing is sent to Monday, changes stay pending",
                "set MONDAY_API_KEY to a Monday API token (monday.com: your avatar, "
                "Developers, My access tokens)",
            )
        )
        _unboarded(settings, add)
        return None
    add(Result("ok", "MONDAY_API_KEY", "set"))
    async with api.client(settings, timeout=MONDAY_TIMEOUT) as client:
        try:
            about, _ = await api.about(client)
        except errors.MondayError as exc:
            add(_monday_failure(settings, exc))
            _unboarded(settings, add)
            return None
        who = about.user.get("name") or about.user.get("id") or "?"
        add(Result("ok", "Monday token", f"accepted by {settings.api_url} (user {who})"))
        add(_version(settings.api_version, about))
        await _boards(client, settings, add)
        try:
            told, _ = await api.daily(client)
        except errors.MondayError:
            return None  # the token may not read it, or an older version: the others hold
        return told.limit


def _monday_failure(settings: Settings, exc: errors.MondayError) -> Result:
    if exc.code == "InvalidVersionException":
        return Result(
            "fail",
            "Monday API version",
            f"{settings.api_version} refused: {exc}",
            "set MONDAY_API_VERSION to a supported version, e.g. 2026-10",
        )
    if exc.kind is errors.Kind.BLOCKED:
        return Result(
            "fail",
            "Monday token",
            f"refused by {settings.api_url}: {exc}",
            "MONDAY_API_KEY is wrong, expired or of a user without access: create a new "
            "token (monday.com: your avatar, Developers, My access tokens)",
        )
    if exc.kind is errors.Kind.RATE_LIMITED:
        wait = f" in {exc.retry_after:.0f}s" if exc.retry_after is not None else " later"
        return Result(
            "fail", "Monday", f"rate limited, cannot check now: {exc}", f"run check again{wait}"
        )
    return Result(
        "fail",
        "Monday",
        f"no usable answer from {settings.api_url}: {exc}",
        "check MONDAY_API_URL and that this machine reaches it (proxy, firewall)",
    )


def _version(requested: str, about: api.About) -> Result:
    served, kind = about.served_version, about.version_kind
    if served is not None and served != requested:
        return Result(
            "warn",
            "Monday API version",
            f"{requested} requested but {served} served ({requested} is deprecated or unknown)",
            f"set MONDAY_API_VERSION={served}",
        )
    if kind in UNSTABLE_KINDS:
        return Result(
            "warn",
            "Monday API version",
            f"{requested} is a {kind.replace('_', ' ')}: it may change without notice",
            "use the current version for production",
        )
    if kind in RETIRING_KINDS:
        return Result(
            "warn",
            "Monday API version",
            f"{requested} is {kind.replace('_', ' ').strip()}: it will be retired",
            "move MONDAY_API_VERSION to the current version",
        )
    return Result("ok", "Monday API version", f"{requested}" + (f" ({kind})" if kind else ""))


def _unboarded(settings: Settings, add: Report) -> None:
    for table in settings.tables:
        if not table.board_id:
            add(_no_board(table))


def _no_board(table: mapping.TableMapping) -> Result:
    return Result(
        "warn",
        table.table,
        f"not synced ({table.board_env} is not set)",
        f"set {table.board_env} to the board's id (the number in its URL) to sync it",
    )


async def _boards(client: api.Client, settings: Settings, add: Report) -> None:
    ids = [t.board_id for t in settings.tables if t.board_id]
    found: dict[str, api.BoardInfo] = {}
    if ids:
        try:
            for start in range(0, len(ids), api.BOARDS_PAGE):
                page, _ = await api.boards(client, ids[start : start + api.BOARDS_PAGE])
                found.update(page)
        except errors.MondayError as exc:
            add(
                Result(
                    "fail",
                    "Monday boards",
                    f"cannot read the boards: {exc}",
                    "check that the token's user can see the boards",
                )
            )
            return
    for table in settings.tables:
        if not table.board_id:
            add(_no_board(table))
            continue
        board = found.get(table.board_id)
        if board is None:
            add(
                Result(
                    "fail",
                    table.table,
                    f"board {table.board_id} not found",
                    f"check {table.board_env} (the number in the board's URL) and that the "
                    "token's user has access to the board",
                )
            )
            continue
        _board(table, board, add, {t.table: t.board_id for t in settings.tables})


def _connected(
    table: mapping.TableMapping,
    board: api.BoardInfo,
    column: mapping.Column,
    boards: Mapping[str, str | None],
    add: Report,
) -> bool:
    """A connect-boards column links to the referenced table's board; True when it does not
    (reported)."""
    target = boards.get(column.references or "")
    if target is None or target in board.columns[column.id].connected:
        return False
    add(
        Result(
            "fail",
            table.table,
            f"column {column.id!r} does not connect to board {target} ({column.references}): "
            "Monday refuses links to its items",
            f"connect the column to board {target} in its settings on Monday",
        )
    )
    return True


def _board(
    table: mapping.TableMapping,
    board: api.BoardInfo,
    add: Report,
    boards: Mapping[str, str | None] | None = None,
) -> None:
    where = f"board {board.id} ({board.name})"
    if board.state != "active":
        add(
            Result(
                "fail",
                table.table,
                f"{where} is {board.state}",
                f"restore the board on Monday, or set {table.board_env} to another board",
            )
        )
        return
    bad = False
    for column in table.columns:
        unusable = _column(table, board, column.id, column.type, add)
        if not unusable and column.type == mapping.RELATION:
            unusable = _connected(table, board, column, boards or {}, add)
        bad |= unusable
    npd_id = table.npd_id_column
    if not npd_id:  # None, or "" in a mapping file (TOML has no null): the worker skips it
        add(
            Result(
                "warn",
                table.table,
                "duplicate protection is off (npd_id_column is not set)",
                "add a text column to the board and set the table's npd_id_column to its id",
            )
        )
    elif npd_id not in board.columns:
        # The listener writes every row's key into this column, so without it every create
        # and update of the table is refused (InvalidColumnIdException): not just a warning.
        add(
            Result(
                NPD_ID_MISSING,
                table.table,
                f"no column {npd_id!r} on {where}: duplicate protection is off, and every "
                "push fails (the listener writes the row's key into it)",
                f"add a text column with id {npd_id!r} to the board (or set "
                "npd_id_column in NPD_SYNC_CONFIG to the id of an existing text column)",
            )
        )
        bad |= NPD_ID_MISSING == "fail"
    else:
        bad |= _column(table, board, npd_id, NPD_ID_TYPE, add)
    if not bad:
        count = len(table.columns) + (1 if npd_id in board.columns else 0)
        add(Result("ok", table.table, f"{where} has the {count} mapped columns, types match"))


def _column(
    table: mapping.TableMapping, board: api.BoardInfo, column_id: str, wanted: str, add: Report
) -> bool:
    """Check one mapped column on the board; True when it is not usable (reported)."""
    where = f"board {board.id} ({board.name})"
    column = board.columns.get(column_id)
    others = [
        f"{c.id} ({c.title})"
        for c in board.columns.values()
        if c.type == wanted and not c.archived and c.id != column_id
    ]
    alternative = f"; {wanted} columns on the board: {', '.join(others)}" if others else ""
    if column is None:
        add(
            Result(
                "fail",
                table.table,
                f"column {column_id!r} ({wanted}) not on {where}",
                f"add {_a(wanted)} column with id {column_id!r} to the board, or map the id of "
                f"an existing one in NPD_SYNC_CONFIG{alternative}",
            )
        )
        return True
    if column.archived:
        add(
            Result(
                "fail",
                table.table,
                f"column {column_id!r} on {where} is archived",
                f"restore the column on Monday, or map another {wanted} column{alternative}",
            )
        )
        return True
    if column.type != wanted:
        add(
            Result(
                "fail",
                table.table,
                f"column {column_id!r} on {where} is {column.type}; the mapping writes {wanted}",
                f"map {_a(wanted)} column instead, or change the column's type in "
                f"NPD_SYNC_CONFIG to {column.type} if its values fit{alternative}",
            )
        )
        return True
    return False


# --- inbound --------------------------------------------------------------------------------


async def _inbound(settings: Settings, add: Report) -> None:
    """Inbound's settings, and each board's webhooks (present on Monday, or missing)."""
    if settings.public_url is None:
        add(Result("ok", "inbound", "off (NPD_SYNC_PUBLIC_URL is not set): outbound only"))
        return
    shown = receiver.webhook_url(settings.public_url, PLACEHOLDER)
    signed = "; webhooks' JWT verified" if settings.signing_secret else ""
    add(Result("ok", "inbound", f"on, receiver at {shown}{signed}"))
    if not settings.public_url.startswith("https://"):
        add(
            Result(
                "warn", "inbound", "NPD_SYNC_PUBLIC_URL is plain http: the URL's secret travels "
                "in clear", "serve the receiver behind TLS (https)",
            )
        )  # fmt: skip
    for table in settings.tables:
        if table.board_id and table.on_monday_create == "insert" and not table.npd_id_column:
            add(
                Result(
                    "warn", table.table, "items created on the board make no row: without an "
                    "npd_id column npd-sync cannot tell its own items from people's",
                    "set npd_id_column, or on_monday_create = \"ignore\" to say so",
                )
            )  # fmt: skip
    if settings.api_key is None or not settings.database_url:
        return
    try:
        conn = await db.connect(
            settings.database_url, application_name="npd-sync check", timeout=DATABASE_TIMEOUT
        )
    except (*db.ERRORS, asyncpg.PostgresError):
        return  # said already
    try:
        if await install.installed_version(conn) is None:
            return
        async with api.client(settings, timeout=MONDAY_TIMEOUT) as client:
            found = await webhooks.survey(conn, client, settings.tables)
    except errors.MondayError as exc:
        add(Result("fail", "webhooks", f"cannot read them from Monday: {exc}"))
        return
    except (*db.ERRORS, asyncpg.PostgresError) as exc:
        add(Result("fail", "webhooks", f"database error: {_reason(exc)}"))
        return
    finally:
        await conn.close()
    for table in settings.tables:
        mine = [s for s in found if s.table == table.table]
        missing = [s.event for s in mine if s.state == "missing"]
        if not mine:
            continue
        if missing:
            add(
                Result(
                    "fail", table.table, f"webhooks missing on board {table.board_id}: "
                    f"{', '.join(missing)}: board edits do not reach the database",
                    "run `npd-sync webhooks install` (with the receiver running)",
                )
            )  # fmt: skip
        else:
            add(
                Result("ok", table.table, f"the {len(mine)} webhooks are on board {table.board_id}")
            )
        _signing(settings, table, mine, add)


def _signing(
    settings: Settings,
    table: mapping.TableMapping,
    found: Sequence[webhooks.Subscription],
    add: Report,
) -> None:
    """With MONDAY_SIGNING_SECRET, webhooks made with a personal token are all refused."""
    if settings.signing_secret is None:
        return
    if unsigned := webhooks.unsigned(found):
        many = len(unsigned) > 1
        text = webhooks.UNSIGNED.format(
            webhooks=f"{len(unsigned)} webhooks on board {table.board_id}"
            if many
            else f"a webhook on board {table.board_id}",
            their="their" if many else "its",
        )
        add(Result("fail", table.table, text, webhooks.UNSIGNED_HINT))


# --- the day's calls ------------------------------------------------------------------------


async def _day(settings: Settings, told: int | None, add: Report) -> None:
    """The daily limit that holds, and what reconciliation costs a day within it."""
    boards = [t.board_id for t in settings.tables if t.board_id]
    costs = [daily.PassCost()] * len(boards)
    if settings.database_url:
        with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
            conn = await db.connect(
                settings.database_url, application_name="npd-sync check", timeout=DATABASE_TIMEOUT
            )
            try:
                if await install.installed_version(conn) is not None:
                    # Monday's figure as the listeners last learnt it, when it did not say now.
                    told = told if told is not None else await ledger.day_limit(conn)
                    costs = await reconcile.costs(conn, boards)
            finally:
                await conn.close()
    limits = governor.limits_for(settings.tuning)
    chosen = daily.limit(told, limits.daily_calls, limits.plan)
    add(daily_limit(chosen, limits.plan))
    if settings.inbound:
        add(reconciliation(settings.tuning, chosen, costs))


SOURCES = {"monday": "Monday's figure", "daily_calls": "[tuning] daily_calls"}


def daily_limit(chosen: daily.Limit | None, plan: str | None = None) -> Result:
    """The daily call limit that holds, and where it comes from (`plan`: the plan's name)."""
    if chosen is None:
        return Result(
            "ok", "daily limit", "none known: calls are not paced over the day (Monday did not "
            "say it; neither [tuning] daily_calls nor plan is set)",
        )  # fmt: skip
    source = SOURCES.get(chosen.source) or (f"the {plan} plan's" if plan else "the plan's")
    return Result("ok", "daily limit", f"{chosen.calls:,} calls a day ({source})")


def reconciliation(
    tuning: Tuning, chosen: daily.Limit | None, costs: Sequence[daily.PassCost]
) -> Result:
    """What the configured reconciliation costs a day, and the interval it keeps to its share
    of the daily limit with."""
    interval = tuning.reconcile_interval
    if interval <= 0:
        return Result(
            "ok", "reconciliation", "off (reconcile_interval = 0): only `npd-sync pull` catches "
            "edits whose webhooks were lost",
        )  # fmt: skip
    calls = chosen.calls if chosen else None
    every = daily.reconcile_every(interval, tuning.reconcile_share, calls, costs)
    spent = daily.reconcile_calls(every, costs)
    line = f"every {every:,.0f} s over {counted(len(costs), 'board')}: {spent:,.0f} calls a day"
    if calls is None:
        return Result("ok", "reconciliation", line + " (no daily limit known)")
    line += f" ({spent / calls:.1%} of {calls:,})"
    if every > interval:
        wanted = daily.reconcile_calls(interval, costs)
        line += (
            f"; every {interval:,.0f} s (reconcile_interval) would cost {wanted:,.0f} "
            f"({wanted / calls:.1%}), over reconcile_share ({tuning.reconcile_share:.0%})"
        )
    return Result("ok", "reconciliation", line)


# --- secrets --------------------------------------------------------------------------------


def safe_dsn(dsn: str) -> str:
    """The database a DSN names, for messages: user@host:port/database, never the password."""
    try:
        parts = urlsplit(dsn)
        host = parts.hostname or "local socket"
        port = f":{parts.port}" if parts.port else ""
        user = f"{unquote(parts.username)}@" if parts.username else ""
    except ValueError:
        return "the DATABASE_URL database"
    return f"{user}{host}{port}{parts.path}"


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"
