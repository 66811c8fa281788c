"""The one place the vendor's Anthropic key is used: requests from the gateway to the Anthropic API.

On aiohttp: its HTTP parser is in C and it writes to asyncio's transports directly, where httpx2 (httpcore2
on anyio, h11 in pure Python) cost a replica about a fifth of its CPU per turn (docs/gateway.md,
"Performance")."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from typing import Any

import aiohttp
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from .config import GatewaySettings
from .errors import error_response
from .turn_request import FORWARDED_HEADERS

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
# Kept from an upstream error so the SDK's own retry logic sees what Anthropic said.
_ERROR_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")
# How long an idle kept-alive connection to Anthropic is reused (httpx's default, which the gateway had).
KEEPALIVE_SECONDS = 5.0
# How long a stream relayed whole is given to end after `message_stop` before its connection is closed.
DRAIN_SECONDS = 2.0
UpstreamAnswer = aiohttp.ClientResponse


class UpstreamFailure(Exception):
    """The Anthropic API could not be reached, or its answer broke off (a dropped connection, a timeout)."""


Redactor = Callable[[bytes], bytes]


@contextlib.contextmanager
def _as_upstream_failure() -> Generator[None]:
    """aiohttp's errors, and a read that timed out, as `UpstreamFailure` (named by the error's type only)."""
    try:
        yield
    except (aiohttp.ClientError, TimeoutError) as error:
        raise UpstreamFailure(type(error).__name__) from error


class Upstream:
    def __init__(self, settings: GatewaySettings) -> None:
        self._url = settings.upstream_base_url.rstrip("/") + "/v1/messages"
        # Each read (not the whole answer: a long stream may take minutes) within the upstream timeout.
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=10.0, sock_read=settings.upstream_timeout_seconds
        )
        self._key = settings.upstream_api_key
        self._session: aiohttp.ClientSession | None = None  # made in the event loop, on first use
        self._draining: set[asyncio.Task[None]] = set()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_SECONDS)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def send(self, body: bytes, client_headers: Headers, *, stream: bool) -> UpstreamAnswer:
        """Send the turn (its JSON body) to Anthropic: the answer once its headers came, or, not streamed,
        once all of it came. Raises `UpstreamFailure` when it cannot be reached."""
        headers = {name: client_headers[name] for name in FORWARDED_HEADERS if name in client_headers}
        headers.setdefault("anthropic-version", DEFAULT_ANTHROPIC_VERSION)
        headers["x-api-key"] = self._key.get_secret_value()
        headers["content-type"] = "application/json"
        with _as_upstream_failure():
            answer = await self._client().post(self._url, data=body, headers=headers)
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
            async for chunk in answer.content.iter_any():
                yield chunk

    def finish(self, answer: UpstreamAnswer, *, whole: bool) -> None:
        """Done with a streamed answer. One relayed whole (`message_stop` passed on) is read to its end in
        the background, since its last bytes follow `message_stop`, so its connection serves a later turn
        rather than a new one being opened (a TLS handshake, to Anthropic); any other is closed now."""
        if not whole or answer.content.at_eof():
            answer.close()
            return
        task = asyncio.ensure_future(self._drain(answer))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def _drain(self, answer: UpstreamAnswer) -> None:
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                while await answer.content.readany():
                    pass
        except (aiohttp.ClientError, TimeoutError):
            pass
        finally:
            answer.close()  # nothing left to close once read to its end: the connection went back to the pool

    def redact(self, text: bytes) -> bytes:
        """`text` from upstream without the vendor key, in case an error message echoes it."""
        key = self._key.get_secret_value().encode()
        return text.replace(key, b"[redacted]") if key else text

    async def aclose(self) -> None:
        for task in self._draining:
            task.cancel()
        if self._session is not None:
            await self._session.close()


def encode_body(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


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
