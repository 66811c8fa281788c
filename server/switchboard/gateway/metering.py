"""What a streamed turn has used so far, from `message_start`, the deltas and `message_delta`.

When the stream is cut before `message_delta` (the client left, the upstream failed, the replica died),
output is counted from the deltas that reached the gateway: 3.5 ASCII characters a token and every other
character a token of its own (Chinese or Japanese text runs near one character a token), never less than
what `message_start` reported. A delta's JSON is only read when that count is needed (a cut, a heartbeat's
checkpoint): most turns end with `message_delta`, whose count is exact. Only the text's length is kept, not
the text: a long answer's checkpoints do not re-count it, nor the replica hold it. The input is
`message_start`'s unless a later `message_delta` reports a non-zero figure for it: a 0 there (or none) does
not wipe out a prompt Anthropic has already billed.

Thinking is counted by a bounded rule. Claude 4 models stream a summary of their thinking but bill all of
it, so its streamed length can say far less than it cost; nor can it cost more than the model could write in
the time it took. A cut turn's thinking counts
`max(streamed, min(budget_tokens, seconds × the model's output speed ceiling))`, where the seconds run from
the time inside its thinking blocks (from each one's start event, the turn's first block from `message_start`
and a `redacted_thinking` block, which comes whole, from the end of the block before, to its stop, or to now
while it is open; not the answer text or tool input between thoughts, nor a stall between blocks), on the
monotonic clock the meter is given. Once a thinking block has streamed a thinking delta, only time while its
events keep coming counts: of each later gap between two of them (its deltas, its stop, and the cut or
checkpoint while it is open), at most `MAX_THINKING_GAP_SECONDS`, so a stall inside a block that streams its
summary (the network, an upstream pause) is not billed at the ceiling for its whole length. A block that
streams no thinking (`thinking.display: "omitted"`, whose only delta is its signature, or a
`redacted_thinking` block) is silent however long the model thinks: its whole time counts, up to the
budget, as does a summarized block's time before its first thinking delta. The
ceiling is `ModelSpec.output_tokens_per_second_ceiling`. Thinking blocks are told apart by their
`content_block_start` (a few per turn, read for their type; the deltas are not), and end at their
`content_block_stop`.
However it is counted, the output is never more than `max_tokens`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from switchboard.protocol.messages import Usage
from switchboard.tokens import CHARS_PER_TOKEN

_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
_INPUT_FIELDS = frozenset({"input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"})
_ANSWER_TEXT = ("text", "partial_json")
_THINKING_BLOCKS = ("thinking", "redacted_thinking")
# The most of one gap between a thinking block's events that counts as thinking. Claude 4 streams a summary of
# its thinking in bursts, a second or two apart while the summarizer catches up, and every gap that short is
# thinking; a longer silence is as likely a stall (a slow network, an upstream pause), and each second of it
# would otherwise cost the model's whole speed ceiling (150 tokens a second on Sonnet: a minute's stall, 9,000
# output tokens never written). So a longer gap counts its first 5 s: a stall adds at most 5 s × the ceiling
# (750 tokens on Sonnet). The bound holds only once the block has streamed a thinking delta: a block that
# streams none (`thinking.display: "omitted"`, a `redacted_thinking` block, which comes whole) is silent
# while the model thinks, and bounding its silence would let a client cut such turns and pay for 5 s of
# thinking that Anthropic bills in full. A turn that ends normally is charged `message_delta`'s exact count,
# whatever its gaps.
MAX_THINKING_GAP_SECONDS = 5.0
# A cut turn's ASCII text counts at Anthropic's own average for English, 3.5 characters a token, not the
# local ledger's four (`switchboard.tokens`, which leans toward a user paying Anthropic directly). Here the
# vendor pays Anthropic's exact count, and a client can always cut on purpose right before `message_delta`
# (at an end marker it asked the model to write) and be charged by this rule instead: at four characters a
# token every answer could be had for about 12% less; at 3.5 English costs what it costs, and only code,
# which tokenizes denser, stays a little under.
CUT_CHARS_PER_TOKEN = CHARS_PER_TOKEN


class _Length:
    """The length of streamed text, and how much of it is not ASCII."""

    def __init__(self) -> None:
        self.chars = 0
        self.wide = 0

    def add(self, text: str) -> None:
        self.chars += len(text)
        self.wide += len(text) - len(text.encode("ascii", "ignore"))

    def tokens(self) -> int:
        return math.ceil((self.chars - self.wide) / CUT_CHARS_PER_TOKEN) + self.wide


class StreamMeter:
    def __init__(
        self,
        thinking_budget: int | None = None,
        max_tokens: int | None = None,
        *,
        tokens_per_second: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The counts reported so far, plain (a `Usage` is only made when asked for: not on the way to the
        # first token, which `message_start`'s counts precede).
        self._reported: dict[str, int] | None = None
        self._final = False
        self._thinking_budget = thinking_budget
        self._max_tokens = max_tokens  # no turn's output exceeds it, however it is counted
        self._tokens_per_second = tokens_per_second  # the model's output speed ceiling (0: none known)
        self._clock = clock  # monotonic seconds; the tests give their own
        self._since: float | None = None  # when `message_start` came: the model's writing began
        self._open = False  # a content block is open
        self._last_end: float | None = None  # when the last block ended
        # When the open thinking block last showed it was being written (its start, its last delta); None
        # while no thinking block is open.
        self._thinking_mark: float | None = None
        self._thought_seconds = 0.0  # thinking time counted up to the mark (each gap at most the bound)
        self._thinking_streamed = False  # the open thinking block has streamed a thinking delta: gaps bounded
        self._thinking_seen = False  # a thinking block came
        self._thought = _Length()  # the thinking deltas' text read so far
        self._answered = _Length()  # the other deltas' (text, tool JSON)
        self._unread: list[str] = []  # deltas as they came (JSON text), not yet read for their text
        self.output_seen = False

    @property
    def started(self) -> bool:
        """`message_start` reported the turn's input: Anthropic has taken (and billed) the prompt."""
        return self._reported is not None

    @property
    def final(self) -> bool:
        """`message_delta` reported the turn's output."""
        return self._final

    def observe(self, name: str, data: dict[str, Any]) -> None:
        if name == "message_start":
            if self._since is None:
                self._since = self._clock()
            message = data.get("message")
            if isinstance(message, dict):
                self._merge(message.get("usage"))
        elif name == "content_block_delta":
            self.output_seen = True
            delta = data.get("delta")
            if isinstance(delta, dict):
                self._count(delta)  # pyright: ignore[reportUnknownArgumentType]
        elif name == "content_block_start":
            block = data.get("content_block")
            self._block_began(block.get("type") if isinstance(block, dict) else None)
        elif name == "content_block_stop":
            self.block_stop()
        elif name == "message_delta":
            self._merge(data.get("usage"))
            self._final = True

    def delta(self, data: str) -> None:
        """A `content_block_delta` event's data, unparsed: read only if the turn is cut or checkpointed."""
        self.output_seen = True
        self._unread.append(data)
        if self._thinking_mark is not None:  # the open thinking block is still being written
            self._thought_until(self._clock())  # the gap up to its first thinking delta counts whole
            if not self._thinking_streamed and "thinking_delta" in data:  # not its `signature_delta`
                self._thinking_streamed = True

    def block_start(self, data: str) -> None:
        """A `content_block_start` event's data, unparsed: read only when it may open a thinking block."""
        kind = None
        if 'thinking"' in data:  # `"type":"thinking"` or `"redacted_thinking"`; a text block's has neither
            try:
                event = json.loads(data)
            except ValueError:
                event = None
            block = event.get("content_block") if isinstance(event, dict) else None
            kind = block.get("type") if isinstance(block, dict) else None
        self._block_began(kind)

    def block_stop(self) -> None:
        """A `content_block_stop`: the open block ended (Anthropic streams one block at a time)."""
        if not self._open:
            return
        now = self._clock()
        if self._thinking_mark is not None:
            self._thought_until(now)
            self._thinking_mark = None
        self._open, self._last_end = False, now

    def _thought_until(self, now: float) -> None:
        """A sign of the open thinking block at `now`: the gap since the last one counts, up to the bound."""
        assert self._thinking_mark is not None
        self._thought_seconds += self._gap(now)
        self._thinking_mark = now

    def _gap(self, now: float) -> float:
        """The thinking time since the mark: bounded once the block streams thinking, whole while silent."""
        assert self._thinking_mark is not None
        gap = max(0.0, now - self._thinking_mark)
        return min(gap, MAX_THINKING_GAP_SECONDS) if self._thinking_streamed else gap

    def usage(self) -> Usage:
        """Exact once `message_delta` came; until then, output estimated from the deltas."""
        reported = Usage.model_validate(self._reported) if self._reported is not None else None
        if self._final:
            return reported or Usage()
        self.read()
        usage = reported or Usage()
        return usage.model_copy(update={"output_tokens": max(usage.output_tokens, self._counted_output())})

    def _block_began(self, kind: object) -> None:
        self.block_stop()  # one block at a time: the one before has ended, its stop seen or not
        now = self._clock()
        if self._since is None:
            self._since = now
        if kind in _THINKING_BLOCKS:
            # Its writing began with its start event; but the turn's first block's with `message_start`,
            # and a `redacted_thinking` block's (it comes whole) when the block before it ended.
            began = now
            if self._last_end is None:
                began = self._since
            elif kind == "redacted_thinking":
                began = self._last_end
            self._thinking_mark, self._thinking_seen, self._thinking_streamed = began, True, False
            self._thought_until(now)  # its start event is a sign of it too
        self._open = True

    def _count(self, delta: dict[str, Any]) -> None:
        if isinstance(thought := delta.get("thinking"), str):
            self._thought.add(thought)
        for key in _ANSWER_TEXT:
            if isinstance(text := delta.get(key), str):
                self._answered.add(text)

    def _thinking_bound(self) -> int:
        """What the thinking so far can have cost at most: `budget_tokens` (else `max_tokens`), and no more
        than the model writes in the time it took. 0 when no thinking block came (or no bound is known)."""
        bound = self._thinking_budget if self._thinking_budget is not None else self._max_tokens
        if self._since is None or bound is None or self._tokens_per_second <= 0:
            return 0
        if not self._thinking_seen:
            return 0
        seconds = self._thought_seconds  # only thinking blocks: not the text or tool input between them
        if self._thinking_mark is not None:  # open: up to now, the silence since its last event bounded
            seconds += self._gap(self._clock())
        return min(bound, math.ceil(max(0.0, seconds) * self._tokens_per_second))

    def _counted_output(self) -> int:
        thought, answered = self._thought, self._answered
        wide = thought.wide + answered.wide
        counted = math.ceil((thought.chars + answered.chars - wide) / CUT_CHARS_PER_TOKEN) + wide
        if (thinking := self._thinking_bound()) > thought.tokens():
            counted = max(counted, thinking + answered.tokens())
        return counted if self._max_tokens is None else min(counted, self._max_tokens)

    def read(self) -> None:
        """Read the deltas not read yet (`usage` does it too; the heartbeat does it a few turns at a time)."""
        if self._final:
            self._unread.clear()
            return
        for data in self._unread:
            try:
                event = json.loads(data)
            except ValueError:
                continue  # passed on as it came; its text cannot be counted
            if isinstance(event, dict):
                self.observe("content_block_delta", event)  # pyright: ignore[reportUnknownArgumentType]
        self._unread.clear()

    def _merge(self, usage: object) -> None:
        """Take a later event's counts over earlier ones; but an input count of 0 (or none) after a non-zero
        one keeps the earlier: `message_delta` may repeat the input fields as 0, while a prompt that
        `message_start` reported was billed all the same. A later non-zero figure still replaces it (context
        management can lower the input)."""
        if not isinstance(usage, dict):
            return
        counts = self._reported if self._reported is not None else {}
        for field in _USAGE_FIELDS:
            value = usage.get(field)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                if value == 0 and field in _INPUT_FIELDS and counts.get(field):
                    continue
                counts[field] = value
        self._reported = counts


def usage_of_message(message: dict[str, Any]) -> Usage:
    """The usage of a non-streaming answer (zeros for missing counts)."""
    meter = StreamMeter()
    meter.observe("message_delta", {"usage": message.get("usage")})
    return meter.usage()
