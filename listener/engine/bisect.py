"""Finding the members of a batch that make it fail, by halving: one helper for every place a
batch is split (rows whose key does not fit, write-backs the database refuses, an operation
that makes a whole request to Monday invalid).

A batch is tried whole; when it fails for a reason that is about its members, it is split in
halves, each tried again, down to the single members at fault. The others succeed as usual, in
as few tries as their number allows: a batch of n with one bad member costs about 2 log2(n)
tries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Split(Generic[T, R]):
    """What came of a batch: the results of the tries that succeeded, in order, and each
    member at fault with its error."""

    results: list[R] = field(default_factory=list)
    faults: list[tuple[T, BaseException]] = field(default_factory=list)


async def bisect(
    members: Sequence[T],
    attempt: Callable[[Sequence[T]], Awaitable[R]],
    blame: Callable[[BaseException], bool],
) -> Split[T, R]:
    """Try `attempt` on all `members`, then on halves of any batch that fails with an error
    `blame` says is about its members; other errors propagate."""
    split: Split[T, R] = Split()
    if members:
        await _try(members, attempt, blame, split)
    return split


async def _try(
    members: Sequence[T],
    attempt: Callable[[Sequence[T]], Awaitable[R]],
    blame: Callable[[BaseException], bool],
    split: Split[T, R],
) -> None:
    try:
        split.results.append(await attempt(members))
        return
    except Exception as exc:
        if not blame(exc):
            raise
        if len(members) == 1:
            split.faults.append((members[0], exc))
            return
    half = len(members) // 2
    await _try(members[:half], attempt, blame, split)
    await _try(members[half:], attempt, blame, split)
