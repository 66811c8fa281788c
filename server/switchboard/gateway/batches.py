"""A replica's reservations and settlements, sent several turns to a statement when they queue up.

A turn costs the ledger two statements (reserve, then settle). On this machine's PostgreSQL, what a statement
costs besides its work (the round trip, the call, starting the executor, the commit, the kernel) is most of
it: sending the queued turns of a busy replica as one statement and one transaction (`ledger.reserve_many`,
`ledger.settle_many`) cut PostgreSQL's CPU a turn by about half (docs/performance.md). So each kind of
statement goes through `LANES` lanes:
- a turn that finds a lane free is sent at once, alone: when the ledger keeps up, nothing waits;
- turns that arrive while every lane is busy queue, and the next lane to come free takes them all (up to
  `largest`) in one statement;
- each turn still gets its own answer: a refusal of one turn (no credits, a plan) is that turn's result.

It also bounds what one replica asks of PostgreSQL at once (the lanes, not the pool): an account sending a
hundred turns at once waits in the queue, not on its balance row holding a pooled connection each.

- **Lock order.** A group takes its turns `in_lock_order` (by account, newest month first, then turn id), so
  two groups, or a group and one turn's statement, never wait on each other in a cycle.
- **The heartbeat** locks the rows of many of this replica's turns in no order, and this replica's
  settlements are among them: it runs while no settlement group does (`settlements_paused`).
- **A group PostgreSQL refuses** (an error it answered: a deadlock it broke, a constraint) is rolled back
  whole, and its turns are then sent one by one, each getting its own answer. A group whose connection
  failed gives every turn `LedgerUnavailable`, as each turn's own statement would have.
- **A reservation whose request was cancelled** while its group ran is released at once (`abandoned`),
  rather than held until it expires. A turn sent alone runs in its caller's task, as before there were
  lanes: cancelled, its statement is cancelled too (and a reservation it committed expires, then is swept).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import asyncpg

from . import ledger
from .db import LedgerConnection, LedgerUnavailable
from .ledger import Hold, Outcome, Reservation, Settlement, TurnKey

log = logging.getLogger("switchboard.gateway")
LANES = 2

Item = TypeVar("Item")
Result = TypeVar("Result")
Connect = Callable[[], contextlib.AbstractAsyncContextManager[LedgerConnection]]


class _Lanes(Generic[Item, Result]):
    """One kind of ledger statement: items sent alone when a lane is free, together when they queued."""

    def __init__(
        self,
        connect: Connect,
        alone: Callable[[LedgerConnection, Item], Awaitable[Result]],
        together: Callable[[LedgerConnection, Sequence[Item]], Awaitable[Sequence[Result | Exception]]],
        where: Callable[[Item], tuple[TurnKey, str]],
        largest: int,
    ) -> None:
        self._connect, self._alone, self._together, self._where = connect, alone, together, where
        self._largest = largest
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._free = LANES
        self._paused = 0
        self._all_free = asyncio.Event()
        self._all_free.set()
        self._sending: set[asyncio.Task[None]] = set()
        self.abandoned: Callable[[Result], None] | None = None  # an answer its caller no longer waits for
        self.statements = self.turns = 0  # sent so far (a group that fell back to one by one counts once)

    async def run(self, item: Item) -> Result:
        if self._free and not self._queue and not self._paused:
            return await self._run_alone(item)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._dispatch()
        return await future

    async def _run_alone(self, item: Item) -> Result:
        """A lane is free and nothing queues: the statement runs in the caller's task, with no task of its own
        to wait for on a busy event loop (as a turn's statement did before there were lanes)."""
        self._take_lane(1)
        try:
            async with self._connect() as conn:
                return await self._alone(conn, item)
        finally:
            self._give_lane_back()

    def _take_lane(self, turns: int) -> None:
        self._free -= 1
        self._all_free.clear()
        self.statements += 1
        self.turns += turns

    def _give_lane_back(self) -> None:
        self._free += 1
        if self._free == LANES:
            self._all_free.set()
        self._dispatch()

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncGenerator[None]:
        """No statement of this kind runs inside; those queued meanwhile go together afterwards."""
        self._paused += 1
        try:
            await self._all_free.wait()
            yield
        finally:
            self._paused -= 1
            self._dispatch()

    def _dispatch(self) -> None:
        while self._free and self._queue and not self._paused:
            taken = [(item, future) for item, future in self._queue[: self._largest] if not future.done()]
            del self._queue[: self._largest]
            if not taken:  # every caller gave up before its turn was sent
                continue
            self._take_lane(len(taken))
            task = asyncio.ensure_future(self._send(taken))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, taken: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        items = [item for item, _ in taken]
        answers: Sequence[Result | Exception]
        try:
            answers = [await self._one(items[0])] if len(items) == 1 else await self._group(items)
        except BaseException as error:  # a bug, or the loop shutting down: no caller may wait forever
            for _, future in taken:
                self._answer(future, LedgerUnavailable(f"{type(error).__name__} sending a ledger statement"))
            raise
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
            async with self._connect() as conn:
                return await self._alone(conn, item)
        except Exception as error:  # LedgerUnavailable, or the turn's refusal: its own answer
            return error

    async def _group(self, items: list[Item]) -> list[Result | Exception]:
        ordered = ledger.in_lock_order(range(len(items)), lambda index: self._where(items[index]))
        try:
            async with self._connect() as conn:
                answers = await self._together(conn, [items[index] for index in ordered])
        except LedgerUnavailable as error:
            if not isinstance(error.__cause__, asyncpg.PostgresError):
                return [LedgerUnavailable(*error.args) for _ in items]
            log.warning(
                "a group of %d ledger statements was refused (%s): sent one by one", len(items), error
            )
            return [await self._one(item) for item in items]
        in_order: list[Result | Exception] = [answers[0]] * len(items)
        for position, index in enumerate(ordered):
            in_order[index] = answers[position]
        return in_order


class LedgerBatches:
    """Reservations and settlements of a replica's turns, each kind through its own lanes."""

    def __init__(self, connect: Connect, largest: int) -> None:
        self._reserves: _Lanes[Hold, Reservation] = _Lanes(
            connect, ledger.reserve, ledger.reserve_many, lambda hold: (hold.key, hold.period), largest
        )
        self._settles: _Lanes[tuple[Reservation, Outcome], Settlement] = _Lanes(
            connect,
            lambda conn, pair: ledger.settle(conn, *pair),
            ledger.settle_many,
            lambda pair: (pair[0].key, pair[0].period),
            largest,
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

    def settlements_paused(self) -> contextlib.AbstractAsyncContextManager[None]:
        """For the heartbeat: no settlement runs meanwhile (see the module's docstring)."""
        return self._settles.paused()
