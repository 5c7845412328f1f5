"""A guard against slowing the emulator down: the benchmark pushes 500-alias batches."""

from __future__ import annotations

import json
import time

from listener.emulator import Emulator, Limits

from .helpers import CONTACTS, Api

BATCH = 500


def batch_document(n: int) -> str:
    declared = ", ".join(f"$n{i}: String!, $v{i}: JSON" for i in range(n))
    fields = " ".join(
        f"c{i}: create_item(board_id: $b, item_name: $n{i}, column_values: $v{i}) {{ id }}"
        for i in range(n)
    )
    return f"mutation ($b: ID!, {declared}) {{ {fields} complexity {{ query }} }}"


def batch_variables(n: int, run: int) -> dict[str, str]:
    variables = {"b": CONTACTS}
    for i in range(n):
        variables[f"n{i}"] = f"Person {run}-{i}"
        variables[f"v{i}"] = json.dumps(
            {
                "npd_id": f"{run}-{i}",
                "email": {"email": f"p{run}.{i}@example.com", "text": f"p{run}.{i}@example.com"},
                "phone": {"phone": f"+1202555{i % 10000:04d}", "countryShortName": "US"},
                "text": "Engineer",
                "long_text": {"text": "Some notes. " * 10},
            }
        )
    return variables


async def test_a_500_alias_batch_is_fast_once_its_shape_is_known(api: Api, emu: Emulator) -> None:
    emu.set_limits(Limits.unlimited())
    document = batch_document(BATCH)
    first = await api.post(document, batch_variables(BATCH, 0))
    assert first.errors == []
    started = time.perf_counter()
    second = await api.post(document, batch_variables(BATCH, 1))
    elapsed = time.perf_counter() - started
    assert second.errors == []
    assert len(emu.items(CONTACTS)) == 2 * BATCH
    # About 0.04 s here; the bound only catches a regression of an order of magnitude.
    assert elapsed < 1.0, f"{elapsed:.3f} s for {BATCH} aliased create_item"
