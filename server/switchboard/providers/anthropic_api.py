"""Streams a Messages API call through the official `anthropic` SDK and classifies its failures.

The SDK is imported lazily: it takes over a second to import and `initialize` does not need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from switchboard.logs import scrubber
from switchboard.protocol.messages import Usage
from switchboard.providers.base import (
    AuthenticationFailed,
    ProviderRequest,
    StreamCallbacks,
    StreamState,
    UpstreamError,
)

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def should_retry(headers: Mapping[str, str]) -> bool | None:
    """What a response's `x-should-retry` header says (Anthropic's API and the gateway send it, and the
    `anthropic` SDK's own retries honour it): a final "no" for a status that alone would be retried (the
    gateway's vendor key refused upstream: a 502 that stays until whoever runs the gateway fixes it), or a
    "yes" for one that would not; None when it is absent."""
    said = headers.get("x-should-retry", "").strip().lower()
    return True if said == "true" else False if said == "false" else None


_sdk_import: asyncio.Future[Any] | None = None


async def load_sdk() -> Any:
    """Imports the SDK off the event loop: the import takes over a second and must not stall other requests.

    Every caller awaits the same import, so none sees a half-initialized module. The import runs in a
    daemon thread so that an editor closing the server right after start does not wait for it.
    """
    global _sdk_import
    if _sdk_import is None:
        _sdk_import = _import_in_background("anthropic")
    return await asyncio.shield(_sdk_import)


def _import_in_background(module: str) -> asyncio.Future[Any]:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def deliver(outcome: Any, failed: bool) -> None:
        if not future.done():
            future.set_exception(outcome) if failed else future.set_result(outcome)

    def work() -> None:
        try:
            outcome, failed = importlib.import_module(module), False
            # The SDK adds ~200k long-lived objects; freezing them keeps full collections (and the pauses
            # they cause in every other request) short.
            gc.freeze()
        except BaseException as exc:
            outcome, failed = exc, True
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting any more
            loop.call_soon_threadsafe(deliver, outcome, failed)

    threading.Thread(target=work, name=f"import-{module}", daemon=True).start()
    return future


class AnthropicProvider:
    def __init__(self, *, api_key: str, base_url: str | None, timeout: float, max_retries: int) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout
        self._max_retries = max_retries
        self._client: AsyncAnthropic | None = None

    async def _sdk(self) -> AsyncAnthropic:
        client = self._client
        if client is None:
            anthropic = await load_sdk()
            client = anthropic.AsyncAnthropic(
                api_key=self._api_key,
                base_url=self._base_url,
                max_retries=self._max_retries,
                timeout=anthropic.Timeout(self._timeout, connect=min(self._timeout, 10.0)),
            )
            self._client = client
        return client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def stream(self, request: ProviderRequest, state: StreamState, callbacks: StreamCallbacks) -> None:
        """Streams the answer into `state`, calling back per delta.

        Raises UpstreamError or AuthenticationFailed.
        """
        try:
            await self._stream(request, state, callbacks)
        except (UpstreamError, AuthenticationFailed):
            raise
        except Exception as exc:
            raise _classify(exc, mid_stream=state.started) from exc

    async def _stream(self, request: ProviderRequest, state: StreamState, callbacks: StreamCallbacks) -> None:
        kwargs: dict[str, Any] = {
            "model": request.anthropic_model,
            "system": request.system,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "stream": True,
        }
        if request.thinking_budget:
            kwargs["thinking"] = {"type": "enabled", "budget_tokens": request.thinking_budget}
        sdk = await self._sdk()
        stream = await sdk.messages.create(**kwargs)
        async with stream:
            async for event in stream:
                apply_event(event, state, callbacks)


def apply_event(event: Any, state: StreamState, callbacks: StreamCallbacks) -> None:
    kind = event.type
    if kind == "message_start":
        state.started = True
        state.usage = _usage(event.message.usage, state.usage)
    elif kind == "content_block_delta":
        delta = event.delta
        if delta.type == "text_delta":
            state.text += delta.text
            callbacks.on_text(delta.text)
        elif delta.type == "thinking_delta":
            state.thinking += delta.thinking
            callbacks.on_thinking(delta.thinking)
        elif delta.type == "signature_delta":
            state.thinking_signature = delta.signature
    elif kind == "message_delta":
        state.stop_reason = event.delta.stop_reason
        state.usage = _usage(event.usage, state.usage)
        state.output_reported = True


def _usage(reported: Any, previous: Usage) -> Usage:
    """Merges a usage report into what is known (message_delta repeats or omits the input counts)."""

    def pick(name: str) -> int:
        value = getattr(reported, name, None)
        return int(value) if value is not None else getattr(previous, name)

    return Usage(
        input_tokens=pick("input_tokens"),
        output_tokens=pick("output_tokens"),
        cache_read_input_tokens=pick("cache_read_input_tokens"),
        cache_creation_input_tokens=pick("cache_creation_input_tokens"),
    )


def _classify(exc: Exception, *, mid_stream: bool) -> Exception:
    import anthropic
    import httpx2

    if isinstance(exc, anthropic.AuthenticationError):
        return AuthenticationFailed(scrubber.scrub(str(exc)))
    if isinstance(exc, anthropic.APIStatusError):
        # An `error` event inside a 200 stream carries no HTTP error status.
        status = None if exc.status_code < 400 else exc.status_code
        error_type = exc.type or _body_error_type(exc.body) or "api_error"
        # The answer's `x-should-retry` first, as the SDK's retries go by it; the status only without it.
        retryable = should_retry(exc.response.headers)
        if retryable is None:
            retryable = (
                status in RETRYABLE_STATUSES if status is not None else error_type != "invalid_request_error"
            )
        detail = exc.api_message or str(exc)
        where = f"HTTP {status}" if status else "an error mid-answer"
        return UpstreamError(
            f"The Anthropic API returned {where} ({error_type}): {detail}",
            status=status,
            type=error_type,
            retryable=retryable,
        )
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return UpstreamError(
            "The Anthropic API stopped responding.", status=None, type="timeout", retryable=True
        )
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        where = "mid-answer" if mid_stream else "before answering"
        return UpstreamError(
            f"The connection to the Anthropic API failed {where}.",
            status=None,
            type="connection_error",
            retryable=True,
        )
    if isinstance(exc, json.JSONDecodeError | anthropic.APIResponseValidationError | ValueError):
        return UpstreamError(
            "The Anthropic API sent a response Switchboard could not read.",
            status=None,
            type="malformed_response",
            retryable=True,
        )
    log.exception("Unexpected error from the Anthropic SDK")
    return UpstreamError(
        f"Unexpected upstream error: {type(exc).__name__}", status=None, type="unknown", retryable=True
    )


def _body_error_type(body: object) -> str | None:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return error["type"]
    return None
