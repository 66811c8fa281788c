"""The one place the vendor's Anthropic key is used: requests from the gateway to the Anthropic API.

Over `upstream_http`, a small HTTP/1.1 client on asyncio and httptools: httpx2 and then aiohttp each cost a
replica a large share of its CPU per turn (docs/gateway.md, "Performance")."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from .config import GatewaySettings
from .errors import error_response, sdk_retries
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
# An upstream problem is logged at most once per kind in this many seconds (a wrong vendor key fails every
# turn: one line a minute says so without flooding the log). The count of the ones left out comes with the
# next line.
WARNING_INTERVAL_SECONDS = 60.0

log = logging.getLogger("switchboard.gateway")


class _RateLimitedWarnings:
    """`log.warning` at most once per kind per `interval` seconds, for this process (one replica)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def warn(self, kind: str, message: str) -> None:
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._left_out[kind] = self._left_out.get(kind, 0) + 1
            return
        self._last[kind] = now
        if left_out := self._left_out.pop(kind, 0):
            message += f" ({left_out} more since the last such line)"
        log.warning("%s", message)


_warnings = _RateLimitedWarnings(WARNING_INTERVAL_SECONDS)


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
        self._origin = _origin(settings.upstream_base_url)

    async def send(self, body: bytes, client_headers: Headers, *, stream: bool) -> UpstreamAnswer:
        """Send the turn (its JSON body) to Anthropic: the answer once its headers came, or, not streamed,
        once all of it came. Raises `UpstreamFailure` when it cannot be reached."""
        headers = {name: client_headers[name] for name in FORWARDED_HEADERS if name in client_headers}
        headers.setdefault("anthropic-version", DEFAULT_ANTHROPIC_VERSION)
        headers["x-api-key"] = self._key.get_secret_value()
        headers["content-type"] = "application/json"
        try:
            with _as_upstream_failure():
                answer = await self._http.post("/v1/messages", body, headers)
                if not stream:
                    await answer.read()
        except UpstreamFailure as failure:
            _warnings.warn(
                f"unreachable:{failure}",
                f"the Anthropic API at {self._origin} could not be reached or its answer broke off:"
                f" {_failure_text(failure)}; clients get a 502 (check upstream_base_url and the network)",
            )
            raise
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
    """An upstream refusal, passed on: its status and body (so the SDK retries 429/5xx as it would); but a
    refusal of the gateway's own key (401, 403) or of its account's billing (402) is a 502 not retried."""
    if status in (401, 403):
        # The vendor's key was refused: the client's own token is fine, so this must not read as its fault.
        # Nor is it worth the client's retries: the key stays wrong until whoever runs the gateway fixes it.
        _warnings.warn(
            "key refused",
            f"the Anthropic API refused the gateway's key (HTTP {status}{_upstream_message(body, redact)}):"
            " check upstream_api_key; clients get a 502 that is not retried",
        )
        return error_response(502, "api_error", "The gateway could not authenticate upstream.", retry=False)
    if status == 402:
        # Anthropic's `billing_error`: the vendor's own account cannot be billed. Passed on as a 402 it would
        # read as the user's credits exhausted (the gateway's own 402), and no retry helps until the
        # operator pays.
        _warnings.warn(
            "vendor billing",
            f"the Anthropic API refused the gateway's account for billing (HTTP 402"
            f"{_upstream_message(body, redact)}): check the vendor account's billing and credit balance;"
            " clients get a 502 that is not retried",
        )
        return error_response(
            502, "api_error", "The gateway's upstream account has a billing problem.", retry=False
        )
    kept = {name: headers[name] for name in _ERROR_HEADERS if name in headers}
    try:
        payload = json.loads(redact(body))
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
        payload = None
    if not isinstance(payload, dict) or payload.get("type") != "error":
        # Not Anthropic's error JSON (an edge proxy's HTML page, an empty body): the status still says what
        # it is, so a passing rate limit or timeout stays one the SDK retries.
        message = f"Upstream answered HTTP {status}."
        error_type = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return error_response(status, error_type, message, retry=sdk_retries(status), headers=kept)
    return JSONResponse(payload, status_code=status, headers=kept)


# Anthropic's error types by status (docs.claude.com/en/api/errors; other 4xx are invalid_request_error), for
# an upstream error whose body names none.
_ERROR_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def unreachable() -> Response:
    return error_response(502, "api_error", "The gateway could not reach the Anthropic API.", retry=True)


def _origin(base_url: str) -> str:
    """`base_url`'s scheme, host and port: never a user or password it might hold."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def _failure_text(failure: UpstreamFailure) -> str:
    """What went wrong, from the client's error down to the OS's words (refused, no such host, a certificate
    not trusted). `HttpFailure` never holds a header or a body, nor does an OSError: no key, no token."""
    parts: list[str] = []
    error = failure.__cause__
    while error is not None and len(parts) < 3:
        parts.append(str(error) or type(error).__name__)
        error = error.__cause__
    return ": ".join(parts) or str(failure)


def _upstream_message(body: bytes, redact: Redactor) -> str:
    """`: <Anthropic's error message>` from an error body (without the vendor key), or nothing."""
    try:
        payload = json.loads(redact(body))
    except (ValueError, RecursionError):
        return ""
    error = payload.get("error") if isinstance(payload, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return f": {message[:200]}" if isinstance(message, str) and message else ""
