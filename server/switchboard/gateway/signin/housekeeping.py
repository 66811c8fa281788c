"""Deletes what sign-in no longer needs: codes a day past expiry, spent windows, dead refresh tokens and
browser sessions."""

from __future__ import annotations

import asyncio
import logging
import random

from ..db import Pool
from . import browser, device, ratelimit, refresh

log = logging.getLogger("switchboard.gateway.signin")
INTERVAL_SECONDS = 600.0


async def sweep_forever(pool: Pool) -> None:
    while True:
        await asyncio.sleep(INTERVAL_SECONDS * random.uniform(0.5, 1.5))
        try:
            await sweep_once(pool)
        except Exception as error:  # PostgreSQL away: next round
            log.warning("sign-in housekeeping failed: %s", type(error).__name__)


async def sweep_once(pool: Pool) -> None:
    async with pool.connection() as conn:
        await device.forget_expired(conn)
        await ratelimit.forget_expired(conn)
        await refresh.forget_expired(conn)
        await browser.forget_expired(conn)
