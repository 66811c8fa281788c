"""The relay's SSE splitting: events come out whole, as they came, however the upstream bytes are cut."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

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
    assert unread.usage().output_tokens == 18  # 60 characters, 3.5 a token
    unread.observe("message_delta", {"usage": {"output_tokens": 7}})
    assert unread.usage().output_tokens == 7  # exact once message_delta reports it


def test_a_cut_turns_text_that_is_not_ascii_counts_a_token_a_character() -> None:
    from switchboard.gateway.metering import StreamMeter

    meter = StreamMeter()
    text = "日本語のテキスト" + "x" * 8
    meter.observe("content_block_delta", {"delta": {"type": "text_delta", "text": text}})
    assert meter.usage().output_tokens == 8 + 3  # eight wide characters, then eight ASCII at 3.5 a token


def test_a_message_delta_reporting_no_input_keeps_what_message_start_reported() -> None:
    """A `message_delta` may repeat the input fields as 0: the prompt `message_start` reported was billed all
    the same, so a 0 (or a missing field) keeps it. A later figure that is not 0 replaces it (context
    management can lower the input)."""
    from switchboard.gateway.metering import StreamMeter

    reported = {"input_tokens": 50_000, "cache_read_input_tokens": 7_000, "cache_creation_input_tokens": 900}
    meter = StreamMeter()
    meter.observe("message_start", {"message": {"usage": {**reported, "output_tokens": 1}}})
    zeros = {"input_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    meter.observe("message_delta", {"usage": {**zeros, "output_tokens": 10}})
    usage = meter.usage()
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (
        50_000,
        7_000,
        900,
    )
    assert usage.output_tokens == 10

    lowered = StreamMeter()
    lowered.observe("message_start", {"message": {"usage": {**reported, "output_tokens": 1}}})
    lowered.observe("message_delta", {"usage": {"input_tokens": 30_000, "output_tokens": 10}})
    usage = lowered.usage()
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (
        30_000,
        7_000,
        900,
    )

    none_before = StreamMeter()  # nothing to keep: a 0 is a 0
    none_before.observe("message_delta", {"usage": {"input_tokens": 0, "output_tokens": 3}})
    assert none_before.usage().input_tokens == 0 and none_before.usage().output_tokens == 3


class Clock:
    """A monotonic clock the test moves by hand (`StreamMeter` takes one: no test sleeps)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


SONNET_SPEED = 150  # claude-sonnet-4.5's output speed ceiling, tokens a second (the catalog's)
THOUGHT = {"delta": {"type": "thinking_delta", "thinking": "Short thought."}}  # 14 characters: 4 tokens
SIGNED = {"delta": {"type": "signature_delta", "signature": "c2ln" * 50}}
# A summary delta with no text: a sign the thinking goes on that adds nothing to the streamed count.
STILL_THINKING = json.dumps({"delta": {"type": "thinking_delta", "thinking": ""}})
HELLO = {"delta": {"type": "text_delta", "text": "Hello"}}  # 2 tokens
THINKING_START = '{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}'
TEXT_START = '{"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}'


def _thinking_meter(clock: Clock, budget: int = 16_000, max_tokens: int = 20_000) -> Any:
    from switchboard.catalog import get_model
    from switchboard.gateway.metering import StreamMeter

    assert get_model("claude-sonnet-4.5").output_tokens_per_second_ceiling == SONNET_SPEED
    meter = StreamMeter(budget, max_tokens, tokens_per_second=SONNET_SPEED, clock=clock)
    meter.observe("message_start", {"message": {"usage": {"input_tokens": 20, "output_tokens": 1}}})
    meter.block_start(THINKING_START)
    return meter


def _keep_thinking(meter: Any, clock: Clock, seconds: float, every: float = 1.0) -> None:
    """`seconds` of an open thinking block whose (empty) summary deltas come every `every` seconds."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + every)
        meter.delta(STILL_THINKING)


def _think_then_answer(meter: Any, clock: Clock, thinking_seconds: float) -> None:
    """The thinking block's delta, `thinking_seconds` of it streaming, its signature and stop, then the
    answer's first word: where the user pressed Stop."""
    meter.delta(json.dumps(THOUGHT))
    _keep_thinking(meter, clock, thinking_seconds)
    meter.delta(json.dumps(SIGNED))
    meter.block_stop()
    meter.block_start(TEXT_START)
    meter.delta(json.dumps(HELLO))


def test_a_quick_thinking_block_cut_at_the_answers_first_word_counts_what_streamed() -> None:
    """The reviewer's case: a 14-character thought and "Hello", cut. It counted the whole budget (16,002
    output tokens, 3,122 hundredths on Sonnet 4.5); in 10 ms the model can have written 2 tokens at most, so
    the streamed count stands."""
    clock = Clock()
    meter = _thinking_meter(clock)
    _think_then_answer(meter, clock, 0.01)
    clock.now += 5  # time after thinking ended (the answer, a slow client) does not count as thinking
    assert meter.usage().output_tokens == 6  # 19 characters at 3.5 a token, rounded up


def test_a_long_thinking_block_cut_after_it_ended_counts_its_time_at_the_models_speed_ceiling() -> None:
    """Claude 4 models stream a summary of their thinking and bill all of it: a minute of thinking whose
    summary is four tokens counts a minute of output at the speed ceiling, within the budget."""
    clock = Clock()
    meter = _thinking_meter(clock)
    _think_then_answer(meter, clock, 60)
    assert meter.usage().output_tokens == 60 * SONNET_SPEED + 2  # the thinking, then "Hello"
    clock.now += 600
    assert meter.usage().output_tokens == 60 * SONNET_SPEED + 2, "fixed once thinking ended"

    longer = Clock()  # past the budget: the budget is the most thinking can cost
    meter = _thinking_meter(longer)
    _think_then_answer(meter, longer, 200)
    assert meter.usage().output_tokens == 16_000 + 2

    few = Clock()  # a small budget bounds it, whatever the time
    meter = _thinking_meter(few, budget=1024)
    _think_then_answer(meter, few, 60)
    assert meter.usage().output_tokens == 1024 + 2


def test_thinking_still_under_way_at_the_cut_counts_until_the_cut() -> None:
    clock = Clock()
    meter = _thinking_meter(clock)
    meter.delta(json.dumps(THOUGHT))
    assert meter.usage().output_tokens == 4  # no time has passed: what streamed
    _keep_thinking(meter, clock, 10)
    assert meter.usage().output_tokens == 10 * SONNET_SPEED  # a heartbeat's checkpoint, mid-thought
    _keep_thinking(meter, clock, 9.5)
    clock.now += 0.5  # and up to the cut, since its last delta
    assert meter.usage().output_tokens == 20 * SONNET_SPEED  # it grows while the block is open
    _keep_thinking(meter, clock, 1000)
    assert meter.usage().output_tokens == 16_000
    meter.observe("message_delta", {"usage": {"output_tokens": 12_345}})
    assert meter.usage().output_tokens == 12_345  # what Anthropic reports stands


def test_thinking_is_timed_from_message_start_not_from_sending() -> None:
    from switchboard.gateway.metering import StreamMeter

    clock = Clock()
    meter = StreamMeter(16_000, 20_000, tokens_per_second=SONNET_SPEED, clock=clock)
    clock.now += 30  # before message_start (the prompt's processing): not counted
    meter.observe("message_start", {"message": {"usage": {"input_tokens": 20, "output_tokens": 1}}})
    meter.observe("content_block_start", {"content_block": {"type": "thinking", "thinking": ""}})
    clock.now += 2
    meter.observe("content_block_stop", {})
    assert meter.usage().output_tokens == 2 * SONNET_SPEED


def test_no_thinking_block_no_speed_ceiling_no_timed_count() -> None:
    """Only a thinking block is timed: a plain answer counts its text however long it took, and so does a
    meter that knows no speed ceiling."""
    from switchboard.gateway.metering import StreamMeter

    clock = Clock()
    answer = StreamMeter(16_000, 20_000, tokens_per_second=SONNET_SPEED, clock=clock)
    answer.block_start(TEXT_START)
    answer.delta(json.dumps(HELLO))
    clock.now += 60
    answer.block_stop()
    assert answer.usage().output_tokens == 2
    tool = StreamMeter(16_000, 20_000, tokens_per_second=SONNET_SPEED, clock=clock)
    tool.block_start('{"content_block":{"type":"tool_use","name":"thinking","input":{}}}')  # not a thought
    clock.now += 60
    assert tool.usage().output_tokens == 0

    unknown = StreamMeter(16_000, 20_000, clock=clock)
    unknown.block_start(THINKING_START)
    unknown.delta(json.dumps(THOUGHT))
    clock.now += 60
    assert unknown.usage().output_tokens == 4


def test_text_between_thoughts_is_not_timed_as_thinking() -> None:
    """Interleaved thinking: a thought, a long stretch of answer (or tool input), another thought, then the
    cut. Only the thoughts' time counts at the speed ceiling; the answer between them counts its text."""
    clock = Clock()
    meter = _thinking_meter(clock)
    _keep_thinking(meter, clock, 10)
    meter.block_stop()
    meter.block_start(TEXT_START)
    meter.delta(json.dumps(HELLO))
    clock.now += 100
    meter.block_stop()
    meter.block_start(THINKING_START)
    clock.now += 5
    assert meter.usage().output_tokens == 15 * SONNET_SPEED + 2  # still thinking: up to now, less the text
    meter.block_stop()
    clock.now += 50
    assert meter.usage().output_tokens == 15 * SONNET_SPEED + 2


def test_a_stall_between_blocks_is_not_timed_as_thinking() -> None:
    """Text for 5 s, the upstream silent for 25 s, then a second of thinking: only that second is thinking."""
    clock = Clock()
    meter = _thinking_meter(clock)
    meter.block_stop()
    meter.block_start(TEXT_START)
    meter.delta(json.dumps(HELLO))
    clock.now += 5
    meter.block_stop()
    clock.now += 25
    meter.block_start(THINKING_START)
    clock.now += 1
    meter.block_stop()
    assert meter.usage().output_tokens == 1 * SONNET_SPEED + 2


def test_a_stall_inside_an_open_thinking_block_counts_at_most_the_gap_bound() -> None:
    """The audit's case: Sonnet thinks for 2 s, then nothing arrives for a minute (the network, an upstream
    pause) and the client gives up. The minute counted 9,000 output tokens at the speed ceiling, never
    written; of a gap between thinking events only the first `MAX_THINKING_GAP_SECONDS` count now, up to the
    cut as up to the next event."""
    from switchboard.gateway.metering import MAX_THINKING_GAP_SECONDS

    assert 1 < MAX_THINKING_GAP_SECONDS <= 10
    bounded = round(MAX_THINKING_GAP_SECONDS * SONNET_SPEED)
    clock = Clock()
    meter = _thinking_meter(clock)
    _keep_thinking(meter, clock, 2)
    clock.now += 60  # still open at the cut, silent for a minute
    assert meter.usage().output_tokens == 2 * SONNET_SPEED + bounded
    # The stream comes back: a delta a second for 3 s (the first ends the silence, which counted the
    # bound; the 2 s after it count whole), then the block ends and the answer begins.
    _keep_thinking(meter, clock, 3)
    meter.block_stop()
    meter.block_start(TEXT_START)
    meter.delta(json.dumps(HELLO))
    clock.now += 60
    assert meter.usage().output_tokens == 4 * SONNET_SPEED + bounded + 2

    # Summary bursts a second or two apart (shorter than the bound) count whole.
    bursts = Clock()
    meter = _thinking_meter(bursts)
    _keep_thinking(meter, bursts, 30, every=MAX_THINKING_GAP_SECONDS)
    assert meter.usage().output_tokens == 30 * SONNET_SPEED

    # A silence before the block's stop (or before the next block's start, its stop unseen) is bounded too.
    silent = Clock()
    meter = _thinking_meter(silent)
    meter.delta(json.dumps(THOUGHT))
    silent.now += 60
    meter.block_start(TEXT_START)
    assert meter.usage().output_tokens == bounded


def test_a_thinking_block_that_streams_no_thinking_counts_its_whole_time_up_to_the_budget() -> None:
    """With `thinking.display: "omitted"` a thinking block streams no thinking, only its signature at the
    end, however long the model thinks; Anthropic bills all of it. The gap bound is for a block that streams
    its summary: applied to a silent one, a client that cut such turns would pay for 5 s of thinking."""
    from switchboard.gateway.metering import MAX_THINKING_GAP_SECONDS

    assert MAX_THINKING_GAP_SECONDS < 60
    clock = Clock()
    meter = _thinking_meter(clock)
    clock.now += 60  # still open at the cut
    assert meter.usage().output_tokens == 60 * SONNET_SPEED
    meter.delta(json.dumps(SIGNED))  # its signature is no thinking: still silent
    clock.now += 30
    meter.block_stop()
    meter.block_start(TEXT_START)
    meter.delta(json.dumps(HELLO))
    clock.now += 60
    assert meter.usage().output_tokens == 90 * SONNET_SPEED + 2
    clock.now += 1000
    longer = _thinking_meter(clock)  # past the budget: the budget bounds it as ever
    clock.now += 200
    assert longer.usage().output_tokens == 16_000

    # A redacted block comes whole after a silence: all of that silence is its thinking.
    redacted = Clock()
    meter = _thinking_meter(redacted)
    meter.block_stop()
    meter.block_start(TEXT_START)
    meter.delta(json.dumps(HELLO))
    meter.block_stop()
    redacted.now += 40
    meter.block_start('{"content_block":{"type":"redacted_thinking","data":"x"}}')
    meter.block_stop()
    assert meter.usage().output_tokens == 40 * SONNET_SPEED + 2

    # A summarized block: its time before the first thinking delta counts whole, the stalls after it bounded.
    summarized = Clock()
    meter = _thinking_meter(summarized)
    summarized.now += 20
    meter.delta(json.dumps(THOUGHT))
    summarized.now += 60
    assert meter.usage().output_tokens == 20 * SONNET_SPEED + round(MAX_THINKING_GAP_SECONDS * SONNET_SPEED)


def test_a_cut_turns_counted_output_never_passes_its_max_tokens() -> None:
    """A budget above `max_tokens` (the interleaved-thinking beta allows one) cannot make a cut turn's
    output more than Anthropic could bill: `max_tokens` bounds every count."""
    clock = Clock()
    meter = _thinking_meter(clock, budget=60_000, max_tokens=16_000)
    _think_then_answer(meter, clock, 200)  # 30,000 tokens of thinking at the ceiling
    assert meter.usage().output_tokens == 16_000
    meter.observe("message_delta", {"usage": {"output_tokens": 16_000}})
    assert meter.usage().output_tokens == 16_000  # what Anthropic reports stands


def test_a_redacted_thinking_block_is_timed_like_a_thinking_block() -> None:
    """Redacted thinking comes whole in its `content_block_start`, with no deltas to count."""
    clock = Clock()
    meter = _thinking_meter(clock)
    meter.block_stop()  # the thinking block opened by `_thinking_meter` ends at once: nothing to count
    meter.block_start(
        '{"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"x"}}'
    )
    clock.now += 4
    meter.block_start(TEXT_START)  # its stop unseen: the next block's start ends it
    meter.delta(json.dumps({"delta": {"type": "text_delta", "text": "a" * 40}}))
    clock.now += 60
    assert meter.usage().output_tokens == 4 * SONNET_SPEED + 12  # the text: 40 characters at 3.5 a token


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
