"""The one place the vendor's Anthropic key is used: requests from the gateway to the Anthropic API.

Over `upstream_http`, a small HTTP/1.1 client on asyncio and httptools: httpx2 and then aiohttp each cost a
replica a large share of its CPU per turn (docs/gateway.md, "Performance")."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Generator, Mapping

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from .config import GatewaySettings
from .errors import error_response
from .turn_request import FORWARDED_HEADERS
from .upstream_http import HttpClient, HttpFailure, HttpResponse

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
# Kept from an upstream error so the SDK's own retry logic sees what Anthropic said.
_ERROR_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")
# How long an idle kept-alive connection to Anthropic is reused (httpx's default, which the gateway had).
KEEPALIVE_SECONDS = 5.0
CONNECT_SECONDS = 10.0
# How long a stream relayed whole is given to end after `message_stop` before its connection is closed.
DRAIN_SECONDS = 2.0
UpstreamAnswer = HttpResponse


class UpstreamFailure(Exception):
    """The Anthropic API could not be reached, or its answer broke off (a dropped connection, a timeout)."""


Redactor = Callable[[bytes], bytes]


@contextlib.contextmanager
def _as_upstream_failure() -> Generator[None]:
    """The client's errors as `UpstreamFailure` (named by the error's type only)."""
    try:
        yield
    except (HttpFailure, OSError) as error:
        raise UpstreamFailure(type(error).__name__) from error


class Upstream:
    def __init__(self, settings: GatewaySettings) -> None:
        # Each read (not the whole answer: a long stream may take minutes) within the upstream timeout.
        self._http = HttpClient(
            settings.upstream_base_url,
            connect_timeout=CONNECT_SECONDS,
            read_timeout=settings.upstream_timeout_seconds,
            keepalive=KEEPALIVE_SECONDS,
        )
        self._key = settings.upstream_api_key

    async def send(self, body: bytes, client_headers: Headers, *, stream: bool) -> UpstreamAnswer:
        """Send the turn (its JSON body) to Anthropic: the answer once its headers came, or, not streamed,
        once all of it came. Raises `UpstreamFailure` when it cannot be reached."""
        headers = {name: client_headers[name] for name in FORWARDED_HEADERS if name in client_headers}
        headers.setdefault("anthropic-version", DEFAULT_ANTHROPIC_VERSION)
        headers["x-api-key"] = self._key.get_secret_value()
        headers["content-type"] = "application/json"
        with _as_upstream_failure():
            answer = await self._http.post("/v1/messages", body, headers)
            if not stream:
                await answer.read()
        return answer

    async def read(self, answer: UpstreamAnswer) -> bytes:
        """The whole body of an answer (already read for one not streamed)."""
        with _as_upstream_failure():
            return await answer.read()

    async def chunks(self, answer: UpstreamAnswer) -> AsyncIterator[bytes]:
        """A streamed answer's bytes as they arrive; raises `UpstreamFailure` if it breaks off."""
        with _as_upstream_failure():
            async for chunk in answer.chunks():
                yield chunk

    def finish(self, answer: UpstreamAnswer, *, whole: bool) -> None:
        """Done with a streamed answer. One relayed whole (`message_stop` passed on) is read to its end in
        the background, since its last bytes follow `message_stop`, so its connection serves a later turn
        rather than a new one being opened (a TLS handshake, to Anthropic); any other is closed now."""
        if whole:
            answer.close_when_complete(DRAIN_SECONDS)
        else:
            answer.close()

    def redact(self, text: bytes) -> bytes:
        """`text` from upstream without the vendor key, in case an error message echoes it."""
        key = self._key.get_secret_value().encode()
        return text.replace(key, b"[redacted]") if key else text

    async def aclose(self) -> None:
        await self._http.aclose()


def relay_error(status: int, body: bytes, headers: Mapping[str, str], redact: Redactor) -> Response:
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
