"""The console in a real browser: Debian's Chromium, headless, driven by Playwright.

Never skipped: without Chromium these tests fail and say how to get it (`make test` installs
it when it can, see devtools/chromium.sh). NPD_SYNC_CHROMIUM names another binary. With
NPD_SYNC_SCREENSHOTS=DIR the screenshots in the README are written there (`make screenshots`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from emulator import Emulator
from listener import settings
from tests.conftest import CONTACTS_BOARD, ROOT, MakeSettings
from tests.console.helpers import TOKEN, make_conflicts, make_failed, served, states
from tests.helpers import drain, running, write_config
from tests.inbound.helpers import PUBLIC_URL

CHROMIUM = os.environ.get("NPD_SYNC_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WAIT = 15_000  # ms: how long an expectation may take to come true


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need it. Run `make test` "
            "(it installs Debian's chromium package as root), or `sudo apt-get install chromium`, "
            "or set NPD_SYNC_CHROMIUM to a Chromium binary."
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: the README's folder when asked, else the test's own."""
    wanted = os.environ.get("NPD_SYNC_SCREENSHOTS")
    folder = ROOT / wanted if wanted else tmp_path  # relative to the checkout (tests chdir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# Console errors that are the pages' business: an answer of 4xx (a wrong token, a refusal),
# which the browser and htmx both report.
EXPECTED = (
    "Failed to load resource: the server responded with a status of 4",
    "Response Status Error Code 4",
)


async def open_page(browser: Browser, *, width: int = 1200, height: int = 900) -> Page:
    """A page that records every script error and CSP violation it reports (`problems`)."""
    page = await browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" and not message.text.startswith(EXPECTED)
            else None
        ),
    )
    page.set_default_timeout(WAIT)
    page.problems = problems  # type: ignore[attr-defined]
    return page


def quick(make_settings: MakeSettings, tmp_path: Path, **env: str) -> settings.Settings:
    config = write_config(tmp_path / "t.toml", poll_interval=0.5)
    return make_settings(NPD_SYNC_CONFIG=str(config), **env)


async def a_busy_hour(conn: asyncpg.Connection) -> None:
    """What listeners would have recorded over the last hour, for the charts."""
    await conn.execute(
        """
        INSERT INTO npd_sync.throughput (minute, listener_id, synced, failed, latency_buckets)
        SELECT date_trunc('minute', now()) - make_interval(mins => m), 'demo',
               (40 + 30 * sin(m / 6.0))::int, CASE WHEN m % 17 = 3 THEN 2 ELSE 0 END,
               ARRAY[0, 2, 10 + m % 7, 20, 6, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
          FROM generate_series(1, 59) AS m
        """
    )


async def test_the_overview_shows_the_state_and_refreshes_itself(
    browser: Browser,
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
    shots: Path,
) -> None:
    config = quick(make_settings, tmp_path)
    await make_failed(conn, config, emulator)
    await conn.execute("INSERT INTO organizations (name) VALUES ('Analytical Engines Ltd')")
    await a_busy_hour(conn)
    async with running(config), served(config, refresh=1) as console:
        page = await open_page(browser)
        await page.goto(console.url)
        await expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
        contacts = page.get_by_role("article", name="contacts")
        await expect(contacts.get_by_role("link", name="2 failed rows of contacts")).to_be_visible()
        await expect(page.get_by_text("1 alive.")).to_be_visible()
        await expect(page.get_by_role("img", name="Rows synced per minute: ")).to_be_visible()
        await page.screenshot(path=shots / "console-overview.png", full_page=True)

        # The page follows the database without being reloaded.
        await page.evaluate("window.notReloaded = true")
        synced = contacts.locator("div", has=page.locator("dt", has_text="Synced")).locator("dd")
        await expect(synced).to_have_text("1")
        await conn.execute("INSERT INTO contacts (first_name) VALUES ('Dee'), ('Eve')")
        await expect(synced).to_have_text("3")
        assert await page.evaluate("window.notReloaded") is True
        assert page.problems == []  # type: ignore[attr-defined]

        # On a phone: nothing wider than the screen.
        phone = await open_page(browser, width=375, height=800)
        await phone.goto(console.url)
        assert await phone.evaluate("document.documentElement.scrollWidth <= innerWidth")
        assert phone.problems == []  # type: ignore[attr-defined]


async def test_retry_a_failed_row_and_see_it_turn_synced(
    browser: Browser,
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
    shots: Path,
) -> None:
    config = quick(make_settings, tmp_path)
    await make_failed(conn, config, emulator)
    async with served(config, refresh=1) as console:
        page = await open_page(browser)
        await page.goto(console.url + "failed")
        table = page.get_by_role("table", name="Failed rows")
        await expect(table.get_by_role("row")).to_have_count(3)  # the header and two rows
        await expect(table.get_by_text("InvalidColumnIdException").first).to_be_visible()
        await page.screenshot(path=shots / "console-failed.png", full_page=True)

        # From the failed list to the row's story, and its retry, with the keyboard.
        await table.get_by_role("link", name="contacts 1").click()
        await expect(page.get_by_role("heading", name="contacts 1")).to_be_visible()
        await expect(page.locator("#sync-status")).to_have_text("FAILED")
        await page.get_by_role("button", name="Retry this row").focus()
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("status")).to_have_text("contacts: 1 row back in the queue")
        await expect(page.locator("#sync-status")).to_have_text("PENDING")
        await page.evaluate("window.notReloaded = true")
        # No listener ran so far: start one, and watch the page follow.
        async with running(config):
            await expect(page.locator("#sync-status")).to_have_text("SYNCED")
        assert await page.evaluate("window.notReloaded") is True
        assert page.problems == []  # type: ignore[attr-defined]

        # A selection from the list.
        await page.get_by_role("link", name="Failed rows").click()
        await page.get_by_role("checkbox", name="Select contacts 2").check()
        await page.get_by_role("button", name="Retry selected").click()
        await expect(page.get_by_role("status")).to_have_text("contacts: 1 row back in the queue")
    assert await states(conn) == {"2": "pending"}


async def test_resolve_a_conflict_and_see_the_row_turn_synced(
    browser: Browser,
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
    shots: Path,
) -> None:
    config = quick(make_settings, tmp_path, NPD_SYNC_PUBLIC_URL=PUBLIC_URL)
    await make_conflicts(conn, config, emulator)
    async with served(config, refresh=1) as console:
        page = await open_page(browser)
        await page.goto(console.url)
        contacts = page.get_by_role("article", name="contacts")
        await contacts.get_by_role("link", name="2 open conflicts in 1 row of contacts").click()
        await expect(page.get_by_role("heading", name="Conflicts", level=1)).to_be_visible()
        row = page.get_by_role("region", name="contacts 1")
        fields = row.get_by_role("table", name="Open conflicts of contacts 1")
        await expect(fields.get_by_role("row")).to_have_count(3)  # the header and two fields
        await expect(fields.get_by_role("row", name="role_title")).to_contain_text("Admiral")
        await page.screenshot(path=shots / "console-conflict.png", full_page=True)

        # One field, with the keyboard: the database's value.
        await page.get_by_role(
            "button", name="Take the database's role_title of contacts 1"
        ).focus()
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("status")).to_have_text(
            "contacts 1: role_title resolved for npd; the next sync writes it to Monday"
        )
        await expect(fields.get_by_role("row")).to_have_count(2)

        # The other from the row's story: Monday's value.
        await row.get_by_role("link", name="contacts 1", exact=True).click()
        await expect(page.locator("#sync-status")).to_have_text("CONFLICT")
        await page.get_by_role("button", name="Take Monday's email of contacts 1").click()
        await expect(page.get_by_role("status")).to_contain_text("email resolved for monday")
        await expect(
            page.get_by_text("No open conflict; the latest resolved ones follow.")
        ).to_be_visible()
        await page.evaluate("window.notReloaded = true")
        await drain(config)
        await expect(page.locator("#sync-status")).to_have_text("SYNCED")
        assert await page.evaluate("window.notReloaded") is True
        resolved = page.get_by_role("table", name="Resolved, latest first")
        await expect(resolved.get_by_role("row", name="email")).to_contain_text("lost")
        assert page.problems == []  # type: ignore[attr-defined]

        # On a phone: nothing wider than the screen.
        await conn.execute("UPDATE contacts SET role_title = 'Rear Admiral' WHERE id = 1")
        emulator.edit_item(emulator.items(CONTACTS_BOARD)[0].id, {"text": "Grand Duchess"})
        await drain(config)
        phone = await open_page(browser, width=375, height=800)
        await phone.goto(console.url + "conflicts")
        await expect(
            phone.get_by_role("button", name="Take Monday's role_title of contacts 1")
        ).to_be_visible()
        assert await phone.evaluate("document.documentElement.scrollWidth <= innerWidth")
        assert phone.problems == []  # type: ignore[attr-defined]
    assert await conn.fetchval("SELECT email FROM contacts WHERE id = 1") == "ada@board.example"


async def test_token_login(
    browser: Browser, conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await make_failed(conn, config, emulator)
    async with served(config, token=TOKEN) as console:
        page = await open_page(browser)
        await page.goto(console.url + "failed")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await expect(page.get_by_text("contacts 1")).to_have_count(0)
        await page.get_by_label("Console token").fill("not the token")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_have_text("That is not the console's token.")
        await page.get_by_label("Console token").fill(TOKEN)
        await page.get_by_label("Console token").press("Enter")
        # Back where the visitor was going.
        await expect(page.get_by_role("heading", name="Failed rows")).to_be_visible()
        await expect(page.get_by_role("link", name="contacts 1")).to_be_visible()
        cookies = await page.context.cookies()
        [session] = [c for c in cookies if c["name"] == "npd_sync_console"]
        assert session["httpOnly"]
        assert session["sameSite"] == "Strict"
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert page.problems == []  # type: ignore[attr-defined]


async def test_a_forged_form_is_refused(
    browser: Browser, conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    config = make_settings()
    await make_failed(conn, config, emulator)
    async with served(config) as console:
        page = await open_page(browser)
        await page.goto(console.url + "failed")
        # As a page elsewhere would have to: without this session's token.
        await page.evaluate(
            "document.querySelectorAll('input[name=csrf]').forEach(i => i.value = 'forged')"
        )
        await page.get_by_role("button", name="Retry contacts 1").click()
        await expect(page.get_by_role("heading", name="Forbidden")).to_be_visible()
        await expect(page.get_by_role("alert")).to_contain_text("CSRF check")
    assert await states(conn) == {"1": "failed", "2": "failed"}
