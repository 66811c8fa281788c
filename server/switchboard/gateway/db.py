"""PostgreSQL: a replica's two connection pools, and the readiness probe.

- **The ledger's pool** (`LedgerPool`, of asyncpg connections): the statements every turn runs (reserve,
  settle), the heartbeat and the reaper's settlements of expired reservations. asyncpg speaks PostgreSQL's
  binary protocol from C and keeps each statement prepared per connection: a reserve and a settle cost a
  replica about a third of the CPU they cost through psycopg's async pool.
- **The pool of everything else** (psycopg): accounts, usage reports, sign-in. Alembic's migrations and the
  admin CLI use psycopg too.

Both are sized by the same settings. A turn holds a ledger connection for one statement
(`ledger_connection`); a reaper round holds one for its whole round.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import time
from collections import deque
from types import TracebackType
from typing import Any, TypeAlias

import asyncpg
import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from . import schema
from .config import GatewaySettings

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]
# A string: asyncpg's classes are generic only in its type stubs.
LedgerConnection: TypeAlias = "asyncpg.Connection[asyncpg.Record]"
READY_TIMEOUT_SECONDS = 2.0
UNREACHABLE = "PostgreSQL is unreachable"
POOL_CLOSE_SECONDS = 5.0
# A ledger connection idle for longer is closed rather than used (asyncpg's pool did the same): a firewall or
# NAT may have dropped it silently, and a statement on a half-open connection would wait for TCP to notice.
MAX_IDLE_SECONDS = 300.0


class LedgerUnavailable(Exception):
    """PostgreSQL did not run a ledger statement: unreachable, restarting, no connection in time, or it
    refused the statement. Retryable; what the statement would have changed is unchanged.

    `refused_statement`: PostgreSQL answered that this statement could not run, for its data or a deadlock it
    broke (a constraint, a bad value, a serialization failure), not for the connection or the server: other
    statements on the same server may well run."""

    def __init__(self, message: str, *, refused_statement: bool = False) -> None:
        super().__init__(message)
        self.refused_statement = refused_statement


async def open_pool(settings: GatewaySettings) -> Pool:
    pool: Pool = AsyncConnectionPool(
        settings.database_url.get_secret_value(),
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
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


class ReadinessProbe:
    """`/readyz`'s check, on a connection of its own: a pool busy with work (every connection waiting on a
    lock, a burst of turns) is not PostgreSQL being unreachable, and must not take a replica out of rotation.
    The connection is made when first needed and made again after any failure."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> str | None:
        """None when PostgreSQL answers within a couple of seconds with a schema this release can run on;
        otherwise what is wrong (`UNREACHABLE`, or the schema is behind: `schema.behind`)."""
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS), self._lock:
                if self._conn is None or self._conn.closed:
                    self._conn = await AsyncConnection.connect(self._dsn, autocommit=True)
                version = await schema_version(self._conn)
        except Exception:
            await self.close()
            return UNREACHABLE
        return schema.behind(version)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                    await conn.close()


async def schema_version(conn: AsyncConnection[Any]) -> str | None:
    """The database's alembic revision; None when it has no schema yet."""
    try:
        row = await (await conn.execute(schema.VERSION_QUERY)).fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    if row is None:
        return None
    return row["version_num"] if isinstance(row, dict) else row[0]


async def open_ledger_pool(settings: GatewaySettings) -> LedgerPool:
    """The ledger's pool. Connections are made when first needed, so a replica starts (and answers /healthz)
    while PostgreSQL is still coming up."""
    return LedgerPool(
        settings.database_url.get_secret_value(),
        max_size=settings.pool_max_size,
        connect_timeout=settings.pool_timeout_seconds,
    )


class LedgerPool:
    """asyncpg connections for ledger statements, the most recently used first.

    asyncpg's own pool cost about 65 µs of CPU per acquire and release (a shielded task on every release,
    timeouts, an inactivity timer, a proxy object: measured against one held connection), and a statement
    itself about 90 µs; a turn runs two. A ledger statement needs none of that: it is one autocommitted
    call that leaves no session state. So a connection whose statement ended normally, or with an error
    of ours raised after it, goes straight back; one whose statement was cut short (cancelled, timed out,
    the connection lost, PostgreSQL's error) is closed. A connection PostgreSQL dropped while it was idle
    (it closes them when it stops) is seen closed by the event loop and replaced as it leaves the pool."""

    def __init__(self, dsn: str, *, max_size: int, connect_timeout: float) -> None:
        self._dsn, self._max_size, self._connect_timeout = dsn, max_size, connect_timeout
        self._idle: list[tuple[LedgerConnection, float]] = []  # and when it came back
        self._in_use: set[LedgerConnection] = set()
        self._opening = 0
        # Each waiter gets a connection, or None: a place came free, connect.
        self._waiters: deque[asyncio.Future[LedgerConnection | None]] = deque()
        self._closed = False

    @property
    def busy(self) -> bool:
        """Every connection it may open is open and in use."""
        return not self._idle and self.size >= self._max_size

    @property
    def size(self) -> int:
        """Connections open or being opened."""
        return len(self._idle) + len(self._in_use) + self._opening

    async def acquire(self, timeout: float) -> LedgerConnection:
        """A connection within `timeout` seconds (TimeoutError otherwise, or the error connecting raised)."""
        while self._idle:
            conn, since = self._idle.pop()
            if time.monotonic() - since > MAX_IDLE_SECONDS:
                conn.terminate()
            elif not conn.is_closed():
                self._in_use.add(conn)
                return conn
        async with asyncio.timeout(timeout):
            while True:
                if self._closed:
                    raise asyncpg.InterfaceError("the ledger's pool is closed")
                if self.size < self._max_size:
                    return await self._connect()
                conn = await self._wait()
                if conn is None:
                    continue
                if not conn.is_closed():
                    return conn
                self._in_use.discard(conn)

    async def _wait(self) -> LedgerConnection | None:
        waiter: asyncio.Future[LedgerConnection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except BaseException:
            if not waiter.done() or waiter.cancelled():  # given nothing
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            elif (handed := waiter.result()) is not None:  # handed over just as this caller gave up
                self.release(handed, clean=True)
            else:
                self._pass_on(None)  # the free place goes to the next caller
            raise

    async def _connect(self) -> LedgerConnection:
        self._opening += 1
        try:
            conn: LedgerConnection = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
        except BaseException:
            self._opening -= 1
            self._pass_on(None)
            raise
        self._opening -= 1
        self._in_use.add(conn)
        return conn

    def release(self, conn: LedgerConnection, *, clean: bool) -> None:
        self._in_use.discard(conn)
        if self._closed or not clean or conn.is_closed() or conn.is_in_transaction():
            conn.terminate()
            self._pass_on(None)
        elif not self._pass_on(conn):
            self._idle.append((conn, time.monotonic()))

    def _pass_on(self, conn: LedgerConnection | None) -> bool:
        """Hand `conn` (or a free place) to the longest waiting caller; False when nobody waits."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                if conn is not None:
                    self._in_use.add(conn)
                waiter.set_result(conn)
                return True
        return False

    async def close(self, timeout: float = POOL_CLOSE_SECONDS) -> None:
        """Close idle connections now, and those in use once released or after `timeout` seconds (psycopg's
        pool gives up after 5 s too): one stuck on a lock or a half-open connection must not hold the
        replica's shutdown."""
        self._closed = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.terminate()
        deadline = time.monotonic() + timeout
        while self._in_use and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self._in_use):
            conn.terminate()
        self._in_use.clear()


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

    __slots__ = ("_conn", "_pool", "_timeout")

    def __init__(self, pool: LedgerPool, timeout: float) -> None:
        self._pool, self._timeout = pool, timeout
        self._conn: LedgerConnection | None = None

    async def __aenter__(self) -> LedgerConnection:
        try:
            self._conn = await self._pool.acquire(self._timeout)
        except _UNAVAILABLE as error:
            raise unavailable(error) from error
        return self._conn

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._conn is not None
        cut_short = isinstance(error, (asyncio.CancelledError, *_UNAVAILABLE))
        self._pool.release(self._conn, clean=not cut_short)
        if isinstance(error, _UNAVAILABLE):
            raise unavailable(error) from error


def unavailable(error: BaseException) -> LedgerUnavailable:
    """`LedgerUnavailable` named after `error`. A function, table or column PostgreSQL does not have
    (`schema.SCHEMA_SQLSTATES`) is a schema this release cannot run on, a deploy error rather than an outage:
    its message says so and what to run, so the log line it ends up in is not read as "PostgreSQL is down"."""
    name = type(error).__name__
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(error, asyncpg.PostgresError) and sqlstate in schema.SCHEMA_SQLSTATES:
        return LedgerUnavailable(
            f"{name}, SQLSTATE {sqlstate}: a deploy error, not an outage: the database schema does not match"
            f" this release (it needs revision {schema.shipped().head}); run `switchboard gateway migrate`"
        )
    return LedgerUnavailable(
        name, refused_statement=sqlstate is not None and sqlstate[:2] in _STATEMENT_CLASSES
    )


# SQLSTATE classes about a statement itself: data exceptions, integrity constraints, transaction rollbacks
# (a deadlock, a serialization failure), and an exception a function raised. Connection exceptions (08),
# operator intervention (57: a shutdown, a cancelled query), insufficient resources (53) and the rest are the
# server's or the connection's state.
_STATEMENT_CLASSES = frozenset({"22", "23", "40", "P0"})


async def ledger_ready(pool: LedgerPool) -> bool:
    """The ledger's pool reaches PostgreSQL (asyncpg reads the URL its own way). A pool whose connections are
    all in use is busy, not unreachable: ready (`ReadinessProbe` says whether PostgreSQL answers)."""
    if pool.busy:
        return True
    try:
        async with ledger_connection(pool, READY_TIMEOUT_SECONDS) as conn:
            await conn.fetchval("SELECT 1", timeout=READY_TIMEOUT_SECONDS)
        return True
    except LedgerUnavailable:
        return False
