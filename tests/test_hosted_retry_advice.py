"""Whether the language server advises retrying a refusal of the gateway's usage and overage endpoints: as
its `x-should-retry` header says, and by the status only when it says nothing. Against a real HTTP server
on 127.0.0.1 that answers as the gateway does (the gateway's own refusals say `x-should-retry: false`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from switchboard.hosted import errors
from switchboard.hosted.gateway_http import GatewayHttp, GatewayRefused
from switchboard.protocol.messages import UpstreamErrorData


class Refusing:
    """Answers every request with `status`, Anthropic's error JSON and the given `x-should-retry` (or
    none)."""

    def __init__(self) -> None:
        self.status = 503
        self.should_retry: str | None = None
        refusing = self

        class Handle(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(
                    {"type": "error", "error": {"type": "api_error", "message": "Not now."}}
                ).encode()
                self.send_response(refusing.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if refusing.should_retry is not None:
                    self.send_header("x-should-retry", refusing.should_retry)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def gateway() -> Iterator[Refusing]:
    server = Refusing()
    try:
        yield server
    finally:
        server.close()


async def advice(gateway: Refusing, status: int, should_retry: str | None) -> bool:
    gateway.status, gateway.should_retry = status, should_retry
    http = GatewayHttp(gateway.url)
    try:
        with pytest.raises(GatewayRefused) as refused:
            await http.usage("an-access-token")
    finally:
        await http.close()
    error = errors.refused(refused.value, "pro", signed_in=True)
    data = UpstreamErrorData.model_validate(error.data)
    assert data.status == status
    return data.retryable


async def test_usage_refusals_are_retryable_as_the_gateways_header_says(gateway: Refusing) -> None:
    assert await advice(gateway, 503, "false") is False  # would be retried by its status alone
    assert await advice(gateway, 400, "true") is True
    assert await advice(gateway, 503, None) is True  # no header: by the status
    assert await advice(gateway, 400, None) is False
