"""listener.sql: named queries, migrations, templates and identifier quoting."""

from __future__ import annotations

import dataclasses
import re
import string
from pathlib import Path
from typing import Any

import pytest

from listener import catalog, db, mapping, rows, sql
from listener.capture import install

ROOT = Path(__file__).resolve().parents[1]

# --- parse_queries ------------------------------------------------------------------------


def test_parse_queries_splits_on_name_headers() -> None:
    text = (
        "-- A file header, not part of any query.\n\n"
        "-- name: first\n"
        "-- What the first one does.\n"
        "SELECT 1;\n\n"
        "-- name: second_one  \n"
        "-- Its description.\n"
        "UPDATE t\n   SET x = $1;\n"
    )
    assert sql.parse_queries(text) == {
        "first": "-- What the first one does.\nSELECT 1;",
        "second_one": "-- Its description.\nUPDATE t\n   SET x = $1;",
    }


def test_parse_queries_of_nothing() -> None:
    assert sql.parse_queries("") == {}
    assert sql.parse_queries("-- only a comment\n") == {}


def test_a_name_defined_twice_is_rejected() -> None:
    text = "-- name: claim\nSELECT 1;\n-- name: other\nSELECT 2;\n-- name: claim\nSELECT 3;\n"
    with pytest.raises(ValueError, match="query 'claim' is defined twice"):
        sql.parse_queries(text)


def test_a_header_must_be_at_the_start_of_a_line() -> None:
    text = "-- name: a\nSELECT 1; -- name: b\n"
    assert sql.parse_queries(text) == {"a": "SELECT 1; -- name: b"}


# --- the shipped files ------------------------------------------------------------------------


def _asked() -> set[str]:
    """The names the code asks for: `sql.query("name")` anywhere in the package."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "listener").rglob("*.py"))
    return set(re.findall(r"sql\.query\(\s*\"(\w+)\"", text))


def test_the_sql_files_hold_exactly_the_statements_the_code_uses() -> None:
    # A new call site cannot name a statement that is not there, nor can one be left unused.
    assert _asked() == set(sql.queries())


@pytest.mark.parametrize("name", sorted(sql.queries()))
def test_every_statement_is_described(name: str) -> None:
    text = sql.query(name)
    lines = text.splitlines()
    assert lines[0].startswith("-- "), f"{name} has no description line"
    assert any(line.strip() and not line.lstrip().startswith("--") for line in lines)
    assert "-- name:" not in text


def test_unknown_names_raise_key_error() -> None:
    with pytest.raises(KeyError):
        sql.query("no_such_query")


def test_a_name_in_two_files_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries" / "a.sql").write_text("-- name: claim\n-- One.\nSELECT 1;\n")
    (tmp_path / "queries" / "b.sql").write_text("-- name: claim\n-- Two.\nSELECT 2;\n")
    monkeypatch.setattr(sql, "SQL_DIR", tmp_path)
    sql.queries.cache_clear()
    try:
        with pytest.raises(ValueError, match="query 'claim' is defined twice"):
            sql.queries()
    finally:
        sql.queries.cache_clear()


# --- migrations ------------------------------------------------------------------------------


def test_migrations_are_numbered_from_one() -> None:
    found = sql.migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert [(m.version, m.name) for m in found[:3]] == [(1, "queue"), (2, "status"), (3, "links")]
    assert "CREATE TABLE npd_sync.changes" in found[0].sql
    assert found[0].sql == found[0].sql.strip()


def _migrations(tmp_path: Path, *names: str) -> Path:
    (tmp_path / "migrations").mkdir()
    for name in names:
        (tmp_path / "migrations" / name).write_text(f"-- {name}\nSELECT 1;\n")
    return tmp_path


def test_migrations_are_read_in_order_and_other_files_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _migrations(tmp_path, "002_more.sql", "attach.sql", "001_base.sql", "README", "x_01.sql")
    monkeypatch.setattr(sql, "SQL_DIR", root)
    assert [(m.version, m.name, m.sql) for m in sql.migrations()] == [
        (1, "base", "-- 001_base.sql\nSELECT 1;"),
        (2, "more", "-- 002_more.sql\nSELECT 1;"),
    ]


@pytest.mark.parametrize(
    "names",
    [("001_a.sql", "003_c.sql"), ("002_b.sql",), ("001_a.sql", "001_b.sql")],
)
def test_gaps_and_repeats_in_numbering_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, names: tuple[str, ...]
) -> None:
    monkeypatch.setattr(sql, "SQL_DIR", _migrations(tmp_path, *names))
    with pytest.raises(RuntimeError, match="without gaps"):
        sql.migrations()


# --- quoting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("contacts", '"contacts"'),
        ("Contacts", '"Contacts"'),
        ('12+"34', '"12+""34"'),
        ('a"b', '"a""b"'),
        ('"', '""""'),
        ("x'y", '"x\'y"'),
        ("public.contacts", '"public.contacts"'),  # one identifier: the dot is data
        ("drop table x; --", '"drop table x; --"'),
        ("naïve", '"naïve"'),
    ],
)
def test_quote_ident(name: str, quoted: str) -> None:
    assert sql.quote_ident(name) == quoted


@pytest.mark.parametrize("name", ["", "a\x00b"])
def test_quote_ident_rejects_empty_and_nul(name: str) -> None:
    with pytest.raises(ValueError, match="invalid identifier"):
        sql.quote_ident(name)


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("contacts", '"contacts"'),
        ("public.contacts", '"public"."contacts"'),
        ('crm.12+"34', '"crm"."12+""34"'),
        ("a.b.c", '"a"."b.c"'),  # only the first dot separates the schema
    ],
)
def test_quote_qualified(name: str, quoted: str) -> None:
    assert sql.quote_qualified(name) == quoted


@pytest.mark.parametrize("name", ["", ".contacts", "public.", "pub\x00lic.t"])
def test_quote_qualified_rejects_empty_parts_and_nul(name: str) -> None:
    with pytest.raises(ValueError, match="invalid identifier"):
        sql.quote_qualified(name)


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("", "''"),
        ("id", "'id'"),
        ("x'y", "'x''y'"),
        ("''", "''''''"),
        ('12+"34', "'12+\"34'"),
        ("back\\slash", "'back\\slash'"),  # standard_conforming_strings: kept as is
    ],
)
def test_quote_literal(value: str, quoted: str) -> None:
    assert sql.quote_literal(value) == quoted


def test_quote_literal_rejects_nul() -> None:
    with pytest.raises(ValueError, match="NUL"):
        sql.quote_literal("a\x00b")


# --- templates and the code that fills them cannot drift --------------------------------------


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


class _Recording(str):
    """A template that remembers what the code filled it with."""

    filled: dict[str, Any] | None = None

    def format(self, *args: Any, **kwargs: Any) -> str:
        assert not args, "templates are filled by name only"
        self.filled = kwargs
        return super().format(**kwargs)


def _info() -> catalog.TableInfo:
    def column(name: str, type_: str) -> catalog.ColumnInfo:
        return catalog.ColumnInfo(name, type_, type_, None)

    columns = {
        "id": column("id", "integer"),
        "sync_enabled": column("sync_enabled", "boolean"),
        "sync_direction": column("sync_direction", "text"),
        "monday_id": column("monday_id", "bigint"),
        "sync_status": column("sync_status", "sync_status_t"),
        "sync_error": column("sync_error", "text"),
        "last_synced_at": column("last_synced_at", "timestamp with time zone"),
        **{c: column(c, "text") for c in mapping.default_mappings()[0].source_columns},
        "organization_id": column("organization_id", "integer"),
    }
    return catalog.TableInfo("contacts", '"crm"."Contacts"', columns)


def test_every_placeholder_of_capture_sql_is_filled_by_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    template = sql.capture_template()
    assert _placeholders(template) == {
        "table",
        "key",
        "key_literal",
        "data_columns",
        "id",
        "wake_lock",
        "channel",
        "mark",
        "fn",
    }
    recording = _Recording(template)
    monkeypatch.setattr(sql, "capture_template", lambda: recording)
    ddl = install.capture_ddl(3, _info(), mapping.default_mappings()[0], "secret")
    assert recording.filled is not None
    assert set(recording.filled) == _placeholders(template)
    assert "npd_sync.changed_3()" in ddl
    assert 'AFTER INSERT ON "crm"."Contacts"' in ddl
    assert "{" not in ddl


TABLE_STATEMENTS = {
    "load_rows": "load_sql",
    "write_back": "write_sql",
    "backlog": "backlog_sql",
    "backlog_keys": "backlog_keys_sql",
    "pull_write": "pull_write_sql",
    "pull_delete": "pull_delete_sql",
    "pull_insert": "pull_insert_sql",
    "relation_refs": "load_sql",  # a part of load_rows, one per connect-boards column
}

# The contacts mapping with organization_id as a connect-boards column.
RELATING = dataclasses.replace(
    mapping.default_mappings()[0],
    columns=(
        *mapping.default_mappings()[0].columns,
        mapping.Column("company", "board_relation", ("organization_id",), references="orgs"),
    ),
)
ORGS = rows.Referenced(4, '"crm"."Orgs"', '"id"', "integer")


@pytest.mark.parametrize("name", sorted(TABLE_STATEMENTS))
def test_every_placeholder_of_tables_sql_is_filled_by_rows(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    template = sql.query(name)
    recording = _Recording(template)
    real = sql.query
    monkeypatch.setattr(sql, "query", lambda n: recording if n == name else real(n))
    table = rows.compile_table(3, RELATING, _info(), {"orgs": ORGS})
    compiled = getattr(table, TABLE_STATEMENTS[name])
    # Every placeholder is filled; nothing is filled that the template does not have.
    assert recording.filled is not None
    assert _placeholders(template) == set(recording.filled)
    assert "{" not in compiled
    assert '"crm"."Contacts"' in compiled


def test_the_sql_files_name_every_per_table_statement() -> None:
    text = (ROOT / "sql" / "queries" / "tables.sql").read_text()
    assert set(sql.parse_queries(text)) == set(TABLE_STATEMENTS)


def test_a_connect_boards_column_reads_its_referenced_rows_items() -> None:
    table = rows.compile_table(3, RELATING, _info(), {"orgs": ORGS})
    assert 'unnest(ARRAY[t."organization_id"::text])' in table.load_sql
    assert 'LEFT JOIN "crm"."Orgs" r ON r."id" = k.key::integer' in table.load_sql
    assert "l.table_id = 4" in table.load_sql
    assert table.references == {"company": 4}


def test_compiled_statements_quote_every_name() -> None:
    table = rows.compile_table(3, mapping.default_mappings()[0], _info())
    assert 't."first_name"::text AS c0' in table.load_sql
    assert 't."notes"::text AS c5' in table.load_sql
    assert "$1::text[]::integer[]" in table.load_sql
    assert "monday_id = v.monday_id::bigint" in table.write_sql
    assert "sync_status = v.status::sync_status_t" in table.write_sql
    assert "sync_error = v.error" in table.write_sql
    assert "last_synced_at = CASE" in table.write_sql


def test_a_hostile_key_column_stays_one_identifier() -> None:
    info = _info()
    columns = {**info.columns, 'k"; DROP': catalog.ColumnInfo('k"; DROP', "text", "text", None)}
    table = mapping.TableMapping("contacts", key_column='k"; DROP')
    ddl = install.capture_ddl(
        1, catalog.TableInfo("contacts", info.relation, columns), table, "secret"
    )
    assert 'NEW."k""; DROP"::pg_catalog.text' in ddl
    assert "'k\"; DROP'" in ddl  # the literal given to format('%I')


def test_a_key_column_holding_the_dollar_quote_tag_cannot_end_the_function_body() -> None:
    info = _info()
    name = "id$fn$x"
    columns = {**info.columns, name: catalog.ColumnInfo(name, "integer", "integer", None)}
    table = mapping.TableMapping("contacts", key_column=name)
    ddl = install.capture_ddl(
        1, catalog.TableInfo("contacts", info.relation, columns), table, "secret"
    )
    assert "$fn$" not in ddl.replace(name, "")  # the tag used is another one
    assert sql.dollar_tag("a$fn$b", "$fn1$") == "$fn2$"
    assert sql.dollar_tag("id") == "$fn$"


def test_the_mark_in_the_triggers_is_the_digest_never_the_secret() -> None:
    ddl = install.capture_ddl(1, _info(), mapping.default_mappings()[0], "s3cr3t-value")
    assert "s3cr3t-value" not in ddl
    assert f"'\\x{db.origin_digest('s3cr3t-value').hex()}'::bytea" in ddl


def test_one_file_writes_the_queue_and_one_module_runs_it() -> None:
    # The life of a queue entry is written once (queue.sql, a statement per transition) and
    # run from one place (listener/engine/queue.py): no other file writes npd_sync.queue.
    writes = re.compile(r"(INSERT INTO|UPDATE|DELETE FROM)\s+npd_sync\.queue\b", re.I)
    writers = sorted(
        str(path.relative_to(ROOT))
        for path in [*(ROOT / "sql").rglob("*.sql"), *(ROOT / "listener").rglob("*.py")]
        if writes.search(path.read_text())
    )
    assert writers == ["sql/queries/queue.sql"]
    statements = sql.parse_queries((ROOT / "sql" / "queries" / "queue.sql").read_text())
    transitions = [name for name, text in statements.items() if writes.search(text)]
    assert sorted(transitions) == [
        "arrive", "claim", "complete", "discard", "release", "renew", "retry"
    ]  # fmt: skip
    for path in (ROOT / "listener").rglob("*.py"):
        if path.name == "queue.py" and path.parent.name == "engine":
            continue
        text = path.read_text()
        assert not any(f'sql.query("{name}")' in text for name in transitions), path
