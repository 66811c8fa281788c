"""PostgreSQL: the async connection pool the replicas share, and the readiness probe."""

from __future__ import annotations

import asyncio
import select

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from .config import GatewaySettings

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]
READY_TIMEOUT_SECONDS = 2.0


async def open_pool(settings: GatewaySettings) -> Pool:
    pool: Pool = AsyncConnectionPool(
        settings.database_url.get_secret_value(),
        min_size=settings.pool_min_size,
        max_size=max(settings.pool_min_size, settings.pool_max_size),
        kwargs={"row_factory": dict_row, "autocommit": True},
        connection_class=AsyncConnection[DictRow],
        open=False,
        # A request waits this long for a connection before it gets a retryable 503.
        timeout=settings.pool_timeout_seconds,
        # A connection is checked as it leaves the pool, so a PostgreSQL restart costs no failed request.
        check=_check_connection,
        name="switchboard-gateway",
    )
    # Not waiting: a replica starts (and answers /healthz) while PostgreSQL is still coming up.
    await pool.open(wait=False)
    return pool


async def _check_connection(conn: AsyncConnection[DictRow]) -> None:
    """Raises on a connection PostgreSQL has dropped (the pool then discards it and takes another).

    An idle connection has nothing to read unless the server said something: when PostgreSQL stops or
    restarts it sends a FATAL notice and closes, which makes the socket readable. So the round trip that
    proves the connection is only spent on one whose socket is readable (or already closed), not on
    every request."""
    if conn.closed or _readable(conn.fileno()):
        await conn.execute("")


def _readable(fd: int) -> bool:
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return True


async def is_ready(pool: Pool) -> bool:
    """PostgreSQL answers a query within a couple of seconds."""
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), pool.connection() as conn:
            await conn.execute("SELECT 1")
        return True
    except Exception:
        return False
