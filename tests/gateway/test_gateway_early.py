"""Streamed turns sent to Anthropic while their reservation is being made (gateway/early.py).

Against a real replica: which turns go early, that the reservation still decides (a refused turn gets its
refusal and nothing of the answer, and costs nothing), and that a refusal stops early sends for the account.
The rules themselves are also tested alone, on a clock the test moves.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import anthropic
import psycopg
import pytest

from gateway.gateway_support import (
    HTTP,
    Accounts,
    Replica,
    access_lines,
    balance,
    current_period,
    sdk,
    turn_headers,
    turn_rows,
)
from gateway.signin.signin_support import settled_access_log
from switchboard.fakeapi import FakeAnthropic
from switchboard.gateway.early import FRESH_SECONDS, MAX_INPUT_TOKENS, PAUSE_SECONDS, EarlySends

HAIKU = "claude-haiku-4-5-20251001"
PRO_LIMIT_H = 1000 * 100


async def streamed_turn(replica: Replica, token: str, prompt: str) -> tuple[str, dict[str, Any]]:
    """A streamed Haiku turn through `replica`: its answer's text, and the replica's access line for it."""
    headers = turn_headers("claude-haiku-4.5")
    text = await _stream(replica, token, prompt, headers)
    return text, await _access_line(replica, headers["Switchboard-Turn-Id"])


async def refused_turn(replica: Replica, token: str, prompt: str) -> tuple[anthropic.APIStatusError, Any]:
    """A streamed turn the gateway refuses: the SDK's error, and the replica's access line for it."""
    headers = turn_headers("claude-haiku-4.5")
    with pytest.raises(anthropic.APIStatusError) as refused:
        await _stream(replica, token, prompt, headers)
    return refused.value, await _access_line(replica, headers["Switchboard-Turn-Id"])


async def _stream(replica: Replica, token: str, prompt: str, headers: dict[str, str]) -> str:
    messages: list[Any] = [{"role": "user", "content": prompt}]
    async with (
        sdk(replica.url, token) as client,
        client.messages.stream(
            model=HAIKU, max_tokens=50, messages=messages, extra_headers=headers
        ) as stream,
    ):
        return await stream.get_final_text()


async def _access_line(replica: Replica, turn_id: str) -> dict[str, Any]:
    log = await asyncio.to_thread(settled_access_log, replica, lambda line: line.get("turn_id") == turn_id)
    [entry] = [line for line in access_lines(log) if line.get("turn_id") == turn_id]
    return entry


async def use_up(database_url: str, account_id: str) -> None:
    """The account's credits used up elsewhere (as another replica's turns would), behind this one's back."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE account_periods SET used_h = %s WHERE account_id = %s AND period = %s",
            (PRO_LIMIT_H, account_id, current_period()),
        )


async def test_a_turn_goes_early_once_a_reservation_said_the_account_can_afford_it(
    make_accounts: Accounts, replica: Replica
) -> None:
    account = await make_accounts.create("pro")
    first_text, first = await streamed_turn(replica, account.token, "first")
    second_text, second = await streamed_turn(replica, account.token, "second")
    assert first_text and second_text
    assert "sent_early" not in first  # nothing was known of the account before its first reservation
    assert second["sent_early"] is True and second["status"] == 200
    rows = await turn_rows(make_accounts.database_url, account.id)
    assert [row["status"] for row in rows] == ["complete", "complete"]
    assert second["credits"] == rows[1]["credits_h"] / 100 > 0
    assert (await balance(make_accounts.database_url, account.id))["reserved_h"] == 0


async def test_a_turn_sent_early_that_its_reservation_refuses_gets_the_refusal_and_stops_early_sends(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("pro")
    await streamed_turn(replica, account.token, "while there were credits")
    charged = (await balance(make_accounts.database_url, account.id))["used_h"]
    await use_up(make_accounts.database_url, account.id)

    early = f"sent-early-{uuid.uuid4().hex}"
    refused, line = await refused_turn(replica, account.token, early)
    # The replica believed the account could afford it: sent early, then refused by the reservation, which
    # decides. The client gets the refusal and nothing of the answer, and the turn costs nothing.
    assert line["sent_early"] is True and line["status"] == 402
    assert refused.status_code == 402 and refused.type == "credits_exhausted"  # type: ignore[attr-defined]

    after = f"after-a-refusal-{uuid.uuid4().hex}"
    refused_again, line_again = await refused_turn(replica, account.token, after)
    # A refusal stops the account's early sends: this one was reserved first, and never reached Anthropic.
    assert "sent_early" not in line_again and refused_again.status_code == 402
    assert not any(after.encode() in record.raw_body for record in upstream.received())

    assert len(await turn_rows(make_accounts.database_url, account.id)) == 1
    assert charged > 0
    assert await balance(make_accounts.database_url, account.id) == {
        "used_h": PRO_LIMIT_H,
        "overage_h": 0,
        "reserved_h": 0,
    }


async def test_a_turn_not_streamed_is_never_sent_early(make_accounts: Accounts, replica: Replica) -> None:
    """Not streamed, Anthropic answers whole before the gateway reads a byte: a refused one would cost the
    vendor the whole answer."""
    account = await make_accounts.create("pro")
    await streamed_turn(replica, account.token, "first")
    headers = turn_headers("claude-haiku-4.5")
    async with sdk(replica.url, account.token) as client:
        await client.messages.create(
            model=HAIKU, max_tokens=20, messages=[{"role": "user", "content": "whole"}], extra_headers=headers
        )
    line = await _access_line(replica, headers["Switchboard-Turn-Id"])
    assert line["status"] == 200 and "sent_early" not in line


async def test_changing_the_overage_settings_makes_the_next_turn_wait_for_its_reservation(
    make_accounts: Accounts, replica: Replica
) -> None:
    """Turning overage off (or lowering its budget) can shrink what the account affords: the replica forgets
    what it knew of it, and its next turn is reserved first."""
    account = await make_accounts.create("pro", overage=True, budget_cents=500)
    await streamed_turn(replica, account.token, "first")
    auth = {"authorization": f"Bearer {account.token}"}
    response = await asyncio.to_thread(
        HTTP.post, replica.url + "/v1/switchboard/overage", json={"enabled": False}, headers=auth
    )
    assert response.status_code == 200
    _, after = await streamed_turn(replica, account.token, "after the change")
    assert "sent_early" not in after
    _, next_one = await streamed_turn(replica, account.token, "and the next")
    assert next_one["sent_early"] is True


async def test_a_turn_with_content_anthropic_fetches_is_never_sent_early(
    make_accounts: Accounts, replica: Replica
) -> None:
    """An image (or a document) by URL has a size nobody knows before Anthropic fetches it: a refused one
    could cost the vendor a whole context window of input, so it is reserved first, even when the account can
    afford it."""
    account = await make_accounts.create("pro")
    await streamed_turn(replica, account.token, "first")
    image = {"type": "image", "source": {"type": "url", "url": "https://example.test/chart.png"}}
    headers = turn_headers("claude-haiku-4.5")
    content: list[Any] = [image, {"type": "text", "text": "describe it"}]
    async with (
        sdk(replica.url, account.token) as client,
        client.messages.stream(
            model=HAIKU, max_tokens=50, messages=[{"role": "user", "content": content}], extra_headers=headers
        ) as stream,
    ):
        await stream.get_final_text()
    line = await _access_line(replica, headers["Switchboard-Turn-Id"])
    assert line["status"] == 200 and "sent_early" not in line


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def early_sends() -> tuple[EarlySends, Clock]:
    clock = Clock()
    return EarlySends(clock=clock), clock


def test_an_account_is_sent_early_only_within_what_its_last_reservation_left() -> None:
    early, _ = early_sends()
    assert not early.may_send("a", 100, 10, stream=True)  # nothing known
    early.reserved("a", 250)
    assert early.may_send("a", 100, 10, stream=True)
    assert early.may_send("a", 100, 10, stream=True)
    assert not early.may_send("a", 100, 10, stream=True)  # 300 in flight would pass the 250 left
    early.answered("a", 100)
    assert early.may_send("a", 100, 10, stream=True)
    assert not early.may_send("b", 1, 10, stream=True)  # another account: nothing known of it


def test_a_reservation_that_leaves_more_or_less_is_what_counts_next() -> None:
    early, _ = early_sends()
    early.reserved("a", 1000)
    assert early.may_send("a", 600, 10, stream=True)
    early.reserved("a", 500)  # that turn's hold (and others') now counted by the ledger itself
    early.answered("a", 600)
    assert early.may_send("a", 500, 10, stream=True)
    early.answered("a", 500)
    early.reserved("a", None)  # the ledger did not say (a schema before 0012): nothing known
    assert not early.may_send("a", 1, 10, stream=True)


def test_what_a_reservation_said_goes_stale() -> None:
    early, clock = early_sends()
    early.reserved("a", 1000)
    clock.now += FRESH_SECONDS + 1
    assert not early.may_send("a", 1, 10, stream=True)


def test_a_refusal_pauses_the_account_and_the_ledger_away_forgets_everyone() -> None:
    early, clock = early_sends()
    early.reserved("a", 1000)
    early.reserved("b", 1000)
    early.refused("a")
    early.reserved("a", 1000)  # a later reservation succeeds, but the pause holds
    assert not early.may_send("a", 1, 10, stream=True)
    clock.now += PAUSE_SECONDS + 1
    early.reserved("a", 1000)
    assert early.may_send("a", 1, 10, stream=True)
    early.forget_all()
    assert not early.may_send("a", 1, 10, stream=True) and not early.may_send("b", 1, 10, stream=True)


def test_only_streamed_turns_with_bounded_input_go_early_and_the_setting_turns_it_off() -> None:
    early, _ = early_sends()
    early.reserved("a", 10**9)
    assert not early.may_send("a", 1, 10, stream=False)
    assert not early.may_send("a", 1, MAX_INPUT_TOKENS + 1, stream=True)
    assert early.may_send("a", 1, MAX_INPUT_TOKENS, stream=True)
    assert not early.may_send("a", 1, None, stream=True)  # some of it not in the body: its size is unknown
    off = EarlySends(enabled=False)
    off.reserved("a", 10**9)
    assert not off.may_send("a", 1, 10, stream=True)
