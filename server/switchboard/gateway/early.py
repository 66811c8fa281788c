"""Sending a streamed turn to Anthropic while its reservation is being made.

The reservation's round trip to PostgreSQL is most of the time to first token the gateway adds. A streamed
turn whose account this replica knows can afford it is sent upstream at the same moment as its reservation
is asked for; no byte of the answer goes to the client before the reservation is made, and a turn the
reservation refuses has its upstream request closed unread. The reservation stays what decides: only the
vendor risks anything, the input Anthropic may bill for a request closed before its answer began.

Which turns go early (`EarlySends.may_send`), all of:
- streamed (a turn not streamed is answered whole before the gateway sees it);
- an estimated input of at most `MAX_INPUT_TOKENS` (what a refused one can cost the vendor), all of it in the
  body (not a document Anthropic fetches by URL, whose size nobody knows before);
- the account's last reservation on this replica succeeded within `FRESH_SECONDS`, and what the ledger said
  it had left then covers this turn's hold and every other early turn of the account still being reserved.
  What is left only grows as turns settle (a settlement gives back at least part of its hold), so a refusal
  needs another replica's turns, an administrator's change, or a repeated turn id;
- the account had no refusal on this replica for `PAUSE_SECONDS`; and PostgreSQL answered the last
  reservation (while it is away, nothing is known: every account starts again from a reservation).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .upstream import UpstreamAnswer

MAX_INPUT_TOKENS = 32_000
FRESH_SECONDS = 60.0
PAUSE_SECONDS = 300.0
# Accounts remembered at most (a replica's active accounts fit many times over); the oldest go first.
MAX_ACCOUNTS = 100_000


@dataclass
class _Known:
    available_h: int
    at: float
    in_flight_h: int = 0  # held by this account's early turns whose reservation is not answered yet


class EarlySend:
    """One turn's request to Anthropic, sent before its reservation was answered."""

    def __init__(self, send: Awaitable[UpstreamAnswer]) -> None:
        self.started = time.monotonic()
        self._task = asyncio.ensure_future(send)

    async def answer(self) -> UpstreamAnswer:
        """The upstream answer once its head came (raises what sending raised)."""
        return await self._task

    def abandon(self) -> None:
        """The turn will not be answered: close its request, sent or not, and never read it."""
        if not self._task.done():
            self._task.cancel()  # the HTTP client aborts the connection: Anthropic stops the request
        self._task.add_done_callback(_close_answer)


def _close_answer(task: asyncio.Task[UpstreamAnswer]) -> None:
    if task.cancelled():
        return
    if task.exception() is None:  # retrieved: a refused turn's failed request is no one's concern
        task.result().close()


class EarlySends:
    """What this replica knows of its accounts' headroom, and the turns it may send early by it."""

    def __init__(self, *, enabled: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self._clock = clock
        self._known: dict[str, _Known] = {}
        self._paused: dict[str, float] = {}  # account → until when

    def may_send(self, account_id: str, reserved_h: int, input_tokens: int | None, *, stream: bool) -> bool:
        """True if this turn may go upstream before its reservation is answered; it then counts as in flight
        until `answered` is called for it. `input_tokens` is its input's estimate, None when some of it is
        not in the body (a document Anthropic fetches by URL: its size is unknown)."""
        if not (self.enabled and stream and input_tokens is not None and input_tokens <= MAX_INPUT_TOKENS):
            return False
        now = self._clock()
        known = self._known.get(account_id)
        if known is None or now - known.at > FRESH_SECONDS or self._is_paused(account_id, now):
            return False
        if known.in_flight_h + reserved_h > known.available_h:
            return False
        known.in_flight_h += reserved_h
        return True

    def answered(self, account_id: str, reserved_h: int) -> None:
        """The reservation of a turn sent early was answered (or given up): it is no longer in flight."""
        known = self._known.get(account_id)
        if known is not None:
            known.in_flight_h = max(0, known.in_flight_h - reserved_h)

    def reserved(self, account_id: str, available_h: int | None) -> None:
        """A reservation of the account's succeeded, leaving `available_h` (None: the ledger did not say)."""
        known = self._known.pop(account_id, None)  # re-inserted last: the dict keeps recency order
        if available_h is None:
            return
        in_flight_h = known.in_flight_h if known is not None else 0
        self._known[account_id] = _Known(available_h, self._clock(), in_flight_h)
        if len(self._known) > MAX_ACCOUNTS:
            del self._known[next(iter(self._known))]

    def refused(self, account_id: str) -> None:
        """The ledger refused a turn of the account: send none of its turns early for a while."""
        self._known.pop(account_id, None)
        self._paused[account_id] = self._clock() + PAUSE_SECONDS
        if len(self._paused) > MAX_ACCOUNTS:
            now = self._clock()
            self._paused = {account: until for account, until in self._paused.items() if until > now}

    def forget(self, account_id: str) -> None:
        """What the account can afford may have shrunk (its overage settings changed here)."""
        self._known.pop(account_id, None)

    def forget_all(self) -> None:
        """PostgreSQL did not answer: nothing is known until it answers again."""
        self._known.clear()

    def _is_paused(self, account_id: str, now: float) -> bool:
        until = self._paused.get(account_id)
        if until is None:
            return False
        if until > now:
            return True
        with contextlib.suppress(KeyError):
            del self._paused[account_id]
        return False
