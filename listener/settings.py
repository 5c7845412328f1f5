"""Configuration: environment variables (and `.env`), plus the optional TOML mapping file.

The environment is read once, into one dict (`.env` first, the process environment over it),
and everything is validated up front: a bad value becomes one `ConfigError` line naming the
variable or the file field to fix. Secrets are `SecretStr`s and never printed.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import string
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, unquote, urlsplit

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from listener import mapping

DEFAULT_API_URL = "https://api.monday.com/v2"
DEFAULT_API_VERSION = "2026-10"
_BOARD_ID = re.compile(r"^[0-9]{1,20}$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and is safe to print."""


def cannot_listen(option: str, host: str, port: int, exc: OSError) -> ConfigError:
    """The error for a port that cannot be served (taken, or an address not of this machine)."""
    why = (exc.strerror or str(exc)).rsplit(": ", 1)[-1]
    return ConfigError(f"{option}: cannot listen on {host}:{port}: {why}")


def parse_board_id(value: str | None) -> str | None:
    """A board id as given (numeric), or None when empty; ValueError when it is not one."""
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if not _BOARD_ID.match(value):
        raise ValueError("must be a numeric Monday board id")
    return value


class Env(BaseModel):
    """The environment variables npd-sync reads, validated."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    database_url: str | None = None
    monday_api_key: SecretStr | None = None
    monday_api_version: str = DEFAULT_API_VERSION
    monday_api_url: str = DEFAULT_API_URL
    monday_contacts_board_id: str | None = None
    monday_organizations_board_id: str | None = None
    npd_sync_config: Path | None = None
    npd_sync_public_url: str | None = None
    monday_signing_secret: SecretStr | None = None
    npd_sync_webhook_port: Annotated[int, Field(ge=1, le=65535)] | None = None

    @field_validator("npd_sync_public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise ValueError("must be an http(s) URL such as https://sync.example.com") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://sync.example.com")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must be a plain base URL: no user, query or fragment")
        return value

    @field_validator("monday_signing_secret")
    @classmethod
    def _signing(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())

    @field_validator("npd_sync_webhook_port", mode="before")
    @classmethod
    def _port(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _dsn(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # empty is unset, as for every other variable
        if not re.match(r"^postgres(ql)?://", value):
            raise ValueError("must be a postgresql:// URL")
        _hosts_and_ports(value)
        return value

    @field_validator("monday_api_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        key = value.get_secret_value().strip()
        if any(ord(c) < 32 or ord(c) == 127 for c in key):
            # It goes into an HTTP header, where a line break would end it.
            raise ValueError("contains a line break or another control character")
        return SecretStr(key)

    @field_validator("monday_api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not re.match(r"^\d{4}-(0[1-9]|1[0-2])$", value):
            raise ValueError("must look like 2026-10")
        return value

    @field_validator("monday_api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL")
        parts = _hosts_and_ports(value)
        if "@" in parts.netloc:
            raise ValueError("must not hold credentials: the API token goes in MONDAY_API_KEY")
        return value

    @field_validator("monday_contacts_board_id", "monday_organizations_board_id")
    @classmethod
    def _board(cls, value: str | None) -> str | None:
        return parse_board_id(value)


def _hosts_and_ports(url: str) -> SplitResult:
    """The URL split, once each host and port in it is known to be readable (several hosts,
    comma-separated, as libpq allows); raises ValueError naming what is wrong, never the URL."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    for host in parts.netloc.rpartition("@")[2].split(","):
        port = host.rpartition("]")[2] if host.startswith("[") else host
        port = port.partition(":")[2] if ":" in port else ""
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError("has a port that is not a number from 1 to 65535")
    return parts


def shown_url(url: str) -> str:
    """The URL as logged: scheme, host, port and path, never credentials or a query."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def plain_http_elsewhere(url: str) -> bool:
    """Whether the URL sends what it carries unencrypted to another machine."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


# --- the mapping file ---------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Identifier = Annotated[str, Field(pattern=_IDENT.pattern)]


class ColumnFile(_Strict):
    type: Literal[mapping.COLUMN_TYPES]  # type: ignore[valid-type]
    source: Identifier | None = None
    sources: list[Identifier] | None = None
    separator: str = " "
    default_country: Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")] | None = None
    references: Identifier | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ColumnFile:
        if (self.source is None) == (self.sources is None):
            raise ValueError("give exactly one of 'source' or 'sources'")
        if self.sources is not None and not self.sources:
            raise ValueError("'sources' must not be empty")
        if self.type == mapping.RELATION:
            if self.source is None:
                raise ValueError("a board_relation column takes one 'source': the foreign key")
            if self.references is None:
                raise ValueError("a board_relation column needs 'references': the synced table")
        elif self.references is not None:
            raise ValueError("'references' is only for a board_relation column")
        return self


class TableFile(_Strict):
    board_id: str | None = None
    key: Identifier = "id"
    name: str
    npd_id_column: str | None = "npd_id"
    on_delete: Literal["archive", "delete", "ignore"] = "archive"
    create_labels: bool = False
    conflict: Literal["manual", "npd_wins", "monday_wins", "newest_wins"] = "manual"
    on_monday_create: Literal["insert", "ignore"] = "insert"
    on_monday_delete: Literal["unlink", "delete", "ignore"] = "unlink"
    columns: dict[str, ColumnFile] = {}

    @field_validator("board_id", mode="before")
    @classmethod
    def _board(cls, value: Any) -> str | None:
        return parse_board_id(None if value is None else str(value))

    @field_validator("name")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            parsed = list(string.Formatter().parse(value))
        except ValueError as exc:
            raise ValueError(f"not a valid template: {exc}") from None
        fields = [f for _, f, _, _ in parsed if f is not None]
        bad = [f for f in fields if not _IDENT.match(f) or "." in f]
        if bad:
            raise ValueError(f"template fields must be column names, not {bad}")
        # Plain {column} only: a format spec can ask for a gigabyte ({first:>999999999}).
        if any(spec or conversion for _, f, spec, conversion in parsed if f is not None):
            raise ValueError("template fields are plain {column}: no format spec or conversion")
        return value


class Tuning(_Strict):
    """Knobs with defaults that suit a Pro account; all overridable in `[tuning]`."""

    batch_size: Annotated[int, Field(ge=1, le=500)] = 100
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 10
    backoff_base: Annotated[float, Field(gt=0, le=60)] = 1.0
    backoff_cap: Annotated[float, Field(gt=0, le=86400)] = 300.0
    lease_seconds: Annotated[float, Field(ge=2, le=3600)] = 60.0
    poll_interval: Annotated[float, Field(gt=0, le=600)] = 5.0
    request_timeout: Annotated[float, Field(gt=0, le=600)] = 65.0
    write_back_retry_seconds: Annotated[float, Field(gt=0, le=600)] = 1.0
    # Monday's limits for the account's plan, the two figures overriding the plan's: a first
    # guess only, until Monday's replies report the account's own (the listeners believe those).
    plan: Literal["standard", "pro", "enterprise", "free"] = "pro"
    complexity_per_minute: Annotated[int, Field(ge=1000, le=1_000_000_000)] | None = None
    requests_per_minute: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    # Monday's daily call limit when Monday does not say it (platform_api): else the plan's,
    # when `plan` is set; with neither, calls are not paced over the day.
    daily_calls: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    # Longer waits for the budget or a board give the batch back to the queue instead.
    max_rate_wait: Annotated[float, Field(gt=0, le=600)] = 10.0
    # Inbound: how often the listener compares the boards with what was agreed (the safety
    # net for webhooks that never arrived); 0 turns the timer off (`npd-sync pull` still works).
    reconcile_interval: Annotated[float, Field(ge=0, le=86400)] = 600.0
    # At most this share of Monday's daily call limit goes to reconciliation: with a limit
    # known, the interval widens until a day of passes fits (never shorter than the above).
    reconcile_share: Annotated[float, Field(gt=0, le=1)] = 0.05
    # How long each row's attempts are kept for its history (the console's row page).
    history_days: Annotated[float, Field(gt=0, le=366)] = 7.0


class ConfigFile(_Strict):
    tables: dict[Identifier, TableFile] | None = None
    tuning: Tuning = Tuning()

    @model_validator(mode="after")
    def _references(self) -> ConfigFile:
        tables = self.tables or {}
        for name, table in tables.items():
            for column_id, column in table.columns.items():
                if column.references is not None and column.references not in tables:
                    where = f"tables.{name}.columns.{column_id}.references"
                    synced = ", ".join(tables)
                    raise ValueError(
                        f"{where}: {column.references!r} is not a synced table (synced: {synced})"
                    )
        return self


# --- the whole configuration --------------------------------------------------------------


class Settings(BaseModel):
    """Everything a command needs, validated."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    database_url: str | None
    api_key: SecretStr | None
    api_version: str
    api_url: str
    tables: tuple[mapping.TableMapping, ...]
    tuning: Tuning
    public_url: str | None = None  # NPD_SYNC_PUBLIC_URL: inbound is on when set
    signing_secret: SecretStr | None = None
    webhook_port: int | None = None

    @property
    def inbound(self) -> bool:
        """Whether Monday's edits flow back (NPD_SYNC_PUBLIC_URL is set)."""
        return self.public_url is not None

    def require_database(self) -> str:
        """The DSN, or a ConfigError naming DATABASE_URL."""
        if not self.database_url:
            raise ConfigError("DATABASE_URL is not set: give the PostgreSQL URL to sync from")
        return self.database_url

    def secrets(self) -> list[str]:
        """Every secret the configuration holds, for `redact`: the API key, the signing
        secret, the database password (as written in the URL and decoded)."""
        found = []
        for secret in (self.api_key, self.signing_secret):
            if secret is not None:
                found.append(secret.get_secret_value())
        if self.database_url:
            try:
                password = urlsplit(self.database_url).password
            except ValueError:
                password = None
            if password:
                found += [password, unquote(password)]
        return [s for s in found if s]

    def table(self, name: str) -> mapping.TableMapping:
        """The mapping of one table, by its configured name."""
        for table in self.tables:
            if table.table == name:
                return table
        known = ", ".join(t.table for t in self.tables)
        raise ConfigError(f"unknown table {name!r} (configured: {known})")


def load(environ: dict[str, str] | None = None, env_file: Path | None = Path(".env")) -> Settings:
    """Read and validate the configuration, raising ConfigError with one readable line.

    `environ` replaces the process environment and `.env` (tests pass their own).
    """
    source = read_environment(env_file) if environ is None else dict(environ)
    try:
        env = Env.model_validate(_lower(source))
    except ValidationError as exc:
        raise ConfigError(_env_error(exc)) from None
    file = _read_file(env.npd_sync_config) if env.npd_sync_config else ConfigFile()
    return Settings(
        database_url=env.database_url,
        api_key=env.monday_api_key,
        api_version=env.monday_api_version,
        api_url=env.monday_api_url.rstrip("/"),
        tables=_tables(file, source),
        tuning=file.tuning,
        public_url=env.npd_sync_public_url,
        signing_secret=env.monday_signing_secret,
        webhook_port=env.npd_sync_webhook_port,
    )


def read_environment(env_file: Path | None) -> dict[str, str]:
    """`.env` (when there is one), with the process environment over it."""
    found: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        found.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    found.update(os.environ)
    return found


def _lower(environ: dict[str, str]) -> dict[str, str]:
    names = set(Env.model_fields)
    return {k.lower(): v for k, v in environ.items() if k.lower() in names}


def _message(error: Any) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def _env_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    name = str(error["loc"][0]).upper() if error["loc"] else "environment"
    return f"{name}: {_message(error)}"


def _read_file(path: Path) -> ConfigFile:
    where = f"NPD_SYNC_CONFIG={path}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    try:
        return ConfigFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(str(part) for part in error["loc"])
        raise ConfigError(f"{path}: {loc + ': ' if loc else ''}{_message(error)}") from None


def _tables(file: ConfigFile, source: dict[str, str]) -> tuple[mapping.TableMapping, ...]:
    """The configured tables, each with its board id from MONDAY_<TABLE>_BOARD_ID when set."""
    env = {k.upper(): v for k, v in source.items()}
    if file.tables is None:
        tables = mapping.default_mappings()
    else:
        tables = tuple(_table(name, spec) for name, spec in file.tables.items())
    result = []
    for table in tables:
        raw = env.get(table.board_env)
        board = table.board_id
        if raw is not None and raw.strip():
            try:
                board = parse_board_id(raw)
            except ValueError as exc:
                raise ConfigError(f"{table.board_env}: {exc}") from None
        result.append(dataclasses.replace(table, board_id=board))
    boards = {t.table: t for t in result}
    for table in result:
        for column in table.relations:
            referenced = boards[column.references or ""]
            if table.board_id and not referenced.board_id:
                raise ConfigError(
                    f"tables.{table.table}.columns.{column.id}.references: {referenced.table} is "
                    f"not synced ({referenced.board_env} is not set): its rows have no items"
                )
    return tuple(result)


def _table(name: str, spec: TableFile) -> mapping.TableMapping:
    columns = tuple(
        mapping.Column(
            id=column_id,
            type=column.type,
            sources=tuple(column.sources or [column.source or ""]),
            separator=column.separator,
            default_country=column.default_country,
            references=column.references,
        )
        for column_id, column in spec.columns.items()
    )
    return mapping.TableMapping(
        table=name,
        board_id=spec.board_id,
        key_column=spec.key,
        name_template=spec.name,
        columns=columns,
        npd_id_column=spec.npd_id_column,
        on_delete=spec.on_delete,
        create_labels=spec.create_labels,
        conflict=spec.conflict,
        on_monday_create=spec.on_monday_create,
        on_monday_delete=spec.on_monday_delete,
    )
