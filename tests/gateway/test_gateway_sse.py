"""The relay's SSE splitting: events come out whole, as they came, however the upstream bytes are cut."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from switchboard.gateway.sse import MAX_EVENT_BYTES, Event, OversizedEvent, event_batches

STREAM = (
    b'event: message_start\ndata: {"type":"message_start"}\n\n'
    b": a comment\n\n"
    b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"h\xc3\xa9"}}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _events(data: bytes, size: int) -> list[list[Event]]:
    return [batch async for batch in event_batches(_chunks(data, size))]


async def test_events_pass_on_byte_for_byte_however_the_stream_is_cut() -> None:
    whole = await _events(STREAM, len(STREAM))
    assert len(whole) == 1, "one upstream read, one batch (one write to the client)"
    names = [event.name for event in whole[0]]
    assert names == ["message_start", "content_block_delta", "ping", "message_stop"]
    expected = b"".join(event.encode() for event in whole[0])
    assert expected == STREAM.replace(b": a comment\n\n", b"")
    assert whole[0][1].json()["delta"]["text"] == "hé"
    for size in (1, 2, 7, 50):
        batches = await _events(STREAM, size)
        assert all(batches), "no empty batch is yielded"
        events = [event for batch in batches for event in batch]
        assert [event.name for event in events] == names
        assert b"".join(event.encode() for event in events) == expected


async def test_crlf_line_ends_are_normalised_and_a_missing_event_line_is_added() -> None:
    crlf = b'event: ping\r\ndata: {"type":"ping"}\r\n\r\ndata: {"type":"x"}\r\n\r\n'
    for size in (1, 5, 12, 13, len(crlf)):  # 12 and 13 cut a CR from its LF
        events = [event for batch in await _events(crlf, size) for event in batch]
        assert [event.encode() for event in events] == [
            b'event: ping\ndata: {"type":"ping"}\n\n',
            b'event: message\ndata: {"type":"x"}\n\n',
        ]


async def test_an_unfinished_event_is_not_yielded() -> None:
    assert await _events(b'event: ping\ndata: {"type":"ping"}\n', 4) == []


def test_unread_deltas_are_metered_like_read_ones_when_a_turn_is_cut() -> None:
    from switchboard.gateway.metering import StreamMeter

    start = {"message": {"usage": {"input_tokens": 12, "output_tokens": 1}}}
    deltas = [{"delta": {"type": "text_delta", "text": "x" * 40}}, {"delta": {"partial_json": "y" * 20}}]
    read, unread = StreamMeter(), StreamMeter()
    for meter in (read, unread):
        meter.observe("message_start", start)
    for delta in deltas:
        read.observe("content_block_delta", delta)
        unread.delta(json.dumps(delta))
    unread.delta("{not json")  # passed on as it came, counted as nothing
    assert unread.output_seen
    assert unread.usage() == read.usage()
    assert unread.usage().output_tokens == 15  # 60 characters, four a token
    unread.observe("message_delta", {"usage": {"output_tokens": 7}})
    assert unread.usage().output_tokens == 7  # exact once message_delta reports it


def test_a_cut_turns_text_that_is_not_ascii_counts_a_token_a_character() -> None:
    from switchboard.gateway.metering import StreamMeter

    meter = StreamMeter()
    text = "日本語のテキスト" + "x" * 8
    meter.observe("content_block_delta", {"delta": {"type": "text_delta", "text": text}})
    assert meter.usage().output_tokens == 8 + 2  # eight wide characters, then eight ASCII at four a token


def test_a_thinking_block_that_ended_before_the_cut_counts_at_least_its_budget() -> None:
    """Claude 4 models stream a summary of their thinking and bill all of it: once the block has ended,
    its streamed length is no measure, and the budget the client asked for is charged instead."""
    from switchboard.gateway.metering import StreamMeter

    thought = {"delta": {"type": "thinking_delta", "thinking": "t" * 400}}  # 100 tokens streamed
    signed = {"delta": {"type": "signature_delta", "signature": "sig"}}
    answer = {"delta": {"type": "text_delta", "text": "a" * 40}}  # 10 tokens

    thinking = StreamMeter(thinking_budget=2000)
    thinking.observe("content_block_delta", thought)
    assert thinking.usage().output_tokens == 100  # still thinking: what streamed so far
    thinking.delta(json.dumps(signed))
    assert thinking.usage().output_tokens == 2000
    thinking.delta(json.dumps(answer))
    assert thinking.usage().output_tokens == 2010

    unsigned = StreamMeter(thinking_budget=2000)  # no signature seen, but the answer began after thinking
    for delta in (thought, answer):
        unsigned.observe("content_block_delta", delta)
    assert unsigned.usage().output_tokens == 2010

    long_summary = StreamMeter(thinking_budget=50)  # a streamed count above the budget stands
    for delta in (thought, signed, answer):
        long_summary.observe("content_block_delta", delta)
    assert long_summary.usage().output_tokens == 110

    no_thinking = StreamMeter(thinking_budget=2000)  # asked for, never came: nothing to charge it for
    no_thinking.observe("content_block_delta", answer)
    assert no_thinking.usage().output_tokens == 10


def test_a_cut_turns_counted_output_never_passes_its_max_tokens() -> None:
    """A budget above `max_tokens` (the interleaved-thinking beta allows one) cannot make a cut turn's
    output more than Anthropic could bill: `max_tokens` bounds every count."""
    from switchboard.gateway.metering import StreamMeter

    meter = StreamMeter(thinking_budget=60_000, max_tokens=16_000)
    meter.observe("content_block_delta", {"delta": {"type": "thinking_delta", "thinking": "t" * 40}})
    meter.observe("content_block_delta", {"delta": {"type": "signature_delta", "signature": "s"}})
    meter.observe("content_block_delta", {"delta": {"type": "text_delta", "text": "Hi"}})
    assert meter.usage().output_tokens == 16_000
    meter.observe("message_delta", {"usage": {"output_tokens": 16_000}})
    assert meter.usage().output_tokens == 16_000  # what Anthropic reports stands


def test_a_redacted_thinking_block_ends_thinking_for_the_budget_rule() -> None:
    """Redacted thinking comes whole in its `content_block_start`, with no deltas to count."""
    from switchboard.gateway.metering import StreamMeter

    meter = StreamMeter(thinking_budget=2000, max_tokens=4000)
    meter.thinking_arrived_whole()
    meter.observe("content_block_delta", {"delta": {"type": "text_delta", "text": "a" * 40}})
    assert meter.usage().output_tokens == 2010


async def test_every_shape_of_event_reads_as_the_line_by_line_rules_say() -> None:
    """Anthropic's two-line events take a shortcut; the rest (comments, ids, several data lines, no space
    after the colon) are read line by line. Both give what the SSE rules give."""
    cases = {
        b'event: ping\ndata: {"a":1}': ("ping", '{"a":1}'),
        b'event:ping\ndata:{"a":1}': ("ping", '{"a":1}'),
        b"event:  two spaces\ndata: x": (" two spaces", "x"),
        b"event: e\ndata: one\ndata: two": ("e", "one\ntwo"),
        b"event: e\nid: 7\ndata: x": ("e", "x"),
        b": comment\nevent: e\ndata: x": ("e", "x"),
        b"event: e\ndata: caf\xc3\xa9 \xff": ("e", "café \ufffd"),
        b"data: alone": ("message", "alone"),
    }
    for block, (name, data) in cases.items():
        [batch] = await _events(block + b"\n\n", len(block) + 2)
        assert [(event.name, event.data) for event in batch] == [(name, data)], block
    assert await _events(b"event: no data\n\n", 100) == []


async def test_an_event_that_never_ends_is_refused_past_its_limit_after_the_events_before_it() -> None:
    """An upstream that opens an event and never ends it would be buffered without end: past
    MAX_EVENT_BYTES it is an OversizedEvent, once the events completed before it have come out."""
    before = b'event: content_block_delta\ndata: {"delta":{"text":"hi"}}\n\n'
    piece = 1 << 20
    read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal read
        yield before + b"event: content_block_delta\ndata: {" + b"x" * piece
        read += 1
        while read < 4 * MAX_EVENT_BYTES // piece:
            yield b"x" * piece
            read += 1

    batches: list[list[Event]] = []
    with pytest.raises(OversizedEvent, match="without ending"):
        async for batch in event_batches(endless()):
            batches.append(batch)
    assert [[event.raw for event in batch] for batch in batches] == [[before]]
    assert read * piece <= MAX_EVENT_BYTES + piece, "read no further than one piece past the limit"


async def test_an_event_just_under_the_limit_passes_whole_however_it_is_cut() -> None:
    data = "x" * (MAX_EVENT_BYTES - 100)
    block = f"event: content_block_start\r\ndata: {data}\r\n\r\n".encode()
    for size in (64 * 1024, 1 << 20, len(block)):
        [[event]] = await _events(block, size)
        assert event.data == data and event.raw == block.replace(b"\r\n", b"\n")
