"""Answering one request: record it, route it, and turn an error into an Anthropic-shaped response."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from switchboard.fakeapi import control, endpoints
from switchboard.fakeapi.errors import ApiError
from switchboard.fakeapi.exchange import Exchange
from switchboard.fakeapi.ids import new_id
from switchboard.fakeapi.records import RecordedRequest
from switchboard.fakeapi.state import FakeState
from switchboard.fakeapi.transport import Response

Route = Callable[[Exchange], None]
ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/v1/messages"): endpoints.messages,
    ("POST", "/v1/messages/count_tokens"): endpoints.count_tokens,
    ("POST", "/_fake/faults"): control.add_faults,
    ("GET", "/_fake/faults"): control.list_faults,
    ("GET", "/_fake/requests"): control.list_requests,
    ("POST", "/_fake/reset"): control.reset,
}


@dataclass(frozen=True)
class Request:
    """A request as it arrived. `refusal`: an error to answer instead of reading it (a body too large; its
    `body` is then empty)."""

    method: str
    target: str
    headers: dict[str, str]  # lower-case names; the last of repeated headers
    body: bytes
    keep_alive: bool
    refusal: ApiError | None = None


def handle(state: FakeState, request: Request) -> Response:
    """Record `request` (unless it is a control request) and build its response."""
    request_id = new_id("req_fake_")
    path = urlsplit(request.target).path
    if not path.startswith(control.PREFIX):
        state.log.append(RecordedRequest(request.method, path, request.headers, request.body, time.time()))
    exchange = Exchange(state, request.method, path, request.headers, request.body, request_id)
    exchange.response.close = not request.keep_alive
    try:
        if request.refusal is not None:
            raise request.refusal
        route = ROUTES.get((request.method, path))
        if route is None:
            raise ApiError(404, f"Not found: {request.method} {path}")
        route(exchange)
    except ApiError as error:
        # After any pause already planned (a stall before a non-streamed 529), as the client would see it.
        headers = {**error.headers, "request-id": request_id}
        exchange.response.send_json(error.status, {**error.body(), "request_id": request_id}, headers)
    return exchange.response
