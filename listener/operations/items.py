"""Links to items on Monday, for people to follow."""

from __future__ import annotations


def url(template: str, board: str | None, item: str | None) -> str | None:
    """The link to an item on Monday (`template` holds `{board}` and `{item}`), when both ids
    are known and look like Monday's."""
    if not board or not item or not board.isdigit() or not item.isdigit():
        return None
    return template.format(board=board, item=item)
