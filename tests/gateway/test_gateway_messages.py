"""`POST /v1/messages` through real replicas with the real `anthropic` SDK: answers and exact charges."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest

from gateway.gateway_support import (
    Accounts,
    CountedClient,
    Replica,
    access_lines,
    balance,
    expected_credits,
    numbers_body,
    parsed_turn,
    sdk,
    send_streamed_turn,
    turn_headers,
    turn_rows,
    wait_for_waiting_settlement,
)
from gateway.signin.signin_support import settled_access_log
from switchboard.fakeapi import FakeAnthropic
from switchboard.gateway.estimate import estimate_input_tokens, reservation_h

HAIKU = "claude-haiku-4-5-20251001"
SONNET_45 = "claude-sonnet-4-5-20250929"
OPUS = "claude-opus-4-5-20251101"


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def test_non_streaming_answer_is_charged_exactly(make_accounts: Accounts, replica: Replica) -> None:
    account = await make_accounts.create("pro")
    async with sdk(replica.url, account.token) as client:
        raw = await client.messages.with_raw_response.create(
            model=SONNET_45,
            max_tokens=300,
            messages=user("Explain what a mutex is."),
            extra_headers=turn_headers("claude-sonnet-4.5"),
        )
    message = await raw.parse()
    assert message.content[0].type == "text" and message.content[0].text
    charged = expected_credits("claude-sonnet-4.5", message.usage)
    assert charged > 0
    assert Decimal(raw.headers["switchboard-credits"]) == charged
    assert raw.headers["switchboard-routed-model"] == "claude-sonnet-4.5"
    assert (message.model_extra or {})["switchboard"]["credits"] == float(charged)
    assert await balance(make_accounts.database_url, account.id) == {
        "used_h": int(charged * 100),
        "overage_h": 0,
        "reserved_h": 0,
    }


async def test_streamed_answer_is_charged_exactly_before_message_stop(
    make_accounts: Accounts, replicas: list[Replica], upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("pro")
    async with (
        sdk(replicas[1].url, account.token) as client,
        client.messages.stream(
            model=HAIKU,
            max_tokens=500,
            messages=user("Write a haiku about queues. [[fake:words=60]]"),
            extra_headers=turn_headers("claude-haiku-4.5"),
        ) as stream,
    ):
        names: list[str] = []
        charge: dict[str, Any] | None = None
        async for event in stream:
            names.append(event.type)
            if event.type == "message_delta":
                charge = (event.model_extra or {})["switchboard"]
                # Committed before message_stop reaches the client.
                assert (await balance(make_accounts.database_url, account.id))["used_h"] == round(
                    charge["credits"] * 100
                )
        message = await stream.get_final_message()
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert names.count("text") > 5  # forwarded event by event
    charged = expected_credits("claude-haiku-4.5", message.usage)
    assert charge is not None and Decimal(str(charge["credits"])) == charged
    assert charge["status"] == "complete" and charge["routed_model"] == "claude-haiku-4.5"
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert row["status"] == "complete" and row["credits_h"] == int(charged * 100)
    assert row["output_tokens"] == message.usage.output_tokens
    assert (await balance(make_accounts.database_url, account.id))["reserved_h"] == 0


async def wait_reserved(database_url: str, account_id: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(row["status"] == "reserved" for row in await turn_rows(database_url, account_id)):
        assert asyncio.get_running_loop().time() < deadline, "the turn was never reserved"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("stream", [True, False])
async def test_nothing_that_ends_an_answer_leaves_the_gateway_until_its_charge_is_committed(
    make_accounts: Accounts, replica: Replica, stream: bool
) -> None:
    """The contract's "commit before completion", shown by holding the account's balance row: while the
    turn's settlement waits for it, the client has neither `message_delta` nor `message_stop` (streamed) and
    no answer at all (whole); once it is let go, they come, and the turn is charged."""
    account = await make_accounts.create("pro")
    reader, writer = await send_streamed_turn(
        replica.url, account.token, "Tell me. [[fake:words=40 slow=0.05]]", max_tokens=200, stream=stream
    )
    received = b""
    try:
        if stream:
            received = await asyncio.wait_for(reader.readuntil(b"content_block_delta"), 10)
        else:  # held any sooner, the row would keep the reservation waiting, not the settlement
            await wait_reserved(make_accounts.database_url, account.id)
        async with await psycopg.AsyncConnection.connect(make_accounts.database_url) as holder:
            await holder.execute(
                "SELECT * FROM account_periods WHERE account_id = %s FOR UPDATE", (account.id,)
            )
            await wait_for_waiting_settlement(make_accounts.database_url)
            with contextlib.suppress(TimeoutError):
                while True:  # whatever the gateway sends while the charge cannot be committed
                    received += await asyncio.wait_for(reader.read(65536), 0.5)
            assert b"message_delta" not in received and b"message_stop" not in received
            assert stream or received == b"", received[:200]
        # Let go (the transaction ends with the connection): the settlement commits, the answer ends.
        ending = b"message_stop" if stream else b'"stop_reason"'
        received += await asyncio.wait_for(reader.readuntil(ending), 10)
    finally:
        writer.close()
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert row["status"] == "complete" and row["credits_h"] > 0
    credits = row["credits_h"] / 100
    if stream:  # the charge rides on message_delta; a whole answer's in its header
        assert f'"credits":{credits}'.encode() in received.replace(b" ", b"")
    else:
        assert f"switchboard-credits: {credits}".encode() in received.lower()


async def test_auto_routes_on_the_gateway_ignores_the_body_model_and_bills_one_x(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("pro")
    async with sdk(replica.url, account.token) as client:
        raw = await client.messages.with_raw_response.create(
            model=OPUS,  # a dearer body: ignored under Auto
            max_tokens=200,
            messages=user("What does `ls -la` print?"),
            extra_headers=turn_headers("auto"),
        )
    message = await raw.parse()
    routed = raw.headers["switchboard-routed-model"]
    assert routed in ("claude-haiku-4.5", "claude-sonnet-4.5")
    assert raw.headers["switchboard-model"] == "auto"
    assert raw.headers["switchboard-route-reason"]
    sent = upstream.received()[-1].body
    assert sent["model"] in (HAIKU, SONNET_45) and sent["model"] != OPUS
    assert Decimal(raw.headers["switchboard-credits"]) == expected_credits("auto", message.usage)


@pytest.mark.parametrize("stream", [False, True])
async def test_repeated_turn_id_is_never_charged_twice(
    make_accounts: Accounts, replicas: list[Replica], stream: bool
) -> None:
    account = await make_accounts.create("pro")
    headers = turn_headers("claude-haiku-4.5")
    async with sdk(replicas[0].url, account.token) as client:
        first = await client.messages.create(
            model=HAIKU, max_tokens=100, messages=user("hello"), extra_headers=headers, stream=stream
        )
        if stream:
            async for _ in first:  # type: ignore[union-attr]
                pass
    used = (await balance(make_accounts.database_url, account.id))["used_h"]
    assert used > 0
    # The same turn id again, on the other replica: a documented refusal with the first charge, which the
    # SDK (allowed retries) does not retry.
    counted = CountedClient()
    async with sdk(replicas[1].url, account.token, max_retries=2, http_client=counted.http) as client:
        with pytest.raises(Exception) as caught:
            await client.messages.create(
                model=HAIKU, max_tokens=100, messages=user("hello"), extra_headers=headers
            )
    assert counted.sent == 1, "the SDK asked again for a final no"
    error = caught.value
    assert getattr(error, "status_code", None) == 409
    body: dict[str, Any] = getattr(error, "body", {})
    assert body["error"]["type"] == "turn_already_settled"
    assert body["error"]["credits"] * 100 == pytest.approx(used)
    assert (await balance(make_accounts.database_url, account.id))["used_h"] == used
    assert len(await turn_rows(make_accounts.database_url, account.id)) == 1


async def test_another_accounts_turn_id_is_a_different_turn(
    make_accounts: Accounts, replica: Replica
) -> None:
    first, second = await make_accounts.create("pro"), await make_accounts.create("pro")
    headers = turn_headers("claude-haiku-4.5")
    for account in (first, second):
        async with sdk(replica.url, account.token) as client:
            await client.messages.create(
                model=HAIKU, max_tokens=50, messages=user("hi"), extra_headers=headers
            )
    for account in (first, second):
        [row] = await turn_rows(make_accounts.database_url, account.id)
        assert row["status"] == "complete" and row["credits_h"] > 0


async def test_a_thinking_stream_is_forwarded_whole_and_charged_exactly(
    make_accounts: Accounts, replica: Replica
) -> None:
    account = await make_accounts.create("pro")
    async with (
        sdk(replica.url, account.token) as client,
        client.messages.stream(
            model=SONNET_45,
            max_tokens=3000,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=user("Prove that there are infinitely many primes."),
            extra_headers=turn_headers("claude-sonnet-4.5"),
        ) as stream,
    ):
        message = await stream.get_final_message()
    kinds = [block.type for block in message.content]
    assert kinds == ["thinking", "text"]
    assert message.content[0].signature  # type: ignore[union-attr]
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert Decimal(row["credits_h"]) / 100 == expected_credits("claude-sonnet-4.5", message.usage)


async def test_the_access_log_has_one_json_line_per_request_with_the_turns_outcome(
    make_accounts: Accounts, replica: Replica
) -> None:
    account = await make_accounts.create("pro")

    async def access_line(prompt: str, *, stream: bool) -> dict[str, Any]:
        headers = turn_headers("claude-haiku-4.5")
        async with sdk(replica.url, account.token) as client:
            answer = await client.messages.create(
                model=HAIKU, max_tokens=100, messages=user(prompt), extra_headers=headers, stream=stream
            )
            if stream:
                async for _ in answer:  # type: ignore[union-attr]
                    pass
        turn_id = headers["Switchboard-Turn-Id"]
        log = await asyncio.to_thread(
            settled_access_log, replica, lambda line: line.get("turn_id") == turn_id
        )
        [entry] = [line for line in access_lines(log) if line.get("turn_id") == turn_id]
        return entry

    entry = await access_line("hi", stream=True)
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert entry["method"] == "POST" and entry["path"] == "/v1/messages" and entry["status"] == 200
    assert entry["account"] == account.id and entry["model"] == entry["routed_model"] == "claude-haiku-4.5"
    assert entry["turn_status"] == "complete" and entry["credits"] == row["credits_h"] / 100
    assert entry["ms"] > 0 and entry["client"] == "127.0.0.1"
    # The way to the first token: the reservation, then Anthropic's head, both before the gateway's head.
    assert entry["reserve_ms"] > 0 and entry["upstream_ms"] > 0
    assert entry["reserve_ms"] + entry["upstream_ms"] <= entry["head_ms"] + 0.02 <= entry["ms"] + 0.075

    # The fake waits 0.15 s before each delta. Streamed, Anthropic's part ends with its head (sent at once),
    # and the gateway's head goes with the first events, long before the answer ends; not streamed, it is
    # the whole answer.
    slow = "hi [[fake:slow=0.15 words=3]]"
    streamed, whole = await access_line(slow, stream=True), await access_line(slow, stream=False)
    assert streamed["upstream_ms"] < 100 and streamed["head_ms"] < 100 and streamed["ms"] >= 300
    assert (
        whole["upstream_ms"] >= 300 and whole["head_ms"] >= whole["upstream_ms"] + whole["reserve_ms"] - 0.02
    )


async def test_the_reservation_holds_the_body_anthropic_is_sent_not_the_one_received(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    """An Auto body is re-encoded with the routed model, and re-encoding writes 1E15 back as
    1000000000000000.0: a body of such numbers goes upstream four times longer than it came."""
    account = await make_accounts.create("power")
    turn_id = f"numbers-{uuid.uuid4().hex}"
    headers = {**turn_headers("auto", turn_id), "authorization": f"Bearer {account.token}"}
    headers["content-type"] = "application/json"
    raw = numbers_body(note=turn_id)
    async with httpx2.AsyncClient(timeout=30) as http:
        answer = await http.post(replica.url + "/v1/messages", content=raw, headers=headers)
    assert answer.status_code == 200, answer.text
    [sent] = [record for record in upstream.received() if turn_id.encode() in record.raw_body]
    assert len(sent.raw_body) > 3 * len(raw)
    [row] = [
        row for row in await turn_rows(make_accounts.database_url, account.id) if row["turn_id"] == turn_id
    ]
    assert row["reserved_h"] == reservation_h("auto", estimate_input_tokens(sent.raw_body), 10)


async def test_a_turn_id_already_in_flight_gets_a_retryable_409(
    make_accounts: Accounts, replicas: list[Replica]
) -> None:
    account = await make_accounts.create("pro")
    headers = {**turn_headers("claude-haiku-4.5"), "authorization": f"Bearer {account.token}"}
    body = {"model": HAIKU, "max_tokens": 50, "messages": user("hi [[fake:stall=1]]")}
    async with httpx2.AsyncClient(timeout=30) as http:
        first = asyncio.ensure_future(http.post(replicas[0].url + "/v1/messages", json=body, headers=headers))
        await asyncio.sleep(0.4)
        second = await http.post(replicas[1].url + "/v1/messages", json=body, headers=headers)
        assert second.status_code == 409 and second.headers["x-should-retry"] == "true"
        assert second.json()["error"]["type"] == "turn_in_progress"
        assert (await first).status_code == 200
        third = await http.post(replicas[1].url + "/v1/messages", json=body, headers=headers)
    assert third.status_code == 409 and third.headers["x-should-retry"] == "false"
    assert third.json()["error"]["credits"] == (await first).json()["switchboard"]["credits"]


async def test_no_pooled_connection_is_held_across_an_upstream_call_or_a_stream(
    make_accounts: Accounts, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    """One pooled connection and a 1 s pool timeout: five turns that each spend over 2 s upstream (four
    streams and a whole answer) all get through, because each holds the connection only for a statement."""
    env = {
        **gateway_env,
        "SWITCHBOARD_GATEWAY_POOL_MIN_SIZE": "1",
        "SWITCHBOARD_GATEWAY_POOL_MAX_SIZE": "1",
        "SWITCHBOARD_GATEWAY_POOL_TIMEOUT_SECONDS": "1",
    }
    lone = Replica.start(env, tmp_path / "replica.log")
    try:
        accounts = [await make_accounts.create("pro") for _ in range(5)]
        slow = "Count slowly. [[fake:words=90 slow=0.08]]"  # 30 deltas, 80 ms apart

        async def streamed(token: str) -> int:
            async with (
                sdk(lone.url, token) as client,
                client.messages.stream(
                    model=HAIKU,
                    max_tokens=300,
                    messages=user(slow),
                    extra_headers=turn_headers("claude-haiku-4.5"),
                ) as stream,
            ):
                message = await stream.get_final_message()
            return message.usage.output_tokens

        async def whole(token: str) -> int:
            async with sdk(lone.url, token) as client:
                message = await client.messages.create(
                    model=HAIKU,
                    max_tokens=300,
                    messages=user(slow),
                    extra_headers=turn_headers("claude-haiku-4.5"),
                )
            return message.usage.output_tokens

        outputs = await asyncio.gather(
            *(streamed(account.token) for account in accounts[:4]), whole(accounts[4].token)
        )
        assert all(tokens > 0 for tokens in outputs)
        for account in accounts:
            assert (await balance(make_accounts.database_url, account.id))["reserved_h"] == 0
    finally:
        lone.stop()


def test_the_body_goes_upstream_as_sent_only_when_anthropic_cannot_read_it_otherwise() -> None:
    messages = '"messages":[{"role":"user","content":"hi"}]'

    def as_sent(raw: str) -> bytes | None:
        return parsed_turn(raw.encode()).body_as_sent(HAIKU)

    plain = f'{{"model":"{HAIKU}","max_tokens":10,{messages}}}'
    assert as_sent(plain) == plain.encode()
    # A repeated key: the gateway read the last model, another parser might read the first (Opus).
    assert as_sent(f'{{"model":"{OPUS}","model":"{HAIKU}","max_tokens":10,{messages}}}') is None
    # An escaped key that reads as "model" too, and a repeated stream flag.
    assert as_sent(f'{{"\\u006dodel":"{OPUS}","model":"{HAIKU}","max_tokens":10,{messages}}}') is None
    assert as_sent(f'{{"model":"{HAIKU}","stream":true,"stream":false,"max_tokens":10,{messages}}}') is None
    # The Switchboard id in the body: re-encoded with the Anthropic id.
    assert as_sent(f'{{"model":"claude-haiku-4.5","max_tokens":10,{messages}}}') is None
    # A repeated key deeper in (a message's role): re-encoded too, as the gateway read it.
    repeated_role = '"messages":[{"role":"user","role":"assistant","content":"hi"}]'
    assert as_sent(f'{{"model":"{HAIKU}","max_tokens":10,{repeated_role}}}') is None
    # An escape that repeats nothing reads the same in any parser: sent as is.
    escaped = (
        f'{{"\\u006dodel":"{HAIKU}","max_tokens":10,"messages":[{{"role":"user","content":"caf\\u00e9"}}]}}'
    )
    assert as_sent(escaped) == escaped.encode()


def test_a_body_nested_deeper_than_the_parser_goes_is_a_400() -> None:
    from switchboard.gateway.errors import GatewayRefusal

    deep = (
        b'{"model":"'
        + HAIKU.encode()
        + b'","max_tokens":10,"messages":'
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}"
    )
    with pytest.raises(GatewayRefusal) as refused:
        parsed_turn(deep)
    assert refused.value.status == 400
