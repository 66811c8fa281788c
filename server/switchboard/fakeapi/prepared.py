"""What a Messages request body decides on its own (its model, directives, reply, prompt segments and
a stream's content events), worked out once per distinct body.

All of it is deterministic, and a benchmark sends the same body thousands of times: validating it,
composing the reply and cutting the prompt into segments was most of the fake's CPU per turn. What depends
on more than the body (authentication, queued faults, the prompt cache, ids) is still done per request."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from switchboard.fakeapi.directives import Directives, request_directives
from switchboard.fakeapi.events import SseEvent, content_events
from switchboard.fakeapi.replies import Reply, compose_reply, split_deltas
from switchboard.fakeapi.tokens import Segment, request_segments
from switchboard.fakeapi.transport import parse_json
from switchboard.fakeapi.validation import require_object, validate_request

# Bodies up to this size are remembered (a few hundred of them): larger ones are prepared afresh.
MEMO_MAX_BODY_BYTES = 16 * 1024
MEMO_ENTRIES = 256


@dataclass(frozen=True)
class PreparedMessage:
    model: str  # the resolved snapshot id
    directives: Directives
    reply: Reply
    segments: tuple[Segment, ...]
    stream: bool
    content_events: tuple[SseEvent, ...]  # a stream's events between message_start and message_delta
    delta_count: int  # the deltas a stream of the reply has: what `slow` paces a non-streamed answer by


def prepare_message(raw_body: bytes) -> PreparedMessage:
    """Validate a `/v1/messages` body and compose its answer; raise ApiError as the real API would refuse it
    (validation first, then the directives)."""
    if len(raw_body) <= MEMO_MAX_BODY_BYTES:
        return _remembered(raw_body)
    return _prepare(raw_body)


@functools.lru_cache(maxsize=MEMO_ENTRIES)
def _remembered(raw_body: bytes) -> PreparedMessage:
    return _prepare(raw_body)


def _prepare(raw_body: bytes) -> PreparedMessage:
    body = require_object(parse_json(raw_body))
    model = validate_request(body)
    directives = request_directives(body)
    reply = compose_reply(body, model, words=directives.words)
    stream = bool(body.get("stream"))
    return PreparedMessage(
        model=model,
        directives=directives,
        reply=reply,
        segments=tuple(request_segments(body)),
        stream=stream,
        content_events=tuple(content_events(reply)) if stream else (),
        delta_count=len(split_deltas(reply.text)) + len(split_deltas(reply.thinking or "")),
    )
