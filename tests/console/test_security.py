"""The console's guard, piece by piece (pure): which bindings need a token, the comparisons,
the origin check, sessions and the login throttle."""

from __future__ import annotations

import pytest

from listener.console import security
from listener.settings import ConfigError

TOKEN = "correct horse battery staple"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("console.example.com", False),
        ("", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert security.is_loopback(host) is loopback


def test_anything_but_loopback_needs_a_long_token() -> None:
    assert security.check_token("127.0.0.1", None) is None
    assert security.check_token("127.0.0.1", "  ") is None
    assert security.check_token("127.0.0.1", TOKEN) == TOKEN  # a token on loopback is required too
    with pytest.raises(ConfigError, match=r"^NPD_SYNC_CONSOLE_TOKEN is not set: .* 0\.0\.0\.0"):
        security.check_token("0.0.0.0", None)
    with pytest.raises(ConfigError, match="at least 16 characters"):
        security.check_token("0.0.0.0", "short")
    assert security.check_token("0.0.0.0", f" {TOKEN}\n") == TOKEN


def test_token_comparison() -> None:
    assert security.token_matches(TOKEN, TOKEN)
    assert not security.token_matches(TOKEN[:-1], TOKEN)
    assert not security.token_matches("", TOKEN)
    assert not security.token_matches(TOKEN + "x", TOKEN)
    assert not security.token_matches("\udcff", TOKEN)  # not even encodable: no crash


@pytest.mark.parametrize(
    ("origin", "site", "host", "ok"),
    [
        (None, None, "127.0.0.1:8765", True),  # an old browser, or curl: the CSRF token decides
        ("http://127.0.0.1:8765", "same-origin", "127.0.0.1:8765", True),
        ("https://sync.example.com", None, "sync.example.com", True),  # behind a TLS proxy
        ("https://evil.example", None, "127.0.0.1:8765", False),
        ("http://127.0.0.1:9999", None, "127.0.0.1:8765", False),
        ("null", None, "127.0.0.1:8765", False),
        (None, "cross-site", "127.0.0.1:8765", False),
        (None, "same-site", "127.0.0.1:8765", False),
        ("http://127.0.0.1:8765", None, None, False),
    ],
)
def test_same_origin(origin: str | None, site: str | None, host: str | None, ok: bool) -> None:
    assert security.same_origin(origin, site, host) is ok


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8765", True),
        ("localhost:8765", True),
        ("[::1]:8765", True),
        ("127.0.0.1", True),
        ("evil.example:8765", False),  # DNS rebinding: a name that resolves to us
        ("127.0.0.1.evil.example", False),
        (None, False),
        ("[bad", False),
    ],
)
def test_host_header(host: str | None, ok: bool) -> None:
    assert security.host_is_loopback(host) is ok


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_are_random_expire_and_are_bounded() -> None:
    clock = Clock()
    sessions = security.Sessions(clock)
    a = sessions.start(signed_in=True)
    b = sessions.start(signed_in=True)
    assert a.id != b.id
    assert a.csrf != b.csrf
    assert len(a.id) >= 40
    assert sessions.get(a.id) is a
    assert sessions.get("forged") is None
    assert sessions.get("x" * 1000) is None
    assert a.csrf_matches(a.csrf)
    assert not a.csrf_matches(b.csrf)
    assert not a.csrf_matches(None)
    clock.now += security.SESSION_SECONDS + 1
    assert sessions.get(a.id) is None
    sessions.end(b.id)
    assert sessions.get(b.id) is None


def test_anonymous_visitors_cannot_push_out_signed_in_sessions() -> None:
    sessions = security.Sessions()
    signed_in = sessions.start(signed_in=True)
    for _ in range(security.MAX_SESSIONS + 5):
        sessions.start(signed_in=False)
    assert sessions.get(signed_in.id) is signed_in


def test_login_throttle() -> None:
    clock = Clock()
    throttle = security.LoginThrottle(clock)
    for _ in range(security.LOGIN_FAILURES):
        assert throttle.retry_after("a") == 0
        throttle.failed("a")
    assert throttle.retry_after("a") == pytest.approx(60)
    assert throttle.retry_after("b") == 0  # another client is not locked out
    clock.now += 59
    assert throttle.retry_after("a") == pytest.approx(1)
    clock.now += 1
    assert throttle.retry_after("a") == 0


def test_login_throttle_memory_is_bounded_and_the_oldest_is_forgotten() -> None:
    clock = Clock()
    throttle = security.LoginThrottle(clock, max_clients=3)
    for _ in range(security.LOGIN_FAILURES * 5):
        throttle.failed("locked")  # one client's failures take LOGIN_FAILURES slots at most
    assert throttle.retry_after("locked") > 0
    for client in ("b", "c", "locked", "d"):
        clock.now += 1
        throttle.failed(client)
    assert throttle.clients() == 3
    assert throttle.retry_after("locked") > 0  # failed again lately: kept
    assert throttle.retry_after("b") == 0
    for n in range(10_000):  # a flood of distinct clients
        throttle.failed(f"flood {n}")
    assert throttle.clients() == 3
    clock.now += 60
    assert throttle.retry_after("flood 9999") == 0
    assert throttle.clients() == 2  # forgotten once it is of no use


@pytest.mark.parametrize(
    ("peer", "real_ip", "client"),
    [
        ("203.0.113.7", None, "203.0.113.7"),
        # Only a proxy on this machine (the README's nginx) says who its client is.
        ("203.0.113.7", "198.51.100.2", "203.0.113.7"),
        ("127.0.0.1", "198.51.100.2", "198.51.100.2"),
        ("::1", " 198.51.100.2 ", "198.51.100.2"),
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "not an address", "127.0.0.1"),
        ("127.0.0.1", "198.51.100.2, 10.0.0.1", "127.0.0.1"),
        # IPv6 hosts get a /64 each: one address per guess would be no limit.
        ("2001:db8:1:2:3:4:5:6", None, "2001:db8:1:2::/64"),
        ("::1", "2001:db8:1:2::99", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", None, "203.0.113.7"),
        (None, None, "-"),
    ],
)
def test_login_client(peer: str | None, real_ip: str | None, client: str) -> None:
    assert security.login_client(peer, real_ip) == client
