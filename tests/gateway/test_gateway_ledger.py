"""The ledger's rules on a real PostgreSQL, driven directly: limits, caps, overage, exactly-once, expiry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import DictRow, dict_row

from gateway.gateway_support import Accounts, current_period
from switchboard.fakeapi import count_tokens
from switchboard.gateway import ledger
from switchboard.gateway.estimate import estimate_input_tokens, max_tokens_within, reservation_h
from switchboard.gateway.ledger import Outcome, TurnKey
from switchboard.plans.credits import credits_for, to_hundredths
from switchboard.protocol.messages import Usage

TTL = timedelta(seconds=30)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection[DictRow]]:
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, row_factory=dict_row
    ) as c:
        yield c


async def hold(
    conn: Any, account_id: str, reserved_h: int, model: str = "claude-sonnet-4.5", **kw: Any
) -> Any:
    return await ledger.reserve(
        conn,
        TurnKey(account_id, kw.get("turn_id", uuid.uuid4().hex)),
        period=current_period(),
        model_id=model,
        routed_model=model,
        route_reason="test",
        reserved_h=reserved_h,
        ttl=kw.get("ttl", TTL),
        replica="test",
    )


async def totals(conn: Any, account_id: str) -> dict[str, int]:
    cursor = await conn.execute(
        "SELECT used_h, overage_h, reserved_h FROM account_periods WHERE account_id = %s AND period = %s",
        (account_id, current_period()),
    )
    return dict(await cursor.fetchone())


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
    conn: Any, make_accounts: Accounts
) -> None:
    account = await make_accounts.create("pro", used_credits=999.5, overage=True, budget_cents=4)  # 1 credit
    assert ledger.limit_h(await _account(conn, account.id)) == 100_000 + 100
    turn = await hold(conn, account.id, 150)
    settled = await ledger.settle(conn, turn, Outcome("complete", Usage(output_tokens=500)))  # 0.75 x 1.3
    assert (settled.credits_h, settled.overage_h) == (98, 48)
    with pytest.raises(ledger.InsufficientCredits):
        await hold(conn, account.id, 53)
    assert await totals(conn, account.id) == {"used_h": 99_950 + 98, "overage_h": 48, "reserved_h": 0}


async def test_a_turn_settles_once(conn: Any, make_accounts: Accounts) -> None:
    account = await make_accounts.create("pro")
    turn = await hold(conn, account.id, 500)
    first = await ledger.settle(conn, turn, Outcome("complete", Usage(output_tokens=100)))
    again = await ledger.settle(conn, turn, Outcome("complete", Usage(output_tokens=9000)))
    assert (first.already, again.already) == (False, True) and again.credits_h == first.credits_h
    with pytest.raises(ledger.TurnAlreadySettled):
        await hold(conn, account.id, 500, turn_id=turn.key.turn_id)
    assert await totals(conn, account.id) == {"used_h": first.credits_h, "overage_h": 0, "reserved_h": 0}


async def test_an_expired_reservation_settles_at_its_checkpoint(conn: Any, make_accounts: Accounts) -> None:
    account = await make_accounts.create("pro")
    turn = await hold(conn, account.id, 500, ttl=timedelta(seconds=30))
    usage = Usage(input_tokens=40, output_tokens=120)
    assert await ledger.checkpoint(conn, turn.key, usage, output_seen=True, ttl=timedelta(seconds=-1))
    assert turn.key in await ledger.expired_turns(conn)
    released = await ledger.release_expired(conn, turn.key)
    assert released is not None and released.status == "cut"
    assert released.credits_h == to_hundredths(credits_for("claude-sonnet-4.5", usage))
    assert await ledger.release_expired(conn, turn.key) is None  # another replica's sweep finds nothing
    assert await totals(conn, account.id) == {"used_h": released.credits_h, "overage_h": 0, "reserved_h": 0}
    assert not await ledger.checkpoint(conn, turn.key, usage, output_seen=True, ttl=TTL)  # too late to renew


@pytest.mark.parametrize("output_seen", [True, False])
async def test_a_repeat_of_an_orphaned_turn_settles_it_first(
    conn: Any, make_accounts: Accounts, output_seen: bool
) -> None:
    account = await make_accounts.create("pro")
    turn = await hold(conn, account.id, 500)
    usage = Usage(input_tokens=40, output_tokens=120 if output_seen else 0)
    await ledger.checkpoint(conn, turn.key, usage, output_seen=output_seen, ttl=timedelta(seconds=-1))
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


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "user", "content": "hi"}]},
        {
            "system": "You are terse.",
            "messages": [{"role": "user", "content": "x = [i * i for i in range(10)]\n" * 50}],
        },
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "naïve café 日本語 " * 40}]}]},
    ],
)
def test_the_input_estimate_errs_high(body: dict[str, Any]) -> None:
    request = {"model": "claude-haiku-4-5-20251001", "max_tokens": 10, **body}
    assert estimate_input_tokens(request) >= count_tokens(request)


def test_max_tokens_within_is_the_largest_that_fits() -> None:
    body = {"messages": [{"role": "user", "content": "hello"}]}
    fits = max_tokens_within("claude-sonnet-4.5", body, 100)
    assert (
        reservation_h("claude-sonnet-4.5", body, fits)
        <= 100
        < reservation_h("claude-sonnet-4.5", body, fits + 1)
    )


async def _account(conn: Any, account_id: str) -> Any:
    from switchboard.gateway.accounts import get_account

    return await get_account(conn, account_id)
