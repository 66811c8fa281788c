"""PostgreSQL: a replica's two connection pools, and the readiness probe.

- **The ledger's pool** (asyncpg): the statements every turn runs (reserve, settle), the heartbeat and the
  reaper's settlements of expired reservations. asyncpg speaks PostgreSQL's binary protocol from C and keeps
  each statement prepared per connection: a reserve and a settle cost a replica about a third of the CPU they
  cost through psycopg's async pool.
- **The pool of everything else** (psycopg): accounts, usage reports, sign-in. Alembic's migrations and the
  admin CLI use psycopg too.

Both are sized by the same settings. A turn holds a ledger connection for one statement
(`ledger_connection`); a reaper round holds one for its whole round.
"""

from __future__ import annotations

import asyncio
import select
from types import TracebackType
from typing import TypeAlias

import asyncpg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from .config import GatewaySettings

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]
# Strings: asyncpg's classes are generic only in its type stubs.
LedgerPool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
LedgerConnection: TypeAlias = (
    "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
)
READY_TIMEOUT_SECONDS = 2.0
POOL_CLOSE_SECONDS = 5.0


class LedgerUnavailable(Exception):
    """PostgreSQL did not run a ledger statement: unreachable, restarting, no connection in time, or it
    refused the statement. Retryable; what the statement would have changed is unchanged."""


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


async def open_ledger_pool(settings: GatewaySettings) -> LedgerPool:
    """The ledger's pool. Connections are made when first needed, so a replica starts (and answers /healthz)
    while PostgreSQL is still coming up; a connection PostgreSQL dropped (it closes them when it stops) is
    seen closed by the event loop and replaced as it leaves the pool."""
    return await asyncpg.create_pool(
        settings.database_url.get_secret_value(),
        min_size=0,
        max_size=max(settings.pool_min_size, settings.pool_max_size),
        # Every ledger statement is a single autocommitted call that changes no session state, so the
        # default reset (a round trip on every release) has nothing to undo.
        reset=_keep_session,
        timeout=settings.pool_timeout_seconds,  # connecting
    )


async def close_ledger_pool(pool: LedgerPool, timeout: float = POOL_CLOSE_SECONDS) -> None:
    """Close the pool, waiting for statements in flight for at most `timeout` (psycopg's pool gives up
    after 5 s too); one stuck on a lock or a half-open connection must not hold the replica's shutdown."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        pool.terminate()


async def _keep_session(_: asyncpg.Connection[asyncpg.Record]) -> None:
    return None


# What keeps PostgreSQL from running a statement. InternalClientError: what asyncpg raises for a server it
# will not use (a standby during a failover under target_session_attrs=read-write) or a protocol it cannot
# follow.
_UNAVAILABLE = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


def ledger_connection(pool: LedgerPool, timeout: float) -> LedgerStatement:
    """A connection of the ledger's pool for one statement; whatever keeps PostgreSQL from running it
    (no connection within `timeout`, a dropped connection, an error it answered) is `LedgerUnavailable`."""
    return LedgerStatement(pool, timeout)


class LedgerStatement:
    """`ledger_connection`'s context, a class rather than a generator: every turn enters two (a few µs)."""

    __slots__ = ("_acquiring",)

    def __init__(self, pool: LedgerPool, timeout: float) -> None:
        self._acquiring = pool.acquire(timeout=timeout)

    async def __aenter__(self) -> LedgerConnection:
        try:
            return await self._acquiring.__aenter__()
        except _UNAVAILABLE as error:
            raise LedgerUnavailable(type(error).__name__) from error

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            await self._acquiring.__aexit__(kind, error, trace)
        except _UNAVAILABLE as failure:
            raise LedgerUnavailable(type(failure).__name__) from failure
        if isinstance(error, _UNAVAILABLE):
            raise LedgerUnavailable(type(error).__name__) from error


async def ledger_ready(pool: LedgerPool) -> bool:
    try:
        async with ledger_connection(pool, READY_TIMEOUT_SECONDS) as conn:
            await conn.fetchval("SELECT 1", timeout=READY_TIMEOUT_SECONDS)
        return True
    except LedgerUnavailable:
        return False
