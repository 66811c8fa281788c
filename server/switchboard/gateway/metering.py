"""What a streamed turn has used so far, from `message_start`, the deltas and `message_delta`.

When the stream is cut before `message_delta` (the client left, the upstream failed, the replica died),
output is counted from the deltas that reached the gateway (`plans.credits.cut_usage`: four characters a
token, never less than what `message_start` reported). A delta's JSON is only read when that count is needed
(a cut, a heartbeat's checkpoint): most turns end with `message_delta`, whose count is exact. Only the text's
length is kept, not the text: a long answer's checkpoints do not re-count it, nor the replica hold it.
"""

from __future__ import annotations

import json
from typing import Any

from switchboard.plans.credits import cut_usage
from switchboard.protocol.messages import Usage

_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
_DELTA_TEXT = ("text", "thinking", "partial_json")


class StreamMeter:
    def __init__(self) -> None:
        # The counts reported so far, plain (a `Usage` is only made when asked for: not on the way to the
        # first token, which `message_start`'s counts precede).
        self._reported: dict[str, int] | None = None
        self._final = False
        self._streamed_chars = 0  # the length of the deltas' text read so far
        self._unread: list[str] = []  # deltas as they came (JSON text), not yet read for their text
        self.output_seen = False

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
                self._streamed_chars += sum(
                    len(delta[k]) for k in _DELTA_TEXT if isinstance(delta.get(k), str)
                )
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
        return cut_usage(reported, self._streamed_chars)

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
