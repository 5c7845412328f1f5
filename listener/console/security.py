"""The console's guard: every request is hostile until proven otherwise.

- Options are checked before the server starts: bound to anything but loopback, the console
  requires NPD_SYNC_CONSOLE_TOKEN (at least MIN_TOKEN characters).
- With a token, a visitor logs in with it (compared in constant time; at most LOGIN_FAILURES
  wrong tries a minute from one client, so that nobody can lock the others out) and gets a
  session: a random id in a cookie
  (HttpOnly, SameSite=Strict, Secure when asked), the session itself held in memory, for
  SESSION_SECONDS at most. Without a token (loopback only), every visitor gets a session at
  once, and the Host header must name a loopback address, so that a page elsewhere cannot reach
  the console through DNS rebinding.
- Every action is a POST carrying the session's CSRF token, form-encoded, from the console's
  own origin (Origin and Sec-Fetch-Site are checked when the browser sends them).
- Every response carries the security headers (a CSP without inline script or style, no
  framing, nosniff, no referrer, no caching of pages).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from listener.settings import ConfigError

TOKEN_ENV = "NPD_SYNC_CONSOLE_TOKEN"  # noqa: S105 (the variable's name)
MIN_TOKEN = 16
COOKIE = "npd_sync_console"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 1000  # per kind (signed in, anonymous): the oldest is forgotten beyond that
LOGIN_FAILURES = 10  # wrong tokens a minute before a client's logins are refused for the rest
MAX_CLIENTS = 10_000  # clients whose recent wrong tokens are remembered (the oldest forgotten)
REAL_IP = "X-Real-IP"  # who the client is, as a reverse proxy on this machine says
MAX_BODY = 64 * 1024  # bytes of a request body
MAX_READINGS = 20  # items read from Monday on demand that a session keeps to show

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it, browsers send "Origin: null" on the console's own POSTs.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


def is_loopback(host: str) -> bool:
    """Whether an address to bind (or a Host header's name) is this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_token(host: str, token: str | None) -> str | None:
    """The token to require (None: none), or ConfigError when the options are unsafe."""
    token = (token or "").strip() or None
    if token is None:
        if not is_loopback(host):
            raise ConfigError(
                f"{TOKEN_ENV} is not set: the console bound to {host} (not loopback) requires "
                "it; set it to a long random string"
            )
        return None
    if len(token) < MIN_TOKEN:
        raise ConfigError(f"{TOKEN_ENV}: must be at least {MIN_TOKEN} characters")
    return token


def token_matches(given: str, token: str) -> bool:
    """Constant-time comparison (of digests, so that the length leaks nothing either)."""
    a = hashlib.sha256(given.encode("utf-8", "replace")).digest()
    b = hashlib.sha256(token.encode("utf-8")).digest()
    return hmac.compare_digest(a, b)


def host_is_loopback(host_header: str | None) -> bool:
    """Whether a Host header (name[:port]) names a loopback address."""
    if not host_header:
        return False
    try:
        name = urlsplit("//" + host_header).hostname
    except ValueError:
        return False
    return name is not None and is_loopback(name)


def same_origin(origin: str | None, fetch_site: str | None, host_header: str | None) -> bool:
    """Whether a POST comes from the console's own pages, as far as the browser says: an Origin
    header, when sent, names the Host the request was sent to; Sec-Fetch-Site is not
    cross-site. Scheme is not compared: behind a TLS proxy the console itself sees http."""
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    if origin is None:
        return True
    if origin == "null" or not host_header:
        return False
    try:
        return urlsplit(origin).netloc.lower() == host_header.lower()
    except ValueError:
        return False


@dataclass
class Session:
    id: str
    csrf: str
    signed_in: bool
    started: float
    flash: list[str] = field(default_factory=list)
    # What this visitor read from Monday on demand, by (table, key): the latest few only.
    readings: collections.OrderedDict[tuple[str, str], Any] = field(
        default_factory=collections.OrderedDict
    )

    def remember(self, row: tuple[str, str], reading: Any) -> None:
        """Keep a reading of a row's item for the next page (at most MAX_READINGS)."""
        self.readings.pop(row, None)
        self.readings[row] = reading
        while len(self.readings) > MAX_READINGS:
            self.readings.popitem(last=False)

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(
            given.encode("utf-8", "replace"), self.csrf.encode()
        )


class Sessions:
    """Sessions held in memory: lost when the console restarts (people sign in again)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._signed_in: collections.OrderedDict[str, Session] = collections.OrderedDict()
        self._anonymous: collections.OrderedDict[str, Session] = collections.OrderedDict()

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, if any."""
        if not session_id or len(session_id) > 100:
            return None
        for store in (self._signed_in, self._anonymous):
            session = store.get(session_id)
            if session is not None:
                if self._clock() - session.started > SESSION_SECONDS:
                    del store[session_id]
                    return None
                return session
        return None

    def start(self, *, signed_in: bool) -> Session:
        """A new session with a fresh id and CSRF token."""
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), signed_in, 0.0)
        session.started = self._clock()
        store = self._signed_in if signed_in else self._anonymous
        store[session.id] = session
        while len(store) > MAX_SESSIONS:
            store.popitem(last=False)
        return session

    def end(self, session_id: str) -> None:
        self._signed_in.pop(session_id, None)
        self._anonymous.pop(session_id, None)


def login_client(peer: str | None, real_ip: str | None) -> str:
    """Who is logging in, for the throttle: the peer's address or, when the peer is a proxy on
    this machine (the README's nginx sets X-Real-IP; a client cannot, nginx overwrites it),
    the address it names. An IPv6 client counts by its /64: a host has that many addresses."""
    address = _address(peer)
    if address is None:
        return "-"
    if address.is_loopback and (named := _address(real_ip)) is not None:
        address = named
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


class LoginThrottle:
    """At most LOGIN_FAILURES wrong tokens in any minute from one client (`login_client`):
    guessing a token of 16 characters or more at that pace is hopeless, and one client's
    guesses keep nobody else out. At most `max_clients` are remembered, those that failed
    longest ago forgotten first, so that a flood of clients cannot grow memory."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_clients: int = MAX_CLIENTS
    ) -> None:
        self._clock = clock
        self._max_clients = max_clients
        self._failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def retry_after(self, client: str) -> float:
        """Seconds until this client may try a login (0: now)."""
        failures = self._failures.get(client)
        if failures is None:
            return 0.0
        now = self._clock()
        while failures and now - failures[0] >= 60:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return 0.0
        if len(failures) < LOGIN_FAILURES:
            return 0.0
        return 60 - (now - failures[0])

    def failed(self, client: str) -> None:
        """A wrong token from this client."""
        failures = self._failures.pop(client, None)
        if failures is None:
            failures = collections.deque(maxlen=LOGIN_FAILURES)
        failures.append(self._clock())
        self._failures[client] = failures  # the most recent last
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)

    def clients(self) -> int:
        """How many clients' failures are remembered."""
        return len(self._failures)
