"""A mapping proposed for a table and its board, and the mapping file it is written as.

Pure: `propose` matches the board's columns (id, title, type) to the table's by title and type,
keeping what the configured mapping says wherever the board agrees with it; `render` writes the
TOML file that `NPD_SYNC_CONFIG` reads, with a comment for every column left unmatched.
`npd-sync mapping init` does the I/O around them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from listener import catalog, mapping
from listener.monday.api import BoardColumn, BoardInfo

NPD_ID_TITLE = "npd_id"
# A table column the mapping file can name (settings.Identifier, without a schema).
PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
NUMERIC_TYPES = frozenset({"smallint", "integer", "bigint", "numeric", "real", "double precision"})
DATE_TYPES = frozenset({"date", "timestamp without time zone", "timestamp with time zone"})
TEXT_TYPES = catalog.TEXT_TYPES | {"citext", "character"}
OPAQUE_TYPES = frozenset({"json", "jsonb", "bytea", "xml"})
# Table columns that make a good item name, in order of preference.
NAME_COLUMNS = ("name", "full_name", "display_name", "title", "company", "label", "subject")
# Table options written only when they differ from these defaults.
OPTION_DEFAULTS: dict[str, str | bool] = {
    "on_delete": "archive",
    "create_labels": False,
    "conflict": "manual",
    "on_monday_create": "insert",
    "on_monday_delete": "unlink",
}
HEADER = """\
# npd-sync mapping: which board each table goes to, and which table columns feed which board
# columns. Written by `npd-sync mapping init`; edit it freely. Use it with
# NPD_SYNC_CONFIG=<this file>, then run `npd-sync check`, which verifies it against the boards.
# Every option is described in docs/mapping.md."""


@dataclass(frozen=True, slots=True)
class Wanted:
    """A column the mapping needs and the board lacks: to create, or to say so."""

    title: str
    type: mapping.ColumnType
    sources: tuple[str, ...]  # () for the npd_id column, which holds the row's key
    separator: str = " "
    default_country: str | None = None


@dataclass(frozen=True, slots=True)
class Mapped:
    """A board column the mapping writes, with its title on the board."""

    column: mapping.Column
    title: str


@dataclass(frozen=True, slots=True)
class Proposal:
    """What `mapping init` proposes for one table: `npd_id` is the board column holding the
    row's key (None: turned off, or wanted); `notes` say what was left unmatched, and why."""

    table: str
    board: BoardInfo
    key: str
    name: str
    columns: tuple[Mapped, ...]
    npd_id: str | None
    wanted: tuple[Wanted, ...] = ()
    notes: tuple[str, ...] = ()
    options: Mapping[str, str | bool] = dataclasses.field(default_factory=dict)

    @property
    def npd_id_wanted(self) -> bool:
        """Whether the board lacks the npd_id column the mapping needs."""
        return any(not w.sources for w in self.wanted)


def normal(text: str) -> str:
    """A title or a column name reduced to what matching compares: "Role title" and
    "role_title" are both "roletitle"."""
    return re.sub(r"[^a-z0-9]", "", text.casefold())


def title_for(name: str) -> str:
    """The board title proposed for a table column: "role_title" -> "Role title"."""
    return name.replace("_", " ").strip().capitalize() or name


def fits(column: catalog.ColumnInfo, column_type: str) -> bool:
    """Whether a table column's values can go into a Monday column of this type."""
    base = column.base
    if base in OPAQUE_TYPES or column.type.endswith("[]"):
        return False
    match column_type:
        case "text" | "long_text":
            return True
        case "email" | "phone" | "link":
            return base in TEXT_TYPES
        case "numbers":
            return base in NUMERIC_TYPES
        case "date":
            return base in DATE_TYPES
        case "status" | "dropdown":
            return base in TEXT_TYPES or column.labels is not None
    return False


def key_column(info: catalog.TableInfo, configured: mapping.TableMapping | None) -> str:
    """The key: the configured one, else `id`, else the first unique NOT NULL column of a key
    type (else `id`, which `check` and `install` then report missing)."""
    if configured is not None:
        return configured.key_column
    candidates = [c for c in info.columns.values() if c.unique and c.not_null]
    usable = [c for c in candidates if c.base in catalog.KEY_TYPES]
    names = [c.name for c in usable]
    return "id" if "id" in names or not names else names[0]


def data_columns(info: catalog.TableInfo, key: str) -> dict[str, catalog.ColumnInfo]:
    """The table's columns that may feed a board column: all but the key and the sync ones."""
    skip = {key, *mapping.REQUIRED_COLUMNS, *mapping.BOOKKEEPING_COLUMNS}
    return {name: c for name, c in info.columns.items() if name not in skip}


def unnamable(info: catalog.TableInfo, key: str) -> list[str]:
    """The table's data columns whose names a mapping file cannot hold."""
    return [name for name in data_columns(info, key) if not PLAIN_NAME.match(name)]


def name_template(
    info: catalog.TableInfo,
    board: BoardInfo,
    key: str,
    configured: mapping.TableMapping | None = None,
) -> str:
    """The item name template: the configured one where the table has its fields, else
    `{first_name} {last_name}`, else the column named like the board's name column or a
    usual name column, else the key."""
    if configured is not None and all(info.has(f) for f in configured.name_fields):
        return configured.name_template
    if info.has("first_name") and info.has("last_name"):
        return "{first_name} {last_name}"
    titles = [normal(c.title) for c in board.columns.values() if c.type == "name"]
    by_normal = {normal(name): name for name in data_columns(info, key)}
    for wanted in (*titles, *NAME_COLUMNS):
        found = by_normal.get(normal(wanted))
        if found is not None and fits(info.columns[found], "text"):
            return "{" + found + "}"
    return "{" + key + "}"


def propose(
    info: catalog.TableInfo, board: BoardInfo, configured: mapping.TableMapping | None = None
) -> Proposal:
    """Match the board's columns to the table's, keeping what the configured mapping says where
    the board has those columns."""
    key = key_column(info, configured)
    columns = [c for c in board.columns.values() if c.type != "name"]
    live = [c for c in columns if not c.archived]
    npd_id, wanted = _npd_id(live, configured)
    free = [c for c in live if c.id != npd_id]
    mapped, missing = _configured(info, free, configured)
    odd = unnamable(info, key)
    data = {n: c for n, c in data_columns(info, key).items() if n not in odd}
    used = {s for m in mapped for s in m.column.sources}
    for board_column in free:
        if any(m.column.id == board_column.id for m in mapped):
            continue
        source = _match(board_column, data, used)
        if source is not None:
            mapped.append(Mapped(_column(board_column, source), board_column.title))
            used.add(source)
    wanted += [w for w in missing if not set(w.sources) <= used]
    order = {c.id: i for i, c in enumerate(columns)}
    mapped.sort(key=lambda m: order[m.column.id])
    name = name_template(info, board, key, configured)
    covered = used | set(_fields(name)) | {s for w in wanted for s in w.sources}
    notes = _notes(columns, mapped, npd_id, data, covered)
    notes += [
        f"table column {_string(name)}: a mapping file names columns with letters, digits, _ "
        "and $ only"
        for name in odd
    ]
    return Proposal(
        table=info.name,
        board=board,
        key=key,
        name=name,
        columns=tuple(mapped),
        npd_id=npd_id,
        wanted=tuple(wanted),
        notes=tuple(notes),
        options=_options(configured),
    )


def with_created(proposal: Proposal, made: Mapping[Wanted, BoardColumn]) -> Proposal:
    """The proposal once the wanted columns in `made` exist on the board."""
    columns = list(proposal.columns)
    npd_id = proposal.npd_id
    for wanted, column in made.items():
        if not wanted.sources:
            npd_id = column.id
            continue
        mapped = mapping.Column(
            column.id, wanted.type, wanted.sources, wanted.separator, wanted.default_country
        )
        columns.append(Mapped(mapped, column.title))
    board = dataclasses.replace(
        proposal.board, columns={**proposal.board.columns, **{c.id: c for c in made.values()}}
    )
    left = tuple(w for w in proposal.wanted if w not in made)
    return dataclasses.replace(
        proposal, board=board, columns=tuple(columns), npd_id=npd_id, wanted=left
    )


def _npd_id(
    live: Sequence[BoardColumn], configured: mapping.TableMapping | None
) -> tuple[str | None, list[Wanted]]:
    """The board's text column for the row's key: the configured id, else one titled npd_id;
    else it is wanted (unless the configured mapping turns it off)."""
    if configured is not None and not configured.npd_id_column:
        return None, []
    preferred = configured.npd_id_column if configured is not None else NPD_ID_TITLE
    texts = [c for c in live if c.type == "text"]
    for column in texts:
        if column.id == preferred:
            return column.id, []
    for column in texts:
        if normal(column.title) == normal(NPD_ID_TITLE):
            return column.id, []
    return None, [Wanted(NPD_ID_TITLE, "text", ())]


def _configured(
    info: catalog.TableInfo, free: Sequence[BoardColumn], configured: mapping.TableMapping | None
) -> tuple[list[Mapped], list[Wanted]]:
    """The configured mapping's columns that the board has (by id, else by the title they
    would be given, of the same type), and those it lacks."""
    kept: list[Mapped] = []
    missing: list[Wanted] = []
    if configured is None:
        return kept, missing
    for column in configured.columns:
        if not all(info.has(s) for s in column.sources):
            continue
        title = title_for(column.sources[0] if len(column.sources) == 1 else column.id)
        taken = {m.column.id for m in kept}
        found = next(
            (c for c in free if c.id == column.id and c.type == column.type and c.id not in taken),
            None,
        ) or next(
            (c for c in free
             if normal(c.title) == normal(title) and c.type == column.type and c.id not in taken),
            None,
        )  # fmt: skip
        if found is not None:
            kept.append(Mapped(dataclasses.replace(column, id=found.id), found.title))
        else:
            missing.append(
                Wanted(title, column.type, column.sources, column.separator, column.default_country)
            )
    return kept, missing


def _match(
    column: BoardColumn, data: Mapping[str, catalog.ColumnInfo], used: set[str]
) -> str | None:
    """The table column a board column takes its values from: named like its title (else
    like its id), not used yet, of a type that fits."""
    if column.type not in mapping.COLUMN_TYPES:
        return None
    for wanted in (normal(column.title), normal(column.id)):
        for name, info in data.items():
            if name not in used and normal(name) == wanted and fits(info, column.type):
                return name
    return None


def _column(board_column: BoardColumn, source: str) -> mapping.Column:
    column_type: mapping.ColumnType = next(
        t for t in mapping.COLUMN_TYPES if t == board_column.type
    )
    return mapping.Column(board_column.id, column_type, (source,))


def _fields(template: str) -> list[str]:
    return re.findall(r"\{([^{}]+)\}", template)


def _notes(
    columns: Sequence[BoardColumn],
    mapped: Sequence[Mapped],
    npd_id: str | None,
    data: Mapping[str, catalog.ColumnInfo],
    used: set[str],
) -> list[str]:
    """One line per board column and per table column left unmatched, saying why."""
    taken = {m.column.id for m in mapped} | {npd_id}
    feeds = {s: m.column.id for m in mapped for s in m.column.sources}
    notes = [
        f"board column {_string(c.title)} ({c.type}, id {_key(c.id)}): " + _why(c, data, feeds)
        for c in columns
        if c.id not in taken
    ]
    notes += [
        f"table column {name} ({info.type}): no board column titled like it takes it"
        for name, info in data.items()
        if name not in used
    ]
    return notes


def _why(
    column: BoardColumn, data: Mapping[str, catalog.ColumnInfo], feeds: Mapping[str, str]
) -> str:
    if column.archived:
        return "archived"
    if column.type not in mapping.COLUMN_TYPES:
        return f"npd-sync does not write {column.type} columns"
    same = [n for n in data if normal(n) in (normal(column.title), normal(column.id))]
    if not same:
        return "no table column is named like it"
    name = same[0]
    if name in feeds:
        return f"table column {name} feeds column {_key(feeds[name])} already"
    return f"table column {name} is {data[name].type}, which a {column.type} column cannot take"


def _options(configured: mapping.TableMapping | None) -> dict[str, str | bool]:
    if configured is None:
        return {}
    found: dict[str, str | bool] = {}
    for name, default in OPTION_DEFAULTS.items():
        value = getattr(configured, name)
        if value != default:
            found[name] = value
    return found


# --- the file ---------------------------------------------------------------------------------


def render(proposals: Iterable[Proposal], tuning: Mapping[str, object] | None = None) -> str:
    """The mapping file: each table, its columns, a comment for each column left unmatched,
    and the `[tuning]` values that differ from the defaults."""
    lines = [HEADER]
    for proposal in proposals:
        lines += ["", *_table(proposal)]
    if tuning:
        lines += ["", "[tuning]", *(f"{_key(k)} = {_value(v)}" for k, v in tuning.items())]
    return "\n".join(lines) + "\n"


def _table(p: Proposal) -> list[str]:
    where = f"tables.{_key(p.table)}"
    board = _string(p.board.name)
    lines = [
        f"[{where}]",
        f"board_id = {_value(p.board.id)}  # {board}",
        f"key = {_value(p.key)}",
        f"name = {_value(p.name)}  # the item name",
    ]
    if p.npd_id is not None:
        title = _string(p.board.columns[p.npd_id].title)
        lines.append(f"npd_id_column = {_value(p.npd_id)}  # {title}: holds the row's key")
    elif p.npd_id_wanted:
        lines += [
            "# The board has no text column for the row's key: add one titled npd_id and run",
            "# `npd-sync mapping init` again, or run it with --create-columns. Until then every",
            "# push of this table fails (`npd-sync check` says so).",
            f"npd_id_column = {_value(NPD_ID_TITLE)}",
        ]
    else:
        lines.append('npd_id_column = ""  # off, as configured: no duplicate protection')
    lines += [f"{_key(k)} = {_value(v)}" for k, v in p.options.items()]
    for m in p.columns:
        lines += ["", *_column_lines(where, m)]
    unmet = [w for w in p.wanted if w.sources]
    if unmet or p.notes:
        lines += ["", f"# Not mapped ({p.table}):"]
    for w in unmet:
        lines.append(
            f"# - {_comment(', '.join(w.sources))}: the configured mapping sends it to a "
            f"{w.type} column, and the board has none titled {_string(w.title)} "
            "(add one, or run `npd-sync mapping init --create-columns`)"
        )
    lines += [f"# - {_comment(note)}" for note in p.notes]
    return lines


def _column_lines(where: str, m: Mapped) -> list[str]:
    column = m.column
    title = _string(m.title)
    lines = [f"[{where}.columns.{_key(column.id)}]  # {title}", f"type = {_value(column.type)}"]
    if len(column.sources) == 1:
        lines.append(f"source = {_value(column.sources[0])}")
    else:
        lines.append(f"sources = [{', '.join(_value(s) for s in column.sources)}]")
    if column.separator != " ":
        lines.append(f"separator = {_value(column.separator)}")
    if column.default_country:
        lines.append(f"default_country = {_value(column.default_country)}")
    elif column.type == "phone":
        lines.append('# default_country = "GB"  # the country of numbers written without +code')
    return lines


def _key(name: str) -> str:
    """A TOML key: bare where TOML allows it, else quoted."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _value(name)


def _value(value: object) -> str:
    """A TOML value: a basic string, a boolean, or a number as JSON writes it (TOML's too)."""
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _comment(text: str) -> str:
    """Text for a comment, kept on its line (control characters escaped)."""
    return "".join(_safe(char) for char in text)


def _string(text: str) -> str:
    """A TOML basic string, on one line whatever `text` holds (titles come from Monday)."""
    return '"' + "".join("\\" + c if c in '"\\' else _safe(c) for c in text) + '"'


def _safe(char: str) -> str:
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return f"\\u{code:04x}"
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"  # a lone surrogate has no UTF-8 form
    return char
