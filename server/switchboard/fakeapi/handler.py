"""The request handler: read and record each request, route it, and write Anthropic-shaped errors."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from switchboard.fakeapi import control, endpoints
from switchboard.fakeapi.errors import ApiError
from switchboard.fakeapi.exchange import Exchange
from switchboard.fakeapi.http_server import FakeHTTPServer
from switchboard.fakeapi.records import RecordedRequest
from switchboard.fakeapi.transport import parse_json, read_body, send_json

Route = Callable[[Exchange], None]
IDLE_CONNECTION_SECONDS = 60.0
ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/v1/messages"): endpoints.messages,
    ("POST", "/v1/messages/count_tokens"): endpoints.count_tokens,
    ("POST", "/_fake/faults"): control.add_faults,
    ("GET", "/_fake/faults"): control.list_faults,
    ("GET", "/_fake/requests"): control.list_requests,
    ("POST", "/_fake/reset"): control.reset,
}


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeAnthropic/1.0"
    # A kept-alive connection left idle this long is closed (and its thread ends). Clients' pools drop idle
    # connections sooner (httpx: 5 s), so they never send on one the fake is closing.
    timeout = IDLE_CONNECTION_SECONDS
    # Headers, body and each event are separate writes: with Nagle's algorithm on, a write that follows
    # another waits for the client's delayed ACK (40 ms) on a kept-alive connection.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self, method: str) -> None:
        request_id = "req_fake_" + uuid.uuid4().hex[:24]
        try:
            exchange = self._receive(method, request_id)
            route = ROUTES.get((method, exchange.path))
            if route is None:
                raise ApiError(404, f"Not found: {method} {exchange.path}")
            route(exchange)
        except ApiError as error:
            self._send_error(error, request_id)
        except OSError:
            # The client hung up, or stop() shut the socket down: nothing left to answer.
            self.close_connection = True

    def _receive(self, method: str, request_id: str) -> Exchange:
        """Read the request and record it (unless it is a control request); raise a too-large body."""
        server = self.server
        assert isinstance(server, FakeHTTPServer)
        path = urlsplit(self.path).path
        headers = {name.lower(): value for name, value in self.headers.items()}
        too_large: ApiError | None = None
        try:
            body = parse_json(read_body(self))
        except ApiError as error:
            body, too_large = None, error
        if not path.startswith(control.PREFIX):
            server.state.log.append(_record(method, path, headers, body))
        if too_large is not None:
            raise too_large
        return Exchange(self, server.state, method, path, headers, body, request_id)

    def _send_error(self, error: ApiError, request_id: str) -> None:
        headers = {**error.headers, "request-id": request_id}
        try:
            send_json(self, error.status, {**error.body(), "request_id": request_id}, headers)
        except OSError:
            self.close_connection = True


def _record(method: str, path: str, headers: dict[str, str], body: object) -> RecordedRequest:
    parsed = body if isinstance(body, dict) else None
    model = parsed.get("model") if parsed is not None else None
    return RecordedRequest(
        method=method,
        path=path,
        headers=headers,
        body=parsed,
        model=model if isinstance(model, str) else None,
        time=time.time(),
    )
