"""The Anthropic endpoints: `POST /v1/messages` (streaming or not) and `POST /v1/messages/count_tokens`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from switchboard.fakeapi.directives import Directives, request_directives
from switchboard.fakeapi.errors import ApiError
from switchboard.fakeapi.events import SseEvent, encode_sse, error_event, message_json, stream_events
from switchboard.fakeapi.exchange import Exchange
from switchboard.fakeapi.faults import Fault, Plan
from switchboard.fakeapi.ids import new_id
from switchboard.fakeapi.prepared import prepare_message
from switchboard.fakeapi.tokens import count_tokens as estimate_tokens
from switchboard.fakeapi.transport import ChunkedStream, json_bytes
from switchboard.fakeapi.validation import require_object, validate_request

MALFORMED_EVENT = encode_sse("content_block_delta", '{"type": "content_block_delta", "index": 0, "de')
OVERLOADED = "Overloaded (simulated fault)"


def messages(exchange: Exchange) -> None:
    exchange.authenticate()
    prepared = prepare_message(exchange.raw_body)
    plan = _plan(exchange, prepared.directives, prepared.model)
    _before_response(exchange, plan)
    model, reply = prepared.model, prepared.reply
    usage = exchange.state.cache.apply(model, prepared.segments)
    message_id = new_id("msg_fake_")
    if prepared.stream:
        _stream(exchange, stream_events(message_id, model, reply, usage, prepared.content_events), plan)
    else:
        payload = message_json(message_id, model, reply, usage)
        _send_with_faults(exchange, payload, plan, prepared.delta_count)


def count_tokens(exchange: Exchange) -> None:
    exchange.authenticate()
    body = require_object(exchange.body)
    model = validate_request(body, counting=True)
    plan = _plan(exchange, request_directives(body), model)
    _before_response(exchange, plan)
    _send_with_faults(exchange, {"input_tokens": estimate_tokens(body)}, plan, deltas=0)


def _plan(exchange: Exchange, directives: Directives, model: str) -> Plan:
    queued = exchange.state.faults.take(exchange.path, model)
    faults: list[Fault] = [queued] if queued else []
    return Plan.of([*faults, *directives.faults], directives.words)


def _before_response(exchange: Exchange, plan: Plan) -> None:
    """Apply a status fault (raised) and a stall before the headers."""
    if plan.status is not None:
        raise plan.status.to_error()
    exchange.response.pause(plan.stall_before)


def _send_with_faults(exchange: Exchange, payload: Mapping[str, object], plan: Plan, deltas: int) -> None:
    fault = plan.interruption
    delay = plan.delta_delay * deltas + (fault.seconds if fault is not None and fault.kind == "stall" else 0)
    response = exchange.response
    response.pause(delay)
    kind = fault.kind if fault is not None else None
    if kind == "error_event":
        raise ApiError(529, (fault and fault.message) or OVERLOADED)
    if kind == "drop":
        response.drop()
        return
    body = json_bytes(payload)
    if kind in ("truncated_json", "malformed_sse"):
        body = body[: max(1, len(body) // 2)]
    response.send_bytes(200, body, "application/json", exchange.response_headers())


def _stream(exchange: Exchange, events: Sequence[SseEvent], plan: Plan) -> None:
    stream = ChunkedStream(exchange.response, exchange.response_headers())
    pending = plan.interruption
    sent = 0
    for event in events:
        if pending is not None and _due(pending, sent, event):
            if not _interrupt(stream, pending):
                return
            pending = None
        if event.is_delta:
            stream.pause(plan.delta_delay)
            sent += 1
        stream.send(event.encode())
    stream.finish()


def _due(fault: Fault, sent: int, event: SseEvent) -> bool:
    """Whether `fault` strikes before `event`: before the next delta once enough were sent, or before
    `message_delta` when the reply has fewer deltas than `after_deltas`."""
    return sent >= fault.strikes_at and (event.is_delta or event.name == "message_delta")


def _interrupt(stream: ChunkedStream, fault: Fault) -> bool:
    """Inject a mid-stream fault; True if the stream goes on afterwards."""
    if fault.kind == "stall":
        stream.pause(fault.seconds)
        return True
    if fault.kind == "error_event":
        stream.send(error_event("overloaded_error", fault.message or OVERLOADED).encode())
        stream.finish()
        return False
    if fault.kind == "drop":
        stream.drop()
        return False
    stream.send(MALFORMED_EVENT)
    return True
