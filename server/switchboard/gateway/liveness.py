"""A replica's heartbeat: one statement every third of the reservation lifetime keeps alive every
reservation the replica is working on, and records the usage each has reached.

A reservation is live from the moment it is reserved (while Anthropic has not answered yet, too) to its
settlement. A replica that stops beating (killed, or stalled longer than the lifetime) lets its
reservations expire, and any replica's reaper settles them at their last checkpoint (`reaper`). A
reservation the replica forgot (a bug, a settlement it gave up on) is no longer in its set, so it expires
too rather than being held forever.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Protocol

from switchboard.protocol.messages import Usage

from . import ledger
from .db import LedgerPool, ledger_connection
from .ledger import Checkpoint, Reservation, TurnKey

log = logging.getLogger("switchboard.gateway")


class Metered(Protocol):
    """What a streamed turn has used so far (`metering.StreamMeter`)."""

    @property
    def output_seen(self) -> bool: ...

    def usage(self) -> Usage: ...


class LiveTurns:
    """The reservations this replica is working on, each with the meter of its stream once it has one."""

    def __init__(self) -> None:
        self._turns: dict[TurnKey, tuple[Reservation, Metered | None]] = {}

    def add(self, reservation: Reservation) -> None:
        self._turns[reservation.key] = (reservation, None)

    def meter(self, reservation: Reservation, meter: Metered) -> None:
        """Checkpoint this stream's usage with every heartbeat from now on."""
        if reservation.key in self._turns:
            self._turns[reservation.key] = (reservation, meter)

    def discard(self, reservation: Reservation) -> None:
        current = self._turns.get(reservation.key)
        if current is not None and current[0].attempt == reservation.attempt:
            del self._turns[reservation.key]

    def __contains__(self, key: TurnKey) -> bool:
        return key in self._turns

    def __len__(self) -> int:
        return len(self._turns)

    def checkpoints(self) -> list[Checkpoint]:
        points: list[Checkpoint] = []
        for reservation, meter in list(self._turns.values()):
            if meter is None:
                points.append(Checkpoint(reservation, Usage(), output_seen=False))
            else:
                points.append(Checkpoint(reservation, meter.usage(), meter.output_seen))
        return points


async def beat_once(pool: LedgerPool, live: LiveTurns, ttl: timedelta) -> int:
    """Renew every live reservation of this replica: the number PostgreSQL still had reserved."""
    points = live.checkpoints()
    if not points:
        return 0
    # A beat that waits longer than a beat's interval for a connection is overtaken by the next one.
    async with ledger_connection(pool, ttl.total_seconds() / 3) as conn:
        return await ledger.heartbeat(conn, points, ttl)


async def beat_forever(pool: LedgerPool, live: LiveTurns, ttl: timedelta) -> None:
    interval = ttl.total_seconds() / 3
    while True:
        await asyncio.sleep(interval)
        try:
            await beat_once(pool, live, ttl)
        except Exception as error:  # a missed beat is retried; the reaper is the backstop
            log.warning("heartbeat failed: %s", type(error).__name__)
