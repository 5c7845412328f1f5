"""Committing a batch's outcomes: the write-back to the rows (`monday_id`, `sync_status`...),
what reading items decided for them (the board's values, unlinks, deletes, conflicts), the
links, and the queue entries' completions, all in one transaction.

The write-back must land even while the listener is being cancelled, or a create is redone;
and it is worth waiting for a database that restarts rather than leaving the batch to be
redone after its lease runs out. A row the application refuses to have written (a constraint,
a trigger of its own) is found by halving and fails alone; a row the application holds locked
is left, and its entry comes back for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg

from listener import attempts, db, fault, links, relations, rows
from listener.engine import decide, queue
from listener.engine.bisect import bisect
from listener.engine.decide import Decision
from listener.engine.exchange import Created
from listener.engine.outcome import Outcome, name_of
from listener.engine.queue import Completion
from listener.inbound import conflicts, inbox, merge
from listener.monday import api, errors

log = logging.getLogger("npd_sync.worker")

Row = tuple[int, str]  # (table id, key)


@dataclass
class _Commit:
    """One attempt at committing a batch: the rows written and those the database refused."""

    careful: bool  # write in savepoints, so that a refused row fails alone
    written: set[Row] = field(default_factory=set)
    refused: dict[Row, fault.Fault] = field(default_factory=dict)


class Recorder:
    """Records the outcomes of batches for one listener."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        tables: Mapping[int, rows.Table],
        listener_id: str,
        policy: decide.Policy,
        *,
        patience: float,
        rng: random.Random | None = None,
    ) -> None:
        self.pool = pool
        self.tables = tables
        self.listener_id = listener_id
        self.policy = policy
        self.patience = patience  # seconds to wait for a database that is away
        self.rng = rng or random.Random()
        # Whether any table has connect-boards columns: links between rows to look after.
        self.relations = any(t.mapping.relations for t in tables.values())

    async def record(
        self, decisions: Sequence[Decision], retired: Sequence[str], outcome: Outcome
    ) -> list[Completion]:
        """Write back to the rows, the links and the queue entries, in one transaction;
        returns what was recorded for each entry."""
        deadline = time.monotonic() + self.patience
        delay = 0.2
        careful = False
        while True:
            try:
                attempt = _Commit(careful)
                return await asyncio.shield(self._commit(decisions, retired, attempt, outcome))
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                pass  # cannot happen by design (key order, SKIP LOCKED); cheap insurance
            except (*db.ERRORS, asyncpg.CannotConnectNowError) as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning(
                    "sync.write_back_retry", extra={"error": str(exc) or type(exc).__name__}
                )
            except asyncpg.PostgresError as exc:
                if careful or not db.about_the_rows(exc):
                    raise
                # A row the application refuses (a constraint, a trigger): find it and let it
                # fail alone, the others written as usual.
                careful = True
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _commit(
        self,
        decisions: Sequence[Decision],
        retired: Sequence[str],
        attempt: _Commit,
        outcome: Outcome,
    ) -> list[Completion]:
        # Counted only once the transaction commits: a rolled back attempt counts nothing.
        landed = Outcome()
        async with self.pool.acquire() as conn, conn.transaction():
            await links.unlink(conn, retired)
            by_table: dict[int, list[Decision]] = defaultdict(list)
            for d in decisions:
                by_table[d.completion.entry.table_id].append(d)
            for table_id, group in by_table.items():
                await self._write_back(conn, self.tables[table_id], group, attempt)
            completions = [await self._complete(conn, d, attempt, landed) for d in decisions]
            if self.relations:
                await self._relate(conn, decisions, completions, retired)
            await attempts.record(conn, self.listener_id, _attempts(decisions, completions))
            await queue.complete(conn, self.listener_id, completions)
        outcome.inbound.update(landed.inbound)
        outcome.inbound_latencies += landed.inbound_latencies
        return completions

    async def _write_back(
        self, conn: db.Conn, table: rows.Table, group: Sequence[Decision], attempt: _Commit
    ) -> None:
        writes = [
            rows.WriteBack(
                d.completion.entry.key, d.keeps or d.completion.monday_id, d.status, d.error
            )
            for d in group
            if d.status is not None
        ]
        if not attempt.careful:
            keys = await rows.write_back(conn, table, writes)
        else:
            # In halves, each under a savepoint, down to the rows the database refuses.
            async def write(part: Sequence[rows.WriteBack]) -> set[str]:
                async with conn.transaction():
                    return await rows.write_back(conn, table, part)

            split = await bisect(writes, write, _about_the_rows)
            keys = set().union(*split.results)
            attempt.refused.update(
                ((table.id, w.key), fault.from_database(exc))
                for w, exc in split.faults
                if isinstance(exc, asyncpg.PostgresError)
            )
        attempt.written.update((table.id, key) for key in keys)
        # What Monday holds now, whether or not the row could be written.
        await links.link(conn, table.id, [d.link for d in group if d.link is not None])

    async def _complete(
        self, conn: db.Conn, d: Decision, attempt: _Commit, landed: Outcome
    ) -> Completion:
        """What to record for one entry, once what reading its item decided has landed."""
        c = d.completion
        row = (c.entry.table_id, c.entry.key)
        if row not in attempt.refused and d.landing is not None and c.outcome is queue.Outcome.DONE:
            await self._land(conn, d, attempt, landed)
        if row in attempt.refused:
            return decide.refused(c, attempt.refused[row], self.policy, self.rng)
        deleting = d.landing is not None and d.landing.fate == "delete"
        touches_row = d.status is not None or deleting
        if touches_row and c.outcome is queue.Outcome.DONE and row not in attempt.written:
            # The row is locked by the application or was just deleted: keep the entry (and
            # the item id we learnt) and come back to it.
            return Completion(
                c.entry, queue.Outcome.WAIT, fault.ours("row busy, write-back postponed"),
                self.policy.write_back_retry, c.monday_id, c.uncertain,
            )  # fmt: skip
        return c

    async def _land(self, conn: db.Conn, d: Decision, attempt: _Commit, landed: Outcome) -> None:
        """Write into the row, and the records, what reading its item decided; when careful, a
        row the database refuses (a constraint, a trigger of the application) is refused
        alone."""
        row = (d.completion.entry.table_id, d.completion.entry.key)
        if not attempt.careful:
            if await self._landed(conn, d, row in attempt.written, landed):
                attempt.written.add(row)
            return
        try:
            async with conn.transaction():
                if await self._landed(conn, d, row in attempt.written, landed):
                    attempt.written.add(row)
        except asyncpg.PostgresError as exc:
            if not db.about_the_rows(exc):
                raise
            attempt.refused[row] = fault.from_database(exc)

    async def _landed(self, conn: db.Conn, d: Decision, locked: bool, landed: Outcome) -> bool:
        """Whether the row took what reading its item decided (a row the write-back could not
        lock is busy: it comes back)."""
        landing, entry = d.landing, d.completion.entry
        assert landing is not None
        table = self.tables[entry.table_id]
        if landing.fate == "delete":
            if not await rows.pull_delete(conn, table, entry.key):
                return False
            await links.drop(conn, entry.table_id, entry.key)
            landed.landed(table.name, "deleted")
            return True
        if not locked:
            return False
        if landing.fate == "unlink":
            await links.mark_unlinked(conn, entry.table_id, entry.key)
            landed.landed(table.name, "unlinked")
            return True
        await rows.pull_write(conn, table, entry.key, landing.write)
        if landing.write:
            landed.landed(table.name, "written")
            if entry.monday_changed_at is not None:
                lag = dt.datetime.now(dt.UTC) - entry.monday_changed_at
                landed.inbound_latencies.append(lag.total_seconds())
        if landing.conflicts:
            landed.landed(table.name, "conflict", len(landing.conflicts))
        if landing.item_id is not None and (landing.agree or landing.fate == "relink"):
            await links.link(
                conn, entry.table_id, [links.Link(entry.key, landing.item_id, landing.agree)]
            )
        await conflicts.record(
            conn, entry.table_id, entry.key, landing.item_id, landing.conflicts,
            policy=table.mapping.conflict, npd_changed_at=entry.last_changed_at,
            monday_changed_at=entry.monday_changed_at,
        )  # fmt: skip
        await conflicts.settle(conn, entry.table_id, entry.key, landing.settled)
        return True

    async def _relate(
        self,
        conn: db.Conn,
        decisions: Sequence[Decision],
        completions: Sequence[Completion],
        retired: Sequence[str],
    ) -> None:
        """Connect-boards links: rows pushed without a link whose row had no item yet wait for
        it; rows that waited for a row that got its item now, or whose link holds an item
        that went, arrive again (their next push carries or clears the link)."""
        waits = [
            ((c.entry.table_id, c.entry.key), ref)
            for d, c in zip(decisions, completions, strict=True)
            if c.outcome is queue.Outcome.DONE
            for ref in d.waiting
        ]
        await relations.await_items(conn, waits)
        linked = [(d.completion.entry.table_id, d.link.key) for d in decisions if d.link]
        again = await relations.items_came(conn, linked)
        if retired:
            for table in self.tables.values():
                for column in table.mapping.relations:
                    keys = await relations.linking(conn, table.id, column.id, retired)
                    again += [(table.id, key) for key in keys]
        await queue.arrive(conn, [queue.Arrival(t, k) for t, k in dict.fromkeys(again)])

    async def made(self, table: rows.Table, read: Created, outcome: Outcome) -> None:
        """Make a row for each item created on the board that is to be one, and record what
        became of the inbox entries."""
        if read.error is not None:
            exc = read.error
            wait = exc.retry_after or 1.0
            kind: inbox.Outcome = "retry" if exc.kind is errors.Kind.TRANSIENT else "wait"
            error = fault.from_monday(exc)
            done = [inbox.Completion(e, kind, error, wait) for e in read.entries]
        else:
            done = await self._insert(table, read, outcome)
            done += [inbox.Completion(e, "wait") for e in read.later]
        async with self.pool.acquire() as conn:
            await inbox.complete(conn, self.listener_id, done)

    async def _insert(
        self, table: rows.Table, read: Created, outcome: Outcome
    ) -> list[inbox.Completion]:
        done: list[inbox.Completion] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for entry in read.entries:
                found = read.items.get(entry.item_id)
                values = (
                    None if found is None else merge.new_row(found, table.mapping, read.relations)
                )
                if values is None or found is None:
                    done.append(inbox.Completion(entry, "done"))
                    continue
                try:
                    async with conn.transaction():
                        await self._insert_row(conn, table, found, values)
                except asyncpg.PostgresError as exc:
                    reason = fault.from_database(exc, f"cannot insert a row for item {found.id}")
                    log.warning(
                        "inbound.insert_failed",
                        extra={"table": table.name, "error": fault.line(reason)},
                    )
                    done.append(inbox.Completion(entry, "failed", reason))
                    continue
                outcome.landed(table.name, "inserted")
                done.append(inbox.Completion(entry, "done"))
        return done

    @staticmethod
    async def _insert_row(
        conn: db.Conn, table: rows.Table, item: api.Item, values: Mapping[str, str | None]
    ) -> None:
        key = await rows.pull_insert(conn, table, item.id, values)
        agreed = merge.monday_values(item, table.mapping, key)
        if table.mapping.npd_id_column:
            agreed[table.mapping.npd_id_column] = None
        await links.link(conn, table.id, [links.Link(key, item.id, agreed)])
        # The row owes the item its npd_id: an ordinary push sends it.
        await queue.arrive(conn, [queue.Arrival(table.id, key)])

    async def release(self, entries: Sequence[queue.Entry]) -> None:
        """Give back the leases of a batch that could not finish, so that it is retried now."""
        with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
            async with self.pool.acquire(timeout=10) as conn:
                await queue.release(conn, self.listener_id, entries)


HISTORY = frozenset({"synced", "retried", "failed"})  # what a row's history keeps


def _attempts(
    decisions: Sequence[Decision], completions: Sequence[Completion]
) -> list[attempts.Attempt]:
    """The attempts a batch made, for the rows' history: every entry that synced, or tried and
    failed (a wait or a row with nothing to do is no attempt)."""
    found = []
    for d, c in zip(decisions, completions, strict=True):
        outcome = name_of(d, c)
        if outcome in HISTORY:
            found.append(
                attempts.Attempt(
                    c.entry.table_id,
                    c.entry.key,
                    outcome,
                    d.action,
                    c.monday_id,
                    d.sent,
                    c.error,
                    d.request_id or (c.error.request_id if c.error else None),
                )
            )
    return found


def _about_the_rows(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.PostgresError) and db.about_the_rows(exc)
