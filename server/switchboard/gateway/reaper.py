"""Releases reservations whose replica stopped renewing them (`liveness`), from any replica."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Container

import asyncpg

from . import ledger
from .db import LedgerConnection
from .service import Gateway

log = logging.getLogger("switchboard.gateway")
# An error PostgreSQL raised for one orphan's settlement (a row an earlier release left inconsistent, say)
# says nothing of the others: it is logged and the sweep goes on. These say PostgreSQL itself is unwell
# (gone, shutting down, out of resources): the round ends and the next one tries again.
_POSTGRESQL_UNWELL = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.PostgresSystemError,
)


async def reap_forever(gateway: Gateway) -> None:
    """Every half reservation lifetime (jittered, so replicas do not all sweep at once)."""
    interval = max(0.2, gateway.ttl.total_seconds() / 2)
    while True:
        await asyncio.sleep(interval * random.uniform(0.75, 1.25))
        try:
            await reap_once(gateway.ledger, gateway.live)
        except Exception as error:  # PostgreSQL away (or a schema that does not match): try again next round
            # A LedgerUnavailable's message: the error's name, or the deploy error a schema mismatch is.
            log.warning("reaper round failed: %s", str(error) or type(error).__name__)


async def reap_once(
    connect: Callable[[], contextlib.AbstractAsyncContextManager[LedgerConnection]],
    live: Container[uuid.UUID | None],
) -> int:
    """Settle the expired reservations (oldest first) this replica is not working on itself (`live`: the
    ids of the attempts it is working on)."""
    released = 0
    async with connect() as conn:
        for orphan in await ledger.expired_turns(conn):
            key = orphan.key
            # This replica is alive and still answering that very attempt: its heartbeat was late.
            if orphan.attempt_id in live:
                continue
            try:
                settlement = await ledger.release_expired(conn, orphan)
            except asyncpg.PostgresError as error:
                if isinstance(error, _POSTGRESQL_UNWELL):
                    raise
                log.error(
                    "could not release an expired reservation: %s",
                    error,
                    extra={"account": key.account_id, "turn_id": key.turn_id},
                )
                continue
            if settlement is not None:
                released += 1
                log.info(
                    "released an expired reservation",
                    extra={
                        "account": key.account_id,
                        "turn_id": key.turn_id,
                        "credits": settlement.credits_h / 100,
                    },
                )
    return released
