"""Upstream faults and cut streams: the right error for the client and the right charge in the ledger."""

from __future__ import annotations

import asyncio
import json
import math
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anthropic
import httpx2
import psycopg
import pytest

from gateway.gateway_support import (
    HTTP,
    VENDOR_KEY,
    Accounts,
    Replica,
    access_lines,
    balance,
    expected_credits,
    sdk,
    turn_headers,
    turn_rows,
    wait_settled,
)
from gateway.signin.signin_support import settled_access_log
from switchboard.catalog import get_model
from switchboard.fakeapi import FakeAnthropic, Fault
from switchboard.gateway.metering import CUT_CHARS_PER_TOKEN
from switchboard.gateway.upstream import relay_error

HAIKU = "claude-haiku-4-5-20251001"


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def signed_turn_headers(token: str) -> dict[str, str]:
    """A Haiku turn's headers with the account's token, for a request sent without the SDK."""
    return {**turn_headers("claude-haiku-4.5"), "authorization": f"Bearer {token}"}


async def say_hi(replica: Replica, token: str, *, stream: bool) -> httpx2.Response:
    """A short Haiku turn over plain HTTP, streamed or not."""
    body = {"model": HAIKU, "max_tokens": 50, "stream": stream, "messages": user("hi")}
    url = replica.url + "/v1/messages"
    return await asyncio.to_thread(HTTP.post, url, json=body, headers=signed_turn_headers(token))


NOTHING_CHARGED = {"used_h": 0, "overage_h": 0, "reserved_h": 0}


@pytest.mark.parametrize("status", [529, 429, 500])
async def test_upstream_refusal_is_passed_on_costs_nothing_and_the_retry_is_answered(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic, status: int
) -> None:
    account = await make_accounts.create("pro")
    upstream.add_fault(Fault("status", status=status, retry_after=0))
    headers = turn_headers("claude-haiku-4.5")
    async with sdk(replica.url, account.token) as client:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await client.messages.create(
                model=HAIKU, max_tokens=100, messages=user("hi"), extra_headers=headers
            )
        assert caught.value.status_code == status
        assert caught.value.body["error"]["type"] != "api_error" or status == 500  # type: ignore[index]
        [row] = await turn_rows(make_accounts.database_url, account.id)
        assert row["status"] == "failed" and row["credits_h"] == 0
        assert await balance(make_accounts.database_url, account.id) == NOTHING_CHARGED
        # The same turn id again (what the SDK's own retry sends): answered, charged once.
        message = await client.messages.create(
            model=HAIKU, max_tokens=100, messages=user("hi"), extra_headers=headers
        )
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert row["status"] == "complete" and row["attempts"] == 2
    assert Decimal(row["credits_h"]) / 100 == expected_credits("claude-haiku-4.5", message.usage)


async def test_the_sdks_own_retry_after_an_overload_is_charged_once(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("pro")
    upstream.add_fault(Fault("status", status=529, count=2))
    async with sdk(replica.url, account.token, max_retries=3) as client:
        message = await client.messages.create(
            model=HAIKU, max_tokens=100, messages=user("hi"), extra_headers=turn_headers("claude-haiku-4.5")
        )
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert row["attempts"] == 3 and row["status"] == "complete"
    assert (await balance(make_accounts.database_url, account.id))["used_h"] == round(
        expected_credits("claude-haiku-4.5", message.usage) * 100
    )


async def stream_until_error(
    client: anthropic.AsyncAnthropic, prompt: str, headers: dict[str, str]
) -> tuple[Any, str, Any]:
    """Stream a turn that fails: (message_start usage, text received, the SDK's error)."""
    usage, text = None, ""
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with client.messages.stream(
            model=HAIKU, max_tokens=800, messages=user(prompt), extra_headers=headers
        ) as stream:
            async for event in stream:
                if event.type == "message_start":
                    usage = event.message.usage
                elif event.type == "text":
                    text += event.text
    return usage, text, caught.value


@pytest.mark.parametrize("kind", ["error_event", "drop"])
async def test_a_stream_cut_upstream_after_output_pays_for_the_tokens_that_arrived(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic, kind: str
) -> None:
    account = await make_accounts.create("pro")
    upstream.add_fault(Fault(kind, after_deltas=4))  # type: ignore[arg-type]
    async with sdk(replica.url, account.token) as client:
        usage, text, error = await stream_until_error(
            client, "Tell me about B-trees. [[fake:words=80]]", turn_headers("claude-haiku-4.5")
        )
    assert text and usage is not None
    assert error.body["type"] == "error"
    charge = error.body["switchboard"]
    assert charge["status"] == "cut"
    # Output counted from the deltas that arrived: 3.5 characters a token.
    usage.output_tokens = max(usage.output_tokens, math.ceil(len(text) / CUT_CHARS_PER_TOKEN))
    expected = expected_credits("claude-haiku-4.5", usage)
    assert Decimal(str(charge["credits"])) == expected > 0
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert row["status"] == "cut" and row["credits_h"] == round(expected * 100)
    assert (await balance(make_accounts.database_url, account.id))["reserved_h"] == 0


@pytest.mark.parametrize("kind", ["error_event", "drop"])
async def test_a_stream_that_fails_before_any_output_costs_nothing_and_its_retry_is_answered(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic, kind: str
) -> None:
    account = await make_accounts.create("pro")
    upstream.add_fault(Fault(kind, after_deltas=0))  # type: ignore[arg-type]
    headers = turn_headers("claude-haiku-4.5")
    async with sdk(replica.url, account.token) as client:
        _, text, error = await stream_until_error(client, "hello", headers)
        assert text == ""
        assert error.body["switchboard"]["status"] == "failed" and error.body["switchboard"]["credits"] == 0
        async with client.messages.stream(
            model=HAIKU, max_tokens=100, messages=user("hello"), extra_headers=headers
        ) as stream:
            message = await stream.get_final_message()
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert row["status"] == "complete" and row["attempts"] == 2
    assert Decimal(row["credits_h"]) / 100 == expected_credits("claude-haiku-4.5", message.usage)


async def test_a_client_that_disconnects_closes_upstream_at_once_and_pays_for_what_was_consumed(
    make_accounts: Accounts, replica: Replica
) -> None:
    account = await make_accounts.create("pro")
    # 200 words at 0.1 s a delta: about 20 s if nobody stops it.
    prompt = "Write an essay. [[fake:words=200 slow=0.1]]"
    text = ""
    async with sdk(replica.url, account.token) as client:
        async with client.messages.stream(
            model=HAIKU,
            max_tokens=2000,
            messages=user(prompt),
            extra_headers=turn_headers("claude-haiku-4.5"),
        ) as stream:
            async for event in stream:
                if event.type == "text":
                    text += event.text
                    if len(text) > 40:
                        break
        left_at = time.monotonic()
    row = await wait_settled(make_accounts.database_url, account.id, timeout=5)
    assert time.monotonic() - left_at < 3  # settled right away: the upstream stream was closed, not drained
    assert row["status"] == "cut" and row["reason"] == "the client disconnected"
    at_least = math.ceil(len(text) / CUT_CHARS_PER_TOKEN)
    assert at_least <= row["output_tokens"] < at_least + 10  # what reached the gateway, a delta or two more
    assert row["credits_h"] > 0
    assert (await balance(make_accounts.database_url, account.id))["used_h"] == row["credits_h"]


async def test_a_client_that_hangs_up_after_message_start_pays_for_the_prompt_and_its_cache_write(
    make_accounts: Accounts, replica: Replica
) -> None:
    """`message_start` means Anthropic took the prompt, billed it and wrote its cache. A hang-up there, before
    any output, must not be free: else every cache write could be had at the price of a cache read."""
    account = await make_accounts.create("pro")
    system = [{"type": "text", "text": "Rules. " * 3000, "cache_control": {"type": "ephemeral"}}]
    body = {
        "model": HAIKU,
        "max_tokens": 100,
        "stream": True,
        "system": system,
        "messages": user("Hi. [[fake:slow=3]]"),
    }
    headers = signed_turn_headers(account.token)
    started: dict[str, Any] = {}

    def hang_up_after_message_start() -> None:
        with HTTP.stream("POST", replica.url + "/v1/messages", json=body, headers=headers) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            for line in lines:
                if line == "event: message_start":
                    started.update(json.loads(next(lines).removeprefix("data: "))["message"]["usage"])
                    return  # closes the connection: no delta has come (the first is 3 s away)

    await asyncio.to_thread(hang_up_after_message_start)
    row = await wait_settled(make_accounts.database_url, account.id, timeout=5)
    assert started["cache_creation_input_tokens"] > 0, started
    assert row["status"] == "cut" and row["reason"] == "the client disconnected"
    assert row["input_tokens"] == started["input_tokens"]
    assert row["cache_creation_input_tokens"] == started["cache_creation_input_tokens"]
    usage = SimpleNamespace(**{**started, "output_tokens": row["output_tokens"]})
    assert Decimal(row["credits_h"]) / 100 == expected_credits("claude-haiku-4.5", usage) > 0
    assert (await balance(make_accounts.database_url, account.id))["used_h"] == row["credits_h"]
    # Settled, so the same turn id is not a free second try at the same cache write.
    again = await asyncio.to_thread(HTTP.post, replica.url + "/v1/messages", json=body, headers=headers)
    assert again.status_code == 409 and again.json()["error"]["type"] == "turn_already_settled"


async def test_a_client_that_hangs_up_once_the_answer_follows_its_thinking_pays_for_the_thinking_time(
    make_accounts: Accounts, replica: Replica
) -> None:
    """The summary that streams is shorter than the thinking Anthropic bills: hanging up right after the
    first words of the answer pays for the time the thinking took at the model's speed ceiling, which is
    more than its summary's length says and less than the whole budget."""
    account = await make_accounts.create("pro")
    budget, pace = 3000, 0.1
    body = {
        "model": HAIKU,
        "max_tokens": 4000,
        "stream": True,
        "thinking": {"type": "enabled", "budget_tokens": budget},
        "messages": user(f"Think first. [[fake:words=200 slow={pace}]]"),
    }
    headers = signed_turn_headers(account.token)
    thought, thoughts, took = "", 0, 0.0
    speed = get_model("claude-haiku-4.5").output_tokens_per_second_ceiling

    def hang_up_at_the_first_words() -> None:
        nonlocal thought, thoughts, took
        sent = time.monotonic()
        with HTTP.stream("POST", replica.url + "/v1/messages", json=body, headers=headers) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and '"content_block_delta"' in line:
                    delta = json.loads(line.removeprefix("data: "))["delta"]
                    thought += delta.get("thinking", "")
                    thoughts += delta["type"] == "thinking_delta"
                    if delta["type"] == "text_delta":
                        took = time.monotonic() - sent
                        return

    await asyncio.to_thread(hang_up_at_the_first_words)
    row = await wait_settled(make_accounts.database_url, account.id, timeout=5)
    assert row["status"] == "cut"
    # The fake API waits `pace` before each delta, so the thinking took at least that per thinking delta
    # after the gateway sent the request, and less than the client waited for the first words.
    least, most = math.ceil(thoughts * pace * speed), math.ceil(took * speed)
    assert len(thought) / 4 < least < budget, (thought, least)  # the summary alone would have been less
    assert least <= row["output_tokens"] <= most + 20, (least, row["output_tokens"], most)


@pytest.mark.parametrize(
    ("status", "error_type", "retried"),
    [
        (429, "rate_limit_error", True),
        (408, "timeout_error", True),
        (504, "timeout_error", True),
        (529, "overloaded_error", True),
        (400, "invalid_request_error", False),
        (413, "request_too_large", False),
    ],
)
def test_an_upstream_error_without_anthropics_json_keeps_what_its_status_says(
    status: int, error_type: str, retried: bool
) -> None:
    """An edge proxy's HTML page or an empty body instead of Anthropic's error JSON: the status still says
    whether the SDK should retry (a passing rate limit must not become a final no) and which error it is."""
    for body in (b"", b"<html><body>Too Many Requests</body></html>", b"[" * 100_000):  # the last: too deep
        response = relay_error(status, body, {"retry-after": "2"}, lambda text: text)
        assert response.status_code == status
        assert response.headers["x-should-retry"] == ("true" if retried else "false")
        assert response.headers.get("retry-after") == "2"
        assert json.loads(response.body)["error"]["type"] == error_type


async def test_a_client_that_leaves_while_sending_its_body_is_a_quiet_499(
    make_accounts: Accounts, replica: Replica
) -> None:
    """An upload the user stopped is not the gateway's error: no traceback, no 500, nothing reserved."""
    account = await make_accounts.create("pro")
    host, port = replica.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    headers = {
        **signed_turn_headers(account.token),
        "content-type": "application/json",
        "content-length": "100000",
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write(f"POST /v1/messages HTTP/1.1\r\nhost: gateway\r\n{head}\r\n".encode() + b'{"model": ')
    await writer.drain()
    await asyncio.sleep(0.2)  # the replica has read the head and waits for the rest of the body
    writer.close()
    log = await asyncio.to_thread(settled_access_log, replica, lambda line: line.get("account") == account.id)
    [line] = [line for line in access_lines(log) if line.get("account") == account.id]
    assert line["status"] == 499 and line["path"] == "/v1/messages"
    assert "unhandled error" not in log and "ClientDisconnect" not in log
    assert await turn_rows(make_accounts.database_url, account.id) == []


async def test_an_unreachable_upstream_is_a_retryable_502_that_costs_nothing(
    make_accounts: Accounts, gateway_env: dict[str, str], tmp_path: Path, closed_port: int
) -> None:
    account = await make_accounts.create("pro")
    nowhere = f"http://127.0.0.1:{closed_port}"
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_UPSTREAM_BASE_URL": nowhere}
    replica = await asyncio.to_thread(Replica.start, env, tmp_path / "no-upstream.log")
    try:
        for stream in (False, True):
            response = await say_hi(replica, account.token, stream=stream)
            assert response.status_code == 502
            assert response.headers["x-should-retry"] == "true"
            assert response.json()["error"]["type"] == "api_error"
            assert VENDOR_KEY not in response.text
    finally:
        replica.stop()
    # The operator learns why from the log: once (not once per turn), naming where and what the OS said.
    warnings = [line for line in log_messages(replica.log()) if "could not be reached" in line]
    assert len(warnings) == 1, warnings
    assert f"the Anthropic API at {nowhere} could not be reached" in warnings[0]
    assert "ConnectionRefusedError" in warnings[0] and "Connection refused" in warnings[0], warnings
    assert VENDOR_KEY not in replica.log() and account.token not in replica.log()
    rows = await turn_rows(make_accounts.database_url, account.id)
    assert len(rows) == 2 and all(row["status"] == "failed" and row["credits_h"] == 0 for row in rows)
    assert await balance(make_accounts.database_url, account.id) == NOTHING_CHARGED


def log_messages(log_text: str) -> list[str]:
    return [
        entry["message"]
        for entry in (json.loads(line) for line in log_text.splitlines() if line.startswith("{"))
        if entry.get("event") == "log"
    ]


async def test_a_refused_vendor_key_is_a_502_not_retried_and_one_warning_without_the_key(
    make_accounts: Accounts, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    """A wrong `upstream_api_key`: every turn fails until the operator fixes it, so the client is told not
    to retry, and the log says what to check (once a minute, not once a turn), never the key itself."""
    account = await make_accounts.create("pro")
    wrong_key = "sk-ant-api03-WRONGKEYWRONGKEYWRONGKEY"
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_UPSTREAM_API_KEY": wrong_key}
    replica = await asyncio.to_thread(Replica.start, env, tmp_path / "wrong-key.log")
    try:
        for stream in (False, True, False):
            response = await say_hi(replica, account.token, stream=stream)
            assert response.status_code == 502
            assert response.headers["x-should-retry"] == "false"
            assert response.json() == {
                "type": "error",
                "error": {"type": "api_error", "message": "The gateway could not authenticate upstream."},
            }
    finally:
        replica.stop()
    warnings = [line for line in log_messages(replica.log()) if "refused the gateway's key" in line]
    assert len(warnings) == 1, warnings
    assert "(HTTP 401: invalid x-api-key)" in warnings[0] and "check upstream_api_key" in warnings[0]
    assert wrong_key not in replica.log() and account.token not in replica.log()
    rows = await turn_rows(make_accounts.database_url, account.id)
    assert len(rows) == 3 and all(row["status"] == "failed" and row["credits_h"] == 0 for row in rows)


async def test_the_vendors_own_billing_error_is_a_502_not_retried_never_the_users_402(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    """Anthropic's 402 (`billing_error`) is about the gateway's own account, not the user's credits: passed
    on, it would read as the gateway's 402 `credits_exhausted` (1002). Like a refused vendor key it is a 502
    the client does not retry, with one warning for the operator (not one per turn), and costs nothing."""
    account = await make_accounts.create("pro")
    upstream.add_fault(Fault("status", status=402, count=3, model=HAIKU))
    for stream in (False, True, False):
        response = await asyncio.to_thread(
            HTTP.post,
            replica.url + "/v1/messages",
            json={"model": HAIKU, "max_tokens": 50, "stream": stream, "messages": user("hi")},
            headers={**turn_headers("claude-haiku-4.5"), "authorization": f"Bearer {account.token}"},
        )
        assert response.status_code == 502, response.text
        assert response.headers["x-should-retry"] == "false"
        assert response.json() == {
            "type": "error",
            "error": {
                "type": "api_error",
                "message": "The gateway's upstream account has a billing problem.",
            },
        }
    log = await asyncio.to_thread(wait_for_log, replica, "refused the gateway's account for billing")
    warnings = [line for line in log_messages(log) if "refused the gateway's account for billing" in line]
    assert len(warnings) == 1, warnings
    assert "(HTTP 402: Your credit balance is too low" in warnings[0], warnings
    assert "check the vendor account's billing" in warnings[0]
    assert VENDOR_KEY not in log and account.token not in log
    rows = await turn_rows(make_accounts.database_url, account.id)
    assert len(rows) == 3 and all(row["status"] == "failed" and row["credits_h"] == 0 for row in rows)
    assert await balance(make_accounts.database_url, account.id) == {
        "used_h": 0,
        "overage_h": 0,
        "reserved_h": 0,
    }


def wait_for_log(replica: Replica, text: str, timeout: float = 10) -> str:
    """The replica's log once `text` is in it (a line is written just after the answer)."""
    deadline = time.monotonic() + timeout
    while text not in (log := replica.log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return log


async def test_a_stream_whose_reservation_postgresql_lost_is_charged_exactly_at_its_end(
    make_accounts: Accounts, replica: Replica
) -> None:
    """A new turn's reservation commits without waiting for the disk (migration 0007), so a crash of
    PostgreSQL can lose it while the answer streams. The answer goes on and its settlement charges it."""
    account = await make_accounts.create("pro")
    async with (
        sdk(replica.url, account.token) as client,
        client.messages.stream(
            model=HAIKU,
            max_tokens=500,
            messages=user("Tell me more. [[fake:words=40 slow=0.05]]"),
            extra_headers=turn_headers("claude-haiku-4.5"),
        ) as stream,
    ):
        async for event in stream:
            if event.type == "text":  # reserved, and streaming: now PostgreSQL "loses" the reservation
                [row] = await turn_rows(make_accounts.database_url, account.id)
                async with (
                    await psycopg.AsyncConnection.connect(
                        make_accounts.database_url, autocommit=True
                    ) as conn,
                    conn.transaction(),
                ):
                    await conn.execute(
                        "DELETE FROM turns WHERE account_id = %s AND turn_id = %s",
                        (account.id, row["turn_id"]),
                    )
                    await conn.execute(
                        "UPDATE account_periods SET reserved_h = reserved_h - %s WHERE account_id = %s",
                        (row["reserved_h"], account.id),
                    )
                break
        message = await stream.get_final_message()
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert row["status"] == "complete" and row["reserved_h"] == 0
    assert Decimal(row["credits_h"]) / 100 == expected_credits("claude-haiku-4.5", message.usage)
    assert await balance(make_accounts.database_url, account.id) == {
        "used_h": row["credits_h"],
        "overage_h": 0,
        "reserved_h": 0,
    }
