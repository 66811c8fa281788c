"""A replica's reservations and settlements, sent several turns to a statement when they queue up.

A turn costs the ledger two statements (reserve, then settle). On this machine's PostgreSQL, what a statement
costs besides its work (the round trip, the call, starting the executor, the commit, the kernel) is most of
it: sending the queued turns of a busy replica as one statement and one transaction (`ledger.reserve_many`,
`ledger.settle_many`) cut PostgreSQL's CPU a turn by about a third to a half (docs/performance.md). So each
kind of statement goes through a few lanes (`LANES`):
- a turn that finds a lane free is sent at once, alone, in its caller's task: when the ledger keeps up,
  nothing waits;
- turns that arrive while every lane is busy queue, and the next lane to come free takes them all (up to
  `largest`) in one statement;
- each turn still gets its own answer: a refusal of one turn (no credits, a plan) is that turn's result.

The lanes also bound what one replica asks of PostgreSQL at once: an account sending a hundred turns at once
waits in the queue, not on its balance row holding a pooled connection each.

- **Lock order.** A group takes its turns `in_lock_order` (by account, newest month first, then turn id), as
  the heartbeat takes the turn rows it renews, so none of them waits on another in a cycle.
- **Bounded.** A turn waits at most `timeout` seconds in the queue, and a statement runs at most `timeout`
  seconds (a row some other session holds locked), then `LedgerUnavailable`, a retryable 503, as a turn
  that got no pooled connection in time: one stuck row delays the lanes for that long, not for ever.
- **A group PostgreSQL refuses for its data** (a constraint, a deadlock it broke: `refused_statement`) is
  rolled back whole and its turns are sent again one by one, each getting its own answer. A group that
  failed for the connection or the server gives every turn `LedgerUnavailable`, as each turn's own statement
  would have.
- **A reservation whose request was cancelled** while its group ran is released at once (`abandoned`),
  rather than held until it expires. A turn sent alone runs in its caller's task, as before there were
  lanes: cancelled, its statement is cancelled too (and a reservation it committed expires, then is swept).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from . import ledger
from .db import LedgerConnection, LedgerUnavailable
from .ledger import Hold, Outcome, Reservation, Settlement, TurnKey

log = logging.getLogger("switchboard.gateway")
LANES = 2

Item = TypeVar("Item")
Result = TypeVar("Result")
Connect = Callable[[], contextlib.AbstractAsyncContextManager[LedgerConnection]]
Alone = Callable[[LedgerConnection, Item], Awaitable[Result]]
Together = Callable[[LedgerConnection, Sequence[Item]], Awaitable[Sequence[Result | Exception]]]


class _Lanes(Generic[Item, Result]):
    """One kind of ledger statement: items sent alone when a lane is free, together when they queued."""

    def __init__(
        self,
        statements: tuple[Alone[Item, Result], Together[Item, Result]],
        where: Callable[[Item], tuple[TurnKey, str]],  # a turn's key and month, for the lock order
        limits: _Limits,
    ) -> None:
        self._alone, self._together = statements
        self._where, self._limits = where, limits
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._free = limits.lanes
        self._sending: set[asyncio.Task[None]] = set()
        self.abandoned: Callable[[Result], None] | None = None  # an answer its caller no longer waits for
        self.statements = self.turns = 0  # sent so far (a group resent one by one counts once)

    async def run(self, item: Item) -> Result:
        if self._free and not self._queue:
            return await self._run_alone(item)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._dispatch()
        try:
            async with asyncio.timeout(self._limits.timeout):
                return await future  # cancelled on timeout: skipped if still queued, handed back if running
        except TimeoutError:
            raise LedgerUnavailable(f"no ledger statement within {self._limits.timeout:g} s") from None

    @property
    def sending(self) -> bool:
        return bool(self._sending)

    async def drain(self) -> None:
        """Wait for the groups being sent (at shutdown, before the pool closes)."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def _run_alone(self, item: Item) -> Result:
        """A lane is free and nothing queues: the statement runs in the caller's task, with no task of its own
        to wait for on a busy event loop (as a turn's statement did before there were lanes)."""
        self._take_lane(1)
        try:
            async with self._limits.connect() as conn, self._limits.bounded():
                return await self._alone(conn, item)
        finally:
            self._give_lane_back()

    def _take_lane(self, turns: int) -> None:
        self._free -= 1
        self.statements += 1
        self.turns += turns

    def _give_lane_back(self) -> None:
        self._free += 1
        self._dispatch()

    def _dispatch(self) -> None:
        while self._free and self._queue:
            largest = self._limits.largest
            taken = [(item, future) for item, future in self._queue[:largest] if not future.done()]
            del self._queue[:largest]
            if not taken:  # every caller gave up before its turn was sent
                continue
            self._take_lane(len(taken))
            task = asyncio.ensure_future(self._send(taken))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, taken: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        items = [item for item, _ in taken]
        try:
            answers = [await self._one(items[0])] if len(items) == 1 else await self._group(items)
        except Exception as error:  # a bug: no caller may wait for ever
            log.exception("sending %d ledger statements failed", len(items))
            answers = [LedgerUnavailable(f"{type(error).__name__} sending a ledger statement")] * len(items)
        finally:
            self._give_lane_back()
        for (_, future), answer in zip(taken, answers, strict=True):
            self._answer(future, answer)

    def _answer(self, future: asyncio.Future[Result], answer: Result | Exception) -> None:
        if future.done():  # its caller gave up while the statement ran
            if not isinstance(answer, Exception) and self.abandoned is not None:
                self.abandoned(answer)
        elif isinstance(answer, Exception):
            future.set_exception(answer)
        else:
            future.set_result(answer)

    async def _one(self, item: Item) -> Result | Exception:
        try:
            async with self._limits.connect() as conn, self._limits.bounded():
                return await self._alone(conn, item)
        except Exception as error:  # LedgerUnavailable, or the turn's refusal: its own answer
            return error

    async def _group(self, items: list[Item]) -> list[Result | Exception]:
        ordered = ledger.in_lock_order(range(len(items)), lambda index: self._where(items[index]))
        try:
            async with self._limits.connect() as conn, self._limits.bounded():
                answers = await self._together(conn, [items[index] for index in ordered])
        except LedgerUnavailable as error:
            if not error.refused_statement:
                return [LedgerUnavailable(str(error)) for _ in items]
            log.warning(
                "a group of %d ledger statements was refused (%s): each sent alone", len(items), error
            )
            return [await self._one(item) for item in items]
        in_order: list[Result | Exception] = [answers[0]] * len(items)
        for position, index in enumerate(ordered):
            in_order[index] = answers[position]
        return in_order


class _Limits:
    """What every lane of a replica shares: how to get a connection, how many lanes and turns, how long."""

    def __init__(self, connect: Connect, *, lanes: int, largest: int, timeout: float) -> None:
        self.connect, self.lanes, self.largest, self.timeout = connect, lanes, largest, timeout

    def bounded(self) -> asyncio.Timeout:
        """A statement's time limit: cancelled past it, its connection closed (`db.LedgerStatement`)."""
        return asyncio.timeout(self.timeout)


class LedgerBatches:
    """Reservations and settlements of a replica's turns, each kind through its own lanes.

    `largest` turns at most a statement; `lanes` statements of each kind at once (with `largest = 1`, as many
    as the pool may open); `timeout` seconds at most in the queue, and again at most for the statement."""

    def __init__(self, connect: Connect, *, largest: int, lanes: int = LANES, timeout: float = 5.0) -> None:
        limits = _Limits(connect, lanes=lanes, largest=largest, timeout=timeout)
        self._reserves: _Lanes[Hold, Reservation] = _Lanes(
            (ledger.reserve, ledger.reserve_many), lambda hold: (hold.key, hold.period), limits
        )
        self._settles: _Lanes[tuple[Reservation, Outcome], Settlement] = _Lanes(
            (lambda conn, pair: ledger.settle(conn, *pair), ledger.settle_many),
            lambda pair: (pair[0].key, pair[0].period),
            limits,
        )

    @property
    def sent(self) -> dict[str, tuple[int, int]]:
        """Statements and turns sent so far, by kind: how much grouping there was."""
        return {
            "reserve": (self._reserves.statements, self._reserves.turns),
            "settle": (self._settles.statements, self._settles.turns),
        }

    def on_abandoned(self, release: Callable[[Reservation], None]) -> None:
        """Who releases a reservation made for a request that was cancelled meanwhile."""
        self._reserves.abandoned = release

    async def reserve(self, hold: Hold) -> Reservation:
        """`ledger.reserve`, possibly in a group: the reservation, or the refusal it raises."""
        return await self._reserves.run(hold)

    async def settle(self, reservation: Reservation, outcome: Outcome) -> Settlement:
        """`ledger.settle`, possibly in a group."""
        return await self._settles.run((reservation, outcome))

    @property
    def sending(self) -> bool:
        """Groups are being sent."""
        return self._reserves.sending or self._settles.sending

    async def drain(self) -> None:
        """Wait for the groups being sent (their turns' callers may be gone)."""
        await self._reserves.drain()
        await self._settles.drain()
