"""Which turns go to Anthropic while their reservation is still being made.

Reserving a turn is a PostgreSQL round trip. Sending the request upstream only once it commits adds that
round trip to the time to first token of every turn. For an account whose last reservations here fitted,
the request goes upstream at once and the reservation runs meanwhile. Nothing of the answer reaches the
client, and nothing is charged, until the reservation commits. A refused reservation aborts the upstream
request. Anthropic takes far longer to begin an answer than PostgreSQL takes to refuse, so no output was
produced.

An aborted request may still cost the vendor its input, so head starts go only where a refusal is
unlikely:
- to accounts this replica has reserved a turn for before;
- not to an account refused here within the last `COOLDOWN_SECONDS`, for any reason (credits, plan, a
  repeated turn id), so repeating refused turns earns at most one aborted request a minute per replica;
- to nobody for `COOLDOWN_SECONDS` after PostgreSQL could not be reached.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

COOLDOWN_SECONDS = 60.0
# Accounts remembered; the least recently reserved are forgotten first (their next turn reserves first).
CAPACITY = 100_000
_NEVER = float("-inf")


class HeadStarts:
    def __init__(
        self,
        *,
        enabled: bool = True,
        cooldown: float = COOLDOWN_SECONDS,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled, self._cooldown, self._capacity, self._clock = enabled, cooldown, capacity, clock
        # account id -> (a reservation fitted here, when one was last refused here)
        self._accounts: OrderedDict[str, tuple[bool, float]] = OrderedDict()
        self._paused_until = _NEVER

    def allows(self, account_id: str) -> bool:
        """Whether `account_id`'s next turn may go upstream before its reservation commits."""
        if not self.enabled:
            return False
        now = self._clock()
        fitted, refused_at = self._accounts.get(account_id, (False, _NEVER))
        return fitted and now >= self._paused_until and now - refused_at >= self._cooldown

    def reserved(self, account_id: str) -> None:
        _, refused_at = self._accounts.pop(account_id, (False, _NEVER))
        self._remember(account_id, (True, refused_at))

    def refused(self, account_id: str) -> None:
        fitted, _ = self._accounts.pop(account_id, (False, _NEVER))
        self._remember(account_id, (fitted, self._clock()))

    def ledger_unavailable(self) -> None:
        self._paused_until = self._clock() + self._cooldown

    def _remember(self, account_id: str, state: tuple[bool, float]) -> None:
        self._accounts[account_id] = state
        if len(self._accounts) > self._capacity:
            self._accounts.popitem(last=False)
