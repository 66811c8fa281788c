"""The one place the vendor's Anthropic key is used: requests from the gateway to the Anthropic API."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from .config import GatewaySettings
from .errors import error_response
from .turn_request import FORWARDED_HEADERS

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
# Kept from an upstream error so the SDK's own retry logic sees what Anthropic said.
_ERROR_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")
UpstreamFailure = httpx2.TransportError


Redactor = Callable[[bytes], bytes]


class Upstream:
    def __init__(self, settings: GatewaySettings) -> None:
        timeout = httpx2.Timeout(settings.upstream_timeout_seconds, connect=10.0)
        limits = httpx2.Limits(max_connections=None, max_keepalive_connections=100)
        self._client = httpx2.AsyncClient(base_url=settings.upstream_base_url, timeout=timeout, limits=limits)
        self._key = settings.upstream_api_key

    async def send(self, body: dict[str, Any], client_headers: Headers, *, stream: bool) -> httpx2.Response:
        """Send the turn to Anthropic; raises `UpstreamFailure` when it cannot be reached."""
        headers = {name: client_headers[name] for name in FORWARDED_HEADERS if name in client_headers}
        headers.setdefault("anthropic-version", DEFAULT_ANTHROPIC_VERSION)
        headers["x-api-key"] = self._key.get_secret_value()
        headers["content-type"] = "application/json"
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        request = self._client.build_request("POST", "/v1/messages", content=content, headers=headers)
        return await self._client.send(request, stream=stream)

    def redact(self, text: bytes) -> bytes:
        """`text` from upstream without the vendor key, in case an error message echoes it."""
        key = self._key.get_secret_value().encode()
        return text.replace(key, b"[redacted]") if key else text

    async def aclose(self) -> None:
        await self._client.aclose()


def relay_error(status: int, body: bytes, headers: httpx2.Headers, redact: Redactor) -> Response:
    """An upstream refusal, passed on: its status and body (so the SDK retries 429/5xx as it would)."""
    if status in (401, 403):
        # The vendor's key was refused: the client's own token is fine, so this must not read as its fault.
        return error_response(502, "api_error", "The gateway could not authenticate upstream.", retry=True)
    kept = {name: headers[name] for name in _ERROR_HEADERS if name in headers}
    try:
        payload = json.loads(redact(body))
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or payload.get("type") != "error":
        message = f"Upstream answered HTTP {status}."
        return error_response(status, "api_error", message, retry=status >= 500, headers=kept)
    return JSONResponse(payload, status_code=status, headers=kept)


def unreachable() -> Response:
    return error_response(502, "api_error", "The gateway could not reach the Anthropic API.", retry=True)
