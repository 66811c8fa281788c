"""A replica's heartbeat: one statement every third of the reservation lifetime keeps alive every
reservation the replica is working on, and records the usage each has reached. Between beats, a
checkpoint every `checkpoint_interval_seconds` records the usage of the turns whose output grew since
their last one (one statement too, and none when nothing grew), so that a replica killed soon after an
answer began still leaves that answer charged.

A reservation is live from the moment it is reserved (while Anthropic has not answered yet, too) to its
settlement. A replica that stops beating (killed, or stalled longer than the lifetime) lets its
reservations expire, and any replica's reaper settles them at their last checkpoint (`reaper`). A
reservation the replica forgot (a bug, a settlement it gave up on) is no longer in its set, so it expires
too rather than being held forever.

Before a checkpoint, the streams' deltas that arrived since the last one are read for their text (about 2,000
a second for 100 streams, some 8 ms of work): a few turns at a time, giving the event loop back every
`READ_SLICE_SECONDS`, so a request that arrives meanwhile waits a fraction of a millisecond, not the lot.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Protocol

from switchboard.protocol.messages import Usage

from . import ledger
from .db import LedgerPool, ledger_connection
from .ledger import Checkpoint, Reservation, TurnKey

log = logging.getLogger("switchboard.gateway")
READ_SLICE_SECONDS = 0.0005


class Metered(Protocol):
    """What a streamed turn has used so far (`metering.StreamMeter`)."""

    @property
    def output_seen(self) -> bool: ...

    def usage(self) -> Usage: ...

    def read(self) -> None:
        """Do now the work `usage` would (so that it is cheap afterwards)."""
        ...


class LiveTurns:
    """The reservations this replica is working on, each with the meter of its stream once it has one.

    One attempt a turn id: a newer attempt at the same turn id replaces an older one, and whatever is done
    for the older one afterwards (its meter, its settlement, its checkpoint acknowledged late) leaves the
    newer alone. Attempts are told apart by their ids, never by their numbers (which can repeat)."""

    def __init__(self) -> None:
        self._turns: dict[TurnKey, tuple[Reservation, Metered | None]] = {}
        self._recorded: dict[TurnKey, Usage] = {}  # the usage each turn's last checkpoint sent
        self._attempts: set[uuid.UUID] = set()  # the ids of the attempts in `_turns`

    def add(self, reservation: Reservation) -> None:
        replaced = self._turns.get(reservation.key)
        if replaced is not None and replaced[0].attempt_id != reservation.attempt_id:
            self._attempts.discard(replaced[0].attempt_id)
            self._recorded.pop(reservation.key, None)
        self._turns[reservation.key] = (reservation, None)
        self._attempts.add(reservation.attempt_id)

    def meter(self, reservation: Reservation, meter: Metered) -> None:
        """Checkpoint this stream's usage with every heartbeat from now on."""
        if self._holds(reservation):
            self._turns[reservation.key] = (reservation, meter)

    def discard(self, reservation: Reservation) -> None:
        if self._holds(reservation):
            del self._turns[reservation.key]
            self._recorded.pop(reservation.key, None)
            self._attempts.discard(reservation.attempt_id)

    def _holds(self, reservation: Reservation) -> bool:
        current = self._turns.get(reservation.key)
        return current is not None and current[0].attempt_id == reservation.attempt_id

    def __contains__(self, attempt_id: object) -> bool:
        """Whether this replica is working on the attempt with this id (`Reservation.attempt_id`)."""
        return attempt_id in self._attempts

    def __len__(self) -> int:
        return len(self._turns)

    async def read_meters(self) -> None:
        """Have every live stream's meter read its new deltas, yielding the event loop between slices."""
        loop = asyncio.get_running_loop()
        slice_ends = loop.time() + READ_SLICE_SECONDS
        for _, meter in list(self._turns.values()):
            if meter is not None:
                meter.read()
            if loop.time() >= slice_ends:
                await asyncio.sleep(0)
                slice_ends = loop.time() + READ_SLICE_SECONDS

    def checkpoints(self) -> list[Checkpoint]:
        """Every live turn, with the usage it has reached (what a heartbeat sends)."""
        points: list[Checkpoint] = []
        for reservation, meter in list(self._turns.values()):
            if meter is None:
                points.append(Checkpoint(reservation, Usage(), output_seen=False))
            else:
                points.append(Checkpoint(reservation, meter.usage(), meter.output_seen))
        return points

    def grown(self) -> list[Checkpoint]:
        """The live turns whose output began or grew since their last recorded checkpoint."""
        points: list[Checkpoint] = []
        for reservation, meter in list(self._turns.values()):
            if meter is None or not meter.output_seen:
                continue
            usage = meter.usage()
            if usage != self._recorded.get(reservation.key):
                points.append(Checkpoint(reservation, usage, output_seen=True))
        return points

    def recorded(self, points: list[Checkpoint]) -> None:
        """PostgreSQL holds these checkpoints now (after a failed statement nothing is recorded: resent)."""
        for point in points:
            if self._holds(point.reservation):
                self._recorded[point.reservation.key] = point.usage


async def beat_once(pool: LedgerPool, live: LiveTurns, ttl: timedelta) -> int:
    """Renew every live reservation of this replica: the number PostgreSQL still had reserved."""
    await live.read_meters()
    return await _send(pool, live, live.checkpoints(), ttl)


async def checkpoint_once(pool: LedgerPool, live: LiveTurns, ttl: timedelta) -> int:
    """Record the usage of the turns whose output grew (renewing them too)."""
    await live.read_meters()
    return await _send(pool, live, live.grown(), ttl)


async def _send(pool: LedgerPool, live: LiveTurns, points: list[Checkpoint], ttl: timedelta) -> int:
    if not points:
        return 0
    # Waiting longer than a beat's interval for a connection would leave the reservations closer to expiry
    # than the next beat's retry.
    async with ledger_connection(pool, ttl.total_seconds() / 3) as conn:
        still_reserved = await ledger.heartbeat(conn, points, ttl)
    live.recorded(points)
    return still_reserved


async def beat_forever(pool: LedgerPool, live: LiveTurns, ttl: timedelta, checkpoint_interval: float) -> None:
    """A heartbeat every third of the lifetime; between beats, a checkpoint of grown turns every
    `checkpoint_interval` seconds. A beat that fails stays due, so the next tick tries it again."""
    beat_interval = ttl.total_seconds() / 3
    tick = min(checkpoint_interval, beat_interval)
    loop = asyncio.get_running_loop()
    next_beat = loop.time() + beat_interval
    while True:
        await asyncio.sleep(tick)
        beat = loop.time() >= next_beat
        try:
            await (beat_once if beat else checkpoint_once)(pool, live, ttl)
            if beat:
                next_beat = loop.time() + beat_interval  # after a stall, one beat, not a burst of catch-ups
        except Exception as error:  # a missed beat is retried; the reaper is the backstop
            log.warning("heartbeat failed: %s", error)
