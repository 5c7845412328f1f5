"""The documentation: a short front door, every link and every file it names shipping with the
project, a command reference that cannot drift from the commands, and `.env.example` naming
every variable npd-sync reads."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from dotenv import dotenv_values

from devtools import docs_reference
from listener import cli, settings
from tests.conftest import ROOT

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE = re.compile(r"`([^`\n]+)`")
# A file path in inline code: a relative path with a folder in it, or a Markdown file.
PATH = re.compile(r"(\.\./)*[\w.-]+(/[\w.-]+)+/?|[\w.-]+\.md")
# A Markdown file named anywhere in the prose ("What CONTRACT.md promises").
MARKDOWN = re.compile(r"(?<![\w/.#-])(?:\.\./)*[\w.-]+(?:/[\w.-]+)*\.md\b")
# Paths the pages name that are made, not shipped: each says by what.
MADE = {
    ".venv/": "make setup",
    ".venv/bin/npd-sync": "make setup",
    "site/": "make docs",
    "bench/results/latest.json": "make bench",
    "listener/_sql": "the wheel: sql/ is packaged there",
}


def ships(path: Path) -> bool:
    """Whether a path is a file or folder of the repository (not of the machine around it)."""
    path = path.resolve()
    return path.is_relative_to(ROOT) and path.exists()


def prose(page: Path) -> str:
    """The page without its fenced blocks (transcripts and examples, not references)."""
    return FENCE.sub("", page.read_text(encoding="utf-8"))


def test_the_readme_is_a_short_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[:2] == ["## Try it: two commands", "## Your own boards in ten minutes"]
    assert "npd-sync mapping init" in "\n".join(lines)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_of_the_repository(page: Path) -> None:
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"^[a-z]+:|^#", target):
            continue  # another site, mail, or a place in the same page
        if not ships(page.parent / target.split("#", 1)[0]):
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_page_names_ships_with_the_project(page: Path) -> None:
    missing = []
    for span in CODE.findall(prose(page)):
        if not PATH.fullmatch(span) or span in MADE:
            continue
        if not ships(ROOT / span):
            missing.append(span)
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_markdown_file_a_page_mentions_ships_with_the_project(page: Path) -> None:
    missing = []
    for name in MARKDOWN.findall(prose(page)):
        if not any(ships(base / name) for base in (ROOT, page.parent)):
            missing.append(name)
    assert missing == []


def test_the_checks_catch_what_the_issue_found(tmp_path: Path) -> None:
    # The README pointed at CONTRACT.md and ../shared/inbound-research.md, which do not ship
    # (though ../shared/ may exist next to a checkout, as it does on the CI machine).
    page = tmp_path / "page.md"
    page.write_text(
        "See `CONTRACT.md` and `../shared/inbound-research.md`, [here](../shared/x.md), and\n"
        "`devtools/sample_schema.sql`.\n```\n`not/checked.sql`\n```\n"
    )
    spans = [s for s in CODE.findall(prose(page)) if PATH.fullmatch(s)]
    assert spans == ["CONTRACT.md", "../shared/inbound-research.md", "devtools/sample_schema.sql"]
    assert [s for s in spans if not ships(ROOT / s)] == spans[:2]
    assert LINK.findall(prose(page)) == ["../shared/x.md"]
    page.write_text("What CONTRACT.md promises; see docs/mapping.md, [x](y.md#z).\n")
    assert MARKDOWN.findall(prose(page)) == ["CONTRACT.md", "docs/mapping.md", "y.md"]


def test_every_page_is_in_the_site() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        assert f": {page.name}\n" in nav, page.name


# --- the command reference ----------------------------------------------------------------------


def all_commands() -> list[str]:
    return [path for path, _ in docs_reference.commands(cli.main)]


def test_the_reference_has_every_command_with_its_whole_help() -> None:
    text = docs_reference.on_page_markdown(
        (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    )
    assert docs_reference.MARKER not in text
    paths = all_commands()
    assert {"npd-sync", "npd-sync mapping init", "npd-sync mapping show",
            "npd-sync webhooks install", "npd-sync conflicts resolve"} <= set(paths)  # fmt: skip
    for path, ctx in docs_reference.commands(cli.main):
        assert re.search(rf"^#+ `{re.escape(path)}`$", text, re.M), path
        for param in ctx.command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.opts[-1] in text, (path, param.opts)
    mapping_init = text.split("`npd-sync mapping init`", 1)[1]
    for option in ("--table TABLE", "--board ID", "--create-columns", "--write FILE"):
        assert option in mapping_init.split("\n#", 1)[0]


def test_a_command_added_to_the_cli_appears_in_the_reference() -> None:
    group = click.Group("npd-sync", commands=[click.Command("extra", help="Extra things.")])
    assert "## `npd-sync extra`" not in docs_reference.reference(cli.main)
    assert "### `npd-sync extra`" in docs_reference.reference(group)
    assert "Extra things." in docs_reference.reference(group)


# --- .env.example --------------------------------------------------------------------------------


def read_variables() -> set[str]:
    """Every environment variable npd-sync reads: the settings' and the commands' own."""
    found = {name.upper() for name in settings.Env.model_fields}
    found |= {"NPD_SYNC_CONSOLE_TOKEN"}  # read by the console's options (listener/cli.py)
    for _, ctx in docs_reference.commands(cli.main):
        for param in ctx.command.params:
            envvar = getattr(param, "envvar", None)
            if isinstance(envvar, str):
                found.add(envvar)
    return found


def test_env_example_names_every_variable_and_loads_as_written() -> None:
    example = ROOT / ".env.example"
    text = example.read_text(encoding="utf-8")
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, re.M))
    assert read_variables() <= named, read_variables() - named
    assert {"NPD_SYNC_LOG_LEVEL", "MONDAY_SIGNING_SECRET", "NPD_SYNC_CONFIG"} <= read_variables()
    values = {k: v for k, v in dotenv_values(example).items() if v is not None}
    loaded = settings.load(environ=values)
    assert loaded.database_url is not None
    assert loaded.api_key is None  # left empty: to be filled in
    # Each variable (or group of them) has a comment above it.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^#? ?[A-Z][A-Z0-9_]+=", line):
            above = lines[i - 1]
            assert above.startswith("#") or re.match(r"^[A-Z][A-Z0-9_]+=", above), line
