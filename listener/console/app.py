"""The console's web application: routes, handlers, templates, static files, serving.

Pages are rendered on the server (Jinja2, autoescaped, every value redacted on output) and made
live by htmx, shipped in `static/`: each page's `#live` part is fetched again every few seconds
and swapped in place, and links and forms are boosted (fetched and swapped without a full
reload); without JavaScript everything still works as plain links and forms. See `security`
for what guards each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import signal
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import asyncpg
import jinja2
from aiohttp import web
from markupsafe import Markup
from multidict import MultiDictProxy

from listener import __version__, db, fault, mapping, text
from listener.capture import install
from listener.console import charts, data, security, shown
from listener.inbound import conflicts
from listener.monday import api
from listener.operations import boards, failed, items, keys, retry, search, story
from listener.operations import conflicts as conflicting
from listener.operations.retry import Target
from listener.redact import redact
from listener.settings import ConfigError, Settings, cannot_listen

log = logging.getLogger("npd_sync.console")

DEFAULT_PORT = 8765
DEFAULT_ITEM_URL = "https://monday.com/boards/{board}/pulses/{item}"
MAX_SELECTION = 500  # rows one retry may name
MAX_PAGE = 100_000
MAX_KEY = 200  # characters of a key or an item id in a query
BOARDS_SECONDS = 300.0  # how long the boards' column titles, once read, are shown
SIDES: dict[object, conflicts.Side] = {"npd": "npd", "monday": "monday"}
STATIC = {
    "htmx.min.js": "text/javascript",
    "console.js": "text/javascript",
    "console.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSION = web.RequestKey("session", security.Session)
Form = MultiDictProxy[str | bytes | bytearray | web.FileField]
FORM = web.RequestKey("form", Form)


@dataclass(frozen=True, slots=True)
class Options:
    """How the console is served; `checked` refuses unsafe combinations (exit 2)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None
    secure_cookie: bool = False
    item_url: str = DEFAULT_ITEM_URL
    refresh: float = 5.0  # seconds between two refreshes of a page's live part

    def checked(self) -> Options:
        """These options, the token normalised; raises ConfigError naming what to fix."""
        token = security.check_token(self.host, self.token)
        template = self.item_url.strip()
        if not template.startswith(("https://", "http://")):
            raise ConfigError("--item-url: must be an http(s) URL")
        try:
            sample = template.format(board="1", item="2")
        except (KeyError, IndexError, ValueError):
            raise ConfigError(
                "--item-url: the only placeholders are {board} and {item}, e.g. "
                "https://acme.monday.com/boards/{board}/pulses/{item}"
            ) from None
        if "{item}" not in template or '"' in sample or "<" in sample:
            raise ConfigError("--item-url: must hold {item} (and usually {board})")
        return Options(
            self.host, self.port, token, self.secure_cookie, template, max(self.refresh, 1.0)
        )


@dataclass(frozen=True, slots=True)
class BoardTitles:
    """The boards' columns as last read from Monday (or why they were not), until when."""

    boards: Mapping[str, api.BoardInfo]
    unknown: str | None
    at: dt.datetime
    until: float  # monotonic


@dataclass
class Served:
    """A running console: its address, and how to stop it."""

    url: str
    runner: web.AppRunner
    console: Console

    async def cleanup(self) -> None:
        await self.runner.cleanup()
        await self.console.close()


async def serve(settings: Settings, options: Options) -> Served:
    """Start serving (options already `checked`); stop with `Served.cleanup`."""
    console = Console(settings, options)
    runner = web.AppRunner(console.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    shown = f"[{host}]" if ":" in host else host
    return Served(f"http://{shown}:{port}/", runner, console)


async def run(settings: Settings, options: Options, echo: Callable[[str], None]) -> None:
    """`npd-sync console`: serve until SIGTERM or SIGINT."""
    try:
        served = await serve(settings, options)
    except OSError as exc:
        raise cannot_listen("--host/--port", options.host, options.port, exc) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    echo(f"npd-sync console at {served.url}")
    if options.token is not None:
        echo(f"sign in with the token in {security.TOKEN_ENV}")
    try:
        await stop.wait()
    finally:
        await served.cleanup()


class Console:
    """One console: its sessions, templates and (lazily opened) database pool."""

    def __init__(self, settings: Settings, options: Options) -> None:
        self.settings = settings
        self.options = options
        self.sessions = security.Sessions()
        self.throttle = security.LoginThrottle()
        self.secrets = [*settings.secrets(), *([options.token] if options.token else [])]
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("listener.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            finalize=self._finalize,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(
            when=text.when,
            time=shown.time,
            stored_time=shown.stored_time,
            shown=shown.value,
            age=text.age,
            n=lambda value: f"{value:,}",
            counted=text.counted,
            open_conflicts=text.open_conflicts,
            unlinked=text.unlinked,
            daily_calls=text.daily_calls,
            sentence=lambda line: line[:1].upper() + line[1:],
            headline=lambda error: text.one_line(fault.headline(error), 300),
            details=fault.details,
        )
        self.static = _load_static()
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self._boards: BoardTitles | None = None  # the boards' columns, as last read
        self._boards_lock = asyncio.Lock()

    def _finalize(self, value: Any) -> Any:
        # Whatever a template prints is scrubbed of every secret the configuration holds.
        if isinstance(value, str) and not isinstance(value, Markup):
            return redact(value, self.secrets)
        return "" if value is None else value

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def pool(self) -> asyncpg.Pool:
        """The console's own small pool (never the listener's), opened on first use so that
        the console starts, and says so, while the database is away."""
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await db.create_pool(
                    self.settings.require_database(), application_name="npd-sync console", size=3
                )
            return self._pool

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=security.MAX_BODY, middlewares=[self._guard, self._session]
        )
        app.router.add_get("/", self.overview_page)
        app.router.add_get("/failed", self.failed_page)
        app.router.add_post("/retry", self.retry)
        app.router.add_get("/retry/confirm", self.retry_confirm_page)
        app.router.add_post("/discard", self.discard)
        app.router.add_get("/conflicts", self.conflicts_page)
        app.router.add_post("/resolve", self.resolve)
        app.router.add_post("/item/read", self.read_item)
        app.router.add_get("/row", self.row_page)
        app.router.add_get("/rows", self.rows_page)
        app.router.add_get("/mapping", self.mapping_page)
        app.router.add_get("/login", self.login_page)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/static/{name}", self.static_file)
        return app

    # --- middlewares ------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Errors become pages that say what to do and nothing more; every response gets the
        security headers."""
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:  # a redirect
                self._harden(request, exc)
                raise
            response = self._error(request, exc.status, _reason(exc))
            response.headers.update({k: v for k, v in exc.headers.items() if k in _KEEP})
        except install.NotInstalled as exc:
            response = self._error(request, 503, str(exc))
        except (*db.UNAVAILABLE, asyncpg.PostgresError) as exc:
            log.warning("console.database_error", extra={"error": redact(str(exc), self.secrets)})
            response = self._error(
                request, 503, f"The database cannot be read right now ({type(exc).__name__})."
            )
        except Exception:
            log.exception("console.error", extra={"path": request.path})
            response = self._error(
                request, 500, "Something went wrong; the console's log says what."
            )
        self._harden(request, response)
        return response

    def _harden(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(security.HEADERS)
        if self.options.secure_cookie:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        response.headers["Vary"] = "HX-Request, Cookie"

    @web.middleware
    async def _session(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Who may see what: the Host, the session, the CSRF token of every POST."""
        token_mode = self.options.token is not None
        if not token_mode and not security.host_is_loopback(request.headers.get("Host")):
            # Open to anyone on this machine: a page elsewhere must not reach in through DNS.
            raise web.HTTPMisdirectedRequest(
                text="This console answers only to its loopback address."
            )
        if request.path.startswith("/static/"):
            return await handler(request)
        session = self.sessions.get(request.cookies.get(security.COOKIE))
        fresh = None
        if session is None or (token_mode and not session.signed_in):
            if not token_mode:
                session = fresh = self.sessions.start(signed_in=True)
            elif request.path == "/login":
                if session is None:
                    session = fresh = self.sessions.start(signed_in=False)
            else:
                return self._to_login(request)
        assert session is not None
        request[SESSION] = session
        if request.method == "POST":
            await self._check_post(request, session)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if fresh is not None:
                self._set_cookie(exc, fresh)
            raise
        if fresh is not None:
            self._set_cookie(response, fresh)
        return response

    async def _check_post(self, request: web.Request, session: security.Session) -> None:
        if request.content_type != "application/x-www-form-urlencoded":
            raise web.HTTPUnsupportedMediaType(
                text="Forms only (application/x-www-form-urlencoded)."
            )
        headers = request.headers
        if not security.same_origin(
            headers.get("Origin"), headers.get("Sec-Fetch-Site"), headers.get("Host")
        ):
            raise web.HTTPForbidden(
                text="Refused: this request did not come from the console's pages."
            )
        form: Form = await request.post()  # bounded by client_max_size: 413 beyond it
        if len(form) > MAX_SELECTION + 10:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_SELECTION, actual_size=len(form), text="Too many fields."
            )
        given = form.get("csrf")
        if not session.csrf_matches(given if isinstance(given, str) else None):
            raise web.HTTPForbidden(
                text="Refused: the form's security token is missing or stale (CSRF check). "
                "Reload the page and try again."
            )
        request[FORM] = form

    def _to_login(self, request: web.Request) -> web.StreamResponse:
        target = "/login"
        if request.method == "GET" and request.path != "/":
            target += "?" + urlencode({"next": request.path_qs})
        if request.headers.get("HX-Request"):
            # htmx swaps what it gets: tell it to go to the login page instead.
            return web.Response(status=401, headers={"HX-Redirect": target})
        raise web.HTTPSeeOther(target)

    def _set_cookie(self, response: web.StreamResponse, session: security.Session) -> None:
        response.set_cookie(
            security.COOKIE,
            session.id,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.options.secure_cookie,
        )

    # --- pages ------------------------------------------------------------------------------

    async def overview_page(self, request: web.Request) -> web.StreamResponse:
        pool = await self.pool()
        async with pool.acquire() as conn, _reading(conn):
            found = await data.overview(conn, self.settings)
        report = found.report
        return self._page(
            request,
            "overview.html",
            nav="overview",
            overview=found,
            report=report,
            throughput=charts.bars(found.history, label="Rows synced per minute"),
            latency=charts.lines(found.history, label="Commit to Monday latency"),
        )

    async def failed_page(self, request: web.Request) -> web.StreamResponse:
        table = self._table_param(request)
        page = _int_param(request, "page", 1, MAX_PAGE)
        raw = request.query.get("error") or None
        group = failed.group_id(raw)
        if raw is not None and group is None:
            raise web.HTTPBadRequest(text="error names an error group of the Failed page.")
        pool = await self.pool()
        async with pool.acquire() as conn, _reading(conn):
            found = await failed.paged(
                conn, self.settings, self.options.item_url, table=table, page=page, group=group
            )
        return self._page(
            request, "failed.html", nav="failed", failed=found, table=table, error=group
        )

    async def retry_confirm_page(self, request: web.Request) -> web.StreamResponse:
        """Retrying every failed row of a table is asked for once more, with the count."""
        table = self._table_param(request)
        if table is None:
            raise web.HTTPBadRequest(text="Name the table whose failed rows to retry.")
        back = _local_path(request.query.get("back"), "/failed")
        pool = await self.pool()
        async with pool.acquire() as conn, _reading(conn):
            found = await failed.paged(
                conn, self.settings, self.options.item_url, table=table, page=1
            )
        return self._page(
            request, "confirm.html", poll=False, nav="failed", failed=found, table=table,
            back=back,
        )  # fmt: skip

    async def conflicts_page(self, request: web.Request) -> web.StreamResponse:
        table = self._table_param(request)
        show = request.query.get("show") or "open"
        if show not in ("open", "resolved"):
            raise web.HTTPBadRequest(text="show is open or resolved.")
        page = _int_param(request, "page", 1, MAX_PAGE)
        pool = await self.pool()
        async with pool.acquire() as conn, _reading(conn):
            found = await conflicting.paged(
                conn,
                self.settings,
                self.options.item_url,
                show="open" if show == "open" else "resolved",
                table=table,
                page=page,
            )
        return self._page(request, "conflicts.html", nav="conflicts", conflicts=found, table=table)

    async def rows_page(self, request: web.Request) -> web.StreamResponse:
        """`/rows?q=TEXT`: the rows a key, an item id, an email or a name finds across the
        synced tables; straight to the row when it finds one."""
        text = _text_param(request, "q")
        if text is None:
            return self._page(request, "rows.html", poll=False, nav="rows", q="", found=None)
        pool = await self.pool()
        async with pool.acquire() as conn, _reading(conn):
            found = await search.search(conn, self.settings, self.options.item_url, text)
        one = found.one
        if one is not None and not found.notes:
            raise web.HTTPSeeOther("/row?" + urlencode({"table": one.table, "key": one.key}))
        return self._page(request, "rows.html", poll=False, nav="rows", q=text, found=found)

    async def row_page(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        table = self._table_param(request)
        key = _text_param(request, "key")
        item = _text_param(request, "item")
        context: dict[str, Any] = {"nav": "row", "table": table, "key": key, "item": item}
        context["poll"] = False  # until there is a story to follow
        if item is not None and key is None:
            if not item.isdigit():
                return self._page(request, "row.html", status=400, problem=(
                    "A Monday item id is a number."
                ), **context)  # fmt: skip
            pool = await self.pool()
            async with pool.acquire() as conn, _reading(conn):
                found = await story.find_item(conn, self.settings, item)
            if found is None:
                return self._page(request, "row.html", status=404, problem=(
                    f"No row is linked to Monday item {item} as far as npd-sync knows."
                ), **context)  # fmt: skip
            raise web.HTTPSeeOther("/row?" + urlencode({"table": found[0], "key": found[1]}))
        if key is None or table is None:
            asked = "key" in query or "table" in query
            return self._page(
                request,
                "row.html",
                status=400 if asked else 200,
                problem="Give a table and a key, or a Monday item id." if asked else None,
                **context,
            )
        linked = _int_param(request, "linked", 1, MAX_PAGE)
        # The rows that point at this one are read when the page opens, not on its refreshes
        # (they are outside its live part, and may cost a scan of their table).
        polled = request.headers.get("HX-Trigger") == "live"
        pool = await self.pool()
        try:
            async with pool.acquire() as conn, _reading(conn):
                found_story = await story.story(
                    conn, self.settings, self.options.item_url, table=table, key=key,
                    linked_page=None if polled else linked,
                )  # fmt: skip
        except keys.NotAKey as exc:
            return self._page(request, "row.html", status=400, problem=str(exc), **context)
        missing = found_story.row is None and found_story.entry is None
        context["poll"] = True
        context["now"] = request[SESSION].readings.get((found_story.table, found_story.key))
        return self._page(
            request, "row.html", status=404 if missing else 200, story=found_story, **context
        )

    async def retry(self, request: web.Request) -> web.StreamResponse:
        """Retry the row clicked, the rows ticked, or (confirmed) every failed row of a
        table: the same operation as `npd-sync retry`."""
        form = request[FORM]
        back = _local_path(form.get("back"), "/failed")
        everything = form.get("all")
        if isinstance(everything, str) and everything and form.get("confirm") != "yes":
            # Every failed row of a table is asked for once more, with the count.
            self._table_name(everything)
            query = urlencode({"table": everything, "back": back})
            raise web.HTTPSeeOther(f"/retry/confirm?{query}")
        session = request[SESSION]
        targets = self._targets(form, everything)
        if not targets:
            session.flash.append("Nothing selected: tick the rows to retry.")
            raise web.HTTPSeeOther(back)
        pool = await self.pool()
        async with pool.acquire() as conn:
            await install.require_current(conn)
            try:
                results = await retry.retry(conn, targets)
            except keys.UsageError as exc:
                raise web.HTTPBadRequest(text=str(exc)) from None
        lines = retry.summary(results)
        log.info(
            "console.retry",
            extra={
                "requeued": sum(len(r.requeued) for r in results),
                "tables": ",".join(r.table for r in results),
                "remote": request.remote or "-",
            },
        )
        session.flash.extend(lines)
        raise web.HTTPSeeOther(back)

    async def discard(self, request: web.Request) -> web.StreamResponse:
        """Stop retrying the row clicked or the rows ticked: their failed entries leave the
        queue (the same operation as `npd-sync retry --discard`)."""
        form = request[FORM]
        back = _local_path(form.get("back"), "/failed")
        session = request[SESSION]
        targets = self._targets(form, None)
        if not targets:
            session.flash.append("Nothing selected: tick the rows to stop retrying.")
            raise web.HTTPSeeOther(back)
        pool = await self.pool()
        async with pool.acquire() as conn:
            await install.require_current(conn)
            try:
                results = await retry.discard(conn, targets)
            except keys.UsageError as exc:
                raise web.HTTPBadRequest(text=str(exc)) from None
        log.info(
            "console.discard",
            extra={
                "discarded": sum(len(r.discarded) for r in results),
                "tables": ",".join(r.table for r in results),
                "remote": request.remote or "-",
            },
        )
        session.flash.extend(retry.discard_summary(results))
        raise web.HTTPSeeOther(back)

    def _targets(self, form: Form, everything: object) -> list[Target]:
        """The rows a form names: every failed row of the table `everything`, else the row
        clicked (`one`), else the rows ticked (`row`), each 'table key'."""
        if isinstance(everything, str) and everything:
            return [retry.Target(self._table_name(everything), None)]
        picked = form.getall("one", []) or form.getall("row", [])
        if len(picked) > MAX_SELECTION:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_SELECTION, actual_size=len(picked), text="Too many rows at once."
            )
        by_table: dict[str, list[str]] = defaultdict(list)
        for value in picked:
            table, sep, key = value.partition(" ") if isinstance(value, str) else ("", "", "")
            if not sep or not key or len(key) > MAX_KEY:
                raise web.HTTPBadRequest(text="A row is named 'table key'.")
            by_table[table].append(key)
        return [retry.Target(self._table_name(t), tuple(k)) for t, k in by_table.items()]

    def _table_name(self, name: str) -> mapping.TableMapping:
        """A configured table, or 400."""
        try:
            return self.settings.table(name)
        except ConfigError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None

    async def read_item(self, request: web.Request) -> web.StreamResponse:
        """Read a row's item from Monday now (a button, never a page view): within the limits
        every listener shares, through the governor, which may say no; the row's page then
        shows what was read, or why not."""
        form = request[FORM]
        table, key = form.get("table"), form.get("key")
        if not isinstance(table, str) or not isinstance(key, str) or not key or len(key) > MAX_KEY:
            raise web.HTTPBadRequest(text="A row is named by its table and its key.")
        mapped = self._table_name(table)
        pool = await self.pool()
        async with pool.acquire() as conn:
            try:
                key, item = await story.item_of(conn, mapped, key)
            except keys.UsageError as exc:
                raise web.HTTPBadRequest(text=str(exc)) from None
        back = "/row?" + urlencode({"table": mapped.table, "key": key})
        session = request[SESSION]
        if item is None:
            session.flash.append(f"{mapped.table} {key}: no item on Monday to read yet")
            raise web.HTTPSeeOther(back)
        reading = await items.read_now(pool, self.settings, mapped, key, item)
        log.info(
            "console.read_item",
            extra={
                "table": mapped.table,
                "key": key,
                "item": item,
                "refused": reading.refused or "",
                "remote": request.remote or "-",
            },
        )
        session.remember((mapped.table, key), reading)
        raise web.HTTPSeeOther(back + "#monday-now")

    async def resolve(self, request: web.Request) -> web.StreamResponse:
        """Take one side of a row's open conflicts, on one field (`column`) or all of them: the
        same operation as `npd-sync conflicts resolve`."""
        form = request[FORM]
        back = _local_path(form.get("back"), "/conflicts")
        table, key, column = form.get("table"), form.get("key"), form.get("column")
        take = SIDES.get(form.get("take"))
        if not isinstance(table, str) or not isinstance(key, str) or not key or len(key) > MAX_KEY:
            raise web.HTTPBadRequest(text="A row is named by its table and its key.")
        if take is None:
            raise web.HTTPBadRequest(text="Take npd (the database's value) or monday.")
        if column is not None and (not isinstance(column, str) or not 0 < len(column) <= MAX_KEY):
            raise web.HTTPBadRequest(text="A field is named by its Monday column id.")
        try:
            mapped = self.settings.table(table)
        except ConfigError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        pool = await self.pool()
        async with pool.acquire() as conn:
            try:
                settled = await conflicting.settle(
                    conn, mapped, key, None if column is None else [column], take
                )
            except keys.UsageError as exc:
                raise web.HTTPBadRequest(text=str(exc)) from None
        field = None if column is None else conflicts.field_of(mapped, column)
        log.info(
            "console.resolve",
            extra={
                "table": mapped.table,
                "key": key,
                "fields": ",".join(settled),
                "take": take,
                "remote": request.remote or "-",
            },
        )
        session = request[SESSION]
        session.flash.extend(conflicting.summary(self.settings, mapped, key, field, settled, take))
        raise web.HTTPSeeOther(back)

    async def mapping_page(self, request: web.Request) -> web.StreamResponse:
        """The mapping in effect: each column with its title on its board and whether it flows
        back, as `npd-sync mapping show` prints it."""
        titles = await self._board_titles()
        found = boards.views(self.settings, titles.boards, titles.unknown)
        return self._page(
            request,
            "mapping.html",
            poll=False,
            nav="mapping",
            views=found,
            titles=titles,
            options_boards=BOARDS_SECONDS,
        )

    async def _board_titles(self) -> BoardTitles:
        """The boards' columns, read from Monday at most every BOARDS_SECONDS (through the
        governor: within the limits every listener shares, or not at all)."""
        async with self._boards_lock:
            known = self._boards
            if known is not None and time.monotonic() < known.until:
                return known
            self._boards = await self._read_boards()
            return self._boards

    async def _read_boards(self) -> BoardTitles:
        now = dt.datetime.now(dt.UTC)
        if self.settings.api_key is None:
            unknown = "MONDAY_API_KEY is not set where the console runs"
            return BoardTitles({}, unknown, now, time.monotonic() + BOARDS_SECONDS)
        pool = await self.pool()
        try:
            found = await boards.read(self.settings, pool, max_wait=items.READ_WAIT)
        except boards.MondayFailed as exc:
            # Asked again sooner: the limits (or Monday) may have room in a while.
            return BoardTitles({}, str(exc), now, time.monotonic() + BOARDS_SECONDS / 10)
        return BoardTitles(found, None, now, time.monotonic() + BOARDS_SECONDS)

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        session = request[SESSION]
        if session.signed_in:
            raise web.HTTPSeeOther(_local_path(request.query.get("next"), "/"))
        target = _local_path(request.query.get("next"), "/")
        return self._page(request, "login.html", poll=False, nav="login", next=target)

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = request[FORM]
        target = _local_path(form.get("next"), "/")
        session = request[SESSION]
        if session.signed_in or self.options.token is None:
            raise web.HTTPSeeOther(target)
        client = security.login_client(request.remote, request.headers.get(security.REAL_IP))
        wait = self.throttle.retry_after(client)
        if wait > 0:
            problem = "Too many wrong tokens: wait a minute and try again."
            response = self._page(
                request, "login.html", status=429, poll=False, next=target, problem=problem
            )
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        given = form.get("token")
        if not isinstance(given, str) or not security.token_matches(given, self.options.token):
            self.throttle.failed(client)
            log.warning("console.login_failed", extra={"remote": client})
            return self._page(request, "login.html", status=401, poll=False, next=target,
                              problem="That is not the console's token.")  # fmt: skip
        self.sessions.end(session.id)
        signed_in = self.sessions.start(signed_in=True)
        response = web.HTTPSeeOther(target)
        self._set_cookie(response, signed_in)
        log.info("console.login", extra={"remote": request.remote or "-"})
        raise response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session = request[SESSION]
        self.sessions.end(session.id)
        response = web.HTTPSeeOther("/login" if self.options.token else "/")
        response.del_cookie(security.COOKIE, path="/")
        raise response

    async def static_file(self, request: web.Request) -> web.StreamResponse:
        found = self.static.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        body, content_type, etag = found
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=content_type, headers=headers)

    # --- helpers ----------------------------------------------------------------------------

    def _table_param(self, request: web.Request) -> str | None:
        table = request.query.get("table") or None
        if table is not None and table not in {t.table for t in self.settings.tables}:
            raise web.HTTPBadRequest(text="No such table in the configuration.")
        return table

    def _page(
        self,
        request: web.Request,
        template: str,
        *,
        status: int = 200,
        poll: bool = True,
        **context: Any,
    ) -> web.Response:
        """Render a page; its `#live` part (when it has one) refreshes itself."""
        session = request.get(SESSION)
        live = Markup('id="live"')
        if poll and request.method == "GET":
            live = Markup(
                'id="live" hx-get="{}" hx-trigger="every {}s" hx-select="#live" '
                'hx-swap="outerHTML" hx-disinherit="*"'
            ).format(request.path_qs, int(self.options.refresh))
        flash: list[str] = []
        # Messages after an action show once, on the next page (not in a refresh of its part).
        polled = request.headers.get("HX-Trigger") == "live"
        if session is not None and request.method == "GET" and not polled:
            flash, session.flash[:] = list(session.flash), []
        body = self.templates.get_template(template).render(
            version=__version__,
            options=self.options,
            token_mode=self.options.token is not None,
            csrf=session.csrf if session is not None else "",
            signed_in=session is not None and session.signed_in,
            tables=[t.table for t in self.settings.tables],
            path_qs=request.path_qs,
            live=live,
            polling=poll and request.method == "GET",
            flash=flash,
            inbound=self.settings.inbound,
            history_days=self.settings.tuning.history_days,
            **{"nav": None, "problem": None, "story": None, "now": None, **context},
        )
        return web.Response(status=status, text=body, content_type="text/html", charset="utf-8")

    def _error(self, request: web.Request, status_code: int, message: str) -> web.Response:
        try:
            title = HTTPStatus(status_code).phrase
        except ValueError:
            title = "Error"
        return self._page(
            request, "error.html", status=status_code, message=message, status_text=title
        )


_KEEP = frozenset({"Retry-After", "Allow"})


def _reason(exc: web.HTTPException) -> str:
    text = exc.text or ""
    if text and not text.startswith(f"{exc.status}:"):
        return text
    return {
        404: "There is no such page.",
        405: "That is not allowed here.",
        413: "The request is too large.",
    }.get(exc.status, exc.reason)


@contextlib.asynccontextmanager
async def _reading(conn: db.Conn) -> Any:
    """A read-only snapshot, bounded in time: a page never holds the database for long."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute("SET LOCAL statement_timeout = '10s'")
        yield


def _int_param(request: web.Request, name: str, default: int, top: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= top:
        raise web.HTTPBadRequest(text=f"{name} must be a number from 1 to {top}.")
    return int(raw)


def _text_param(request: web.Request, name: str) -> str | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    if len(raw) > MAX_KEY or any(ord(c) < 32 for c in raw):
        raise web.HTTPBadRequest(text=f"{name} is too long or holds control characters.")
    return raw


def _local_path(value: Any, default: str) -> str:
    """A path on this console to go back to (never another site: no scheme, no //host)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(c) < 33 for c in value) or len(value) > 2000:
        return default
    return value


def _load_static() -> Mapping[str, tuple[bytes, str, str]]:
    """The static files, read once: a fixed set of names, so no path reaches the disk."""
    folder = resources.files("listener.console") / "static"
    found = {}
    for name, content_type in STATIC.items():
        body = (folder / name).read_bytes()
        found[name] = (body, content_type, '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
    return found
