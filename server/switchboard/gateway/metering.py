"""What a streamed turn has used so far, from `message_start`, the deltas and `message_delta`.

When the stream is cut before `message_delta` (the client left, the upstream failed, the replica died),
output is counted from the deltas that reached the gateway: four ASCII characters a token and every other
character a token of its own (Chinese or Japanese text runs near one character a token), never less than
what `message_start` reported. A thinking block that ended before the cut counts at least its
`budget_tokens`: Claude 4 models stream a summary of their thinking but bill the whole of it, so its streamed
length says little of what it cost. A delta's JSON is only read when that count is needed
(a cut, a heartbeat's checkpoint): most turns end with `message_delta`, whose count is exact. Only the text's
length is kept, not the text: a long answer's checkpoints do not re-count it, nor the replica hold it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from switchboard.protocol.messages import Usage
from switchboard.tokens import BILLED_CHARS_PER_TOKEN

_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
_ANSWER_TEXT = ("text", "partial_json")


class _Length:
    """The length of streamed text, and how much of it is not ASCII."""

    def __init__(self) -> None:
        self.chars = 0
        self.wide = 0

    def add(self, text: str) -> None:
        self.chars += len(text)
        self.wide += len(text) - len(text.encode("ascii", "ignore"))

    def tokens(self) -> int:
        return math.ceil((self.chars - self.wide) / BILLED_CHARS_PER_TOKEN) + self.wide


class StreamMeter:
    def __init__(self, thinking_budget: int | None = None, max_tokens: int | None = None) -> None:
        # The counts reported so far, plain (a `Usage` is only made when asked for: not on the way to the
        # first token, which `message_start`'s counts precede).
        self._reported: dict[str, int] | None = None
        self._final = False
        self._thinking_budget = thinking_budget
        self._max_tokens = max_tokens  # no turn's output exceeds it, however it is counted
        self._thought = _Length()  # the thinking deltas' text read so far
        self._answered = _Length()  # the other deltas' (text, tool JSON)
        self._thinking_ended = False  # a thinking block's signature, or other output after thinking, came
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
            message = data.get("message")
            if isinstance(message, dict):
                self._merge(message.get("usage"))
        elif name == "content_block_delta":
            self.output_seen = True
            delta = data.get("delta")
            if isinstance(delta, dict):
                self._count(delta)  # pyright: ignore[reportUnknownArgumentType]
        elif name == "message_delta":
            self._merge(data.get("usage"))
            self._final = True

    def delta(self, data: str) -> None:
        """A `content_block_delta` event's data, unparsed: read only if the turn is cut or checkpointed."""
        self.output_seen = True
        self._unread.append(data)

    def usage(self) -> Usage:
        """Exact once `message_delta` came; until then, output estimated from the deltas."""
        reported = Usage.model_validate(self._reported) if self._reported is not None else None
        if self._final:
            return reported or Usage()
        self.read()
        usage = reported or Usage()
        return usage.model_copy(update={"output_tokens": max(usage.output_tokens, self._counted_output())})

    def thinking_arrived_whole(self) -> None:
        """A `redacted_thinking` block came (whole, in its `content_block_start`): thinking has ended."""
        self._thinking_ended = True

    def _count(self, delta: dict[str, Any]) -> None:
        if isinstance(thought := delta.get("thinking"), str):
            self._thought.add(thought)
        elif "signature" in delta:
            self._thinking_ended = True
        for key in _ANSWER_TEXT:
            if isinstance(text := delta.get(key), str):
                self._answered.add(text)
                self._thinking_ended = self._thinking_ended or self._thought.chars > 0

    def _counted_output(self) -> int:
        thought, answered = self._thought, self._answered
        wide = thought.wide + answered.wide
        counted = math.ceil((thought.chars + answered.chars - wide) / BILLED_CHARS_PER_TOKEN) + wide
        if self._thinking_ended and self._thinking_budget is not None:
            counted = max(counted, self._thinking_budget + answered.tokens())
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
        if not isinstance(usage, dict):
            return
        counts = self._reported if self._reported is not None else {}
        for field in _USAGE_FIELDS:
            value = usage.get(field)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                counts[field] = value
        self._reported = counts


def usage_of_message(message: dict[str, Any]) -> Usage:
    """The usage of a non-streaming answer (zeros for missing counts)."""
    meter = StreamMeter()
    meter.observe("message_delta", {"usage": message.get("usage")})
    return meter.usage()
