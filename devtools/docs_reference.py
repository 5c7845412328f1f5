"""The docs site's command reference, written at build time from the click commands' own help.

A MkDocs hook (mkdocs.yml, `hooks:`): in a page, the line `<!-- npd-sync commands -->` becomes
a section per command, each with the text `npd-sync ... --help` prints, so the reference says
what the code does and cannot drift from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

MARKER = "<!-- npd-sync commands -->"
PROG = "npd-sync"
WIDTH = 80  # the help text's line length, whatever the terminal that builds the site


def commands(
    command: click.Command, parent: click.Context | None = None, name: str = PROG
) -> Iterator[tuple[str, click.Context]]:
    """Every command under `command` (itself first), with its context, in the order of
    `--help`."""
    settings = {**command.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    ctx = click.Context(command, info_name=name, parent=parent, **settings)
    yield ctx.command_path, ctx
    if isinstance(command, click.Group):
        for sub in command.list_commands(ctx):
            found = command.get_command(ctx, sub)
            if found is not None and not found.hidden:
                yield from commands(found, ctx, sub)


def reference(command: click.Command) -> str:
    """The reference: a heading and the help text of each command."""
    parts = []
    for path, ctx in commands(command):
        level = "#" * min(2 + path.count(" "), 4)
        text = ctx.command.get_help(ctx)
        parts.append(f"{level} `{path}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs' hook: put the reference where a page has the marker."""
    if MARKER not in markdown:
        return markdown
    from listener import cli  # the product's commands, imported only when a page needs them

    return markdown.replace(MARKER, reference(cli.main))
