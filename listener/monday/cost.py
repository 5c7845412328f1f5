"""What a request to Monday costs, in complexity points: the kinds of operation, first guesses,
what the replies teach, and how many operations fit one request. Pure: no I/O.

Every operation is of a kind (`Kind`), never a bare count. A reply's `complexity.query` tells
what a request of those kinds cost; the model learns per kind from it, and estimates the next
request from what it learnt (the first guesses until then).
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from listener.monday import api, errors


class Kind(enum.StrEnum):
    """A kind of operation, each with a cost of its own."""

    CREATE = "create"
    UPDATE = "update"
    ARCHIVE = "archive"
    DELETE = "delete"
    LOOKUP = "lookup"  # a page of an npd_id lookup (items_page_by_column_values), whatever it finds
    READ = "read"  # one item read (of items(ids:) or of a board's page)
    LOCATE = "locate"  # finding the boards of up to a page of items (before archiving them)
    ACTIVITY = "activity"  # a page of a board's activity log (reconciliation)
    QUERY = "query"  # a plain query of a command: the token, boards, webhooks, the day's usage
    WEBHOOK = "webhook"  # creating or deleting a webhook (a mutation)
    COLUMN = "column"  # creating a column on a board (`mapping init --create-columns`)


MUTATIONS = frozenset({Kind.CREATE, Kind.UPDATE, Kind.ARCHIVE, Kind.DELETE})
# First guesses, until a reply says: Monday's staff put a mutation at 30,000 points (its own
# error text quotes 30,001 for a create returning its id); a lookup of a page of 500 items with
# one column, and an item read with its columns, weigh what their selections weigh (a scalar 1,
# an object 10, times the page). High guesses cost one short first request; low ones a refusal.
FIRST_GUESS: Mapping[Kind, float] = MappingProxyType(
    {
        **dict.fromkeys(MUTATIONS, 30_001.0),
        Kind.LOOKUP: 12_011.0,
        Kind.READ: 350.0,
        Kind.LOCATE: 1_300.0,  # a page of 100 items, their id and board: ~12 points each
        Kind.ACTIVITY: 5_000.0,
        Kind.QUERY: 1_000.0,
        Kind.WEBHOOK: 30_001.0,
        Kind.COLUMN: 30_001.0,
    }
)
MAX_QUERY = 5_000_000  # Monday's cap on one request


def kind_of(op: api.Op) -> Kind:
    """The kind of a mutation."""
    match op:
        case api.Create():
            return Kind.CREATE
        case api.Update():
            return Kind.UPDATE
        case api.Archive():
            return Kind.ARCHIVE
    return Kind.DELETE


def learn(
    costs: dict[Kind, float], kinds: Sequence[Kind], spent: float, known: set[Kind] | None = None
) -> None:
    """Fit the costs of `kinds` to what a request of them cost, and count them as `known`:
    exactly when they are all of one kind, or when one kind in them was not known yet (it gets
    the rest); else each scaled by the same factor (the next request of one kind settles it)."""
    known = set() if known is None else known
    if not kinds or spent <= 0:
        return
    present = set(kinds)
    new = present - known
    if len(present) == 1 or len(new) == 1:
        kind = kinds[0] if len(present) == 1 else next(iter(new))
        rest = spent - sum(costs[k] for k in kinds if k != kind)
        if rest > 0:
            costs[kind] = rest / kinds.count(kind)
            known.update(present)
            return
    expected = sum(costs.get(k, FIRST_GUESS.get(k, spent)) for k in kinds)
    factor = spent / expected
    for k in present:
        costs[k] = costs.get(k, FIRST_GUESS.get(k, spent)) * factor
    known.update(present)


@dataclass
class Model:
    """What operations cost as this listener has learnt it, and how many one request may hold:
    halved by each refusal for complexity, doubled by each reply, up to `max_operations`."""

    max_operations: int = api.BOARD_PAGE  # Monday's largest page
    max_query: int = MAX_QUERY
    costs: dict[Kind, float] = field(default_factory=lambda: dict(FIRST_GUESS))
    confirmed: set[Kind] = field(default_factory=set)  # the kinds a reply told the cost of
    cap: int = 0  # operations the next request may hold (0: max_operations)

    def __post_init__(self) -> None:
        self.cap = self.cap or self.max_operations

    def estimate(self, kinds: Sequence[Kind]) -> list[int]:
        """The estimated cost of each operation, in points: what was learnt, else what the
        dearest mutation learnt costs (for a mutation), else the first guess."""
        known = [self.costs[k] for k in MUTATIONS if k in self.confirmed]
        return [max(1, math.ceil(self._cost(k, max(known, default=None)))) for k in kinds]

    def _cost(self, kind: Kind, dearest_mutation: float | None) -> float:
        if kind in self.confirmed:
            return self.costs[kind]
        if dearest_mutation is not None and kind in MUTATIONS:
            return dearest_mutation
        return self.costs.get(kind, FIRST_GUESS[Kind.UPDATE])

    def guessing(self, kind: Kind) -> bool:
        """Whether the cost of `kind` is only the first guess, with nothing learnt to go by."""
        if kind in self.confirmed:
            return False
        if kind in MUTATIONS:
            return not self.confirmed.intersection(MUTATIONS)
        return True

    def totals(self, kinds: Sequence[Kind]) -> list[int]:
        """The running totals of the operations' costs that one request may carry: at most
        `cap` of them, within Monday's cap on one query (the first always)."""
        totals = list(itertools.accumulate(self.estimate(kinds[: max(1, self.cap)])))
        fitting = [t for t in totals if t <= self.max_query]
        return fitting or totals[:1]

    def replied(self, kinds: Sequence[Kind], spent: float | None) -> None:
        """A request of `kinds` was answered, and cost `spent` points (None: not said)."""
        if spent is not None:
            learn(self.costs, kinds, spent, self.confirmed)
        self.cap = min(self.max_operations, self.cap * 2)

    def refused(self, kinds: Sequence[Kind], budget: errors.Budget) -> None:
        """Monday refused a request of `kinds` for its complexity: learn what the refusal tells
        of the costs and of the cap on one query, and halve the next request."""
        if budget.cost is not None:
            learn(self.costs, kinds, budget.cost, self.confirmed)
        elif budget.left is not None and sum(self.estimate(kinds)) <= budget.left:
            # Our estimate fitted what Monday said was left, so it was too low.
            learn(self.costs, kinds, budget.left + len(kinds))
        self.cap = max(1, len(kinds) // 2)
        if budget.max_query is not None:
            self.max_query = int(budget.max_query)

    def verdict(self, kinds: Sequence[Kind], exc: errors.MondayError) -> errors.MondayError | None:
        """What to do with `kinds` after Monday refused them for their complexity (learnt
        already): None to send them again at once, in smaller requests (the budget holds some
        of them now); else the error to record on them: a wait for the next window or, for one
        operation bigger than a whole window or than one query may be, a permanent failure."""
        budget = exc.budget or errors.Budget()
        first = self.estimate(kinds[:1])[0]
        if budget.max_query is not None:
            if len(kinds) > 1:
                return None
            return errors.Permanent(
                f"costs {budget.cost or first:,.0f} complexity points, more than Monday allows "
                f"in one request ({budget.max_query:,.0f})",
                code=exc.code or errors.TOO_COMPLEX,
                request_id=exc.request_id,
            )
        # Nothing of the window spent yet: whatever was refused is too big for all of it.
        untouched = (
            budget.left is not None and budget.limit is not None and budget.left >= budget.limit
        )
        over = budget.cost is not None and budget.limit is not None and budget.cost > budget.limit
        if len(kinds) == 1 and (untouched or over):
            return errors.Permanent(
                f"costs {budget.cost or first:,.0f} complexity points, more than the account's "
                f"whole budget of {budget.limit or 0:,.0f} a window",
                code=exc.code,
                request_id=exc.request_id,
            )
        if len(kinds) > 1 and budget.left is not None and (untouched or first <= budget.left):
            return None
        return exc
