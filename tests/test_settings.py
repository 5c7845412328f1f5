"""listener.settings: environment variables, `.env`, and the TOML mapping file."""

from __future__ import annotations

from pathlib import Path

import pytest

from listener import mapping, settings
from listener.mapping import Column, TableMapping
from listener.settings import ConfigError

KEY = "sk-live-THIS-MUST-NEVER-LEAK-0123456789"

FULL_FILE = """\
[tables.contacts]
board_id = 111
key = "contact_id"
name = "{first_name} {last_name}"
on_delete = "delete"

[tables.contacts.columns.email]
type = "email"
source = "email"

[tables.contacts.columns.phone]
type = "phone"
source = "phone"
default_country = "us"

[tables."public.widgets"]
board_id = "333"
name = "{label}"
npd_id_column = "ext_id"
on_delete = "ignore"

[tables."public.widgets".columns.addr]
type = "text"
sources = ["line1", "city"]
separator = " / "

[tables."public.widgets".columns.price]
type = "numbers"
source = "price"

[tuning]
batch_size = 50
max_attempts = 3
backoff_base = 0.5
backoff_cap = 30
lease_seconds = 60
poll_interval = 1
request_timeout = 10
write_back_retry_seconds = 2
"""

FULL_FILE_TABLES = (
    TableMapping(
        table="contacts",
        board_id="111",
        key_column="contact_id",
        name_template="{first_name} {last_name}",
        columns=(
            Column("email", "email", ("email",)),
            Column("phone", "phone", ("phone",), default_country="us"),
        ),
        npd_id_column="npd_id",
        on_delete="delete",
    ),
    TableMapping(
        table="public.widgets",
        board_id="333",
        key_column="id",
        name_template="{label}",
        columns=(
            Column("addr", "text", ("line1", "city"), separator=" / "),
            Column("price", "numbers", ("price",)),
        ),
        npd_id_column="ext_id",
        on_delete="ignore",
    ),
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def config_error(environ: dict[str, str]) -> str:
    """The ConfigError message for `environ` (with the API key set), checked for leaks."""
    with pytest.raises(ConfigError) as caught:
        settings.load(environ={"MONDAY_API_KEY": KEY, **environ})
    message = str(caught.value)
    assert KEY not in message
    assert KEY not in repr(caught.value)
    assert "\n" not in message, "a configuration error is one line"
    return message


# --- environment variables ------------------------------------------------------------------


def test_defaults() -> None:
    config = settings.load(environ={})
    assert config.database_url is None
    assert config.api_key is None
    assert config.api_version == "2026-10"
    assert config.api_url == "https://api.monday.com/v2"
    assert config.tables == mapping.default_mappings()
    assert all(t.board_id is None for t in config.tables)
    assert config.tuning == settings.Tuning()


def test_every_variable_of_contract_md(tmp_path: Path) -> None:
    config_file = write(tmp_path / "npd.toml", "[tuning]\nbatch_size = 7\n")
    config = settings.load(
        environ={
            "DATABASE_URL": "postgresql://npd:pw@db.example:5432/npd",
            "MONDAY_API_KEY": KEY,
            "MONDAY_API_VERSION": "2026-07",
            "MONDAY_API_URL": "http://127.0.0.1:8080/v2/",
            "MONDAY_CONTACTS_BOARD_ID": "1000000001",
            "MONDAY_ORGANIZATIONS_BOARD_ID": " 1000000002 ",
            "NPD_SYNC_CONFIG": str(config_file),
            "UNRELATED": "ignored",
        }
    )
    assert config.database_url == "postgresql://npd:pw@db.example:5432/npd"
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == KEY
    assert config.api_version == "2026-07"
    assert config.api_url == "http://127.0.0.1:8080/v2"  # the trailing slash goes
    assert [(t.table, t.board_id) for t in config.tables] == [
        ("contacts", "1000000001"),
        ("organizations", "1000000002"),
    ]
    assert config.tuning.batch_size == 7


def test_postgres_scheme_and_padded_key_are_accepted() -> None:
    config = settings.load(environ={"DATABASE_URL": "postgres://h/db", "MONDAY_API_KEY": " k "})
    assert config.database_url == "postgres://h/db"
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == "k"


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_key_and_board_ids_mean_unset(blank: str) -> None:
    config = settings.load(
        environ={
            "MONDAY_API_KEY": blank,
            "MONDAY_CONTACTS_BOARD_ID": blank,
            "MONDAY_ORGANIZATIONS_BOARD_ID": blank,
        }
    )
    assert config.api_key is None
    assert [t.board_id for t in config.tables] == [None, None]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://h/db"),
        ("DATABASE_URL", "localhost:5432"),
        ("MONDAY_API_VERSION", "2026"),
        ("MONDAY_API_VERSION", "latest"),
        ("MONDAY_API_VERSION", "26-10"),
        ("MONDAY_API_URL", "ftp://api.monday.com/v2"),
        ("MONDAY_API_URL", "api.monday.com/v2"),
        ("MONDAY_API_URL", "https://"),
        ("MONDAY_CONTACTS_BOARD_ID", "abc"),
        ("MONDAY_CONTACTS_BOARD_ID", "-3"),
        ("MONDAY_CONTACTS_BOARD_ID", "123456789012345678901"),
        ("MONDAY_ORGANIZATIONS_BOARD_ID", "1.5"),
    ],
)
def test_a_malformed_variable_is_named_and_the_key_never_shown(name: str, value: str) -> None:
    message = config_error({name: value})
    assert message.startswith(f"{name}: ")


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        # Each was a traceback (asyncpg or aiohttp parsing it) instead of one line.
        ("DATABASE_URL", "postgresql://u:pw@127.0.0.1:notaport/db", "port"),
        ("DATABASE_URL", "postgresql://u:pw@127.0.0.1:99999/db", "port"),
        ("DATABASE_URL", "postgresql://u:pw@[::1/db", "not a valid URL"),
        ("DATABASE_URL", "postgresql://u:pw@h1:5432,h2:x/db", "port"),
        ("MONDAY_API_URL", "http://u:pw@monday.example/v2", "must not hold credentials"),
        ("MONDAY_API_URL", "https://[::1/v2", "not a valid URL"),
        ("MONDAY_API_KEY", "abc\r\nX-Injected: 1", "line break"),
        ("MONDAY_API_KEY", "abc\ndef", "line break"),
    ],
)
def test_urls_and_keys_that_cannot_be_used_are_one_line(name: str, value: str, why: str) -> None:
    message = config_error({name: value})
    assert message.startswith(f"{name}: ")
    assert why in message
    assert "pw" not in message
    assert "abc" not in message


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u:p%40ss@127.0.0.1:5432/db",
        "postgresql://u@[::1]:5432/db",
        "postgresql://u@[::1]/db",
        "postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write",
        "postgresql:///db?host=/var/run/postgresql",
    ],
)
def test_database_urls_libpq_accepts_load(dsn: str) -> None:
    assert settings.load(environ={"DATABASE_URL": dsn}).database_url == dsn


def test_the_api_url_as_logged_and_plain_http() -> None:
    assert settings.shown_url("https://api.monday.com/v2?x=1") == "https://api.monday.com/v2"
    assert settings.shown_url("http://u:pw@h:8080/v2") == "http://h:8080/v2"
    assert not settings.plain_http_elsewhere("https://api.monday.com/v2")
    assert not settings.plain_http_elsewhere("http://127.0.0.1:8080/v2")
    assert not settings.plain_http_elsewhere("http://[::1]:8080/v2")
    assert not settings.plain_http_elsewhere("http://localhost:8080/v2")
    assert settings.plain_http_elsewhere("http://monday.internal/v2")
    assert settings.plain_http_elsewhere("http://10.0.0.5/v2")


def test_a_missing_config_file_names_npd_sync_config(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert config_error({"NPD_SYNC_CONFIG": str(missing)}) == (
        f"NPD_SYNC_CONFIG={missing}: file not found"
    )


def test_the_key_is_hidden_in_str_and_repr_of_settings() -> None:
    config = settings.load(environ={"MONDAY_API_KEY": KEY, "DATABASE_URL": "postgresql://h/db"})
    for text in (str(config), repr(config), config.model_dump_json()):
        assert KEY not in text
        assert "**********" in text


def test_require_database() -> None:
    assert settings.load(environ={"DATABASE_URL": "postgresql://h/db"}).require_database() == (
        "postgresql://h/db"
    )
    with pytest.raises(ConfigError, match=r"^DATABASE_URL is not set"):
        settings.load(environ={}).require_database()


def test_table_by_name() -> None:
    config = settings.load(environ={})
    assert config.table("organizations").table == "organizations"
    with pytest.raises(ConfigError) as caught:
        config.table("widgets")
    assert str(caught.value) == "unknown table 'widgets' (configured: contacts, organizations)"


def test_an_explicit_environ_is_all_that_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONDAY_API_KEY", KEY)
    monkeypatch.setenv("MONDAY_CONTACTS_BOARD_ID", "42")
    config = settings.load(environ={})
    assert config.api_key is None
    assert config.tables[0].board_id is None


# --- .env -----------------------------------------------------------------------------------


def test_dotenv_in_the_working_directory_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "npd.toml", FULL_FILE)
    write(
        tmp_path / ".env",
        "DATABASE_URL=postgresql://from-dotenv/db\n"
        f"MONDAY_API_KEY={KEY}\n"
        "MONDAY_API_VERSION=2026-07\n"
        "MONDAY_CONTACTS_BOARD_ID=555\n"
        "MONDAY_WIDGETS_BOARD_ID=777\n"
        "NPD_SYNC_CONFIG=npd.toml\n",
    )
    config = settings.load()
    assert config.database_url == "postgresql://from-dotenv/db"
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == KEY
    assert config.api_version == "2026-07"
    assert [(t.table, t.board_id) for t in config.tables] == [
        ("contacts", "555"),
        ("public.widgets", "777"),
    ]


def test_the_environment_wins_over_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "npd.toml", FULL_FILE)
    write(
        tmp_path / ".env",
        "MONDAY_API_VERSION=2026-07\nMONDAY_WIDGETS_BOARD_ID=777\nNPD_SYNC_CONFIG=npd.toml\n",
    )
    monkeypatch.setenv("MONDAY_API_VERSION", "2026-04")
    monkeypatch.setenv("MONDAY_WIDGETS_BOARD_ID", "888")
    config = settings.load()
    assert config.api_version == "2026-04"
    assert config.tables[1].board_id == "888"


def test_no_dotenv_when_env_file_is_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / ".env", f"MONDAY_API_KEY={KEY}\nMONDAY_CONTACTS_BOARD_ID=555\n")
    config = settings.load(env_file=None)
    assert config.api_key is None
    assert config.tables[0].board_id is None


def test_dotenv_is_not_read_when_environ_is_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / ".env", f"MONDAY_API_KEY={KEY}\nMONDAY_CONTACTS_BOARD_ID=555\n")
    config = settings.load(environ={})
    assert config.api_key is None
    assert config.tables[0].board_id is None


def test_a_malformed_dotenv_value_is_named_without_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / ".env", f"MONDAY_API_KEY={KEY}\nMONDAY_API_URL=not a url\n")
    with pytest.raises(ConfigError) as caught:
        settings.load()
    assert str(caught.value).startswith("MONDAY_API_URL: ")
    assert KEY not in str(caught.value)


# --- the TOML mapping file --------------------------------------------------------------------


def test_a_full_mapping_file(tmp_path: Path) -> None:
    path = write(tmp_path / "npd.toml", FULL_FILE)
    config = settings.load(environ={"NPD_SYNC_CONFIG": str(path)})
    assert config.tables == FULL_FILE_TABLES
    assert config.tuning == settings.Tuning(
        batch_size=50,
        max_attempts=3,
        backoff_base=0.5,
        backoff_cap=30,
        lease_seconds=60,
        poll_interval=1,
        request_timeout=10,
        write_back_retry_seconds=2,
    )


def test_a_file_with_only_tuning_keeps_the_default_tables(tmp_path: Path) -> None:
    path = write(tmp_path / "npd.toml", "[tuning]\nmax_attempts = 4\n")
    config = settings.load(environ={"NPD_SYNC_CONFIG": str(path)})
    assert config.tables == mapping.default_mappings()
    assert config.tuning.max_attempts == 4


def test_the_environment_overrides_board_ids_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "npd.toml", FULL_FILE)
    config = settings.load(
        environ={
            "NPD_SYNC_CONFIG": str(path),
            "MONDAY_CONTACTS_BOARD_ID": "9001",
            "MONDAY_WIDGETS_BOARD_ID": "9003",  # a third table, by its bare name
        }
    )
    assert [t.board_id for t in config.tables] == ["9001", "9003"]
    # Nothing but the board id changes.
    assert config.tables[1].columns == FULL_FILE_TABLES[1].columns


def test_a_malformed_board_id_of_a_third_table_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "npd.toml", FULL_FILE)
    message = config_error({"NPD_SYNC_CONFIG": str(path), "MONDAY_WIDGETS_BOARD_ID": "x9"})
    assert message == "MONDAY_WIDGETS_BOARD_ID: must be a numeric Monday board id"


def test_board_ids_of_unconfigured_tables_are_ignored() -> None:
    config = settings.load(environ={"MONDAY_GADGETS_BOARD_ID": "not even a number"})
    assert [t.table for t in config.tables] == ["contacts", "organizations"]


TABLE = '[tables.contacts]\nname = "{first_name}"\n'


@pytest.mark.parametrize(
    ("text", "where", "why"),
    [
        (TABLE + "bogus = 1\n", "tables.contacts.bogus", "Extra inputs are not permitted"),
        ("surprise = 1\n", "surprise", "Extra inputs are not permitted"),
        ("[tuning]\nbatchsize = 3\n", "tuning.batchsize", "Extra inputs are not permitted"),
        (TABLE + "key = 5\n", "tables.contacts.key", "Input should be a valid string"),
        (TABLE + 'key = "a b"\n', "tables.contacts.key", "String should match pattern"),
        (TABLE + 'on_delete = "purge"\n', "tables.contacts.on_delete", "Input should be"),
        (TABLE + 'board_id = "abc"\n', "tables.contacts.board_id", "numeric Monday board id"),
        (TABLE + "board_id = 1.5\n", "tables.contacts.board_id", "numeric Monday board id"),
        ('[tables.contacts]\nkey = "id"\n', "tables.contacts.name", "Field required"),
        ('[tables."bad-name"]\nname = "{x}"\n', "tables.bad-name.[key]", "pattern"),
        (
            TABLE + '[tables.contacts.columns.e]\ntype = "email"\nsource = "a"\nsources = ["b"]\n',
            "tables.contacts.columns.e",
            "give exactly one of 'source' or 'sources'",
        ),
        (
            TABLE + '[tables.contacts.columns.e]\ntype = "email"\n',
            "tables.contacts.columns.e",
            "give exactly one of 'source' or 'sources'",
        ),
        (
            TABLE + '[tables.contacts.columns.e]\ntype = "email"\nsources = []\n',
            "tables.contacts.columns.e",
            "'sources' must not be empty",
        ),
        (
            TABLE + '[tables.contacts.columns.e]\ntype = "location"\nsource = "a"\n',
            "tables.contacts.columns.e.type",
            "Input should be 'text', 'long_text', 'email', 'phone', 'numbers'",
        ),
        (
            TABLE + '[tables.contacts.columns.e]\ntype = "text"\nsource = "a;b"\n',
            "tables.contacts.columns.e.source",
            "String should match pattern",
        ),
        (
            TABLE + '[tables.contacts.columns.p]\ntype = "phone"\nsource = "p"\n'
            'default_country = "USA"\n',
            "tables.contacts.columns.p.default_country",
            "String should match pattern",
        ),
        ("[tuning]\nbatch_size = 0\n", "tuning.batch_size", "greater than or equal to 1"),
        # Accepted once, then every batch failed: "value out of int32 range".
        (
            "[tuning]\nrequests_per_minute = 99999999999\n",
            "tuning.requests_per_minute",
            "less than or equal to 1000000",
        ),
        (
            "[tuning]\ncomplexity_per_minute = 99999999999999999\n",
            "tuning.complexity_per_minute",
            "less than or equal to 1000000000",
        ),
        ("[tuning]\nbackoff_cap = inf\n", "tuning.backoff_cap", "less than or equal to 86400"),
        ("[tuning]\nmax_rate_wait = nan\n", "tuning.max_rate_wait", "Input should be"),
        ("[tuning]\nlease_seconds = 1\n", "tuning.lease_seconds", "greater than or equal to 2"),
        ('[tuning]\npoll_interval = "often"\n', "tuning.poll_interval", "valid number"),
        ("[tuning]\nreconcile_share = 0\n", "tuning.reconcile_share", "greater than 0"),
        ("[tuning]\nreconcile_share = 1.5\n", "tuning.reconcile_share", "less than or equal to 1"),
    ],
)
def test_mapping_file_errors_name_the_file_and_the_field(
    tmp_path: Path, text: str, where: str, why: str
) -> None:
    path = write(tmp_path / "npd.toml", text)
    message = config_error({"NPD_SYNC_CONFIG": str(path)})
    assert message.startswith(f"{path}: {where}: ")
    assert why in message


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("{first_name.upper}", "template fields must be column names"),
        ("{first_name[0]}", "template fields must be column names"),
        ("{0}", "template fields must be column names"),
        ("{first_name", "not a valid template"),
        # These passed validation and then failed every row at run time.
        ("{} {last_name}", "template fields must be column names, not ['']"),
        ("{first_name:d}", "template fields are plain {column}"),
        ("{first_name!z}", "template fields are plain {column}"),
        ("{first_name:>{width}}", "template fields are plain {column}"),
        # A format spec may ask for a gigabyte per row; a conversion shows repr().
        ("{first_name:>999999999}", "template fields are plain {column}"),
        ("{first_name!r}", "template fields are plain {column}"),
    ],
)
def test_a_name_template_that_cannot_be_filled_is_rejected(
    tmp_path: Path, template: str, why: str
) -> None:
    path = write(tmp_path / "npd.toml", f"[tables.contacts]\nname = '{template}'\n")
    message = config_error({"NPD_SYNC_CONFIG": str(path)})
    assert message.startswith(f"{path}: tables.contacts.name: ")
    assert why in message


@pytest.mark.parametrize("template", ["{first_name} {last_name}", "Contact {id}", "{{x}} {a}"])
def test_good_name_templates_load(tmp_path: Path, template: str) -> None:
    path = write(tmp_path / "npd.toml", f"[tables.contacts]\nname = '{template}'\n")
    config = settings.load(environ={"NPD_SYNC_CONFIG": str(path)})
    assert config.tables[0].name_template == template


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "npd.toml", "[tables.contacts\nname = 1\n")
    message = config_error({"NPD_SYNC_CONFIG": str(path)})
    assert message.startswith(f"NPD_SYNC_CONFIG={path}: not valid TOML: ")
    assert "line 1" in message


def test_an_unreadable_file_names_the_file(tmp_path: Path) -> None:
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00 not utf-8")
    assert config_error({"NPD_SYNC_CONFIG": str(binary)}).startswith(
        f"NPD_SYNC_CONFIG={binary}: cannot read: "
    )
    directory = tmp_path / "dir.toml"
    directory.mkdir()
    assert config_error({"NPD_SYNC_CONFIG": str(directory)}).startswith(
        f"NPD_SYNC_CONFIG={directory}: cannot read: "
    )
