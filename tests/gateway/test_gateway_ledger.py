"""The ledger's rules on a real PostgreSQL, driven directly: limits, caps, overage, exactly-once, expiry."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import psycopg
import pytest
from alembic import command
from psycopg.rows import dict_row

from gateway.gateway_support import Accounts, current_period, numbers_body, parsed_turn
from gateway.pgcluster import Cluster
from switchboard.fakeapi import count_tokens
from switchboard.gateway import ledger, migrate, reaper, usage
from switchboard.gateway.accounts import create_account, get_account
from switchboard.gateway.db import LedgerPool, LedgerUnavailable, ledger_connection
from switchboard.gateway.errors import GatewayRefusal
from switchboard.gateway.estimate import estimate_input_tokens, max_tokens_within, reservation_h
from switchboard.gateway.ledger import Checkpoint, Hold, Outcome, Reservation, TurnKey
from switchboard.plans.catalog import allowed_plans
from switchboard.plans.credits import credits_for, to_hundredths
from switchboard.protocol.messages import Usage
from switchboard.tokens import tokens_for_chars

TTL = timedelta(seconds=30)
HAIKU_ID = "claude-haiku-4-5-20251001"


# `ledger_url`, `conn` and `make_accounts` (conftest.py) are this module's own database's, out of the
# shared replicas' sweeps.
pytestmark = pytest.mark.own_database


async def test_a_server_the_driver_will_not_use_is_the_ledger_unavailable(ledger_url: str) -> None:
    # A failover seen from a read-write URL: the only server is not what the URL asks for. The replica must
    # answer a retryable 503 (reserve) or retry the settlement, as for any other outage, not crash the turn.
    separator = "&" if "?" in ledger_url else "?"
    pool = LedgerPool(ledger_url + separator + "target_session_attrs=standby", max_size=2, connect_timeout=5)
    try:
        with pytest.raises(LedgerUnavailable):
            async with ledger_connection(pool, timeout=5) as conn:
                await conn.fetchval("SELECT 1")
    finally:
        await pool.close(timeout=1)


async def hold(
    conn: Any, account_id: str, reserved_h: int, model: str = "claude-sonnet-4.5", **kw: Any
) -> Reservation:
    key = TurnKey(account_id, kw.get("turn_id", uuid.uuid4().hex))
    period = kw.get("period", current_period())
    hold = Hold(key, period, model, model, "test", reserved_h, replica="test", ttl=kw.get("ttl", TTL))
    return await ledger.reserve(conn, hold)


async def beat(conn: Any, turn: Reservation, usage: Usage, *, output_seen: bool, ttl: timedelta) -> int:
    """One heartbeat of a replica working on `turn` alone."""
    return await ledger.heartbeat(conn, [Checkpoint(turn, usage, output_seen)], ttl)


async def sweep(conn: Any, turn: Reservation) -> ledger.Settlement:
    """Settle `turn`, whose reservation has expired, as a replica's sweep does (and read the result from its
    row, as another sweep may have settled it first, by the same function: with the same charge)."""
    for orphan in await ledger.expired_turns(conn, limit=100_000):
        if orphan.key == turn.key:
            await ledger.release_expired(conn, orphan)
    row = await conn.fetchrow(
        "SELECT status, credits_h, overage_h FROM turns WHERE account_id = $1 AND turn_id = $2",
        turn.key.account_id,
        turn.key.turn_id,
    )
    assert row["status"] in ("cut", "failed"), row["status"]
    return ledger.Settlement(turn.key.turn_id, row["status"], row["credits_h"], row["overage_h"])


async def totals(conn: Any, account_id: str) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT used_h, overage_h, reserved_h FROM account_periods WHERE account_id = $1 AND period = $2",
        account_id,
        current_period(),
    )
    return dict(row)


async def test_a_reservation_fits_exactly_or_is_refused(conn: Any, make_accounts: Accounts) -> None:
    account = await make_accounts.create("free", used_credits=49)  # 100 hundredths left
    first = await hold(conn, account.id, 60)
    with pytest.raises(ledger.InsufficientCredits) as caught:
        await hold(conn, account.id, 41)
    assert (caught.value.needed_h, caught.value.available_h) == (41, 40)
    await hold(conn, account.id, 40)  # exactly what is left
    assert await totals(conn, account.id) == {"used_h": 4900, "overage_h": 0, "reserved_h": 100}
    await ledger.settle(conn, first, Outcome("failed", Usage()))
    assert (await totals(conn, account.id))["reserved_h"] == 40


async def test_usage_past_the_reservation_is_charged_up_to_the_cap_and_no_further(
    conn: Any, make_accounts: Accounts
) -> None:
    account = await make_accounts.create("free", used_credits=49)
    small = await hold(conn, account.id, 10)
    usage = Usage(input_tokens=1000, output_tokens=300)  # 0.3 + 0.45 = 0.75 x 1.3 = 0.98 credits
    settled = await ledger.settle(conn, small, Outcome("complete", usage))
    assert settled.credits_h == to_hundredths(credits_for("claude-sonnet-4.5", usage)) == 98
    big = await hold(conn, account.id, 2)
    settled = await ledger.settle(conn, big, Outcome("complete", Usage(output_tokens=100_000)))
    assert settled.credits_h == 2  # only what the allowance had left: the rest is absorbed
    assert await totals(conn, account.id) == {"used_h": 5000, "overage_h": 0, "reserved_h": 0}


async def test_overage_is_the_part_past_the_allowance_and_never_more_than_the_budget(
    conn: Any, make_accounts: Accounts, ledger_url: str
) -> None:
    account = await make_accounts.create("pro", used_credits=999.5, overage=True, budget_cents=4)  # 1 credit
    assert ledger.limit_h(await _account(ledger_url, account.id), 0) == 100_000 + 100
    turn = await hold(conn, account.id, 150)
    settled = await ledger.settle(conn, turn, Outcome("complete", Usage(output_tokens=500)))  # 0.75 x 1.3
    assert (settled.credits_h, settled.overage_h) == (98, 48)
    with pytest.raises(ledger.InsufficientCredits):
        await hold(conn, account.id, 53)
    assert await totals(conn, account.id) == {"used_h": 99_950 + 98, "overage_h": 48, "reserved_h": 0}


async def test_overage_never_passes_the_budget_after_a_move_to_a_larger_plan(
    conn: Any, make_accounts: Accounts, ledger_url: str
) -> None:
    """Pro (1,000 credits) spends its $20 budget (500 credits of overage), then moves to Pro+ (2,000). Of the
    1,500 credits used, 1,000 were included: Pro+ still includes 1,000 more, and the budget has nothing left.
    So the account may use 1,000 credits more and none of them is overage, by every way a turn is charged:
    settled, settled from a checkpoint by the sweep, and raised to its real usage by a stalled replica."""
    account = await make_accounts.create("pro", used_credits=1000, overage=True, budget_cents=2000)
    spend = await hold(conn, account.id, 50_000)
    budget_spent = await ledger.settle(conn, spend, Outcome("complete", Usage(output_tokens=300_000)))
    assert (budget_spent.credits_h, budget_spent.overage_h) == (50_000, 50_000)
    async with await psycopg.AsyncConnection.connect(ledger_url, autocommit=True) as admin:
        await admin.execute("UPDATE accounts SET plan = 'pro_plus' WHERE id = %s", (account.id,))

    settled = await hold(conn, account.id, 40_000)
    first = await ledger.settle(conn, settled, Outcome("complete", Usage(output_tokens=200_000)))
    assert (first.credits_h, first.overage_h) == (39_000, 0)

    stalled = await hold(conn, account.id, 40_000)
    assert await beat(conn, stalled, Usage(output_tokens=200_000), output_seen=True, ttl=-TTL) == 1
    [orphan] = [o for o in await ledger.expired_turns(conn) if o.key == stalled.key]
    swept = await ledger.release_expired(conn, orphan)
    assert swept is not None and (swept.credits_h, swept.overage_h) == (39_000, 0)
    raised = await ledger.settle(conn, stalled, Outcome("complete", Usage(output_tokens=300_000)))
    assert (raised.credits_h, raised.overage_h) == (58_500, 0)  # 19,500 more: the cap leaves 22,000

    last = await hold(conn, account.id, 2_500)
    await ledger.settle(conn, last, Outcome("complete", Usage(output_tokens=100_000)))
    with pytest.raises(ledger.InsufficientCredits):
        await hold(conn, account.id, 1)
    assert await totals(conn, account.id) == {"used_h": 250_000, "overage_h": 50_000, "reserved_h": 0}


async def remaining_h(ledger_url: str, account_id: str) -> int:
    """What the usage report (`GET /v1/switchboard/usage`, `accounts usage`) says the account has left."""
    async with await psycopg.AsyncConnection.connect(ledger_url, row_factory=dict_row) as admin:
        account = await get_account(admin, account_id)
        assert account is not None
        report = await usage.usage_report(admin, account)
    return round(report.remaining_credits * 100)


@pytest.mark.parametrize("overage", [True, False], ids=["overage-on", "overage-off"])
async def test_after_a_move_to_a_larger_plan_the_ledger_allows_what_the_report_says_remains(
    conn: Any, make_accounts: Accounts, ledger_url: str, overage: bool
) -> None:
    """Pro spends 1,000 included and 500 overage credits (its $20 budget), moves to Pro+ (2,000) with overage
    left on or turned off. The report says 1,000 credits remain (overage billed does not use up the plan):
    the ledger lets the account hold exactly that, and its 402 says so, however a turn is then charged
    (swept at its checkpoint, raised by its stalled replica, settled past its reservation). With overage off
    the limit was the included credits against all that was used: 500 to hold, charges cut short."""
    account = await make_accounts.create("pro", used_credits=1000, overage=True, budget_cents=2000)
    spend = await hold(conn, account.id, 50_000)
    await ledger.settle(conn, spend, Outcome("complete", Usage(output_tokens=300_000)))
    async with await psycopg.AsyncConnection.connect(ledger_url, autocommit=True) as admin:
        await admin.execute(
            "UPDATE accounts SET plan = 'pro_plus', overage_enabled = %s WHERE id = %s", (overage, account.id)
        )
    assert await remaining_h(ledger_url, account.id) == 100_000
    assert ledger.limit_h(await _account(ledger_url, account.id), 50_000) == 150_000 + 100_000
    with pytest.raises(ledger.InsufficientCredits) as caught:
        await hold(conn, account.id, 100_001)
    assert caught.value.available_h == 100_000  # the 402's `remaining_credits`

    stalled = await hold(conn, account.id, 40_000)
    await beat(conn, stalled, Usage(output_tokens=200_000), output_seen=True, ttl=timedelta(seconds=-1))
    swept = await sweep(conn, stalled)
    assert (swept.credits_h, swept.overage_h) == (39_000, 0)
    raised = await ledger.settle(conn, stalled, Outcome("complete", Usage(output_tokens=300_000)))
    assert (raised.credits_h, raised.overage_h) == (58_500, 0)
    assert await remaining_h(ledger_url, account.id) == 41_500

    last = await hold(conn, account.id, 41_500)
    with pytest.raises(ledger.InsufficientCredits) as caught:
        await hold(conn, account.id, 1)
    assert caught.value.available_h == 0
    overrun = await ledger.settle(conn, last, Outcome("complete", Usage(output_tokens=1_000_000)))
    assert (overrun.credits_h, overrun.overage_h) == (41_500, 0)
    assert await totals(conn, account.id) == {"used_h": 250_000, "overage_h": 50_000, "reserved_h": 0}
    assert await remaining_h(ledger_url, account.id) == 0


@pytest.mark.parametrize("how", ["settled", "swept", "raised-after-a-stall", "reservation-lost"])
async def test_usage_past_a_reservation_is_charged_in_full_while_other_turns_hold_the_rest_of_the_limit(
    conn: Any, make_accounts: Accounts, how: str
) -> None:
    """A hold is not a charge: a turn that overran its reservation is capped by what the limit leaves after
    what is used, not also after what other turns in flight hold (most of which they give back). Free (5,000
    hundredths): a Sonnet turn holds 3,902; a Haiku turn holding 7 is billed 20,000 output tokens, 1,200,
    however it is charged: settled, swept at its checkpoint, raised from a provisional charge by its stalled
    replica, or settled after PostgreSQL lost its reservation."""
    account = await make_accounts.create("free")
    sonnet = await hold(conn, account.id, 3902)
    haiku = await hold(conn, account.id, 7, model="claude-haiku-4.5")
    usage = Usage(output_tokens=20_000)
    billed = None
    if how in ("swept", "raised-after-a-stall"):
        checkpoint = usage if how == "swept" else Usage(output_tokens=100)
        await beat(conn, haiku, checkpoint, output_seen=True, ttl=timedelta(seconds=-1))
        billed = await sweep(conn, haiku)
    if how == "reservation-lost":
        await lose(conn, haiku)
    if how != "swept":
        billed = await ledger.settle(conn, haiku, Outcome("complete", usage))
    assert billed is not None
    assert billed.credits_h == to_hundredths(credits_for("claude-haiku-4.5", usage))
    assert billed.credits_h == 1200  # not 5,000 - 3,902 = 1,098
    assert await totals(conn, account.id) == {"used_h": 1200, "overage_h": 0, "reserved_h": 3902}
    small = await ledger.settle(conn, sonnet, Outcome("complete", Usage(output_tokens=15)))
    assert small.credits_h == 3
    assert await totals(conn, account.id) == {"used_h": 1203, "overage_h": 0, "reserved_h": 0}


@pytest.mark.parametrize("first", [0, 1], ids=["first-reserved-settles-first", "second-settles-first"])
async def test_terms_tightened_mid_turn_charge_each_turn_alike_whichever_settles_first(
    conn: Any, make_accounts: Accounts, ledger_url: str, first: int
) -> None:
    """Pro with 995 credits used and overage on; two turns hold 5 credits each; overage is turned off, which
    leaves 5 credits of limit. Each answer costs 1.95 credits: both are charged in full, in either order (each
    capped by the other's hold, the first to settle was charged 0 and the second 1.95)."""
    account = await make_accounts.create("pro", used_credits=995, overage=True, budget_cents=2000)
    turns = [await hold(conn, account.id, 500), await hold(conn, account.id, 500)]
    async with await psycopg.AsyncConnection.connect(ledger_url, autocommit=True) as admin:
        await admin.execute("UPDATE accounts SET overage_enabled = false WHERE id = %s", (account.id,))
    answer = Outcome("complete", Usage(output_tokens=1000))  # 1.5 x 1.3 = 1.95 credits
    for turn in (turns[first], turns[1 - first]):
        settled = await ledger.settle(conn, turn, answer)
        assert (settled.credits_h, settled.overage_h) == (195, 0)
    assert await totals(conn, account.id) == {"used_h": 99_500 + 390, "overage_h": 0, "reserved_h": 0}


async def test_an_account_at_its_limit_never_ends_above_it_when_turns_overrun_their_reservations(
    conn: Any, make_accounts: Accounts
) -> None:
    """Free with 100 hundredths left; four turns hold 25 each and use more. The first is charged in full
    (98); what is left (2) caps the next, however it is charged (here swept at its checkpoint), and nothing
    is left for the others: one settled, one swept, then raised to its real usage by its stalled replica."""
    account = await make_accounts.create("free", used_credits=49)
    first, swept, last, stalled = [await hold(conn, account.id, 25) for _ in range(4)]
    overrun = Outcome("complete", Usage(input_tokens=1000, output_tokens=300))  # 98 hundredths
    assert (await ledger.settle(conn, first, overrun)).credits_h == 98
    await beat(conn, swept, Usage(output_tokens=400), output_seen=True, ttl=timedelta(seconds=-1))  # 78
    assert (await sweep(conn, swept)).credits_h == 2
    assert await totals(conn, account.id) == {"used_h": 5000, "overage_h": 0, "reserved_h": 50}
    assert (await ledger.settle(conn, last, overrun)).credits_h == 0
    await beat(conn, stalled, Usage(output_tokens=10), output_seen=True, ttl=timedelta(seconds=-1))
    assert (await sweep(conn, stalled)).credits_h == 0
    assert (await ledger.settle(conn, stalled, overrun)).credits_h == 0
    assert await totals(conn, account.id) == {"used_h": 5000, "overage_h": 0, "reserved_h": 0}


@pytest.mark.parametrize("how", ["settled", "swept"])
async def test_overage_never_passes_the_budget_when_turns_overrun_their_reservations(
    conn: Any, make_accounts: Accounts, how: str
) -> None:
    """Pro with 0.5 credits of its plan left and a budget of 1 credit: two turns hold 60 hundredths each and
    use 98. The first is charged in full (48 of it overage); the second only what the limit has left (52,
    all overage), settled or swept: the budget is spent exactly and the account ends at its limit."""
    account = await make_accounts.create("pro", used_credits=999.5, overage=True, budget_cents=4)
    first, second = await hold(conn, account.id, 60), await hold(conn, account.id, 60)
    overrun = Usage(input_tokens=1000, output_tokens=300)  # 98 hundredths
    settled = await ledger.settle(conn, first, Outcome("complete", overrun))
    assert (settled.credits_h, settled.overage_h) == (98, 48)
    if how == "settled":
        charged = await ledger.settle(conn, second, Outcome("complete", overrun))
    else:
        await beat(conn, second, overrun, output_seen=True, ttl=timedelta(seconds=-1))
        charged = await sweep(conn, second)
    assert (charged.credits_h, charged.overage_h) == (52, 52)
    assert await totals(conn, account.id) == {"used_h": 100_100, "overage_h": 100, "reserved_h": 0}
    with pytest.raises(ledger.InsufficientCredits):
        await hold(conn, account.id, 1)


async def test_a_turn_settles_once(conn: Any, make_accounts: Accounts) -> None:
    account = await make_accounts.create("pro")
    turn = await hold(conn, account.id, 500)
    first = await ledger.settle(conn, turn, Outcome("complete", Usage(output_tokens=100)))
    again = await ledger.settle(conn, turn, Outcome("complete", Usage(output_tokens=9000)))
    assert (first.already, again.already) == (False, True) and again.credits_h == first.credits_h
    with pytest.raises(ledger.TurnAlreadySettled):
        await hold(conn, account.id, 500, turn_id=turn.key.turn_id)
    assert await totals(conn, account.id) == {"used_h": first.credits_h, "overage_h": 0, "reserved_h": 0}


async def lose(conn: Any, turn: Reservation) -> None:
    """What a crash of PostgreSQL does to a reservation committed without waiting for the disk: gone, hold
    and all (0007)."""
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM turns WHERE account_id = $1 AND turn_id = $2", turn.key.account_id, turn.key.turn_id
        )
        await conn.execute(
            "UPDATE account_periods SET reserved_h = reserved_h - $3 WHERE account_id = $1 AND period = $2",
            *(turn.key.account_id, turn.period, turn.reserved_h),
        )


async def test_only_a_new_turns_reservation_commits_without_waiting_for_the_disk(
    conn: Any, make_accounts: Accounts
) -> None:
    await conn.execute("SET synchronous_commit = on")  # as production runs (the tests' cluster has it off)

    async def commits_durably(statement: Any) -> bool:
        async with conn.transaction():
            result = await statement()
            setting = await conn.fetchval("SELECT current_setting('synchronous_commit')")
        assert setting in ("on", "off") and result is not None
        return setting == "on"

    account = await make_accounts.create("pro")
    turn_ids = [uuid.uuid4().hex for _ in range(2)]
    first = await hold(conn, account.id, 500, turn_id=turn_ids[0])
    assert not await commits_durably(lambda: hold(conn, account.id, 500, turn_id=turn_ids[1]))
    assert await commits_durably(lambda: ledger.settle(conn, first, Outcome("failed", Usage())))
    # A retry of an attempt that failed takes the other path (it moves the turn's row): durable.
    assert await commits_durably(lambda: hold(conn, account.id, 500, turn_id=turn_ids[0]))
    assert await conn.fetchval("SELECT current_setting('synchronous_commit')") == "on"


async def test_a_turn_whose_reservation_postgresql_lost_is_charged_when_it_settles(
    conn: Any, make_accounts: Accounts
) -> None:
    account = await make_accounts.create("pro")
    turn = await hold(conn, account.id, 500)
    await lose(conn, turn)
    assert await totals(conn, account.id) == {"used_h": 0, "overage_h": 0, "reserved_h": 0}
    usage = Usage(input_tokens=400, output_tokens=100)
    settled = await ledger.settle(conn, turn, Outcome("complete", usage))
    charge = to_hundredths(credits_for("claude-sonnet-4.5", usage))
    assert (settled.status, settled.credits_h, settled.already) == ("complete", charge, False)
    assert (await ledger.settle(conn, turn, Outcome("complete", usage))).already
    assert await totals(conn, account.id) == {"used_h": charge, "overage_h": 0, "reserved_h": 0}
    row = await conn.fetchrow("SELECT * FROM turns WHERE turn_id = $1", turn.key.turn_id)
    assert (row["model_id"], row["routed_model"], row["route_reason"], row["replica"]) == (
        "claude-sonnet-4.5",
        "claude-sonnet-4.5",
        "test",
        "test",
    )
    assert (row["reserved_h"], row["input_tokens"], row["output_tokens"]) == (0, 400, 100)


async def test_a_lost_reservation_is_charged_within_the_accounts_limit(
    conn: Any, make_accounts: Accounts
) -> None:
    account = await make_accounts.create("free", used_credits=49.9)  # 10 hundredths left
    turn = await hold(conn, account.id, 10)
    await lose(conn, turn)
    other = await hold(conn, account.id, 4)  # the lost hold no longer keeps this one out
    settled = await ledger.settle(
        conn, turn, Outcome("complete", Usage(input_tokens=1000, output_tokens=300))
    )
    assert settled.credits_h == 10  # what the limit leaves after what is used (the other hold is no charge)
    assert await totals(conn, account.id) == {"used_h": 5000, "overage_h": 0, "reserved_h": 4}
    late = await ledger.settle(conn, other, Outcome("complete", Usage(output_tokens=10)))
    assert late.credits_h == 0  # nothing left: the account never ends above its limit
    assert await totals(conn, account.id) == {"used_h": 5000, "overage_h": 0, "reserved_h": 0}


async def test_a_lost_attempts_stale_settlement_never_settles_the_retry_that_replaced_it(
    conn: Any, make_accounts: Accounts
) -> None:
    """PostgreSQL lost attempt A's reservation (committed without waiting for the disk, then a crash), and the
    client's retry B of the same turn id was reserved anew, as the turn's first attempt again. The replica
    still working on A checkpoints it and settles it (free, or with an answer): none of it may touch B, whose
    own settlement then charges B's answer. By attempt number (1 and 1) the two could not be told apart."""
    account = await make_accounts.create("pro")
    lost = await hold(conn, account.id, 500)
    await lose(conn, lost)
    retry = await hold(conn, account.id, 300, turn_id=lost.key.turn_id)
    assert lost.attempt == retry.attempt == 1 and lost.attempt_id != retry.attempt_id
    assert await beat(conn, lost, Usage(output_tokens=400), output_seen=True, ttl=timedelta(hours=1)) == 0
    released = await ledger.settle(conn, lost, Outcome("failed", Usage(), "the upstream refused it"))
    answered = await ledger.settle(conn, lost, Outcome("complete", Usage(output_tokens=50)))
    for stale in (released, answered):
        assert (stale.superseded, stale.already, stale.credits_h, stale.overage_h) == (True, True, 0, 0)
    row = await conn.fetchrow("SELECT * FROM turns WHERE turn_id = $1", lost.key.turn_id)
    assert (row["status"], row["reserved_h"], row["output_seen"], row["checkpoint_h"]) == (
        "reserved",
        300,
        False,
        0,
    )
    assert row["attempt_id"] == retry.attempt_id
    assert await totals(conn, account.id) == {"used_h": 0, "overage_h": 0, "reserved_h": 300}
    usage = Usage(input_tokens=40, output_tokens=80)
    done = await ledger.settle(conn, retry, Outcome("complete", usage))
    charge = to_hundredths(credits_for("claude-sonnet-4.5", usage))
    assert (done.status, done.credits_h, done.already, done.superseded) == ("complete", charge, False, False)
    assert await totals(conn, account.id) == {"used_h": charge, "overage_h": 0, "reserved_h": 0}
    again = await ledger.settle(conn, lost, Outcome("complete", Usage(output_tokens=5000)))
    assert again.superseded and await totals(conn, account.id) == {
        "used_h": charge,
        "overage_h": 0,
        "reserved_h": 0,
    }


async def test_a_sweep_of_a_lost_attempt_never_settles_the_retry_that_replaced_it(
    conn: Any, make_accounts: Accounts
) -> None:
    """A sweep read attempt A as expired; before it settled it, PostgreSQL lost A and a retry B (whose own
    replica has stopped too) took the turn id. The sweep settles only what it read: B waits for its own."""
    account = await make_accounts.create("pro")
    lost = await hold(conn, account.id, 500)
    await beat(conn, lost, Usage(output_tokens=100), output_seen=True, ttl=timedelta(seconds=-1))
    [stale] = [o for o in await ledger.expired_turns(conn) if o.key == lost.key]
    await lose(conn, lost)
    retry = await hold(conn, account.id, 300, turn_id=lost.key.turn_id, ttl=timedelta(seconds=-1))
    assert await ledger.release_expired(conn, stale) is None
    assert await totals(conn, account.id) == {"used_h": 0, "overage_h": 0, "reserved_h": 300}
    [orphan] = [o for o in await ledger.expired_turns(conn) if o.key == lost.key]
    assert orphan.attempt_id == retry.attempt_id
    released = await ledger.release_expired(conn, orphan)
    assert released is not None and (released.status, released.credits_h) == ("failed", 0)
    assert await totals(conn, account.id) == {"used_h": 0, "overage_h": 0, "reserved_h": 0}


async def test_a_repeat_of_a_live_turn_is_refused_and_holds_nothing_more(
    conn: Any, make_accounts: Accounts
) -> None:
    account = await make_accounts.create("pro")
    turn = await hold(conn, account.id, 500)
    with pytest.raises(ledger.TurnInProgress):
        await hold(conn, account.id, 700, turn_id=turn.key.turn_id)
    assert await totals(conn, account.id) == {"used_h": 0, "overage_h": 0, "reserved_h": 500}
    settled = await ledger.settle(conn, turn, Outcome("complete", Usage(output_tokens=100)))
    assert await totals(conn, account.id) == {"used_h": settled.credits_h, "overage_h": 0, "reserved_h": 0}


async def test_an_expired_reservation_settles_at_its_checkpoint(conn: Any, make_accounts: Accounts) -> None:
    account = await make_accounts.create("pro")
    turn = await hold(conn, account.id, 500, ttl=timedelta(seconds=30))
    usage = Usage(input_tokens=40, output_tokens=120)
    assert await beat(conn, turn, usage, output_seen=True, ttl=timedelta(seconds=-1)) == 1
    [orphan] = [o for o in await ledger.expired_turns(conn) if o.key == turn.key]
    released = await ledger.release_expired(conn, orphan)
    assert released is not None and released.status == "cut"
    assert released.credits_h == to_hundredths(credits_for("claude-sonnet-4.5", usage))
    assert await ledger.release_expired(conn, orphan) is None  # another replica's sweep finds nothing
    assert await totals(conn, account.id) == {"used_h": released.credits_h, "overage_h": 0, "reserved_h": 0}
    assert await beat(conn, turn, usage, output_seen=True, ttl=TTL) == 0  # too late to renew


async def test_one_heartbeat_renews_every_live_reservation_of_a_replica_and_nothing_else(
    conn: Any, make_accounts: Accounts
) -> None:
    first, second = await make_accounts.create("pro"), await make_accounts.create("pro")
    mine = [await hold(conn, first.id, 100), await hold(conn, second.id, 100)]
    settled = await hold(conn, first.id, 100)
    await ledger.settle(conn, settled, Outcome("failed", Usage()))
    points = [Checkpoint(turn, Usage(input_tokens=10, output_tokens=n), True) for n, turn in enumerate(mine)]
    stale = Checkpoint(settled, Usage(output_tokens=5), True)
    assert await ledger.heartbeat(conn, [*points, stale], timedelta(seconds=-1)) == 2
    orphans = {o.key: o for o in await ledger.expired_turns(conn, limit=10_000)}
    assert settled.key not in orphans
    assert [orphans[turn.key].checkpoint_h for turn in mine] == [
        to_hundredths(credits_for("claude-sonnet-4.5", point.usage)) for point in points
    ]
    for turn in mine:
        await ledger.settle(conn, turn, Outcome("failed", Usage()))


async def test_one_orphan_the_sweep_cannot_settle_does_not_stop_it_settling_the_others(
    conn: Any, make_accounts: Accounts, ledger_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An earlier release (0007) could leave a month whose `reserved_h` is below a turn's hold; settling that
    turn then breaks a CHECK. The sweep, oldest first, must log it and go on to the other accounts' orphans,
    or every replica's every round would stop at the same row and leave everyone else's holds held."""
    poisoned, healthy = await make_accounts.create("pro"), await make_accounts.create("pro")
    bad = await hold(conn, poisoned.id, 500)
    good = await hold(conn, healthy.id, 300)
    assert await beat(conn, good, Usage(output_tokens=100), output_seen=True, ttl=timedelta(hours=-1)) == 1
    await conn.execute(
        "UPDATE account_periods SET reserved_h = 0 WHERE account_id = $1", poisoned.id
    )  # as 0007's month mix-up left it
    await conn.execute(
        "UPDATE turns SET expires_at = now() - interval '2 hours' WHERE account_id = $1", poisoned.id
    )
    pool = LedgerPool(ledger_url, max_size=2, connect_timeout=5)
    try:
        with caplog.at_level(logging.ERROR, logger="switchboard.gateway"):
            released = await reaper.reap_once(functools.partial(ledger_connection, pool, 5), live=set())
    finally:
        await pool.close(timeout=1)
    assert released >= 1
    assert await conn.fetchval("SELECT status FROM turns WHERE turn_id = $1", good.key.turn_id) == "cut"
    assert await conn.fetchval("SELECT status FROM turns WHERE turn_id = $1", bad.key.turn_id) == "reserved"
    logged = [r for r in caplog.records if "could not release an expired reservation" in r.getMessage()]
    assert [r.__dict__["turn_id"] for r in logged] == [bad.key.turn_id]
    await conn.execute("DELETE FROM turns WHERE turn_id = $1", bad.key.turn_id)  # nobody else's sweep trips


async def test_a_late_settlement_after_the_reaper_charges_the_real_usage_once(
    conn: Any, make_accounts: Accounts
) -> None:
    """A replica stalled past the reservation: the reaper charged the checkpoint, the real usage wins."""
    account = await make_accounts.create("pro")
    turn = await hold(conn, account.id, 5000)
    checkpoint = Usage(input_tokens=40, output_tokens=120)
    await beat(conn, turn, checkpoint, output_seen=True, ttl=timedelta(seconds=-1))
    [orphan] = [o for o in await ledger.expired_turns(conn) if o.key == turn.key]
    reaped = await ledger.release_expired(conn, orphan)
    assert reaped is not None and reaped.status == "cut"
    real = Usage(input_tokens=40, output_tokens=900)
    late = await ledger.settle(conn, turn, Outcome("complete", real))
    charge = to_hundredths(credits_for("claude-sonnet-4.5", real))
    assert (late.status, late.credits_h, late.already) == ("complete", charge, False)
    assert await totals(conn, account.id) == {"used_h": charge, "overage_h": 0, "reserved_h": 0}
    again = await ledger.settle(conn, turn, Outcome("complete", Usage(output_tokens=5000)))
    assert (again.credits_h, again.already) == (charge, True)  # never twice
    assert await totals(conn, account.id) == {"used_h": charge, "overage_h": 0, "reserved_h": 0}
    with pytest.raises(ledger.TurnAlreadySettled) as caught:
        await hold(conn, account.id, 500, turn_id=turn.key.turn_id)
    assert caught.value.settlement.credits_h == charge


async def test_a_late_settlement_never_goes_below_the_checkpoint_or_past_the_cap(
    conn: Any, make_accounts: Accounts
) -> None:
    account = await make_accounts.create("free", used_credits=49)  # 100 hundredths left, no overage
    turn = await hold(conn, account.id, 80)
    checkpoint = Usage(output_tokens=400)  # 0.6 x 1.3 = 0.78 credits
    await beat(conn, turn, checkpoint, output_seen=True, ttl=timedelta(seconds=-1))
    [orphan] = [o for o in await ledger.expired_turns(conn) if o.key == turn.key]
    reaped = await ledger.release_expired(conn, orphan)
    assert reaped is not None and reaped.credits_h == 78
    lower = await ledger.settle(conn, turn, Outcome("complete", Usage(output_tokens=300)))
    assert lower.credits_h == 78  # the deltas counted more than message_delta said: the checkpoint stands
    other = await hold(conn, account.id, 10)
    await beat(conn, other, Usage(output_tokens=10), output_seen=True, ttl=timedelta(seconds=-1))
    [orphan] = [o for o in await ledger.expired_turns(conn) if o.key == other.key]
    assert await ledger.release_expired(conn, orphan) is not None
    higher = await ledger.settle(conn, other, Outcome("complete", Usage(output_tokens=100_000)))
    assert higher.credits_h == 22  # raised only as far as the allowance allows
    assert await totals(conn, account.id) == {"used_h": 5000, "overage_h": 0, "reserved_h": 0}


async def test_a_late_settlement_of_an_attempt_a_retry_replaced_changes_nothing(
    conn: Any, make_accounts: Accounts
) -> None:
    """Reaped before any output (free), then retried: the stalled first attempt cannot touch the second."""
    account = await make_accounts.create("pro")
    first = await hold(conn, account.id, 500)
    await beat(conn, first, Usage(), output_seen=False, ttl=timedelta(seconds=-1))
    second = await hold(conn, account.id, 300, turn_id=first.key.turn_id)  # settles the orphan on the way
    assert (first.attempt, second.attempt) == (1, 2)
    late = await ledger.settle(conn, first, Outcome("complete", Usage(output_tokens=50)))
    assert (late.already, late.superseded, late.credits_h) == (True, True, 0)
    assert await totals(conn, account.id) == {"used_h": 0, "overage_h": 0, "reserved_h": 300}
    done = await ledger.settle(conn, second, Outcome("complete", Usage(output_tokens=50)))
    assert done.credits_h == to_hundredths(credits_for("claude-sonnet-4.5", Usage(output_tokens=50)))


@pytest.mark.parametrize("output_seen", [True, False])
async def test_a_repeat_of_an_orphaned_turn_settles_it_first(
    conn: Any, make_accounts: Accounts, output_seen: bool
) -> None:
    account = await make_accounts.create("pro")
    turn = await hold(conn, account.id, 500)
    usage = Usage(input_tokens=40, output_tokens=120 if output_seen else 0)
    await beat(conn, turn, usage, output_seen=output_seen, ttl=timedelta(seconds=-1))
    charge = to_hundredths(credits_for("claude-sonnet-4.5", usage))
    if output_seen:
        # Output had begun: the repeat is refused with the orphan's charge, which stays committed.
        with pytest.raises(ledger.TurnAlreadySettled) as caught:
            await hold(conn, account.id, 500, turn_id=turn.key.turn_id)
        assert (caught.value.settlement.status, caught.value.settlement.credits_h) == ("cut", charge)
        assert await totals(conn, account.id) == {"used_h": charge, "overage_h": 0, "reserved_h": 0}
    else:
        # No output: the orphan is free and the repeat runs as a new attempt.
        again = await hold(conn, account.id, 300, turn_id=turn.key.turn_id)
        assert await totals(conn, account.id) == {"used_h": 0, "overage_h": 0, "reserved_h": 300}
        await ledger.settle(conn, again, Outcome("failed", Usage()))


# Two consecutive months, neither the current one: a turn id retried across the boundary.
MONTH, NEXT_MONTH = "2030-12", "2031-01"


async def month(conn: Any, account_id: str, period: str) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT used_h, reserved_h FROM account_periods WHERE account_id = $1 AND period = $2",
        account_id,
        period,
    )
    assert row is not None, f"no balance row for {period}"
    return dict(row)


@pytest.mark.parametrize("neighbour", [False, True], ids=["alone", "beside-a-live-turn"])
@pytest.mark.parametrize("output_seen", [True, False], ids=["cut", "no-output"])
async def test_a_repeat_of_an_orphaned_turn_in_the_next_month_settles_it_in_its_own(
    conn: Any, make_accounts: Accounts, output_seen: bool, neighbour: bool
) -> None:
    """Reserved in one month, its replica killed, the turn id sent again in the next before any sweep: the
    orphan's hold is released from (and its checkpoint charged to) its own month, the new attempt is held
    in the new one. Alone, the wrong month's hold went below zero (a CHECK, a 503 until a sweep); beside
    another turn's hold it committed, a phantom hold in the old month and a hole in the new."""
    account = await make_accounts.create("pro")
    orphan = await hold(conn, account.id, 500, period=MONTH)
    usage = Usage(input_tokens=40, output_tokens=120 if output_seen else 0)
    await beat(conn, orphan, usage, output_seen=output_seen, ttl=timedelta(seconds=-1))
    other = await hold(conn, account.id, 2000, period=NEXT_MONTH) if neighbour else None
    held = 2000 if neighbour else 0
    charge = to_hundredths(credits_for("claude-sonnet-4.5", usage))
    if output_seen:
        with pytest.raises(ledger.TurnAlreadySettled) as caught:
            await hold(conn, account.id, 300, period=NEXT_MONTH, turn_id=orphan.key.turn_id)
        assert (caught.value.settlement.status, caught.value.settlement.credits_h) == ("cut", charge)
        assert await month(conn, account.id, MONTH) == {"used_h": charge, "reserved_h": 0}
        assert await month(conn, account.id, NEXT_MONTH) == {"used_h": 0, "reserved_h": held}
        # Its replica was only stalled: the real usage raises the charge, in the same month.
        real = Usage(input_tokens=40, output_tokens=900)
        late = await ledger.settle(conn, orphan, Outcome("complete", real))
        raised = to_hundredths(credits_for("claude-sonnet-4.5", real))
        assert (late.credits_h, late.already) == (raised, False)
        assert await month(conn, account.id, MONTH) == {"used_h": raised, "reserved_h": 0}
        assert await month(conn, account.id, NEXT_MONTH) == {"used_h": 0, "reserved_h": held}
    else:
        again = await hold(conn, account.id, 300, period=NEXT_MONTH, turn_id=orphan.key.turn_id)
        assert (again.attempt, again.period) == (2, NEXT_MONTH)
        turn_period = await conn.fetchval(
            "SELECT period FROM turns WHERE account_id = $1 AND turn_id = $2", account.id, orphan.key.turn_id
        )
        assert turn_period == NEXT_MONTH
        assert await month(conn, account.id, MONTH) == {"used_h": 0, "reserved_h": 0}
        assert await month(conn, account.id, NEXT_MONTH) == {"used_h": 0, "reserved_h": held + 300}
        late = await ledger.settle(conn, orphan, Outcome("complete", Usage(output_tokens=50)))
        assert late.already  # the first attempt cannot touch the second
        answered = Usage(input_tokens=40, output_tokens=50)
        done = await ledger.settle(conn, again, Outcome("complete", answered))
        charge = to_hundredths(credits_for("claude-sonnet-4.5", answered))
        assert (done.credits_h, done.already) == (charge, False)
        assert await month(conn, account.id, MONTH) == {"used_h": 0, "reserved_h": 0}
        assert await month(conn, account.id, NEXT_MONTH) == {"used_h": charge, "reserved_h": held}
    if other is not None:
        await ledger.settle(conn, other, Outcome("failed", Usage()))
        assert (await month(conn, account.id, NEXT_MONTH))["reserved_h"] == 0
    assert not [o for o in await ledger.expired_turns(conn, limit=10_000) if o.key.account_id == account.id]


async def test_a_repeat_from_an_earlier_month_than_its_orphan_waits_for_the_sweep(
    conn: Any, make_accounts: Accounts
) -> None:
    """A replica whose clock is behind the month boundary repeats a turn an orphan holds in the next month:
    it would have to lock the newer month's balance row after the older one (the reverse of the order
    `ledger_reserve` takes them in), so it is refused as in progress; the sweep settles the orphan in its
    own month, and the repeat then runs."""
    account = await make_accounts.create("pro")
    orphan = await hold(conn, account.id, 500, period=NEXT_MONTH)
    await beat(conn, orphan, Usage(input_tokens=40), output_seen=False, ttl=timedelta(seconds=-1))
    with pytest.raises(ledger.TurnInProgress):
        await hold(conn, account.id, 300, period=MONTH, turn_id=orphan.key.turn_id)
    assert await month(conn, account.id, NEXT_MONTH) == {"used_h": 0, "reserved_h": 500}
    [found] = [o for o in await ledger.expired_turns(conn, limit=10_000) if o.key == orphan.key]
    released = await ledger.release_expired(conn, found)  # the reaper settles in the turn's own month
    assert released is not None and (released.status, released.credits_h) == ("failed", 0)
    assert await month(conn, account.id, NEXT_MONTH) == {"used_h": 0, "reserved_h": 0}
    again = await hold(conn, account.id, 300, period=MONTH, turn_id=orphan.key.turn_id)
    assert (again.attempt, again.period) == (2, MONTH)
    assert await month(conn, account.id, MONTH) == {"used_h": 0, "reserved_h": 300}
    await ledger.settle(conn, again, Outcome("failed", Usage()))
    assert await month(conn, account.id, MONTH) == {"used_h": 0, "reserved_h": 0}


async def waiting_for_a_lock(watcher: Any, waiter: Any) -> None:
    pid = waiter.get_server_pid()
    for _ in range(500):
        query = "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1"
        if await watcher.fetchval(query, pid) == "Lock":
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never waited for a lock")


async def test_a_repeat_and_a_sweep_of_the_same_orphan_across_months_wait_in_turn_not_in_a_cycle(
    conn: Any, make_accounts: Accounts, ledger_url: str
) -> None:
    """The repeat locks its month's balance row, then the orphan's month's, then the turn's; the sweep the
    orphan's month's, then the turn's. With the turn's row held elsewhere, the repeat waits for it holding
    both months, the sweep waits behind the repeat: they finish one after the other, no deadlock."""
    account = await make_accounts.create("pro")
    orphan = await hold(conn, account.id, 500, period=MONTH)
    await beat(conn, orphan, Usage(), output_seen=False, ttl=timedelta(seconds=-1))
    [found] = [o for o in await ledger.expired_turns(conn, limit=10_000) if o.key == orphan.key]
    blocker, repeater, sweeper = [await asyncpg.connect(ledger_url) for _ in range(3)]
    try:
        async with blocker.transaction():
            await blocker.execute(
                "SELECT 1 FROM turns WHERE account_id = $1 AND turn_id = $2 FOR UPDATE",
                *(account.id, orphan.key.turn_id),
            )
            repeat = asyncio.ensure_future(
                hold(repeater, account.id, 300, period=NEXT_MONTH, turn_id=orphan.key.turn_id)
            )
            await waiting_for_a_lock(conn, repeater)
            sweep = asyncio.ensure_future(ledger.release_expired(sweeper, found))
            await waiting_for_a_lock(conn, sweeper)
        again, swept = await asyncio.wait_for(asyncio.gather(repeat, sweep), timeout=30)
    finally:
        for c in (blocker, repeater, sweeper):
            await c.close()
    assert (again.attempt, again.period, swept) == (2, NEXT_MONTH, None)  # the repeat settled it first
    assert await month(conn, account.id, MONTH) == {"used_h": 0, "reserved_h": 0}
    assert await month(conn, account.id, NEXT_MONTH) == {"used_h": 0, "reserved_h": 300}
    await ledger.settle(conn, again, Outcome("failed", Usage()))


_BODIES = [
    {"messages": [{"role": "user", "content": "hi"}]},
    {
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "x = [i * i for i in range(10)]\n" * 50}],
    },
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "naïve café 日本語 " * 40}]}]},
]


def _as_sent(body: dict[str, Any], model: str = HAIKU_ID, **dumps: Any) -> bytes:
    return json.dumps({"model": model, "max_tokens": 10, **body}, **dumps).encode()


@pytest.mark.parametrize("body", _BODIES)
@pytest.mark.parametrize(
    "encoding",
    [
        {"separators": (",", ":"), "ensure_ascii": False},  # as the SDK sends it (httpx's JSON)
        {"ensure_ascii": False, "indent": 2},
        {"ensure_ascii": True},  # \u escapes: re-encoded before it goes upstream
    ],
)
@pytest.mark.parametrize("chosen", ["claude-haiku-4.5", "auto"])  # Auto's body is always re-encoded
def test_the_input_estimate_errs_high(body: dict[str, Any], encoding: dict[str, Any], chosen: str) -> None:
    upstream = parsed_turn(_as_sent(body, **encoding), chosen).upstream_body(HAIKU_ID)
    assert estimate_input_tokens(upstream) >= count_tokens(json.loads(upstream))


def test_the_reservation_is_measured_on_the_body_sent_upstream_not_the_body_received() -> None:
    # Re-encoding writes 1E15 back as 1000000000000000.0: an Auto body (always re-encoded, with the routed
    # model) that is mostly such numbers grows fourfold on its way upstream. Measured as received, it would
    # be held at a quarter of what Anthropic is sent.
    raw = numbers_body()
    upstream = parsed_turn(raw, "auto").upstream_body(HAIKU_ID)
    assert len(upstream) > 3 * len(raw)
    assert estimate_input_tokens(upstream) == tokens_for_chars(len(upstream))
    # A body forwarded as sent is measured as sent.
    plain = _as_sent(_BODIES[1], separators=(",", ":"))
    assert parsed_turn(plain).upstream_body(HAIKU_ID) == plain


def test_a_string_no_utf_8_can_carry_is_a_400_before_anything_is_reserved_when_it_must_be_re_encoded() -> (
    None
):
    half_a_pair = {"messages": [{"role": "user", "content": "half a pair: \ud800"}]}
    # Auto's body is re-encoded with the model Auto picks, and UTF-8 cannot carry the lone surrogate.
    with pytest.raises(GatewayRefusal) as refused:
        parsed_turn(_as_sent(half_a_pair, model="auto"), "auto").upstream_body(HAIKU_ID)
    assert refused.value.status == 400 and "surrogate" in str(refused.value)
    # A body sent as it came keeps its escape: Anthropic answers it as it would the client.
    raw = _as_sent(half_a_pair)
    assert b"\\ud800" in raw and parsed_turn(raw).upstream_body(HAIKU_ID) == raw


def test_max_tokens_within_is_the_largest_that_fits() -> None:
    input_tokens = estimate_input_tokens(_as_sent({"messages": [{"role": "user", "content": "hello"}]}))
    fits = max_tokens_within("claude-sonnet-4.5", input_tokens, 100)
    assert (
        reservation_h("claude-sonnet-4.5", input_tokens, fits)
        <= 100
        < reservation_h("claude-sonnet-4.5", input_tokens, fits + 1)
    )


async def _account(ledger_url: str, account_id: str) -> Any:
    async with await psycopg.AsyncConnection.connect(ledger_url, row_factory=dict_row) as conn:
        return await get_account(conn, account_id)


async def test_migration_0003_is_reversible_and_prices_what_the_previous_release_left(
    cluster: Cluster,
) -> None:
    """A reservation the previous release left behind (tokens checkpointed, no `checkpoint_h`) is priced by
    the sweeping replica in Python; downgrading to 0002 drops the functions and columns, and back again."""
    url = cluster.new_database()
    await asyncio.to_thread(migrate.upgrade, url, "0002")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as old:
        account = await create_account(old, "old@example.test", "a password", "pro")
        # What the previous release's reserve and checkpoint statements leave: a reserved turn, expired.
        await old.execute(
            "INSERT INTO account_periods (account_id, period, reserved_h) VALUES (%s, %s, 500)",
            (account.id, current_period()),
        )
        await old.execute(
            "INSERT INTO turns (account_id, turn_id, period, model_id, routed_model, status, reserved_h,"
            " input_tokens, output_tokens, output_seen, replica, expires_at)"
            " VALUES (%s, 'old-turn', %s, 'claude-sonnet-4.5', 'claude-sonnet-4.5', 'reserved', 500,"
            " 40, 120, true, 'old:1', now() - interval '1 second')",
            (account.id, current_period()),
        )
    await asyncio.to_thread(migrate.upgrade, url)
    conn = await asyncpg.connect(url)
    try:
        key = TurnKey(account.id, "old-turn")
        with pytest.raises(ledger.TurnInProgress):  # only a sweep can price it: the repeat waits for one
            await ledger.reserve(conn, Hold(key, current_period(), "auto", "auto", "", 10, "new:1", TTL))
        [orphan] = [o for o in await ledger.expired_turns(conn) if o.key == key]
        released = await ledger.release_expired(conn, orphan)
        charge = to_hundredths(credits_for("claude-sonnet-4.5", Usage(input_tokens=40, output_tokens=120)))
        assert released is not None and (released.status, released.credits_h) == ("cut", charge)
        assert await totals(conn, account.id) == {"used_h": charge, "overage_h": 0, "reserved_h": 0}
    finally:
        await conn.close()
    config = migrate.alembic_config(url)
    await asyncio.to_thread(command.downgrade, config, "0002")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        functions = await (
            await conn.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE 'ledger%'")
        ).fetchone()
        columns = await (
            await conn.execute(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = 'turns'"
                " AND column_name IN ('checkpoint_h', 'provisional')"
            )
        ).fetchone()
    assert functions == (0,) and columns == (0,)
    await asyncio.to_thread(migrate.upgrade, url)


MIGRATION_USAGE = Usage(input_tokens=400, output_tokens=100)
MIGRATION_CHARGE = to_hundredths(credits_for("claude-sonnet-4.5", MIGRATION_USAGE))


@contextlib.asynccontextmanager
async def ledger_at(
    cluster: Cluster, revision: str, email: str
) -> AsyncIterator[tuple[str, Any, asyncpg.Connection[asyncpg.Record]]]:
    """A new database migrated to `revision`, an account in it and a replica's kind of connection; the
    database is brought to the newest revision again afterwards (it must still go up)."""
    url = cluster.new_database()
    await asyncio.to_thread(migrate.upgrade, url, revision)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as setup:
        account = await create_account(setup, email, "a password", "pro")
    conn = await asyncpg.connect(url)
    try:
        yield url, account, conn
    finally:
        await conn.close()
    await asyncio.to_thread(migrate.upgrade, url)


async def previous_release_reserve(conn: Any, account_id: str, reserved_h: int, **kw: Any) -> Reservation:
    """Reserve as a replica of a release before 0010 (eleven arguments, no attempt id): the attempt is named
    by its number alone."""
    key = TurnKey(account_id, kw.get("turn_id", uuid.uuid4().hex))
    period, model = kw.get("period", current_period()), "claude-sonnet-4.5"
    row = await conn.fetchrow(
        "SELECT * FROM ledger_reserve($1, $2, $3, $4, $5, $6, $7::text[], $8, $9, $10, $11::jsonb)",
        *(key.account_id, key.turn_id, period, model, model, "test", sorted(allowed_plans(model))),
        *(reserved_h, kw.get("ttl", TTL), "test", ledger.PLAN_TERMS),
    )
    assert row["outcome"] == "reserved", row["outcome"]
    return Reservation(key, period, model, model, reserved_h, row["attempt"], "test", "test")


async def previous_release_settle(
    conn: Any, turn: Reservation, outcome: Outcome, release: str = "0006"
) -> bool:
    """Settle as a replica of a release before 0010 does, by attempt number: that of 0006 (twelve arguments)
    or of 0007 to 0009 (sixteen); whether it was settled before."""
    models = (turn.model_id, turn.routed_model, turn.route_reason, turn.replica) if release == "0007" else ()
    statement = "SELECT * FROM ledger_settle($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb"
    statement += ", $13, $14, $15, $16)" if models else ")"
    row = await conn.fetchrow(
        statement,
        *(turn.key.account_id, turn.key.turn_id, turn.period, turn.attempt, outcome.status),
        ledger.charge_h(turn.model_id, outcome),
        *(outcome.usage.input_tokens, outcome.usage.output_tokens, 0, 0),
        *(outcome.reason, ledger.PLAN_TERMS),
        *models,
    )
    return bool(row["already"])


async def test_migration_0007_keeps_the_previous_releases_settlement_and_goes_down_again(
    cluster: Cluster,
) -> None:
    """During a rolling upgrade both releases settle: a turn reserved before 0007 settles by the new
    overload, one reserved after it by the previous release's call; after a downgrade the previous
    release's call still settles, and the new overload is gone."""
    done = Outcome("complete", MIGRATION_USAGE)
    async with ledger_at(cluster, "0006", "rolling@example.test") as (url, account, conn):
        before = await previous_release_reserve(conn, account.id, 500)
        await asyncio.to_thread(migrate.upgrade, url)
        after = await previous_release_reserve(conn, account.id, 500)
        third = await previous_release_reserve(conn, account.id, 500)
        assert not await previous_release_settle(conn, before, done, release="0007")
        assert not await previous_release_settle(conn, after, done)
        await asyncio.to_thread(command.downgrade, migrate.alembic_config(url), "0006")
        assert not await previous_release_settle(conn, third, done)
        used = 3 * MIGRATION_CHARGE
        assert await totals(conn, account.id) == {"used_h": used, "overage_h": 0, "reserved_h": 0}
        overloads = await conn.fetchval("SELECT count(*) FROM pg_proc WHERE proname = 'ledger_settle'")
        assert overloads == 1


async def test_migration_0006_takes_over_reservations_in_flight_and_goes_down_again(cluster: Cluster) -> None:
    """0006 replaces the bodies of `ledger_reserve` and `ledger_settle`: a turn reserved by 0003's settles by
    0006's, and one reserved by 0006's settles by 0003's after a downgrade, each charged once."""
    done = Outcome("complete", MIGRATION_USAGE)
    async with ledger_at(cluster, "0005", "flight@example.test") as (url, account, conn):
        before = await previous_release_reserve(conn, account.id, 500)
        await asyncio.to_thread(migrate.upgrade, url)
        after = await previous_release_reserve(conn, account.id, 500)  # the same connection: the new body
        assert not await previous_release_settle(conn, before, done)
        await asyncio.to_thread(command.downgrade, migrate.alembic_config(url), "0005")
        assert not await previous_release_settle(conn, after, done)
        assert await previous_release_settle(conn, after, done)
        used = 2 * MIGRATION_CHARGE
        assert await totals(conn, account.id) == {"used_h": used, "overage_h": 0, "reserved_h": 0}
        capped = await conn.fetchval("SELECT count(*) FROM pg_proc WHERE proname = 'ledger_capped'")
        assert capped == 0


async def test_migration_0008_settles_an_orphan_of_0007_in_its_own_month_and_goes_down_again(
    cluster: Cluster,
) -> None:
    """An orphan 0007's body reserved is settled in its own month by 0008's when the turn id comes back the
    next month; a downgrade puts 0007's body back, and what 0008's reserved settles by it."""
    async with ledger_at(cluster, "0007", "boundary@example.test") as (url, account, conn):
        orphan = await previous_release_reserve(
            conn, account.id, 500, period=MONTH, ttl=timedelta(seconds=-1)
        )
        await asyncio.to_thread(migrate.upgrade, url)
        again = await previous_release_reserve(
            conn, account.id, 300, period=NEXT_MONTH, turn_id=orphan.key.turn_id
        )
        assert again.attempt == 2
        assert await month(conn, account.id, MONTH) == {"used_h": 0, "reserved_h": 0}
        assert await month(conn, account.id, NEXT_MONTH) == {"used_h": 0, "reserved_h": 300}
        await asyncio.to_thread(command.downgrade, migrate.alembic_config(url), "0007")
        body = await conn.fetchval("SELECT prosrc FROM pg_proc WHERE proname = 'ledger_reserve'")
        assert "own_period" not in body
        assert not await previous_release_settle(conn, again, Outcome("complete", MIGRATION_USAGE), "0007")
        assert await month(conn, account.id, NEXT_MONTH) == {"used_h": MIGRATION_CHARGE, "reserved_h": 0}


async def test_migration_0010_names_attempts_by_id_beside_the_previous_release_and_goes_down_again(
    cluster: Cluster,
) -> None:
    """During a rolling upgrade both releases reserve and settle: the previous release by attempt number
    (its calls act only on the attempts it reserved, which carry no id), this one by attempt id. A stale
    settlement of a lost attempt of either release never settles the other release's retry. After a
    downgrade to 0009 the new overloads and the column are gone, and what this release reserved is swept."""
    done = Outcome("complete", MIGRATION_USAGE)
    async with ledger_at(cluster, "0009", "attempts@example.test") as (url, account, conn):
        before = await previous_release_reserve(conn, account.id, 500)
        await asyncio.to_thread(migrate.upgrade, url)
        assert not await previous_release_settle(conn, before, done, release="0007")
        old, new = await previous_release_reserve(conn, account.id, 500), await hold(conn, account.id, 500)
        assert not await previous_release_settle(conn, old, done, release="0007")
        assert not (await ledger.settle(conn, new, done)).already
        used = 3 * MIGRATION_CHARGE
        assert await totals(conn, account.id) == {"used_h": used, "overage_h": 0, "reserved_h": 0}

        # The previous release's attempt lost, this release's retry: the stale release leaves it alone.
        lost = await previous_release_reserve(conn, account.id, 500)
        await lose(conn, lost)
        retry = await hold(conn, account.id, 300, turn_id=lost.key.turn_id)
        assert await previous_release_settle(conn, lost, Outcome("failed", Usage()), release="0007")
        assert await previous_release_settle(conn, lost, Outcome("failed", Usage()))
        assert not (await ledger.settle(conn, retry, done)).already
        used += MIGRATION_CHARGE
        # This release's attempt lost, the previous release's retry: likewise.
        lost = await hold(conn, account.id, 500)
        await lose(conn, lost)
        retry = await previous_release_reserve(conn, account.id, 300, turn_id=lost.key.turn_id)
        assert (await ledger.settle(conn, lost, Outcome("failed", Usage()))).superseded
        assert not await previous_release_settle(conn, retry, done, release="0007")
        used += MIGRATION_CHARGE
        assert await totals(conn, account.id) == {"used_h": used, "overage_h": 0, "reserved_h": 0}

        # A retry the previous release reserves after this release's failed attempt carries no id.
        failed = await hold(conn, account.id, 500)
        await ledger.settle(conn, failed, Outcome("failed", Usage()))
        again = await previous_release_reserve(conn, account.id, 300, turn_id=failed.key.turn_id)
        assert again.attempt == 2
        assert (await ledger.settle(conn, failed, done)).superseded
        assert not await previous_release_settle(conn, again, done, release="0007")
        used += MIGRATION_CHARGE

        left = await hold(conn, account.id, 500, ttl=timedelta(seconds=-1))  # its replica stops, then down
        await asyncio.to_thread(command.downgrade, migrate.alembic_config(url), "0009")
        swept = await conn.fetchrow(
            "SELECT * FROM ledger_reap($1, $2, 0, $3::jsonb)", account.id, left.key.turn_id, ledger.PLAN_TERMS
        )
        assert swept["status"] == "failed"
        assert await totals(conn, account.id) == {"used_h": used, "overage_h": 0, "reserved_h": 0}
        counts = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE proname = 'ledger_reserve') AS reserve,"
            " count(*) FILTER (WHERE proname = 'ledger_settle') AS settle,"
            " count(*) FILTER (WHERE proname = 'ledger_reap') AS reap FROM pg_proc"
        )
        assert dict(counts) == {"reserve": 1, "settle": 2, "reap": 1}
        column = await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'turns' AND column_name = 'attempt_id'"
        )
        assert column == 0


async def test_migration_0011_caps_a_settlement_by_what_is_used_alone_and_goes_down_again(
    cluster: Cluster,
) -> None:
    """0011 replaces the bodies of `ledger_charge` and this release's `ledger_settle` (same names, arguments
    and results): a turn reserved under 0010 settles by the new cap, and after a downgrade 0010's cap (which
    counts other turns' holds) is back. Pro with 10 credits left, four turns holding all of it; each uses
    1.95 credits."""
    answer = Outcome("complete", Usage(output_tokens=1000))  # 195 hundredths, past each hold but the first
    async with ledger_at(cluster, "0010", "cap@example.test") as (url, account, conn):
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
            await admin.execute(
                "INSERT INTO account_periods (account_id, period, used_h) VALUES (%s, %s, 99000)",
                (account.id, current_period()),
            )
        large, *small = [await hold(conn, account.id, h) for h in (700, 100, 100, 100)]
        assert (await ledger.settle(conn, small[0], answer)).credits_h == 100  # 0010: 1,000 - 900 held
        await asyncio.to_thread(migrate.upgrade, url)
        assert (await ledger.settle(conn, small[1], answer)).credits_h == 195  # 900 left after what is used
        await asyncio.to_thread(command.downgrade, migrate.alembic_config(url), "0010")
        assert (await ledger.settle(conn, small[2], answer)).credits_h == 5  # 705 left, 700 of it held
        await asyncio.to_thread(migrate.upgrade, url)
        assert (await ledger.settle(conn, large, answer)).credits_h == 195
        used = 99_000 + 100 + 195 + 5 + 195
        assert await totals(conn, account.id) == {"used_h": used, "overage_h": 0, "reserved_h": 0}


async def test_migration_0013_counts_overage_spent_beside_the_allowance_when_off_and_goes_down_again(
    cluster: Cluster,
) -> None:
    """0013 replaces `ledger_limit` by one that takes the month's overage, and every body that called it
    (same names, arguments and results): Pro+ with 1,500 credits used, 500 of them overage under Pro, overage
    off. A turn reserved under 0012 (which left 500 credits) settles by the new limit (1,000 left); the
    previous release's settlements still work; after a downgrade 0012's limit is back."""
    overrun = Outcome("complete", Usage(output_tokens=300_000))  # 58,500 hundredths
    async with ledger_at(cluster, "0012", "moved@example.test") as (url, account, conn):
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
            await admin.execute("UPDATE accounts SET plan = 'pro_plus' WHERE id = %s", (account.id,))
            await admin.execute(
                "INSERT INTO account_periods (account_id, period, used_h, overage_h)"
                " VALUES (%s, %s, 150000, 50000)",
                (account.id, current_period()),
            )
        early = await hold(conn, account.id, 30_000)
        with pytest.raises(ledger.InsufficientCredits) as caught:
            await hold(conn, account.id, 20_001)
        assert caught.value.available_h == 20_000  # 0012: 2,000 credits less all 1,500 used, less the hold
        await asyncio.to_thread(migrate.upgrade, url)
        assert (await ledger.settle(conn, early, overrun)).credits_h == 58_500  # 0012 would cap it at 50,000
        done = Outcome("complete", MIGRATION_USAGE)
        for release in ("0006", "0007"):
            previous = await previous_release_reserve(conn, account.id, 500)
            assert not await previous_release_settle(conn, previous, done, release)
        late = await hold(conn, account.id, 41_500 - 2 * MIGRATION_CHARGE)  # all that is left
        stale = await conn.fetchval(
            "SELECT count(*) FROM pg_proc WHERE prosrc ~ 'ledger_limit\\((a|acc), p_terms\\)'"
        )
        assert stale == 0
        # The old function stays for calls that began under the old bodies while the migration committed.
        limits = await conn.fetch(
            "SELECT oid::regprocedure::text AS f FROM pg_proc WHERE proname = 'ledger_limit' ORDER BY 1"
        )
        assert [row["f"] for row in limits] == [
            "ledger_limit(accounts,jsonb)",
            "ledger_limit(accounts,jsonb,bigint)",
        ]

        await asyncio.to_thread(command.downgrade, migrate.alembic_config(url), "0012")
        assert (await ledger.settle(conn, late, overrun)).credits_h == 0  # 0012: past the allowance already
        used = 150_000 + 58_500 + 2 * MIGRATION_CHARGE
        assert await totals(conn, account.id) == {"used_h": used, "overage_h": 50_000, "reserved_h": 0}
        limits = await conn.fetch(
            "SELECT oid::regprocedure::text AS f FROM pg_proc WHERE proname = 'ledger_limit'"
        )
        assert [row["f"] for row in limits] == ["ledger_limit(accounts,jsonb)"]
