"""Several turns' reservations and settlements in one statement (`ledger.reserve_many`, `settle_many`, and
the lanes that group them, `gateway.batches`), on a real PostgreSQL: each turn gets what its own statement
would have given it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import psycopg
import pytest

from gateway.gateway_support import Accounts, current_period
from gateway.pgcluster import Cluster
from switchboard.gateway import ledger, migrate
from switchboard.gateway.batches import LedgerBatches
from switchboard.gateway.db import LedgerPool, LedgerUnavailable, ledger_connection
from switchboard.gateway.ledger import Hold, Outcome, Reservation, TurnKey
from switchboard.gateway.tokens import TokenAuthority
from switchboard.protocol.messages import Usage

TTL = timedelta(seconds=30)
SONNET = "claude-sonnet-4.5"


# `ledger_url`, `conn` and `make_accounts` (conftest.py) are this module's own database's, out of the
# shared replicas' sweeps.
pytestmark = pytest.mark.own_database


@pytest.fixture
async def pool(ledger_url: str) -> AsyncIterator[LedgerPool]:
    p = LedgerPool(ledger_url, max_size=8, connect_timeout=5)
    try:
        yield p
    finally:
        await p.close(timeout=1)


def batches_of(pool: LedgerPool, largest: int = 64, timeout: float = 5.0) -> LedgerBatches:
    return LedgerBatches(lambda: ledger_connection(pool, timeout=5), largest=largest, timeout=timeout)


def a_hold(account_id: str, reserved_h: int, turn_id: str | None = None) -> Hold:
    key = TurnKey(account_id, turn_id or uuid.uuid4().hex)
    return Hold(key, current_period(), SONNET, SONNET, "test", reserved_h, replica="test", ttl=TTL)


def hold_balance_row(blocker: psycopg.Connection[Any], account_id: str) -> None:
    """Lock the account's balance row in `blocker`'s open transaction (another session, or an operator's)."""
    blocker.execute(
        "SELECT 1 FROM account_periods WHERE account_id = %s AND period = %s FOR UPDATE",
        (account_id, current_period()),
    )


@dataclass
class WaitingGroup:
    batches: LedgerBatches
    grouped: list[asyncio.Future[Reservation]]  # the queued turns' callers
    handed_back: list[Reservation]  # what `batches` handed back (`on_abandoned`)
    account_id: str
    blocker: psycopg.Connection[Any]  # holds the account's balance row


@contextlib.asynccontextmanager
async def a_group_waiting_for_its_row(
    pool: LedgerPool, conn: Any, ledger_url: str, make_accounts: Accounts, *, size: int
) -> AsyncIterator[WaitingGroup]:
    """Two turns of one account take both lanes and wait for its locked balance row while `size` turns of
    another account queue; then the lanes are let through, so the queued turns go as one group, which waits
    for the other account's row, still locked by `blocker` (its transaction committed when the block ends)."""
    first, second = await make_accounts.create("pro"), await make_accounts.create("pro")
    for account in (first, second):  # each account's balance row, for the blockers to lock
        await open_balance_row(conn, account.id)
    batches = batches_of(pool)
    handed_back: list[Reservation] = []
    batches.on_abandoned(handed_back.append)
    with psycopg.connect(ledger_url) as first_blocker, psycopg.connect(ledger_url) as second_blocker:
        hold_balance_row(first_blocker, first.id)
        hold_balance_row(second_blocker, second.id)
        lanes = [asyncio.ensure_future(batches.reserve(a_hold(first.id, 10))) for _ in range(2)]
        grouped = [asyncio.ensure_future(batches.reserve(a_hold(second.id, 10))) for _ in range(size)]
        await asyncio.sleep(0.2)
        first_blocker.commit()
        await asyncio.gather(*lanes)
        await asyncio.sleep(0.2)
        yield WaitingGroup(batches, grouped, handed_back, second.id, second_blocker)


async def open_balance_row(conn: Any, account_id: str) -> None:
    """Give the account its balance row this month (a free turn), for `hold_balance_row` to lock."""
    await ledger.settle(conn, await ledger.reserve(conn, a_hold(account_id, 1)), Outcome("failed", Usage()))


async def balance(conn: Any, account_id: str) -> tuple[int, int]:
    row = await conn.fetchrow(
        "SELECT used_h, reserved_h FROM account_periods WHERE account_id = $1 AND period = $2",
        account_id,
        current_period(),
    )
    return (row["used_h"], row["reserved_h"]) if row is not None else (0, 0)


async def test_a_group_gives_each_turn_what_its_own_statement_would(
    conn: Any, make_accounts: Accounts
) -> None:
    low = await make_accounts.create("free", used_credits=49)  # 100 hundredths left
    other = await make_accounts.create("pro")
    answered = await ledger.reserve(conn, a_hold(other.id, 10))
    await ledger.settle(conn, answered, Outcome("complete", Usage(input_tokens=10, output_tokens=10)))
    running = await ledger.reserve(conn, a_hold(other.id, 10))
    holds = [
        a_hold(low.id, 60, "a-first"),
        a_hold(low.id, 41, "b-second"),  # in lock order after the first: 40 left, in the same transaction
        a_hold(other.id, 25),
        a_hold(other.id, 10, answered.key.turn_id),
        a_hold(other.id, 10, running.key.turn_id),
    ]
    ordered = ledger.in_lock_order(holds, lambda hold: (hold.key, hold.period))
    answers = dict(zip(ordered, await ledger.reserve_many(conn, ordered), strict=True))

    first, short, fits = (answers[hold] for hold in holds[:3])
    assert isinstance(first, Reservation) and first.reserved_h == 60 and first.attempt == 1
    assert isinstance(short, ledger.InsufficientCredits) and (short.needed_h, short.available_h) == (41, 40)
    assert isinstance(fits, Reservation) and fits.key == holds[2].key
    assert isinstance(answers[holds[3]], ledger.TurnAlreadySettled)
    assert isinstance(answers[holds[4]], ledger.TurnInProgress)
    assert first.attempt_id != fits.attempt_id
    assert await balance(conn, low.id) == (4900, 60)

    outcome = Outcome("complete", Usage(input_tokens=1000, output_tokens=200))
    settling = ledger.in_lock_order(
        [(first, outcome), (fits, outcome), (running, Outcome("failed", Usage()))],
        lambda pair: (pair[0].key, pair[0].period),
    )
    settled = await ledger.settle_many(conn, settling)
    by_turn = {settlement.turn_id: settlement for settlement in settled}
    expected = ledger.charge_h(SONNET, outcome)
    assert by_turn[first.key.turn_id].credits_h == expected and not by_turn[first.key.turn_id].already
    assert by_turn[running.key.turn_id].credits_h == 0 and by_turn[running.key.turn_id].status == "failed"
    assert await balance(conn, low.id) == (4900 + expected, 0)
    # Settling the same turns again, together, charges nothing more.
    again = await ledger.settle_many(conn, settling)
    assert all(settlement.already for settlement in again)
    assert await balance(conn, low.id) == (4900 + expected, 0)


async def test_ten_turns_at_once_for_the_last_credit_reserve_only_what_fits(
    pool: LedgerPool, conn: Any, make_accounts: Accounts
) -> None:
    account = await make_accounts.create("free", used_credits=49)  # 100 hundredths left: three turns of 30
    batches = batches_of(pool)
    answers = await asyncio.gather(
        *(batches.reserve(a_hold(account.id, 30)) for _ in range(10)), return_exceptions=True
    )
    reserved = [answer for answer in answers if isinstance(answer, Reservation)]
    refused = [answer for answer in answers if isinstance(answer, ledger.InsufficientCredits)]
    assert (len(reserved), len(refused)) == (3, 7), answers
    assert await balance(conn, account.id) == (4900, 90)
    statements, turns = batches.sent["reserve"]
    assert turns == 10 and statements < 10  # two went alone (one a lane), the rest queued and went together

    outcome = Outcome("complete", Usage(input_tokens=100, output_tokens=100))
    settled = await asyncio.gather(*(batches.settle(turn, outcome) for turn in reserved))
    charge = ledger.charge_h(SONNET, outcome)
    assert [settlement.credits_h for settlement in settled] == [charge] * 3
    assert await balance(conn, account.id) == (4900 + 3 * charge, 0)


async def test_a_group_postgresql_refuses_is_sent_turn_by_turn(
    pool: LedgerPool, conn: Any, make_accounts: Accounts
) -> None:
    account = await make_accounts.create("power")
    batches = batches_of(pool)
    holds = [a_hold(account.id, 10) for _ in range(6)]
    holds[4] = a_hold(account.id, -1)  # breaks a CHECK constraint: the whole group's transaction fails
    answers = await asyncio.gather(*(batches.reserve(hold) for hold in holds), return_exceptions=True)
    assert isinstance(answers[4], LedgerUnavailable), answers[4]
    assert all(isinstance(answer, Reservation) for index, answer in enumerate(answers) if index != 4), answers
    assert await balance(conn, account.id) == (0, 50)
    assert batches.sent["reserve"][0] < 6  # a group was tried (then its turns alone)


async def test_a_group_whose_connection_fails_gives_every_turn_ledger_unavailable() -> None:
    pool = LedgerPool("postgresql://nobody@127.0.0.1:9/none", max_size=2, connect_timeout=1)
    batches = batches_of(pool)
    try:
        answers = await asyncio.gather(
            *(batches.reserve(a_hold("someone", 10)) for _ in range(6)), return_exceptions=True
        )
    finally:
        await pool.close(timeout=1)
    assert all(isinstance(answer, LedgerUnavailable) for answer in answers), answers


async def test_a_reservation_cancelled_while_its_group_ran_is_handed_back(
    pool: LedgerPool, conn: Any, ledger_url: str, make_accounts: Accounts
) -> None:
    async with a_group_waiting_for_its_row(pool, conn, ledger_url, make_accounts, size=2) as group:
        assert group.batches.sent["reserve"] == (3, 4)
        group.grouped[0].cancel()
        await asyncio.sleep(0.1)
        assert not group.handed_back
    kept = await group.grouped[1]
    await asyncio.sleep(0.1)
    handed_back = group.handed_back
    assert len(handed_back) == 1 and handed_back[0].key != kept.key and handed_back[0].reserved_h == 10
    assert await balance(conn, group.account_id) == (0, 20)  # held until the replica settles it (as failed)


async def test_a_heartbeat_and_a_group_of_retries_never_wait_on_each_other_in_a_cycle(
    conn: Any, ledger_url: str, make_accounts: Accounts
) -> None:
    # Replica 2 answers turns z, m and a; the client retried z and a on replica 1, where they went as a group
    # (which locks each existing turn row to answer `in_progress`) while replica 2's heartbeat renewed them.
    account = await make_accounts.create("pro")
    live = [await ledger.reserve(conn, a_hold(account.id, 10, turn_id)) for turn_id in ("z", "m", "a")]
    other = await asyncpg.connect(ledger_url)
    try:
        with psycopg.connect(ledger_url) as holder:  # anything holding m a moment (a reap, a settlement)
            holder.execute(
                "SELECT 1 FROM turns WHERE account_id = %s AND turn_id = 'm' FOR UPDATE", (account.id,)
            )
            points = [
                ledger.Checkpoint(turn, Usage(), output_seen=False) for turn in (live[0], live[1], live[2])
            ]
            beat = asyncio.ensure_future(ledger.heartbeat(conn, points, TTL))
            await asyncio.sleep(0.3)
            retries = ledger.in_lock_order(
                [a_hold(account.id, 10, "z"), a_hold(account.id, 10, "a")],
                lambda hold: (hold.key, hold.period),
            )
            group = asyncio.ensure_future(ledger.reserve_many(other, retries))
            await asyncio.sleep(0.3)
        renewed, answers = await asyncio.wait_for(asyncio.gather(beat, group), timeout=5)
    finally:
        await other.close()
    assert renewed == 3
    assert all(isinstance(answer, ledger.TurnInProgress) for answer in answers), answers


async def test_a_retry_reserved_in_a_group_with_a_new_turn_survives_a_crash(
    authority: TokenAuthority,
) -> None:
    # A new turn's reservation commits without waiting for the disk; a retry's must not, even when it shares
    # the group's transaction with one, or a crash would bring back the previous attempt's row and the
    # retry's answer would settle as `superseded`, free.
    cluster = Cluster.start(durable=True)
    try:
        url = cluster.new_database("durable")
        migrate.upgrade(url)
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "ALTER SYSTEM SET wal_writer_delay = '10s'"
            )  # an asynchronous commit stays unflushed
            admin.execute("SELECT pg_reload_conf()")
        account = await Accounts(url, authority).create("pro")
        conn = await asyncpg.connect(url)
        first = await ledger.reserve(conn, a_hold(account.id, 10, "t"))
        await ledger.settle(conn, first, Outcome("failed", Usage()))
        holds = ledger.in_lock_order(
            [a_hold(account.id, 10, "t"), a_hold(account.id, 10, "new")], lambda hold: (hold.key, hold.period)
        )
        answers = dict(
            zip([hold.key.turn_id for hold in holds], await ledger.reserve_many(conn, holds), strict=True)
        )
        retry = answers["t"]
        assert isinstance(retry, Reservation) and retry.attempt == 2
        await conn.close()
        cluster.down(crash=True)
        cluster.up()
        conn = await asyncpg.connect(url)
        try:
            answer = Outcome("complete", Usage(input_tokens=1000, output_tokens=100))
            settled = await ledger.settle(conn, retry, answer)
        finally:
            await conn.close()
        assert not settled.superseded and settled.credits_h == ledger.charge_h(SONNET, answer)
    finally:
        cluster.stop()


async def test_a_locked_balance_row_holds_the_lanes_only_for_the_timeout(
    pool: LedgerPool, conn: Any, ledger_url: str, make_accounts: Accounts
) -> None:
    held, other = await make_accounts.create("pro"), await make_accounts.create("pro")
    turns = [await ledger.reserve(conn, a_hold(held.id, 10)) for _ in range(2)]
    streaming = await ledger.reserve(conn, a_hold(other.id, 10))
    batches = batches_of(pool, timeout=1.0)
    outcome = Outcome("complete", Usage(input_tokens=10, output_tokens=10))
    loop = asyncio.get_running_loop()
    with psycopg.connect(ledger_url) as blocker:  # an operator's open transaction, say
        hold_balance_row(blocker, held.id)
        stuck = [asyncio.ensure_future(batches.settle(turn, outcome)) for turn in turns]  # both lanes wait
        await asyncio.sleep(0.1)
        started = loop.time()
        queued = asyncio.ensure_future(batches.settle(streaming, outcome))
        # The heartbeat has its own connection and locks no balance row: it does not wait.
        assert (
            await asyncio.wait_for(
                ledger.heartbeat(conn, [ledger.Checkpoint(streaming, Usage(), False)], TTL), 0.5
            )
            == 1
        )
        answers = await asyncio.gather(*stuck, queued, return_exceptions=True)
        waited = loop.time() - started
        assert all(isinstance(answer, LedgerUnavailable) for answer in answers[:2]), answers
        assert waited < 2.5, waited  # the statements' limit, then the queue's: not for ever
        blocker.rollback()
    # Nothing was settled by the statements that timed out; the replica settles them again (`settle_later`).
    again = await asyncio.gather(*(batches.settle(turn, outcome) for turn in (*turns, streaming)))
    assert [settlement.status for settlement in again] == ["complete"] * 3
    assert await balance(conn, held.id) == (2 * ledger.charge_h(SONNET, outcome), 0)


async def test_a_group_the_server_cuts_off_is_unavailable_for_every_turn_at_once(
    pool: LedgerPool, conn: Any, ledger_url: str, make_accounts: Accounts
) -> None:
    account = await make_accounts.create("pro")
    await open_balance_row(conn, account.id)
    batches = batches_of(pool)
    with psycopg.connect(ledger_url) as blocker, psycopg.connect(ledger_url, autocommit=True) as admin:
        hold_balance_row(blocker, account.id)
        lanes = [asyncio.ensure_future(batches.reserve(a_hold(account.id, 10))) for _ in range(2)]
        await asyncio.sleep(0.2)
        grouped = [asyncio.ensure_future(batches.reserve(a_hold(account.id, 10))) for _ in range(8)]
        terminate = (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND query LIKE %s"
        )
        admin.execute(terminate, ("SELECT * FROM ledger_reserve(%",))  # the two alone end: the group starts
        await asyncio.sleep(0.3)
        assert batches.sent["reserve"] == (3, 10)
        admin.execute(terminate, ("%unnest%",))  # as a restart or a failover would
        started = asyncio.get_running_loop().time()
        answers = await asyncio.gather(*grouped, return_exceptions=True)
        assert asyncio.get_running_loop().time() - started < 1.0
        blocker.rollback()
    assert all(isinstance(answer, LedgerUnavailable) for answer in answers), answers
    assert batches.sent["reserve"] == (3, 10)  # not resent turn by turn
    await asyncio.gather(*lanes, return_exceptions=True)


async def test_with_groups_off_every_turn_goes_alone_as_many_at_once_as_the_lanes(
    pool: LedgerPool, conn: Any, ledger_url: str, make_accounts: Accounts
) -> None:
    # `ledger_batch_max = 1` (a distributed PostgreSQL): no groups, and a replica gets as many lanes as its
    # pool.
    account = await make_accounts.create("pro")
    await open_balance_row(conn, account.id)
    batches = LedgerBatches(lambda: ledger_connection(pool, timeout=5), largest=1, lanes=4)
    with psycopg.connect(ledger_url) as blocker, psycopg.connect(ledger_url, autocommit=True) as admin:
        hold_balance_row(blocker, account.id)
        turns = [asyncio.ensure_future(batches.reserve(a_hold(account.id, 10))) for _ in range(6)]
        await asyncio.sleep(0.3)
        waiting = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
            ("SELECT * FROM ledger_reserve(%",),
        ).fetchone()
        assert waiting == (4,)
        blocker.rollback()
    assert all(isinstance(turn, Reservation) for turn in await asyncio.gather(*turns))
    assert batches.sent["reserve"] == (6, 6)


async def test_draining_waits_for_the_groups_in_flight_and_hands_back_what_they_reserved(
    pool: LedgerPool, conn: Any, ledger_url: str, make_accounts: Accounts
) -> None:
    async with a_group_waiting_for_its_row(pool, conn, ledger_url, make_accounts, size=3) as group:
        for caller in group.grouped:  # the replica stopping cancels its requests
            caller.cancel()
        draining = asyncio.ensure_future(group.batches.drain())
        await asyncio.sleep(0.2)
        assert group.batches.sending and not draining.done()
        group.blocker.rollback()
    await asyncio.wait_for(draining, timeout=5)
    assert not group.batches.sending and len(group.handed_back) == 3
