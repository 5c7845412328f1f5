"""The one halving helper: members at fault are found, the others go through."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from listener.engine.bisect import bisect


class Bad(Exception):
    pass


async def test_a_batch_without_faults_is_tried_once() -> None:
    tries: list[list[int]] = []

    async def attempt(part: Sequence[int]) -> list[int]:
        tries.append(list(part))
        return list(part)

    split = await bisect(list(range(8)), attempt, lambda exc: isinstance(exc, Bad))
    assert (split.results, split.faults, tries) == ([list(range(8))], [], [list(range(8))])


@pytest.mark.parametrize("bad", [{0}, {7}, {3, 4}, {0, 1, 2, 3, 4, 5, 6, 7}])
async def test_the_members_at_fault_are_found_and_the_others_pass(bad: set[int]) -> None:
    tries = 0

    async def attempt(part: Sequence[int]) -> list[int]:
        nonlocal tries
        tries += 1
        if bad.intersection(part):
            raise Bad(f"bad in {list(part)}")
        return list(part)

    split = await bisect(list(range(8)), attempt, lambda exc: isinstance(exc, Bad))
    assert sorted(m for part in split.results for m in part) == sorted(set(range(8)) - bad)
    assert sorted(m for m, _ in split.faults) == sorted(bad)
    assert all(str(exc) == f"bad in [{m}]" for m, exc in split.faults)
    if len(bad) == 1:
        assert tries <= 1 + 2 * 3  # about 2 log2(n)


async def test_an_error_not_about_the_members_is_raised() -> None:
    async def attempt(part: Sequence[int]) -> list[int]:
        raise OSError("the database went away")

    with pytest.raises(OSError, match="went away"):
        await bisect([1, 2, 3], attempt, lambda exc: isinstance(exc, Bad))


async def test_nothing_to_try() -> None:
    async def attempt(part: Sequence[int]) -> list[int]:
        raise AssertionError("never called")

    split = await bisect([], attempt, lambda exc: True)
    assert (split.results, split.faults) == ([], [])
