"""How a streamed answer leaves the gateway: its head goes with the first events, never ahead of them, and the
events of one upstream read go on in one write (one HTTP chunk), however many chunks upstream used. And what
an upstream event that never ends does: it is cut off at its limit, not buffered for ever.

The upstream here is a scripted server in the test, so the test decides what arrives in each read."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.gateway_support import (
    Accounts,
    Replica,
    chunked,
    expected_credits,
    read_request,
    send_streamed_turn,
    wait_settled,
)
from switchboard.catalog import get_model
from switchboard.gateway.sse import MAX_EVENT_BYTES

HAIKU = "claude-haiku-4-5-20251001"
DELTAS = ["One", " two", " three"]


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


MESSAGE_START = _event(
    "message_start",
    {
        "type": "message_start",
        "message": {
            "id": "msg_scripted",
            "type": "message",
            "role": "assistant",
            "model": HAIKU,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 12, "output_tokens": 1},
        },
    },
)
# What the test holds to one upstream read: the block's start and its three deltas, an HTTP chunk each.
ONE_READ = [
    _event(
        "content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}
    ),
    *(
        _event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        )
        for text in DELTAS
    ),
]
ENDING = [
    _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
    _event(
        "message_delta",
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}},
    ),
    _event("message_stop", {"type": "message_stop"}),
]


class OwnUpstream:
    """A test's own upstream on 127.0.0.1: `start` gives its base URL; `_answer` serves each connection."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class ScriptedUpstream(OwnUpstream):
    """Answers one streamed turn: its head alone, then `message_start` once `first_event` is set, then the
    block's start and deltas in one write once `rest` is set, then the ending."""

    def __init__(self) -> None:
        super().__init__()
        self.head_sent = asyncio.Event()
        self.first_event = asyncio.Event()
        self.rest = asyncio.Event()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        head, start, *events, end = chunked(MESSAGE_START, *ONE_READ, *ENDING)
        one_read, ending = events[: len(ONE_READ)], events[len(ONE_READ) :]
        writer.write(head)
        await writer.drain()
        self.head_sent.set()
        await self.first_event.wait()
        writer.write(start)
        await self.rest.wait()
        writer.write(b"".join(one_read))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"".join(ending) + end)
        await writer.drain()
        await reader.read()  # until the gateway lets the connection go
        writer.close()


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The HTTP chunks of a chunked response body, each as the gateway wrote it."""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        if size == 0:
            return
        payload = await reader.readexactly(size)
        await reader.readexactly(2)
        yield payload


async def test_the_head_waits_for_the_first_event_and_one_upstream_read_is_one_write(
    make_accounts: Accounts, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    upstream = ScriptedUpstream()
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_UPSTREAM_BASE_URL": await upstream.start()}
    replica = await asyncio.to_thread(Replica.start, env, tmp_path / "scripted-upstream.log")
    account = await make_accounts.create("pro")
    reader, writer = await send_streamed_turn(replica.url, account.token)
    try:
        await asyncio.wait_for(upstream.head_sent.wait(), 10)
        # Upstream's head came without an event: the gateway says nothing yet (before, its head went at once).
        read_early = asyncio.ensure_future(reader.read(1))
        done, _ = await asyncio.wait({read_early}, timeout=0.5)
        assert not done, "the gateway sent its head before any event"
        upstream.first_event.set()
        assert await asyncio.wait_for(read_early, 10) == b"H"
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"TTP/1.1 200")
        chunks = _chunks(reader)
        assert await asyncio.wait_for(chunks.__anext__(), 10) == MESSAGE_START
        upstream.rest.set()
        assert await asyncio.wait_for(chunks.__anext__(), 10) == b"".join(ONE_READ), "one read, one write"
        ending = b"".join([chunk async for chunk in chunks])
        assert ending.startswith(ENDING[0]) and ending.endswith(ENDING[-1]) and b'"switchboard"' in ending
    finally:
        writer.close()
        replica.stop()
        await upstream.close()
    row = await wait_settled(make_accounts.database_url, account.id, timeout=5)
    assert row["status"] == "complete" and (row["input_tokens"], row["output_tokens"]) == (12, 9)
    usage = SimpleNamespace(
        input_tokens=12, output_tokens=9, cache_creation_input_tokens=0, cache_read_input_tokens=0
    )
    assert Decimal(row["credits_h"]) / 100 == expected_credits("claude-haiku-4.5", usage)


LONG_DELTA = _event(
    "content_block_delta",
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x" * 40}},
)


class EndlessEventUpstream(OwnUpstream):
    """Answers one streamed turn with `message_start`, a delta of 40 characters, then an event it never ends:
    its data goes on in 1 MiB chunks until the gateway closes the connection (`closed` is set then, and
    `sent` says how many bytes went out)."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = asyncio.Event()
        self.sent = 0

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        head, start, delta, _ = chunked(MESSAGE_START, LONG_DELTA)
        opened = b"event: content_block_delta\ndata: {"
        writer.write(head + start + delta + b"%x\r\n%s\r\n" % (len(opened), opened))
        piece = b"%x\r\n%s\r\n" % (1 << 20, b"x" * (1 << 20))
        try:
            while not reader.at_eof():
                writer.write(piece)
                self.sent += 1 << 20
                await writer.drain()
        except OSError:
            pass
        finally:
            self.closed.set()
            writer.close()


async def test_an_upstream_event_that_never_ends_is_cut_off_and_the_turn_charged_for_what_arrived(
    make_accounts: Accounts, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    upstream = EndlessEventUpstream()
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_UPSTREAM_BASE_URL": await upstream.start()}
    replica = await asyncio.to_thread(Replica.start, env, tmp_path / "endless-upstream.log")
    account = await make_accounts.create("pro")
    reader, writer = await send_streamed_turn(replica.url, account.token)
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")

        async def whole_answer() -> bytes:
            return b"".join([chunk async for chunk in _chunks(reader)])

        answer = await asyncio.wait_for(whole_answer(), 30)  # before the limit, it never ended
        await asyncio.wait_for(upstream.closed.wait(), 10)
    finally:
        writer.close()
        replica.stop()
        await upstream.close()
    # What the socket buffers held on the way aside, the gateway stopped reading at the limit.
    assert MAX_EVENT_BYTES <= upstream.sent <= MAX_EVENT_BYTES + (16 << 20)
    events = answer.split(b"\n\n")
    assert events[0] + b"\n\n" == MESSAGE_START and events[1] + b"\n\n" == LONG_DELTA
    assert events[2].startswith(b"event: error\n"), "the client is told the answer was cut off"
    error = json.loads(events[2].split(b"data: ", 1)[1])
    assert error["error"]["type"] == "api_error" and "cut off upstream" in error["error"]["message"]
    assert error["switchboard"]["status"] == "cut"
    row = await wait_settled(make_accounts.database_url, account.id, timeout=5)
    assert row["status"] == "cut"
    # message_start said 1 output token; the 40 characters that arrived count 12 (3.5 a token).
    assert (row["input_tokens"], row["output_tokens"]) == (12, 12)
    usage = SimpleNamespace(
        input_tokens=12, output_tokens=10, cache_creation_input_tokens=0, cache_read_input_tokens=0
    )
    assert Decimal(row["credits_h"]) / 100 == expected_credits("claude-haiku-4.5", usage) > 0


SONNET = "claude-sonnet-4-5-20250929"


class ThinkingUpstream(OwnUpstream):
    """Answers one streamed Sonnet turn: a thinking block whose summary is 14 characters, signed, ended
    `thinking_seconds` after the request came; then the answer's first word, "Hello", and nothing more
    until the gateway lets the connection go (the user pressed Stop)."""

    def __init__(self, thinking_seconds: float) -> None:
        super().__init__()
        self.thinking_seconds = thinking_seconds

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        start = MESSAGE_START.replace(HAIKU.encode(), SONNET.encode())
        thinking = [
            _event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                },
            ),
            _event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "thinking_delta", "thinking": "Short thought."},
                },
            ),
            _event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "signature_delta", "signature": "c2ln" * 50},
                },
            ),
        ]
        answer = [
            _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
            ),
            _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hello"}},
            ),
        ]
        head, *first = chunked(start, *thinking)[:-1]
        writer.write(head + b"".join(first))
        await writer.drain()
        await asyncio.sleep(self.thinking_seconds)
        writer.write(b"".join(chunked(*answer)[1:-1]))
        await writer.drain()
        await reader.read()  # until the gateway lets the connection go
        writer.close()


@pytest.mark.parametrize("thinking_seconds", [0.0, 1.0])
async def test_a_turn_stopped_at_the_answers_first_word_pays_for_its_thinking_time_not_its_budget(
    make_accounts: Accounts, gateway_env: dict[str, str], tmp_path: Path, thinking_seconds: float
) -> None:
    """Sonnet 4.5, `max_tokens` 20,000, a thinking budget of 16,000, Stop pressed right after "Hello": the
    cut turn was charged the whole budget (16,002 output tokens, 31.22 credits). Its thinking now counts
    what streamed, or the time it took at Sonnet's speed ceiling when that is more (Anthropic bills the
    thinking a summary stands for), never the budget it did not use."""
    upstream = ThinkingUpstream(thinking_seconds)
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_UPSTREAM_BASE_URL": await upstream.start()}
    replica = await asyncio.to_thread(Replica.start, env, tmp_path / "thinking-upstream.log")
    account = await make_accounts.create("pro")
    thinking = {"type": "enabled", "budget_tokens": 16_000}
    sent = time.monotonic()
    reader, writer = await send_streamed_turn(
        replica.url,
        account.token,
        max_tokens=20_000,
        model="claude-sonnet-4.5",
        fields={"thinking": thinking},
    )
    try:
        await asyncio.wait_for(reader.readuntil(b"Hello"), 10)
        took = time.monotonic() - sent
        writer.transport.abort()  # Stop
        row = await wait_settled(make_accounts.database_url, account.id, timeout=5)
    finally:
        writer.close()
        replica.stop()
        await upstream.close()
    assert row["status"] == "cut" and row["input_tokens"] == 12
    speed = get_model("claude-sonnet-4.5").output_tokens_per_second_ceiling
    streamed = 6  # "Short thought." and "Hello": 19 characters, 3.5 a token
    timed = math.ceil(thinking_seconds * speed) + 2  # the thinking at the ceiling, then "Hello"
    assert max(streamed, timed) <= row["output_tokens"] <= max(streamed, math.ceil(took * speed) + 2)
    if not thinking_seconds:
        assert row["output_tokens"] < 10, row  # the whole budget was 16,002
    usage = SimpleNamespace(
        input_tokens=12,
        output_tokens=row["output_tokens"],
        cache_creation_input_tokens=0,
        cache_read_input_tokens=0,
    )
    assert Decimal(row["credits_h"]) / 100 == expected_credits("claude-sonnet-4.5", usage)


class EventsUpstream(OwnUpstream):
    """Answers one streamed turn with `events`, an HTTP chunk each, then ends the response."""

    def __init__(self, *events: bytes) -> None:
        super().__init__()
        self.events = events

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"".join(chunked(*self.events)))
        await writer.drain()
        await reader.read()  # until the gateway lets the connection go
        writer.close()


def _message_start(**usage: int) -> bytes:
    start = json.loads(MESSAGE_START.split(b"data: ", 1)[1])
    start["message"]["usage"] = usage
    return _event("message_start", start)


def _message_delta(**usage: int) -> bytes:
    return _event(
        "message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": usage}
    )


async def _answered(
    gateway_env: dict[str, str],
    tmp_path: Path,
    account: Any,
    *events: bytes,
    until: bytes = b"event: message_stop",
) -> bytes:
    """The answer the gateway relays (raw, up to `until`) when upstream streams `events`."""
    upstream = EventsUpstream(*events)
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_UPSTREAM_BASE_URL": await upstream.start()}
    replica = await asyncio.to_thread(Replica.start, env, tmp_path / "events-upstream.log")
    reader, writer = await send_streamed_turn(replica.url, account.token)
    try:
        return await asyncio.wait_for(reader.readuntil(until), 10)
    finally:
        writer.close()
        replica.stop()
        await upstream.close()


async def test_a_message_delta_reporting_no_input_does_not_wipe_out_the_billed_prompt(
    make_accounts: Accounts, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    """`message_start` reports 50,000 tokens of input, `message_delta` repeats the field as 0: the turn was
    charged as if it had no input (0.01 credits on Haiku). The prompt was billed: it is charged."""
    account = await make_accounts.create("pro")
    await _answered(
        gateway_env,
        tmp_path,
        account,
        _message_start(input_tokens=50_000, output_tokens=1, cache_creation_input_tokens=0),
        *ONE_READ,
        ENDING[0],
        _message_delta(input_tokens=0, output_tokens=10),
        ENDING[-1],
    )
    row = await wait_settled(make_accounts.database_url, account.id, timeout=5)
    assert row["status"] == "complete" and (row["input_tokens"], row["output_tokens"]) == (50_000, 10)
    usage = SimpleNamespace(
        input_tokens=50_000, output_tokens=10, cache_creation_input_tokens=0, cache_read_input_tokens=0
    )
    assert Decimal(row["credits_h"]) / 100 == expected_credits("claude-haiku-4.5", usage)


def _written(answer: bytes) -> list[bytes]:
    """The HTTP chunks of a raw chunked answer, each as the gateway wrote it."""
    body, chunks = answer.split(b"\r\n\r\n", 1)[1], []
    while body:
        size, body = body.split(b"\r\n", 1)
        chunks.append(body[: int(size, 16)])
        body = body[int(size, 16) + 2 :]
    return [chunk for chunk in chunks if chunk]


def _sent_events(answer: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The events of a raw chunked answer, in order: each one's name and data."""
    body = answer.split(b"\r\n\r\n", 1)[1]
    found = re.findall(rb"event: ([a-z_]+)\r?\n(?:[0-9a-f]+\r\n)?data: (\{.*?\})\n\n", body, re.S)
    return [(name.decode(), json.loads(data)) for name, data in found]


async def test_a_turn_is_charged_the_usage_of_its_last_message_delta(
    make_accounts: Accounts, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    """Each `message_delta` reports the turn's counts so far: the settlement (at `message_stop`) takes the
    last one's (it took the first's: 5 output tokens charged of 500). Both deltas reach the client only once
    that charge is committed, each carrying it, and then `message_stop`."""
    account = await make_accounts.create("pro")
    answer = await _answered(
        gateway_env,
        tmp_path,
        account,
        MESSAGE_START,
        *ONE_READ,
        ENDING[0],
        _message_delta(output_tokens=5),
        _message_delta(output_tokens=500),
        ENDING[-1],
        until=b"\r\n0\r\n\r\n",
    )
    row = await wait_settled(make_accounts.database_url, account.id, timeout=5)
    assert row["status"] == "complete" and (row["input_tokens"], row["output_tokens"]) == (12, 500)
    usage = SimpleNamespace(
        input_tokens=12, output_tokens=500, cache_creation_input_tokens=0, cache_read_input_tokens=0
    )
    assert Decimal(row["credits_h"]) / 100 == expected_credits("claude-haiku-4.5", usage)
    events = _sent_events(answer)
    assert [name for name, _ in events][-3:] == ["message_delta", "message_delta", "message_stop"]
    first, last = events[-3][1], events[-2][1]
    assert (first["usage"]["output_tokens"], last["usage"]["output_tokens"]) == (5, 500)
    for delta in (first, last):
        assert delta["switchboard"]["status"] == "complete"
        assert Decimal(str(delta["switchboard"]["credits"])) == Decimal(row["credits_h"]) / 100
    # The held events and message_stop go out in one write (one HTTP chunk), after the charge.
    [last_write] = [chunk for chunk in _written(answer) if b"event: message_stop" in chunk]
    assert last_write.count(b"event: message_delta") == 2 and last_write.startswith(b"event: message_delta")


async def test_a_stream_that_ends_after_its_message_delta_is_charged_it_and_told_so(
    make_accounts: Accounts, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    """No `message_stop`: the turn is settled at the stream's end with its last `message_delta`'s usage
    (its answer is whole); the client gets that delta, with the charge, then the `error` event that says
    the stream was cut (never a stream that just stops)."""
    account = await make_accounts.create("pro")
    answer = await _answered(
        gateway_env,
        tmp_path,
        account,
        MESSAGE_START,
        *ONE_READ,
        ENDING[0],
        _message_delta(output_tokens=5),
        _message_delta(output_tokens=40),
        until=b"\r\n0\r\n\r\n",
    )
    row = await wait_settled(make_accounts.database_url, account.id, timeout=5)
    assert row["status"] == "complete" and (row["input_tokens"], row["output_tokens"]) == (12, 40)
    events = _sent_events(answer)
    assert [name for name, _ in events][-3:] == ["message_delta", "message_delta", "error"]
    credits = Decimal(row["credits_h"]) / 100
    for _, data in events[-3:]:
        assert Decimal(str(data["switchboard"]["credits"])) == credits > 0


async def test_a_ping_while_the_ending_is_held_back_goes_out_at_once(
    make_accounts: Accounts, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    """Between `message_delta` and `message_stop` the relay holds the ending back until its charge commits;
    a `ping` meanwhile is a keep-alive, not part of the ending: it goes out on its own, before it."""
    account = await make_accounts.create("pro")
    ping = _event("ping", {"type": "ping"})
    answer = await _answered(
        gateway_env, tmp_path, account, MESSAGE_START, *ONE_READ, *ENDING[:2], ping, ENDING[-1]
    )
    written = _written(answer)
    [ending] = [i for i, chunk in enumerate(written) if b"event: message_stop" in chunk]
    [keep_alive] = [i for i, chunk in enumerate(written) if b"event: ping" in chunk]
    assert keep_alive < ending and written[keep_alive].startswith(b"event: ping")
    assert written[ending].startswith(b"event: message_delta") and b"event: ping" not in written[ending]
