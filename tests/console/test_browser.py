"""The console in a real browser: Debian's Chromium, headless, driven by Playwright.

Never skipped: without Chromium these tests fail and say how to get it (`make test` installs
it when it can, see devtools/chromium.sh). NPD_SYNC_CHROMIUM names another binary. With
NPD_SYNC_SCREENSHOTS=DIR the screenshots in the README are written there (`make screenshots`).
"""

from __future__ import annotations

import os
import re
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


async def open_page(
    browser: Browser, *, width: int = 1200, height: int = 900, timezone: str | None = None
) -> Page:
    """A page that records every script error and CSP violation it reports (`problems`), in
    the browser's time zone `timezone` (None: the machine's)."""
    page = await browser.new_page(viewport={"width": width, "height": height}, timezone_id=timezone)
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
        table = page.get_by_role("table", name="Failed rows", exact=True)
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


# --- finding rows, failures by error, a row's history, stopping, confirming -------------------


async def test_find_a_contact_by_its_email_and_read_its_history(
    browser: Browser,
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
    shots: Path,
) -> None:
    config = quick(make_settings, tmp_path)
    await make_failed(conn, config, emulator)  # Ada failed once; the board is fixed now
    await conn.execute(
        "UPDATE contacts SET last_name = 'Lovelace', phone = '+44 20 7183 8750' WHERE id = 1"
    )
    await drain(config)  # the change brings her back: synced this time
    async with served(config, refresh=1) as console:
        page = await open_page(browser, timezone="Europe/Paris")
        await page.goto(console.url)
        search = page.get_by_role("search").get_by_role("searchbox")
        await search.fill("ADA@example.com")
        await search.press("Enter")
        # One row found: straight to it.
        await expect(page.get_by_role("heading", name="contacts 1")).to_be_visible()
        await expect(page.locator("#sync-status")).to_have_text("SYNCED")
        history = page.get_by_role("table", name="2 attempts, newest first")
        rows = history.locator("tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0)).to_contain_text("synced")
        await expect(rows.nth(0).get_by_role("link", name="ada@example.com")).to_have_attribute(
            "href", "mailto:ada@example.com"
        )
        await expect(rows.nth(0).get_by_role("link", name="+44 20 7183 8750")).to_be_visible()
        await expect(rows.nth(1)).to_contain_text("failed")
        await expect(rows.nth(1)).to_contain_text("InvalidColumnIdException")
        # Times in the browser's zone, with its name (Paris: CET or CEST).
        when = rows.nth(0).locator("time")
        await expect(when).to_have_text(re.compile(r"\b(CET|CEST|GMT\+1|GMT\+2)\b"))
        assert (await when.get_attribute("title") or "").endswith(" UTC")
        await page.screenshot(path=shots / "console-row.png", full_page=True)

        # The item as Monday holds it now, on demand.
        item = await conn.fetchval("SELECT monday_id FROM contacts WHERE id = 1")
        emulator.edit_item(item, {"text": "Countess"})
        await page.get_by_role("button", name="Read it from Monday now").click()
        now = page.get_by_role("table", name=re.compile(r"as Monday said it"))
        await expect(now.get_by_role("row", name=re.compile(r"^text "))).to_contain_text("Countess")

        # A name finds her too, among others.
        await conn.execute("INSERT INTO contacts (first_name, last_name) VALUES ('Ada', 'Byron')")
        await page.get_by_role("link", name="Find a row").click()
        await page.get_by_label("Key, Monday item id, email or name").fill("ada")
        await page.get_by_role("button", name="Find", exact=True).click()
        found = page.get_by_role("table", name=re.compile("found for"))
        await expect(found.get_by_role("link", name="contacts 1", exact=True)).to_be_visible()
        await expect(found).to_contain_text("Ada Lovelace")
        await expect(found.get_by_role("link", name="contacts 4", exact=True)).to_be_visible()
        assert page.problems == []  # type: ignore[attr-defined]


async def test_failed_rows_grouped_by_error_stop_retrying_and_retry_all_confirmed(
    browser: Browser,
    conn: asyncpg.Connection,
    make_settings: MakeSettings,
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    config = quick(make_settings, tmp_path)
    emulator.remove_column(CONTACTS_BOARD, "email")
    await conn.execute(
        "INSERT INTO contacts (first_name, email) SELECT 'P' || g, 'p' || g || '@example.com'"
        "  FROM generate_series(1, 4) g"
    )
    await drain(config)  # four fail: the board has no email column
    emulator.add_column(CONTACTS_BOARD, "email", "email")
    await conn.execute("INSERT INTO contacts (first_name, email) VALUES ('Bad', 'not an email')")
    await drain(config)  # one more fails, with an error of its own
    async with served(config, refresh=1) as console:
        page = await open_page(browser)
        await page.goto(console.url + "failed")
        groups = page.get_by_role("table", name="Failed rows by error")
        await expect(groups.locator("tbody tr")).to_have_count(2)
        first = groups.locator("tbody tr").nth(0)
        await expect(first).to_contain_text("4")
        await expect(first).to_contain_text("InvalidColumnIdException")
        # One group: its rows only.
        await first.get_by_role("link").click()
        rows = page.get_by_role("table", name="Failed rows", exact=True)
        await expect(rows.locator("tbody tr")).to_have_count(4)
        await expect(page.get_by_text("4 failed rows with the error")).to_be_visible()

        # Stop retrying one of them: it leaves the list.
        await page.get_by_role("button", name="Stop retrying contacts 4").click()
        await expect(page.get_by_role("status")).to_contain_text("stopped retrying 1 row (4)")
        await expect(rows.locator("tbody tr")).to_have_count(3)

        # Retrying everything asks first, with the count.
        await page.get_by_role("link", name="Every error").click()
        await page.get_by_role("button", name="Retry every failed row of contacts…").click()
        await expect(
            page.get_by_role("heading", name="Retry every failed row of contacts?")
        ).to_be_visible()
        await page.get_by_role("link", name="Cancel").click()
        await expect(page.get_by_role("heading", name="Failed rows", level=1)).to_be_visible()
        assert await states(conn) == {"1": "failed", "2": "failed", "3": "failed", "5": "failed"}
        await page.get_by_role("button", name="Retry every failed row of contacts…").click()
        await page.get_by_role("button", name="Retry 4 rows").click()
        # What happened, then the state as it is: Bad fails again, and the message goes.
        status = page.get_by_role("status")
        await expect(status).to_contain_text("contacts: 5 rows back in the queue")
        await page.evaluate("window.notReloaded = true")
        async with running(config):
            await expect(rows.locator("tbody tr")).to_have_count(1)
            await expect(rows).to_contain_text("contacts 5")
            await expect(status).to_have_count(0)
        assert await page.evaluate("window.notReloaded") is True
        assert page.problems == []  # type: ignore[attr-defined]
    assert await states(conn) == {"5": "failed"}


async def test_the_mapping_page(
    browser: Browser, conn: asyncpg.Connection, make_settings: MakeSettings, emulator: Emulator
) -> None:
    async with served(make_settings()) as console:
        page = await open_page(browser)
        await page.goto(console.url)
        await page.get_by_role("link", name="Mapping").click()
        contacts = page.get_by_role("table", name="Columns of contacts")
        await expect(contacts.get_by_role("row", name="email")).to_contain_text("'email'")
        await expect(contacts.get_by_role("row", name="email")).to_contain_text("yes")
        assert page.problems == []  # type: ignore[attr-defined]
