"""The wire shapes of an answer: the non-streaming Message JSON and the SSE event sequence."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from switchboard.fakeapi.cache import CacheUsage
from switchboard.fakeapi.replies import Reply, split_deltas
from switchboard.fakeapi.transport import compact_json


@dataclass(frozen=True)
class SseEvent:
    name: str
    data: Mapping[str, object]
    is_delta: bool = False  # a thinking or text delta: the unit faults count and `slow` paces

    def encode(self) -> bytes:
        return self.wire

    @functools.cached_property
    def wire(self) -> bytes:
        """The event as sent, encoded once (a prepared answer's content events serve every stream of it)."""
        return encode_sse(self.name, compact_json(self.data))


def encode_sse(name: str, data: str) -> bytes:
    return f"event: {name}\ndata: {data}\n\n".encode()


def usage_json(usage: CacheUsage, output_tokens: int) -> dict[str, object]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "output_tokens": output_tokens,
    }


def message_json(message_id: str, model: str, reply: Reply, usage: CacheUsage) -> dict[str, object]:
    content: list[dict[str, object]] = []
    if reply.thinking is not None:
        content.append({"type": "thinking", "thinking": reply.thinking, "signature": reply.signature})
    content.append({"type": "text", "text": reply.text})
    return {
        **_message_shell(message_id, model),
        "content": content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": usage_json(usage, reply.output_tokens),
    }


def stream_events(
    message_id: str, model: str, reply: Reply, usage: CacheUsage, content: Sequence[SseEvent] | None = None
) -> list[SseEvent]:
    """The whole stream of `reply`; `content` is `content_events(reply)` when the caller kept it."""
    empty = {"content": [], "stop_reason": None, "stop_sequence": None, "usage": usage_json(usage, 1)}
    message = {**_message_shell(message_id, model), **empty}
    events = [SseEvent("message_start", {"type": "message_start", "message": message})]
    events += content_events(reply) if content is None else content
    delta = {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence}
    usage_delta = usage_json(usage, reply.output_tokens)
    events.append(SseEvent("message_delta", {"type": "message_delta", "delta": delta, "usage": usage_delta}))
    events.append(SseEvent("message_stop", {"type": "message_stop"}))
    return events


def content_events(reply: Reply) -> list[SseEvent]:
    """The events between `message_start` and `message_delta`: they depend on the reply alone."""
    events: list[SseEvent] = []
    index = 0
    if reply.thinking is not None:
        events += _thinking_block(index, reply.thinking, reply.signature or "")
        index += 1
    events += _text_block(index, reply.text)
    # The real API pings right after the first content block starts.
    events.insert(1, SseEvent("ping", {"type": "ping"}))
    return events


def error_event(error_type: str, message: str) -> SseEvent:
    return SseEvent("error", {"type": "error", "error": {"type": error_type, "message": message}})


def _message_shell(message_id: str, model: str) -> dict[str, object]:
    return {"id": message_id, "type": "message", "role": "assistant", "model": model}


def _thinking_block(index: int, thinking: str, signature: str) -> list[SseEvent]:
    deltas = [
        _delta(index, {"type": "thinking_delta", "thinking": piece}) for piece in split_deltas(thinking)
    ]
    signature_delta = SseEvent(
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "signature_delta", "signature": signature},
        },
    )
    block = {"type": "thinking", "thinking": "", "signature": ""}
    return [_block_start(index, block), *deltas, signature_delta, _block_stop(index)]


def _text_block(index: int, text: str) -> list[SseEvent]:
    deltas = [_delta(index, {"type": "text_delta", "text": piece}) for piece in split_deltas(text)]
    return [_block_start(index, {"type": "text", "text": ""}), *deltas, _block_stop(index)]


def _delta(index: int, delta: Mapping[str, object]) -> SseEvent:
    return SseEvent(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}, True
    )


def _block_start(index: int, block: Mapping[str, object]) -> SseEvent:
    return SseEvent(
        "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
    )


def _block_stop(index: int) -> SseEvent:
    return SseEvent("content_block_stop", {"type": "content_block_stop", "index": index})
