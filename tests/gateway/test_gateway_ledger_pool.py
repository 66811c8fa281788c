"""The ledger's connection pool (`db.LedgerPool`) against real PostgreSQL: reuse, limits, waiting, and the
connections it must not hand out again."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from switchboard.gateway import db
from switchboard.gateway.db import LedgerPool, LedgerUnavailable, ledger_connection


@contextlib.asynccontextmanager
async def opened(url: str, max_size: int, connect_timeout: float = 5) -> AsyncIterator[LedgerPool]:
    pool = LedgerPool(url, max_size=max_size, connect_timeout=connect_timeout)
    try:
        yield pool
    finally:
        await pool.close(timeout=1)


async def backend_pid(pool: LedgerPool) -> int:
    async with ledger_connection(pool, timeout=5) as conn:
        pid: int = await conn.fetchval("SELECT pg_backend_pid()")
        return pid


async def test_a_connection_goes_back_and_is_used_again(database_url: str) -> None:
    async with opened(database_url, max_size=4) as pool:
        first = await backend_pid(pool)
        assert [await backend_pid(pool) for _ in range(5)] == [first] * 5
        assert pool.size == 1


async def test_an_error_of_ours_after_the_statement_keeps_the_connection(database_url: str) -> None:
    async with opened(database_url, max_size=2) as pool:
        first = await backend_pid(pool)
        with pytest.raises(KeyError):
            async with ledger_connection(pool, timeout=5) as conn:
                await conn.fetchval("SELECT 1")
                raise KeyError("a refusal read from the statement's answer")
        assert await backend_pid(pool) == first


async def test_a_statement_cut_short_closes_its_connection(database_url: str) -> None:
    async with opened(database_url, max_size=1) as pool:
        first = await backend_pid(pool)

        async def sleep_in_postgresql() -> None:
            async with ledger_connection(pool, timeout=5) as conn:
                await conn.execute("SELECT pg_sleep(30)")

        cut = asyncio.ensure_future(sleep_in_postgresql())
        await asyncio.sleep(0.3)
        cut.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cut
        # Its place is free again (max_size 1), on a new connection rather than the cancelled one.
        assert await backend_pid(pool) != first
        assert pool.size == 1

        with pytest.raises(LedgerUnavailable):  # PostgreSQL's own error: closed too, to be safe
            async with ledger_connection(pool, timeout=5) as conn:
                await conn.execute("SELECT 1 / 0")
        assert pool.size == 0
        await backend_pid(pool)


async def test_callers_past_the_limit_wait_for_a_connection_then_time_out(database_url: str) -> None:
    async with opened(database_url, max_size=2) as pool:
        release = asyncio.Event()
        pids: list[int] = []

        async def hold() -> None:
            async with ledger_connection(pool, timeout=5) as conn:
                pids.append(await conn.fetchval("SELECT pg_backend_pid()"))
                await release.wait()

        holders = [asyncio.ensure_future(hold()) for _ in range(2)]
        while len(pids) < 2:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(LedgerUnavailable, match="TimeoutError"):
            async with ledger_connection(pool, timeout=0.3):
                pass
        assert time.monotonic() - started >= 0.3
        waiting = asyncio.ensure_future(backend_pid(pool))
        await asyncio.sleep(0.1)
        assert not waiting.done() and pool.size == 2
        release.set()
        assert await waiting in pids  # handed a released connection, not a third one
        await asyncio.gather(*holders)
        assert pool.size == 2


async def test_a_connection_postgresql_dropped_while_idle_is_not_handed_out(database_url: str) -> None:
    async with opened(database_url, max_size=2) as pool:
        first = await backend_pid(pool)
        killer = await asyncpg.connect(database_url)
        try:
            assert await killer.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await killer.close()
        await asyncio.sleep(0.5)  # the event loop reads the socket's end meanwhile
        second = await backend_pid(pool)
        assert second != first
        assert pool.size == 1


async def test_closing_waits_for_statements_in_flight_then_refuses(database_url: str) -> None:
    pool = LedgerPool(database_url, max_size=2, connect_timeout=5)

    async def slow() -> int:
        async with ledger_connection(pool, timeout=5) as conn:
            value: int = await conn.fetchval("SELECT 7 FROM pg_sleep(0.3)")
            return value

    running = asyncio.ensure_future(slow())
    await asyncio.sleep(0.1)
    await pool.close(timeout=5)
    assert await running == 7
    assert pool.size == 0
    with pytest.raises(LedgerUnavailable):
        await backend_pid(pool)


async def test_unreachable_postgresql_is_the_ledger_unavailable() -> None:
    async with opened("postgresql://nobody@127.0.0.1:1/none", max_size=2, connect_timeout=2) as pool:
        with pytest.raises(LedgerUnavailable):
            await backend_pid(pool)
        assert pool.size == 0


async def test_a_connection_idle_too_long_is_replaced(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "MAX_IDLE_SECONDS", 0.2)
    async with opened(database_url, max_size=2) as pool:
        first = await backend_pid(pool)
        assert await backend_pid(pool) == first
        await asyncio.sleep(0.3)
        assert await backend_pid(pool) != first
        assert pool.size == 1
