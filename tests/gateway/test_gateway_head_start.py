"""A turn goes upstream while its reservation is made (`head_start.py`).

Nothing of the answer reaches the client, and nothing is charged, before the reservation commits. A refused
turn gets the refusal alone, and its account reserves first for a while. The reservation is held up here by
the test itself: it locks the account's balance row, on which every reservation waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from gateway.gateway_support import (
    HTTP,
    Accounts,
    Replica,
    TestAccount,
    current_period,
    turn_headers,
    turn_rows,
)
from switchboard.fakeapi import FakeAnthropic
from switchboard.gateway.head_start import HeadStarts

HAIKU = "claude-haiku-4-5-20251001"
# Long enough for the reservation to be held up meanwhile, short enough for the test.
HELD_SECONDS = 0.6


def ask(replica: Replica, account: TestAccount, text: str) -> Any:
    headers = {**turn_headers("claude-haiku-4.5"), "authorization": f"Bearer {account.token}"}
    body = {"model": HAIKU, "max_tokens": 50, "messages": [{"role": "user", "content": text}]}
    return HTTP.post(replica.url + "/v1/messages", json=body, headers=headers)


def upstream_saw(upstream: FakeAnthropic, text: str) -> bool:
    return any(text in str(request.body) for request in upstream.received())


async def wait_until_upstream_sees(upstream: FakeAnthropic, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not upstream_saw(upstream, text):
        assert time.monotonic() < deadline, "the turn never reached the Anthropic API"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def balance_row_locked(database_url: str, account_id: str) -> AsyncIterator[psycopg.AsyncConnection]:
    """The account's balance row locked, so its reservations wait; released (committed) on leaving."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT 1 FROM account_periods WHERE account_id = %s AND period = %s FOR UPDATE",
            (account_id, current_period()),
        )
        assert await cursor.fetchone() is not None
        yield conn
        await conn.commit()


def question() -> str:
    return f"Question {uuid.uuid4().hex}. [[fake:words=5]]"


async def test_a_turn_goes_upstream_while_its_reservation_waits_and_nothing_passes_before_it(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("pro", used_credits=1)
    assert ask(replica, account, question()).status_code == 200  # this replica has reserved for it
    text = question()
    async with balance_row_locked(make_accounts.database_url, account.id):
        answer = asyncio.ensure_future(asyncio.to_thread(ask, replica, account, text))
        await wait_until_upstream_sees(upstream, text)
        await asyncio.sleep(HELD_SECONDS)  # Anthropic has answered: the gateway still holds it back
        assert not answer.done()
        assert len(await turn_rows(make_accounts.database_url, account.id)) == 1
    response = await answer
    assert response.status_code == 200
    assert response.json()["content"][0]["text"]
    rows = await turn_rows(make_accounts.database_url, account.id)
    assert [row["status"] for row in rows] == ["complete", "complete"]
    assert rows[1]["credits_h"] > 0


async def test_a_refused_head_start_gets_the_refusal_alone_then_its_account_reserves_first(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("free", used_credits=1)
    assert ask(replica, account, question()).status_code == 200
    text = question()
    async with balance_row_locked(make_accounts.database_url, account.id) as conn:
        # The month runs out while the turn is on its way.
        await conn.execute(
            "UPDATE account_periods SET used_h = 5000 WHERE account_id = %s AND period = %s",
            (account.id, current_period()),
        )
        refused = asyncio.ensure_future(asyncio.to_thread(ask, replica, account, text))
        await wait_until_upstream_sees(upstream, text)  # a head start: it went upstream
    response = await refused
    assert response.status_code == 402
    assert response.json()["error"]["type"] == "credits_exhausted"
    assert "content" not in response.json()
    assert [row["status"] for row in await turn_rows(make_accounts.database_url, account.id)] == ["complete"]

    # Refused here a moment ago: its next turn is reserved (and refused) before anything is sent.
    again = question()
    response = ask(replica, account, again)
    assert response.status_code == 402
    assert not upstream_saw(upstream, again)


async def reserves_first(replica: Replica, account: TestAccount, upstream: FakeAnthropic, url: str) -> None:
    text = question()
    async with balance_row_locked(url, account.id):
        answer = asyncio.ensure_future(asyncio.to_thread(ask, replica, account, text))
        await asyncio.sleep(HELD_SECONDS)
        assert not upstream_saw(upstream, text)
        assert not answer.done()
    assert (await answer).status_code == 200
    assert upstream_saw(upstream, text)


async def test_an_account_this_replica_has_not_reserved_for_reserves_first(
    make_accounts: Accounts, replicas: list[Replica], upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("pro", used_credits=1)
    assert ask(replicas[1], account, question()).status_code == 200  # known to the other replica only
    await reserves_first(replicas[0], account, upstream, make_accounts.database_url)


async def test_head_start_off_reserves_every_turn_first(
    make_accounts: Accounts,
    gateway_env: dict[str, str],
    upstream: FakeAnthropic,
    tmp_path: Any,
) -> None:
    replica = Replica.start({**gateway_env, "SWITCHBOARD_GATEWAY_HEAD_START": "false"}, tmp_path / "r.log")
    try:
        account = await make_accounts.create("pro", used_credits=1)
        assert ask(replica, account, question()).status_code == 200
        await reserves_first(replica, account, upstream, make_accounts.database_url)
    finally:
        replica.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_head_starts_go_to_accounts_reserved_before_and_not_refused_lately(clock: Clock) -> None:
    starts = HeadStarts(cooldown=60, clock=clock)
    assert not starts.allows("a")
    starts.reserved("a")
    assert starts.allows("a") and not starts.allows("b")
    starts.refused("a")
    starts.reserved("a")  # a turn that fits right after a refusal does not end the cooldown
    assert not starts.allows("a")
    clock.now += 59.9
    assert not starts.allows("a")
    clock.now += 0.2
    assert starts.allows("a")


def test_a_ledger_outage_stops_every_head_start_for_the_cooldown(clock: Clock) -> None:
    starts = HeadStarts(cooldown=60, clock=clock)
    starts.reserved("a")
    starts.ledger_unavailable()
    assert not starts.allows("a")
    clock.now += 60
    assert starts.allows("a")


def test_head_starts_forget_the_least_recently_reserved_accounts_first(clock: Clock) -> None:
    starts = HeadStarts(capacity=2, clock=clock)
    for account in ("a", "b"):
        starts.reserved(account)
    starts.reserved("a")  # now the most recent
    starts.reserved("c")
    assert starts.allows("a") and starts.allows("c") and not starts.allows("b")


def test_head_starts_off_allow_none(clock: Clock) -> None:
    starts = HeadStarts(enabled=False, clock=clock)
    starts.reserved("a")
    assert not starts.allows("a")
