"""Monday's side of a batch, one board at a time, with no database work of its own (the
governor keeps the shared budget).

For one board's plans, in as few requests as the budget allows: look up the boards of items to
archive that npd-sync has no link for, and keep only archives of items it linked to that row;
look up the items of rows whose create may have happened (their npd_id); read the items of
pulls and merge each with its row; then send every create, update and archive, many to a
request. What comes back is, per entry, its push as it now stands, what reading its item
decided, its item after, and its failures.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from listener import mapping, rows
from listener.engine import plans
from listener.engine.bisect import bisect
from listener.engine.plans import Claim, Landing, Plan, Pull, Push
from listener.inbound import inbox, merge
from listener.metrics import Metrics
from listener.monday import api, cost, errors, governor

log = logging.getLogger("npd_sync.worker")

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Exchanged:
    """What Monday said of one board's entries."""

    pushes: list[Push]  # per entry, as it now stands (a pull once its item was read)
    landings: dict[str, Landing] = field(default_factory=dict)  # by key: pulls that were read
    items: dict[str, str | None] = field(default_factory=dict)  # by key: the row's item after
    failures: defaultdict[str, list[errors.MondayError]] = field(
        default_factory=lambda: defaultdict(list)
    )
    retired: list[str] = field(default_factory=list)  # items archived, deleted, or gone already
    looked: set[str] = field(default_factory=set)  # keys whose npd_id lookup was answered
    request_ids: dict[str, str] = field(default_factory=dict)  # by key: its push's request
    requests: int = 0

    def ready(self, push: Push) -> bool:
        """Whether a push can go on: it has no error and nothing of it failed yet."""
        return push.error is None and not self.failures[push.entry.key]


@dataclass
class Created:
    """What reading the items created on a board gave."""

    entries: list[inbox.Entry]  # the entries whose items were read (or failed to be)
    items: dict[str, api.Item] = field(default_factory=dict)  # by id: those Monday returned
    later: list[inbox.Entry] = field(default_factory=list)  # not read: the budget held fewer
    error: errors.MondayError | None = None  # the read failed: every entry waits or retries
    requests: int = 0
    relations: dict[str, merge.Backlinks] = field(default_factory=dict)


# Which rows items are: item id -> (table id, key). The engine's one look at the database while
# it talks to Monday, for the links of connect-boards columns; given by the worker.
RowsOf = Callable[[Sequence[str]], Awaitable[Mapping[str, tuple[int, str]]]]


class Exchange:
    """Talks to Monday for the engine: one board's plans in, what Monday said out."""

    def __init__(
        self,
        client: api.Client,
        meter: governor.Governor,
        batch_size: int,
        metrics: Metrics,
        rows_of: RowsOf,
    ) -> None:
        self.client = client
        self.governor = meter
        self.batch_size = batch_size
        self.metrics = metrics
        self.rows_of = rows_of

    async def board(
        self,
        table: rows.Table,
        planned: Sequence[Plan | Claim],
        linked: Mapping[str, tuple[int, str]],
        *,
        inbound: bool,
    ) -> Exchanged:
        """Do the Monday work of one board's plans. `linked`: the links of the items to
        archive and of the items rows claim (item -> table id, key)."""
        ex = Exchanged([])
        resolved = await self._claims(table, planned, linked, ex, inbound=inbound)
        pulls = {p.entry.key: p for p in resolved if isinstance(p, Pull)}
        ex.pushes = [p.push if isinstance(p, Pull) else p for p in resolved]
        ex.items = {p.entry.key: p.item_id for p in ex.pushes}
        await self._vet(table, ex, linked)
        found = await self._lookup(table, ex)
        if pulls:
            await self._read(table, ex, pulls)
        await self._mutate(table, ex, found)
        return ex

    async def _claims(
        self,
        table: rows.Table,
        planned: Sequence[Plan | Claim],
        linked: Mapping[str, tuple[int, str]],
        ex: Exchanged,
        *,
        inbound: bool,
    ) -> list[Plan]:
        """Check the claims of rows on items npd-sync did not link them to (their board, who
        holds them, their npd_id): adopt those that check out, refuse the others."""
        claims = {p.entry.key: p for p in planned if isinstance(p, Claim)}
        if not claims:
            return [p for p in planned if not isinstance(p, Claim)]
        npd_id = table.mapping.npd_id_column
        items = await self._items(ex, {k: c.item_id for k, c in claims.items()}, [npd_id or ""])
        resolved: list[Plan] = []
        for p in planned:
            if not isinstance(p, Claim):
                resolved.append(p)
            elif ex.failures[p.entry.key]:
                resolved.append(Push(p.entry, p.row))  # the read failed: it waits
            else:
                holder = linked.get(p.item_id)
                item = items.get(p.item_id)
                why = plans.check_claim(p, item, holder, table.id, table.mapping)
                if why is None:
                    resolved.append(plans.adopted(p, table.mapping, inbound=inbound))
                else:
                    resolved.append(plans.refuse_claim(p, why))
        return resolved

    async def created(self, table: rows.Table, entries: Sequence[inbox.Entry]) -> Created:
        """Read the items of entries no row is linked to (created on the board), as many as
        the budget holds now."""
        columns = [c.id for c in table.mapping.inbound_columns]
        if table.mapping.npd_id_column:
            columns.append(table.mapping.npd_id_column)
        read = Created(list(entries))
        try:
            # As many as the budget holds now; the others are due again at once.
            sent, read.items = await self._ask(
                [e.item_id for e in entries],
                lambda ids: api.read_items(self.client, ids, columns),
                kind=cost.Kind.READ,
            )
            read.entries, read.later = read.entries[: len(sent)], read.entries[len(sent) :]
            read.requests += 1
            read.relations = await self._backlinks(table, read.items.values())
        except errors.MondayError as exc:
            await self.failed(exc)
            read.error = exc
        return read

    async def _vet(
        self, table: rows.Table, ex: Exchanged, linked: Mapping[str, tuple[int, str]]
    ) -> None:
        """Keep only archives of items npd-sync linked to the row asking (see
        `plans.vet_archives`); an entry whose lookup failed sends nothing now."""
        boards: dict[str, str] = {}
        unknown = plans.unlinked_items(ex.pushes, linked)
        for start in range(0, len(unknown), api.ITEMS_PAGE):
            page = unknown[start : start + api.ITEMS_PAGE]
            try:
                _, located = await self._ask(
                    [page], lambda p: api.item_boards(self.client, p[0]), kind=cost.Kind.LOCATE
                )
                boards.update(located)
                ex.requests += 1
            except errors.MondayError as exc:
                await self.failed(exc)
                for p in ex.pushes:
                    if any(i in page for i in p.archive):
                        ex.failures[p.entry.key].append(exc)
        assert table.mapping.board_id is not None
        ex.pushes, refusals = plans.vet_archives(
            ex.pushes, table.id, table.mapping.board_id, linked, boards
        )
        _log_refusals(table, [r for r in refusals if not ex.failures[r.key]])

    async def _lookup(self, table: rows.Table, ex: Exchanged) -> dict[str, list[str]]:
        """The items already carrying the npd_id of rows whose create may have happened."""
        finds = [p.entry.key for p in ex.pushes if p.action == "find" and p.error is None]
        if not finds or not table.mapping.npd_id_column:
            return {}
        board, column = table.mapping.board_id, table.mapping.npd_id_column
        assert board is not None
        found: dict[str, list[str]] = {}
        cursor: str | None = None
        try:
            while True:  # a page a request
                _, page = await self._ask(
                    [(finds, cursor)],
                    lambda asked: api.find_items(self.client, board, column, *asked[0]),
                    kind=cost.Kind.LOOKUP,
                )
                ex.requests += 1
                for key, ids in page.found.items():
                    found.setdefault(key, []).extend(ids)
                cursor = page.cursor
                if cursor is None:
                    break
        except errors.MondayError as exc:
            await self.failed(exc)
            for key in finds:
                ex.failures[key].append(exc)
            return {}
        ex.looked = set(finds)
        # What a lookup found is kept even if the push must wait: no second lookup.
        ex.items.update({key: plans.adopt(items) for key, items in found.items()})
        return found

    async def _read(self, table: rows.Table, ex: Exchanged, pulls: Mapping[str, Pull]) -> None:
        """Read the items of the pulls (a page a request) and merge each with its row."""
        wanted = {k: p.item_id for k, p in pulls.items() if ex.ready(p.push)}
        columns = [c.id for c in table.mapping.inbound_columns]
        items = await self._items(ex, wanted, columns)
        relations = await self._backlinks(table, items.values())
        for i, push in enumerate(ex.pushes):
            pull = pulls.get(push.entry.key)
            if pull is None or not ex.ready(push) or push.row is None:
                continue
            found = items.get(pull.item_id)
            if found is None or found.state != "active":
                push, landing = plans.gone(pull, table.mapping)
            else:
                push, landing = plans.merged(pull, _merge(pull, found, table, relations))
            ex.pushes[i] = push
            ex.items[push.entry.key] = push.item_id
            if landing is not None:
                ex.landings[push.entry.key] = landing

    async def _backlinks(
        self, table: rows.Table, items: Iterable[api.Item]
    ) -> dict[str, merge.Backlinks]:
        """Which rows of the referenced tables the items' connect-boards links are."""
        columns = table.mapping.relations
        if not columns:
            return {}
        linked = {i for item in items for c in columns for i in _links_of(item, c.id)}
        found = await self.rows_of(sorted(linked)) if linked else {}
        return {
            c.id: merge.Backlinks(
                {item: key for item, (t, key) in found.items() if t == table.references[c.id]},
                many=c.id in table.many,
            )
            for c in columns
        }

    async def _items(
        self, ex: Exchanged, wanted: Mapping[str, str], columns: Sequence[str]
    ) -> dict[str, api.Item]:
        """Read the items `wanted` (key -> item id), a page a request, with these columns; the
        keys whose item could not be read get the failure."""
        ids = list(dict.fromkeys(wanted.values()))
        items: dict[str, api.Item] = {}
        while ids:
            page = ids[: api.ITEMS_PAGE]
            try:
                # As many as the budget holds now: the rest in the next request.
                sent, read = await self._ask(
                    page,
                    lambda ids: api.read_items(self.client, ids, [c for c in columns if c]),
                    kind=cost.Kind.READ,
                )
                items.update(read)
                page = list(sent)
                ex.requests += 1
            except errors.MondayError as exc:
                await self.failed(exc)
                for key, item in wanted.items():
                    if item in ids:  # these wait, and so do the rest
                        ex.failures[key].append(exc)
                break
            ids = ids[len(page) :]
        return items

    async def _mutate(
        self, table: rows.Table, ex: Exchanged, found: Mapping[str, Sequence[str]]
    ) -> None:
        """Send the board's creates, updates and archives, as many to a request as the budget
        holds."""
        assert table.mapping.board_id is not None
        ops = plans.operations(table.mapping, [p for p in ex.pushes if ex.ready(p)], found)
        for result in await self._send_all(table.mapping.board_id, ops, ex):
            _apply(result, ex)

    async def _send_all(self, board: str, ops: Sequence[api.Op], ex: Exchanged) -> list[api.Result]:
        """Every operation's result, in as few requests as the budget allows; operations that
        make a request invalid as a whole are found by halving it, and fail alone."""
        results: list[api.Result] = []
        while ops:
            try:
                sent, got = await self._request(board, ops, ex)
            except _Invalid as invalid:
                sent, got = invalid.count, await self._isolate(board, ops[: invalid.count], ex)
            results += got
            ops = ops[sent:]
        return results

    async def _isolate(self, board: str, ops: Sequence[api.Op], ex: Exchanged) -> list[api.Result]:
        async def attempt(part: Sequence[api.Op]) -> list[api.Result]:
            # Raises _Invalid only while nothing of the part went through: safe to split.
            sent, got = await self._request(board, part, ex)
            return got + await self._send_all(board, part[sent:], ex)

        split = await bisect(ops, attempt, lambda exc: isinstance(exc, _Invalid))
        results = [r for part in split.results for r in part]
        for op, exc in split.faults:
            assert isinstance(exc, _Invalid)
            await self.failed(exc.error)
            results.append(api.Result(op, None, exc.error))
        return results

    async def _request(
        self, board: str, ops: Sequence[api.Op], ex: Exchanged
    ) -> tuple[int, list[api.Result]]:
        """One request with as many of `ops` as the budget holds now: how many it answers for,
        and their results (a failed request: the error for each). Raises _Invalid when several
        operations made the request invalid."""
        granted, answer = await self._send(board, ops[: self.batch_size], ex)
        if isinstance(answer, list):
            return granted, answer
        if answer.kind is errors.Kind.PERMANENT and granted > 1:
            self._count(answer)
            raise _Invalid(answer, granted)
        await self.failed(answer)
        # A rate limit or a blocked account: don't send the rest into the same wall.
        stop = answer.kind in (errors.Kind.RATE_LIMITED, errors.Kind.BLOCKED)
        failed = len(ops) if stop or not granted else granted
        return failed, [api.Result(op, None, answer) for op in ops[:failed]]

    async def _send(
        self, board: str, ops: Sequence[api.Op], ex: Exchanged
    ) -> tuple[int, list[api.Result] | errors.MondayError]:
        """Send as many of `ops` as the budget holds now (0 when none: the error says why):
        how many were sent and their results, or the request's error."""
        sent, answer = await self._try(
            ops, lambda part: api.mutate(self.client, board, part), board=board
        )
        if not isinstance(answer, errors.MondayError):
            ex.requests += 1
        return len(sent), answer

    async def _ask(
        self,
        ops: Sequence[T],
        send: Callable[[Sequence[T]], Awaitable[tuple[R, api.Reply]]],
        *,
        kind: cost.Kind | None = None,
    ) -> tuple[Sequence[T], R]:
        """`_try`, raising the error of a request that failed."""
        sent, answer = await self._try(ops, send, kind=kind)
        if isinstance(answer, errors.MondayError):
            raise answer
        return sent, answer

    async def _try(
        self,
        ops: Sequence[T],
        send: Callable[[Sequence[T]], Awaitable[tuple[R, api.Reply]]],
        *,
        kind: cost.Kind | None = None,
        board: str | None = None,
    ) -> tuple[Sequence[T], R | errors.MondayError]:
        """One request under a grant of the governor: as many of the leading `ops` as the
        limits hold now go to `send`. Returns those and what `send` read, or the request's
        error (with no ops when the limits held none). A request refused for its complexity
        is sent again in pieces that fit, unless even those must wait."""
        while True:
            try:
                async with self.governor.reserve(ops, kind=kind, board=board) as grant:
                    try:
                        value, reply = await send(grant.ops)
                    except errors.MondayError as exc:
                        verdict = await grant.settle(exc)
                        if verdict is not None:
                            return grant.ops, verdict
                        self._count(exc)  # learnt from what Monday said: again, smaller
                        continue
                    await grant.settle(reply)
                    return grant.ops, value
            except errors.MondayError as exc:  # the limits hold none for longer than we wait
                return (), exc

    def _count(self, exc: errors.MondayError) -> None:
        self.metrics.requests.labels(str(exc.status or ""), exc.code or exc.kind.value).inc()

    async def failed(self, exc: errors.MondayError) -> None:
        """Count and log a request that failed, and pause every listener if it says so."""
        self._count(exc)
        await self.governor.pause(exc)
        level = logging.ERROR if exc.kind is errors.Kind.BLOCKED else logging.WARNING
        log.log(level, "monday.request_failed", extra={"kind": exc.kind.value, "error": str(exc)})


class _Invalid(Exception):
    """A request of several operations refused as a whole: one of them is at fault."""

    def __init__(self, error: errors.MondayError, count: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.count = count


def _merge(
    pull: Pull, item: api.Item, table: rows.Table, relations: merge.Relations
) -> merge.Merge:
    push = pull.push
    assert push.row is not None
    return merge.merge(
        key=push.entry.key,
        ours=push.agreed,
        agreed=push.row.agreed,
        item=item,
        table=table.mapping,
        pushes=push.action is not None,
        conflicted=push.row.conflicted,
        npd_changed_at=push.entry.last_changed_at,
        monday_changed_at=push.entry.monday_changed_at,
        relations=relations,
    )


def _links_of(item: api.Item, column_id: str) -> list[str]:
    raw, _ = item.values.get(column_id, (None, None))
    return mapping.relation_items(raw)


def _apply(result: api.Result, ex: Exchanged) -> None:
    """Take one operation's result into the entry's item and failures."""
    op, error = result.op, result.error
    request = result.request_id or (error.request_id if error is not None else None)
    if request is not None:
        ex.request_ids[op.key] = request
    if isinstance(op, api.Archive | api.Delete):
        # Already gone is what we wanted.
        if error is not None and error.kind is not errors.Kind.ITEM_GONE:
            ex.failures[op.key].append(error)
        else:
            ex.retired.append(op.item_id)
        return
    if error is None:
        ex.items[op.key] = result.item_id
        return
    ex.failures[op.key].append(error)
    if error.kind is errors.Kind.ITEM_GONE:
        ex.items[op.key] = None


def _log_refusals(table: rows.Table, refusals: Sequence[plans.Refusal]) -> None:
    for r in refusals[:3]:
        log.warning(
            "sync.archive_refused",
            extra={"table": table.name, "key": r.key, "item": r.item_id, "reason": r.reason},
        )
    if len(refusals) > 3:
        log.warning("sync.archives_refused", extra={"more": len(refusals) - 3})
