"""Releases reservations whose replica stopped renewing them (`liveness`), from any replica."""

from __future__ import annotations

import asyncio
import logging
import random

from . import ledger
from .service import Gateway

log = logging.getLogger("switchboard.gateway")


async def reap_forever(gateway: Gateway) -> None:
    """Every half reservation lifetime (jittered, so replicas do not all sweep at once)."""
    interval = max(0.2, gateway.ttl.total_seconds() / 2)
    while True:
        await asyncio.sleep(interval * random.uniform(0.75, 1.25))
        try:
            await reap_once(gateway)
        except Exception as error:  # PostgreSQL away: try again next round
            log.warning("reaper round failed: %s", error)


async def reap_once(gateway: Gateway) -> int:
    released = 0
    async with gateway.ledger() as conn:
        for orphan in await ledger.expired_turns(conn):
            key = orphan.key
            if key in gateway.live:  # this replica is alive and still answering it: its heartbeat was late
                continue
            settlement = await ledger.release_expired(conn, orphan)
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
