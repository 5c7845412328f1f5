"""The sync itself: claim a batch, load its rows, push them to Monday, record the outcome.

A batch is handled in four steps, each one round trip per table rather than per row: claim
(one statement), load (one query per table), push (a few requests per board, many mutations
each), then write-back and completion together in one transaction. `drain` works batches until
nothing is due; the listener (`listener.daemon`) and `npd-sync backfill` both use it.

A record or row that cannot be handled costs itself only. Change records that can never be
synced are set aside at ingest; when a batch statement fails because of its rows (a key that
does not fit the key column, a write-back the application refuses), the batch is split in
halves until the rows at fault are found, and those alone fail. An item is archived only if
npd-sync linked it to that row (see `rules.vet_archives`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from listener import db, fault, links, sql
from listener.inbound import conflicts, inbox, merge
from listener.metrics import Metrics
from listener.monday import api, errors, governor
from listener.outbound import queue, rows, rules
from listener.settings import Settings, Tuning

log = logging.getLogger("npd_sync.worker")

ANALYZE_EVERY = 10_000  # change records ingested between two ANALYZEs of the queue


@dataclass
class Stats:
    """Running totals, for logs, status and tests."""

    synced: int = 0
    unchanged: int = 0  # nothing to send: Monday held the row's values already
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    waited: int = 0
    requests: int = 0
    ingested: int = 0  # change records moved into the queue
    pulled: int = 0  # rows the board's edits were written into
    inserted: int = 0  # rows made for items created on the board
    conflicts: int = 0  # conflicts found (settled by policy or left open)
    rejected: int = 0  # change records set aside at ingest: they can never be synced


@contextlib.asynccontextmanager
async def open_worker(
    settings: Settings,
    pool: asyncpg.Pool,
    tables: Sequence[rows.Table],
    listener_id: str,
    *,
    metrics: Metrics | None = None,
    inbound: bool | None = None,
) -> AsyncIterator[Worker]:
    """A worker with its governor and its Monday client (none without MONDAY_API_KEY), the
    client's HTTP session open for as long as the block runs. `inbound` overrides whether
    the board's edits flow back (on when NPD_SYNC_PUBLIC_URL is set)."""
    metrics = metrics or Metrics()
    tuning = settings.tuning
    meter = governor.Governor(
        pool, governor.limits_for(tuning), max_wait=tuning.max_rate_wait, metrics=metrics
    )
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(meter.flush)
        client = None
        if settings.api_key is not None:
            client = api.client(settings, on_reply=meter.observe)
            await stack.enter_async_context(client)
        yield Worker(
            tuning, pool, client, meter, tables, listener_id, metrics=metrics,
            inbound=settings.inbound if inbound is None else inbound,
        )  # fmt: skip


class Worker:
    """Handles batches of queue entries for a set of tables.

    `client` is None when no API key is set: changes are then ingested and left pending.
    """

    def __init__(
        self,
        tuning: Tuning,
        pool: asyncpg.Pool,
        client: api.Client | None,
        meter: governor.Governor,
        tables: Sequence[rows.Table],
        listener_id: str,
        *,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        inbound: bool = False,
    ) -> None:
        self.tuning = tuning
        self.pool = pool
        self.client = client
        self.governor = meter
        self.tables = {t.id: t for t in tables}
        self.listener_id = listener_id
        self.rng = rng or random.Random()
        self.policy = rules.Policy(
            tuning.max_attempts, tuning.backoff_base, tuning.backoff_cap,
            tuning.write_back_retry_seconds,
        )  # fmt: skip
        self.stats = Stats()
        self.metrics = metrics or Metrics()
        self.inbound = inbound
        self.finished = time.monotonic()  # when an entry was last synced or failed for good
        self._analyzed = 0

    @property
    def _boards(self) -> dict[str, rows.Table]:
        """The tables whose boards are configured, by board id."""
        return {t.mapping.board_id: t for t in self.tables.values() if t.mapping.board_id}

    @property
    def active_tables(self) -> list[int]:
        """Tables whose entries can be worked now: a board is set and Monday is configured."""
        if self.client is None:
            return []
        return [t.id for t in self.tables.values() if t.mapping.board_id]

    async def next_due(self) -> float | None:
        """Seconds until there is work: 0 when there is some now (change records to take in,
        an entry due), the rest of a pause Monday asked for, the time the next entry falls due;
        None when nothing waits."""
        async with self.pool.acquire() as conn:
            changes, due_in = await queue.pending_work(
                conn, self.active_tables, inbound=self.inbound
            )
        paused = await self.governor.paused_for()
        if paused:
            return paused
        if changes or (due_in is not None and due_in <= 0):
            return 0.0
        return due_in

    async def drain(self, stop: asyncio.Event | None = None) -> int:
        """Handle batches until nothing is due (or `stop` is set); returns entries handled."""
        handled = 0
        while stop is None or not stop.is_set():
            count = await self.run_once()
            if count == 0:
                break
            handled += count
        return handled

    async def run_once(self) -> int:
        """Ingest change records, then claim and handle one batch; returns entries handled."""
        tuning = self.tuning
        async with self.pool.acquire() as conn:
            ingested = await queue.ingest(conn, max(1000, tuning.batch_size))
            self.stats.ingested += ingested.records
            self._rejected(ingested.rejected)
            if self.stats.ingested - self._analyzed >= ANALYZE_EVERY:
                # A backlog grew since the queue's statistics were taken: without fresh ones
                # the claim query sorts the whole queue (measured: 40 ms a claim instead of 1
                # at 200,000 entries), and autovacuum may be off or late.
                self._analyzed = self.stats.ingested
                await conn.execute("ANALYZE npd_sync.queue")
            active = self.active_tables
            if not active or await self.governor.paused_for() > 0:
                return 0
            if self.inbound:
                await inbox.route(conn, max(1000, tuning.batch_size))
            entries = await queue.claim(
                conn, active, limit=tuning.batch_size, listener_id=self.listener_id,
                lease_seconds=tuning.lease_seconds,
            )  # fmt: skip
            created: list[inbox.Entry] = []
            if not entries and self.inbound:
                created = await inbox.claim(
                    conn, list(self._boards), limit=api.ITEMS_PAGE,
                    listener_id=self.listener_id, lease_seconds=tuning.lease_seconds,
                )  # fmt: skip
        if created:
            await self._created(created)
            return len(created)
        if entries:
            renewing = asyncio.create_task(self._renew(entries), name="leases")
            try:
                await self.handle(entries)
            except BaseException:
                # Don't leave the batch leased for lease_seconds: let it be retried now.
                await asyncio.shield(self._release(entries))
                raise
            finally:
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing
        return len(entries)

    async def _created(self, entries: Sequence[inbox.Entry]) -> None:
        """Work inbox entries of items no row is linked to: read them, and make a row for each
        item created on the board (on_monday_create = insert)."""
        assert self.client is not None
        by_board: dict[str, list[inbox.Entry]] = defaultdict(list)
        for entry in entries:
            by_board[entry.board_id].append(entry)
        for board, group in by_board.items():
            table = self._boards[board]
            columns = [c.id for c in table.mapping.inbound_columns]
            if table.mapping.npd_id_column:
                columns.append(table.mapping.npd_id_column)
            later: list[inbox.Entry] = []
            try:
                reads = [governor.READ] * len(group)
                async with self.governor.request(None, reads) as granted:
                    # As many as the budget holds now; the others are due again at once.
                    group, later = group[:granted], group[granted:]
                    items = await api.read_items(self.client, [e.item_id for e in group], columns)
                self.stats.requests += 1
            except errors.MondayError as exc:
                await self._note_request_error(exc)
                wait = exc.retry_after or 1.0
                outcome: inbox.Outcome = (
                    "wait" if exc.kind is not errors.Kind.TRANSIENT else "retry"
                )
                error = fault.from_monday(exc)
                done = [inbox.Completion(e, outcome, error, wait) for e in group + later]
            else:
                done = await self._insert_rows(table, group, items)
                done += [inbox.Completion(e, "wait") for e in later]
            async with self.pool.acquire() as conn:
                await inbox.complete(conn, self.listener_id, done)

    async def _insert_rows(
        self, table: rows.Table, group: Sequence[inbox.Entry], items: dict[str, api.Item]
    ) -> list[inbox.Completion]:
        done: list[inbox.Completion] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for entry in group:
                found = items.get(entry.item_id)
                values = None if found is None else merge.new_row(found, table.mapping)
                if values is None or found is None:
                    done.append(inbox.Completion(entry, "done"))
                    continue
                try:
                    async with conn.transaction():
                        key = await rows.pull_insert(conn, table, found.id, values)
                        agreed = merge.monday_values(found, table.mapping, key)
                        if table.mapping.npd_id_column:
                            agreed[table.mapping.npd_id_column] = None
                        await links.link(conn, table.id, [links.Link(key, found.id, agreed)])
                        # The row owes the item its npd_id: an ordinary push sends it.
                        await queue.queue_rows(conn, table.id, [key])
                except asyncpg.PostgresError as exc:
                    reason = fault.from_database(exc, f"cannot insert a row for item {found.id}")
                    log.warning(
                        "inbound.insert_failed",
                        extra={"table": table.name, "error": fault.line(reason)},
                    )
                    done.append(inbox.Completion(entry, "failed", reason))
                    continue
                self.stats.inserted += 1
                self.metrics.inbound.labels(table.name, "inserted").inc()
                done.append(inbox.Completion(entry, "done"))
        return done

    async def _renew(self, entries: Sequence[queue.Entry]) -> None:
        # Only the batch in flight: a lease left behind by a batch that could not give it
        # back (the database was away) must run out, so that the entry is claimed again.
        every = self.tuning.lease_seconds / 3
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
                async with self.pool.acquire(timeout=10) as conn:
                    await queue.renew_leases(
                        conn, self.listener_id, entries, self.tuning.lease_seconds
                    )

    async def _release(self, entries: Sequence[queue.Entry]) -> None:
        with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
            async with self.pool.acquire(timeout=10) as conn:
                await queue.release_leases(conn, self.listener_id, entries)

    async def handle(self, entries: Sequence[queue.Entry]) -> None:
        """Push a claimed batch to Monday and record the outcome of each entry."""
        started = time.perf_counter()
        by_table: dict[int, list[queue.Entry]] = defaultdict(list)
        for entry in entries:
            by_table[entry.table_id].append(entry)
        plans: dict[int, list[rules.Work]] = {}
        async with self.pool.acquire() as conn:
            for table_id, group in by_table.items():
                table = self.tables[table_id]
                loaded, unreadable = await self._load(conn, table, [e.key for e in group])
                plans[table_id] = [
                    rules.unreadable(e, unreadable[e.key])
                    if e.key in unreadable
                    else self._plan(e, loaded.get(e.key), table)
                    for e in group
                ]
            items = [i for ps in plans.values() for p in ps for i in p.archive]
            linked = await links.linked(conn, items) if items else {}
        pushed = await asyncio.gather(
            *(self._push(self.tables[table_id], ps, linked) for table_id, ps in plans.items())
        )
        decisions = [d for table_decisions, _ in pushed for d in table_decisions]
        retired = [item for _, table_retired in pushed for item in table_retired]
        completions = await self._record(decisions, retired)
        self._count(decisions, completions, time.perf_counter() - started)

    async def _load(
        self, conn: db.Conn, table: rows.Table, keys: Sequence[str]
    ) -> tuple[dict[str, rows.Row], dict[str, str]]:
        """The rows that still exist among `keys`, and the keys that cannot be read, with why.

        One query; only when it fails on a value (a key that does not cast to the key column's
        type) is it split in halves until the keys at fault are found."""
        try:
            return await rows.load(conn, table, keys), {}
        except asyncpg.DataError as exc:
            if len(keys) == 1:
                return {}, {keys[0]: f"the key does not fit the table's key column: {exc}"}
        half = len(keys) // 2
        first, first_bad = await self._load(conn, table, keys[:half])
        second, second_bad = await self._load(conn, table, keys[half:])
        return {**first, **second}, {**first_bad, **second_bad}

    def _plan(self, entry: queue.Entry, row: rows.Row | None, table: rows.Table) -> rules.Work:
        try:
            return rules.plan(entry, row, table.mapping, inbound=self.inbound)
        except Exception as exc:
            # A bug must cost its row (FAILED, with why), not the batch again and again.
            log.exception("sync.plan_failed", extra={"table": table.name, "key": entry.key})
            return rules.Work(entry, row, error=f"npd-sync could not handle the row: {exc!r}")

    async def _push(
        self,
        table: rows.Table,
        plans: Sequence[rules.Work],
        linked: Mapping[str, tuple[int, str]],
    ) -> tuple[list[rules.Decision], list[str]]:
        """Do the Monday work of one board's plans: one decision per plan, and the items
        archived or deleted (or found gone already). `linked`: the links of the items to
        archive (item -> table id, key)."""
        assert self.client is not None
        assert table.mapping.board_id is not None
        board = table.mapping.board_id
        item: dict[str, str | None] = {p.entry.key: p.item_id for p in plans}
        failures: dict[str, list[errors.MondayError]] = defaultdict(list)
        retired: list[str] = []

        unknown = rules.unlinked_items(plans, linked)
        boards: dict[str, str] = {}
        for start in range(0, len(unknown), api.ITEMS_PAGE):
            page = unknown[start : start + api.ITEMS_PAGE]
            try:
                async with self.governor.request(None, 1):
                    boards.update(await self.client.item_boards(page))
                self.stats.requests += 1
            except errors.MondayError as exc:
                await self._note_request_error(exc)
                for p in plans:
                    if any(i in page for i in p.archive):
                        failures[p.entry.key].append(exc)
        plans, refusals = rules.vet_archives(plans, table.id, board, linked, boards)
        # (An entry whose lookup failed sends nothing now and is vetted again next time.)
        self._refused(table, [r for r in refusals if not failures[r.key]])

        found: dict[str, list[str]] = {}
        looked: set[str] = set()  # rows whose lookup was answered
        finds = [p.entry.key for p in plans if p.push == "find" and p.error is None]
        if finds and table.mapping.npd_id_column:
            try:
                async with self.governor.request(None, [governor.LOOKUP]):
                    found = await self.client.find_items(board, table.mapping.npd_id_column, finds)
                self.stats.requests += 1
                looked = set(finds)
                # What a lookup found is kept even if the push must wait: no second lookup.
                item.update({key: rules.adopt(items) for key, items in found.items()})
            except errors.MondayError as exc:
                if exc.budget is not None:
                    exc = self.governor.refused(exc, [governor.LOOKUP]) or exc
                await self._note_request_error(exc)
                for key in finds:
                    failures[key].append(exc)

        reading = [p for p in plans if p.read and p.error is None and not failures[p.entry.key]]
        if reading:
            read = await self._read(table, reading, failures)
            plans = [read.get(p.entry.key, p) for p in plans]
            item.update({p.entry.key: p.item_id for p in read.values()})

        ready = [p for p in plans if p.error is None and not failures[p.entry.key]]
        ops = rules.operations(table.mapping, ready, found)

        size = self.tuning.batch_size
        while ops:
            granted = 0
            kinds = [governor.kind_of(op) for op in ops[:size]]
            try:
                # The governor grants what the budget holds now: maybe fewer than asked.
                async with self.governor.request(board, kinds) as granted:
                    results = await self.client.mutate(board, ops[:granted])
                self.stats.requests += 1
                size = min(self.tuning.batch_size, size * 2)
            except errors.MondayError as exc:
                if exc.budget is not None and granted:
                    # Refused for its complexity: learn from what Monday said, and send the
                    # same operations again in pieces that fit, unless even those must wait.
                    again = self.governor.refused(exc, kinds[:granted])
                    if again is None:
                        self._count_request(exc)
                        continue
                    exc = again
                if exc.kind is errors.Kind.PERMANENT and granted > 1:
                    # One operation may make the whole request invalid: send halves until
                    # it is alone, so that it fails alone (and is logged once, then).
                    self._count_request(exc)
                    size = granted // 2
                    continue
                await self._note_request_error(exc)
                stop = exc.kind in (errors.Kind.RATE_LIMITED, errors.Kind.BLOCKED)
                # Don't send the rest into the same wall: they wait too.
                granted = len(ops) if stop or not granted else granted
                results = [api.Result(op, None, exc) for op in ops[:granted]]
            for result in results:
                self._apply(result, item, failures, retired)
            ops = ops[granted:]

        policy = dataclasses.replace(self.policy, conflict_status=table.conflict_status)
        decisions = [
            rules.decide(p, item[p.entry.key], rules.worst(failures[p.entry.key]), policy, self.rng)
            for p in plans
        ]
        for i, d in enumerate(decisions):
            c = d.completion
            if (
                c.entry.key in looked
                and c.uncertain
                and c.outcome is queue.Outcome.WAIT
                and all(
                    f.kind is errors.Kind.RATE_LIMITED and f.code != "IDEMPOTENCY_CONFLICT"
                    for f in failures[c.entry.key]
                )
            ):
                # Looked up, and the push was refused or never sent: Monday holds what the
                # lookup found (kept as monday_id), so the next attempt need not look again.
                decisions[i] = dataclasses.replace(
                    d, completion=dataclasses.replace(c, uncertain=False)
                )
        self.governor.synced(sum(1 for d in decisions if d.status == "SYNCED" and not d.unchanged))
        return decisions, retired

    async def _read(
        self,
        table: rows.Table,
        plans: Sequence[rules.Work],
        failures: dict[str, list[errors.MondayError]],
    ) -> dict[str, rules.Work]:
        """Read the items of rows whose board side may have changed (a batch a request) and
        merge each with its row; the plans as they now stand, by key."""
        assert self.client is not None
        columns = [c.id for c in table.mapping.inbound_columns]
        ids = list(dict.fromkeys(p.item_id for p in plans if p.item_id is not None))
        items: dict[str, api.Item] = {}
        while ids:
            page = ids[: api.ITEMS_PAGE]
            try:
                # As many as the budget holds now: the rest in the next request.
                async with self.governor.request(None, [governor.READ] * len(page)) as granted:
                    page = page[:granted]
                    items.update(await api.read_items(self.client, page, columns))
                self.stats.requests += 1
            except errors.MondayError as exc:
                await self._note_request_error(exc)
                page = ids[: api.ITEMS_PAGE]  # these wait, and so do the rest
                for p in plans:
                    if p.item_id in ids:
                        failures[p.entry.key].append(exc)
                break
            ids = ids[len(page) :]
        result: dict[str, rules.Work] = {}
        for p in plans:
            if failures[p.entry.key] or p.item_id is None or p.row is None:
                continue
            found = items.get(p.item_id)
            if found is None or found.state != "active":
                result[p.entry.key] = rules.gone(p, table.mapping)
                continue
            outcome = merge.merge(
                key=p.entry.key,
                ours=p.agreed,
                agreed=p.row.agreed,
                item=found,
                table=table.mapping,
                pushes=p.push is not None,
                conflicted=p.row.conflicted,
                npd_changed_at=p.entry.last_changed_at,
                monday_changed_at=p.entry.monday_changed_at,
            )
            result[p.entry.key] = rules.merged(p, outcome)
        return result

    @staticmethod
    def _apply(
        result: api.Result,
        item: dict[str, str | None],
        failures: dict[str, list[errors.MondayError]],
        retired: list[str],
    ) -> None:
        op, error = result.op, result.error
        if isinstance(op, api.Archive | api.Delete):
            # Already gone is what we wanted.
            if error is not None and error.kind is not errors.Kind.ITEM_GONE:
                failures[op.key].append(error)
            else:
                retired.append(op.item_id)
            return
        if error is None:
            item[op.key] = result.item_id
            return
        failures[op.key].append(error)
        if error.kind is errors.Kind.ITEM_GONE:
            item[op.key] = None

    def _count_request(self, exc: errors.MondayError) -> None:
        self.metrics.requests.labels(str(exc.status or ""), exc.code or exc.kind.value).inc()

    async def _note_request_error(self, exc: errors.MondayError) -> None:
        self._count_request(exc)
        with contextlib.suppress(*db.ERRORS, asyncpg.PostgresError):
            await self.governor.pause(exc)
        level = logging.ERROR if exc.kind is errors.Kind.BLOCKED else logging.WARNING
        log.log(level, "monday.request_failed", extra={"kind": exc.kind.value, "error": str(exc)})

    async def _record(
        self, decisions: Sequence[rules.Decision], retired: Sequence[str]
    ) -> list[queue.Completion]:
        """Write back to the rows, the links and the queue entries, in one transaction; returns
        what was recorded for each entry."""
        # The write-back must land even if we are being cancelled, or a create is redone; and
        # it is worth waiting for a database that restarts (a few seconds) rather than leaving
        # the batch to be redone after its lease runs out.
        deadline = time.monotonic() + self.tuning.lease_seconds / 2
        delay = 0.2
        careful = False
        while True:
            try:
                return await asyncio.shield(self._commit(decisions, retired, careful=careful))
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
        self, decisions: Sequence[rules.Decision], retired: Sequence[str], *, careful: bool
    ) -> list[queue.Completion]:
        by_table: dict[int, list[rules.Decision]] = defaultdict(list)
        for d in decisions:
            by_table[d.completion.entry.table_id].append(d)
        async with self.pool.acquire() as conn, conn.transaction():
            written: set[tuple[int, str]] = set()
            refusals: dict[tuple[int, str], fault.Fault] = {}
            await links.unlink(conn, retired)
            for table_id, group in by_table.items():
                table = self.tables[table_id]
                writes = [
                    rows.WriteBack(
                        d.completion.entry.key, d.completion.monday_id, d.status, d.error
                    )
                    for d in group
                    if d.status is not None
                ]
                if careful:
                    keys, refused = await self._write_carefully(conn, table, writes)
                    refusals.update(((table_id, key), why) for key, why in refused.items())
                else:
                    keys = await rows.write_back(conn, table, writes)
                written.update((table_id, key) for key in keys)
                # What Monday holds now, whether or not the row could be written.
                await links.link(conn, table_id, [d.link for d in group if d.link is not None])
            completions = []
            for d in decisions:
                c = d.completion
                row = (c.entry.table_id, c.entry.key)
                if row not in refusals and d.work is not None and c.outcome is queue.Outcome.DONE:
                    # What reading the item decided for the row: only with the row in hand.
                    refusal = await self._land(conn, d.work, row, written, careful=careful)
                    if refusal is not None:
                        refusals[row] = refusal
                deleting = d.work is not None and d.work.fate == "delete"
                touches_row = d.status is not None or deleting
                if row in refusals:
                    c = rules.refused(c, refusals[row], self.policy, self.rng)
                elif touches_row and c.outcome is queue.Outcome.DONE and row not in written:
                    # The row is locked by the application or was just deleted: keep the
                    # entry (and the item id we learnt) and come back to it.
                    c = queue.Completion(
                        c.entry, queue.Outcome.WAIT, fault.ours("row busy, write-back postponed"),
                        self.policy.write_back_retry, c.monday_id, c.uncertain,
                    )  # fmt: skip
                completions.append(c)
            await queue.complete(conn, self.listener_id, completions)
        if any(c.outcome in (queue.Outcome.DONE, queue.Outcome.FAILED) for c in completions):
            self.finished = time.monotonic()
        return completions

    async def _land(
        self,
        conn: db.Conn,
        work: rules.Work,
        row: tuple[int, str],
        written: set[tuple[int, str]],
        *,
        careful: bool,
    ) -> fault.Fault | None:
        """Write into the row, and the records, what reading its item decided: the board's
        values, the agreed ones, conflicts, an unlink or a delete; the row counts as written
        once it landed (a row the write-back could not lock is busy: it comes back). When
        `careful`, a row the database refuses (a constraint, a trigger of the application) is
        refused alone: returns why."""
        if not careful:
            if await self._landed(conn, work, row in written):
                written.add(row)
            return None
        try:
            async with conn.transaction():
                if await self._landed(conn, work, row in written):
                    written.add(row)
        except asyncpg.PostgresError as exc:
            if not db.about_the_rows(exc):
                raise
            return fault.from_database(exc)
        return None

    async def _landed(self, conn: db.Conn, work: rules.Work, locked: bool) -> bool:
        entry, table = work.entry, self.tables[work.entry.table_id]
        if work.fate == "delete":
            if not await conn.fetchval(table.pull_delete_sql, entry.key):
                return False
            await conn.execute(sql.query("drop_link"), entry.table_id, entry.key)
            self.metrics.inbound.labels(table.name, "deleted").inc()
            return True
        if not locked:
            return False
        if work.fate == "unlink":
            await conn.execute(sql.query("mark_unlinked"), entry.table_id, entry.key)
            self.metrics.inbound.labels(table.name, "unlinked").inc()
            return True
        await rows.pull_write(conn, table, entry.key, work.write)
        if work.write:
            self.stats.pulled += 1
            self.metrics.inbound.labels(table.name, "written").inc()
            if entry.monday_changed_at is not None:
                lag = dt.datetime.now(dt.UTC) - entry.monday_changed_at
                self.metrics.inbound_latency.observe(max(lag.total_seconds(), 0.0))
        if work.conflicts:
            self.stats.conflicts += len(work.conflicts)
            self.metrics.inbound.labels(table.name, "conflict").inc(len(work.conflicts))
        item = work.item_id or (work.row.linked_item if work.row else None)
        if item is not None and (work.agree or work.fate == "relink"):
            await links.link(conn, entry.table_id, [links.Link(entry.key, item, work.agree)])
        await conflicts.record(
            conn, entry.table_id, entry.key, item, work.conflicts,
            policy=table.mapping.conflict, npd_changed_at=entry.last_changed_at,
            monday_changed_at=entry.monday_changed_at,
        )  # fmt: skip
        await conflicts.settle(conn, entry.table_id, entry.key, work.settled)
        return True

    async def _write_carefully(
        self, conn: db.Conn, table: rows.Table, writes: Sequence[rows.WriteBack]
    ) -> tuple[set[str], dict[str, fault.Fault]]:
        """The write-back in halves, each under a savepoint, down to the rows the database
        refuses: the keys written, and those refused with why."""
        if not writes:
            return set(), {}
        try:
            async with conn.transaction():
                return await rows.write_back(conn, table, writes), {}
        except asyncpg.PostgresError as exc:
            if not db.about_the_rows(exc):
                raise
            if len(writes) == 1:
                return set(), {writes[0].key: fault.from_database(exc)}
        half = len(writes) // 2
        first, first_refused = await self._write_carefully(conn, table, writes[:half])
        second, second_refused = await self._write_carefully(conn, table, writes[half:])
        return first | second, {**first_refused, **second_refused}

    def _rejected(self, rejected: Sequence[queue.Rejected]) -> None:
        self.stats.rejected += len(rejected)
        for r in rejected[:3]:
            log.error(
                "sync.change_rejected",
                extra={"table_id": r.table_id, "key": r.key, "reason": r.reason},
            )
        if len(rejected) > 3:
            log.error("sync.changes_rejected", extra={"more": len(rejected) - 3})

    def _refused(self, table: rows.Table, refusals: Sequence[rules.Refusal]) -> None:
        for r in refusals[:3]:
            log.warning(
                "sync.archive_refused",
                extra={"table": table.name, "key": r.key, "item": r.item_id, "reason": r.reason},
            )
        if len(refusals) > 3:
            log.warning("sync.archives_refused", extra={"more": len(refusals) - 3})

    def _count(
        self,
        decisions: Sequence[rules.Decision],
        completions: Sequence[queue.Completion],
        seconds: float,
    ) -> None:
        stats = self.stats
        counts: dict[str, int] = defaultdict(int)
        now = dt.datetime.now(dt.UTC)
        failed = []
        for d, c in zip(decisions, completions, strict=True):
            outcome = OUTCOME_NAMES[c.outcome]
            if c.outcome is queue.Outcome.DONE and d.status != "SYNCED":
                outcome = "unchanged" if d.unchanged else "skipped"
            counts[outcome] += 1
            self.metrics.changes.labels(self.tables[c.entry.table_id].name, outcome).inc()
            if outcome == "synced":
                self.metrics.latency.observe((now - c.entry.changed_at).total_seconds())
            elif outcome == "failed":
                failed.append(c)
        stats.synced += counts["synced"]
        stats.unchanged += counts["unchanged"]
        stats.skipped += counts["skipped"]
        stats.failed += counts["failed"]
        stats.retried += counts["retried"]
        stats.waited += counts["waited"]
        level = logging.INFO if failed or counts["retried"] else logging.DEBUG
        log.log(
            level,
            "sync.batch",
            extra={"rows": len(decisions), **counts, "ms": round(seconds * 1000)},
        )
        # A few rows by name, not one line per row: a poison batch must not flood the log.
        for c in failed[:3]:
            log.warning(
                "sync.row_failed",
                extra={
                    "table": self.tables[c.entry.table_id].name,
                    "key": c.entry.key,
                    "error": None if c.error is None else fault.line(c.error),
                },
            )
        if len(failed) > 3:
            log.warning("sync.rows_failed", extra={"more": len(failed) - 3})


OUTCOME_NAMES = {
    queue.Outcome.DONE: "synced",
    queue.Outcome.RETRY: "retried",
    queue.Outcome.FAILED: "failed",
    queue.Outcome.WAIT: "waited",
}
