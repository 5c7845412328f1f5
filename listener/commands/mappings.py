"""`npd-sync mapping init` and `mapping show`: a mapping file proposed from the boards and the
tables, and the mapping in effect with each column's title on its board.

Monday is asked two things only, both through `listener.operations.boards.Monday` (which the
console's Mapping page reads the boards through too): the boards with their columns (one
request for all of them), and, with --create-columns, `create_column` (one request a column).
They go through the governor, inside the budget every listener shares, once npd-sync is
installed in the database; before `install` there is no shared budget yet, and they go
straight, as `check`'s do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from listener import catalog, db, mapping, proposal, settings
from listener.monday import api
from listener.operations import boards as boards_
from listener.operations.boards import Monday, MondayFailed, open_monday
from listener.settings import ConfigError, Settings

Echo = Callable[[str], None]
__all__ = ["Monday", "MondayFailed", "describe", "init", "open_monday", "show", "targets"]


@dataclass(frozen=True, slots=True)
class Target:
    """A table to map, its board, and its mapping in the configuration (if any)."""

    table: str
    board_id: str
    configured: mapping.TableMapping | None = None


def targets(
    config: Settings, tables: Sequence[str], board: str | None, environ: Mapping[str, str]
) -> list[Target]:
    """The tables to map (`--table`, else every configured table with a board) and their
    boards (`--board`, else the configuration, else MONDAY_<TABLE>_BOARD_ID)."""
    names = list(dict.fromkeys(tables)) or [t.table for t in config.tables if t.board_id]
    if not names:
        raise ConfigError(
            "no table has a board to map: give --table T --board ID, or set MONDAY_<TABLE>_BOARD_ID"
        )
    if board is not None and len(names) != 1:
        raise ConfigError("--board names one board: give it with one --table")
    env = {k.upper(): v for k, v in environ.items()}
    found = []
    for name in names:
        configured = next((t for t in config.tables if t.table == name), None)
        variable = (configured or mapping.TableMapping(table=name)).board_env
        chosen = board or (configured.board_id if configured else None) or env.get(variable)
        try:
            board_id = settings.parse_board_id(chosen)
        except ValueError as exc:
            raise ConfigError(f"{'--board' if board else variable}: {exc}") from None
        if board_id is None:
            raise ConfigError(f"{name}: no board: give --board ID, or set {variable}")
        found.append(Target(name, board_id, configured))
    boards = [t.board_id for t in found]
    if len(set(boards)) != len(boards):
        raise ConfigError(f"two tables would share one board: {', '.join(sorted(boards))}")
    return found


# --- mapping init -------------------------------------------------------------------------------


async def init(
    config: Settings,
    *,
    tables: Sequence[str],
    board: str | None,
    create_columns: bool,
    environ: Mapping[str, str],
    say: Echo,
) -> str:
    """The mapping file proposed for the tables and their boards (with --create-columns, once
    the boards have what it needs); `say` tells what was found and done."""
    wanted = targets(config, tables, board, environ)
    if config.api_key is None:
        raise ConfigError("MONDAY_API_KEY is not set: mapping init reads the boards from Monday")
    pool = await db.create_pool(
        config.require_database(), application_name="npd-sync mapping", size=2
    )
    try:
        async with pool.acquire() as conn:
            infos = {t.table: await _describe(conn, t.table) for t in wanted}
        async with open_monday(config, pool) as monday:
            boards = await monday.boards([t.board_id for t in wanted])
            proposals = []
            for target in wanted:
                found = proposal.propose(
                    infos[target.table], _board(target, boards), target.configured
                )
                if create_columns and found.wanted:
                    found = await _create(monday, found, say)
                proposals.append(found)
    finally:
        await pool.close()
    for found in proposals:
        for line in summary(found):
            say(line)
    return proposal.render(proposals, config.tuning.model_dump(exclude_defaults=True))


async def _describe(conn: db.Conn, table: str) -> catalog.TableInfo:
    info = await catalog.describe(conn, table)
    if info is None:
        raise ConfigError(f"{table}: no such table in the database (DATABASE_URL)")
    return info


def _board(target: Target, boards: Mapping[str, api.BoardInfo]) -> api.BoardInfo:
    board = boards.get(target.board_id)
    if board is None:
        raise ConfigError(
            f"{target.table}: board {target.board_id} not found: check the board id (the number "
            "in the board's URL) and that the token's user can see the board"
        )
    if board.state != "active":
        raise ConfigError(f"{target.table}: board {target.board_id} is {board.state}")
    return board


async def _create(monday: Monday, found: proposal.Proposal, say: Echo) -> proposal.Proposal:
    """Create on the board the columns the proposal wants, one request each."""
    made: dict[proposal.Wanted, api.BoardColumn] = {}
    for wanted in found.wanted:
        try:
            column = await monday.create_column(found.board.id, wanted.title, wanted.type)
        except MondayFailed as exc:
            done = ", ".join(c.id for c in made.values()) or "none"
            raise MondayFailed(
                f"{exc} (creating column {wanted.title!r} on board {found.board.id}; created "
                f"before it: {done}; run it again: it finds the columns it made)"
            ) from None
        made[wanted] = column
        say(
            f"{found.table}: created {column.type} column {column.id} ({column.title!r}) on "
            f"board {found.board.id}"
        )
    return proposal.with_created(found, made)


def summary(found: proposal.Proposal) -> list[str]:
    """What mapping init says of a table: the board, what matched, what did not."""
    npd_id = found.npd_id or ("missing" if found.npd_id_wanted else "off")
    lines = [
        f"{found.table}: board {found.board.id} ({found.board.name!r}): "
        f"{len(found.columns)} columns mapped, npd_id column {npd_id}, item name {found.name}"
    ]
    unmet = len(found.wanted) + len(found.notes)
    if unmet:
        lines.append(f"{found.table}: {unmet} not mapped, each with a comment in the file")
    return lines


# --- mapping show -------------------------------------------------------------------------------


async def show(config: Settings, *, source: str | None, echo: Echo) -> None:
    """Print the mapping in effect, each column with its title on the board and whether it
    flows back; the titles are left out when Monday cannot be asked."""
    boards: dict[str, api.BoardInfo] = {}
    unknown = None
    if config.api_key is None:
        unknown = "MONDAY_API_KEY is not set"
    else:
        try:
            boards = await boards_.read(config)
        except MondayFailed as exc:
            unknown = str(exc)
    for line in describe(config, boards, source=source, unknown=unknown):
        echo(line)


def describe(
    config: Settings,
    boards: Mapping[str, api.BoardInfo],
    *,
    source: str | None,
    unknown: str | None = None,
) -> list[str]:
    """`mapping show`'s lines (pure)."""
    where = f"NPD_SYNC_CONFIG={source}" if source else "built-in (NPD_SYNC_CONFIG is not set)"
    lines = [f"mapping: {where}"]
    if config.inbound:
        lines.append("inbound: on: the columns marked 'yes' flow back into the rows")
    else:
        lines.append("inbound: off (NPD_SYNC_PUBLIC_URL is not set): nothing flows back now")
    if unknown:
        lines.append(f"board titles unknown: {unknown}")
    for found in boards_.views(config, boards, unknown):
        lines += ["", *_table_lines(found)]
    return lines


def _table_lines(found: boards_.TableView) -> list[str]:
    table = found.table
    if not found.synced:
        return [f"{table.table}: {found.board}"]
    lines = [
        f"{table.table} -> {found.board}",
        f"  key {table.key_column}; item name {table.name_template!r}: flows back "
        f"{found.name_flows_back}",
    ]
    rows = [("column", "title", "type", "from", "flows back")]
    rows += [(c.id, c.title, c.type, c.sources, c.flows_back) for c in found.columns]
    if not table.npd_id_column:
        lines.append("  npd_id column: off (no duplicate protection)")
    lines += ["  " + line for line in _columns(rows)]
    lines.append(
        f"  on_delete {table.on_delete}; conflict {table.conflict}; on_monday_create "
        f"{table.on_monday_create}; on_monday_delete {table.on_monday_delete}"
    )
    return lines


def _columns(rows: Iterable[tuple[str, ...]]) -> list[str]:
    """Rows as aligned columns."""
    table = list(rows)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
