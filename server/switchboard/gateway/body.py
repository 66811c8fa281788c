"""A `POST /v1/messages` body: read it within `max_body_bytes`, and parse a large one off the event loop.

Parsing is what a body costs, and what it costs is the number of JSON values it makes, not its bytes: a
32 MiB base64 image is one string (about 0.1 s, 32 MiB), 32 MiB of `{},` is eleven million dictionaries
(seconds, and over a gigabyte). Two bounds keep one replica answering while it reads such bodies:

- `turn_request.parse_turn` refuses a body that could make more than `max_body_json_items` values before
  parsing it (400), counted from its bytes (`turn_request.json_items`).
- A body over `INLINE_BYTES` is parsed (and, if it must be, re-encoded) on this replica's one large-body
  thread, one at a time, so the event loop goes on answering other requests and only one large parse's
  objects are in memory at once. A body waits its turn at most `WAIT_SECONDS`, behind at most
  `MAX_WAITING` others; past either it gets a retryable 503 (the SDK retries it with the same turn id).
  The thread holds the GIL while C code parses, so the loop still pauses, but for the parse's slices
  between Python calls, not for the whole parse (docs/gateway.md, "Large bodies").
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request

from .config import GatewaySettings
from .errors import GatewayRefusal
from .turn_request import TurnRequest, parse_turn

# Below this a body is parsed on the event loop: even at its densest (`{},` repeated) it makes at most
# about 90,000 values, some 30 ms; an ordinary body this size parses in well under a millisecond, less
# than a thread's hand-over would add to the turn's way to its first token.
INLINE_BYTES = 128 * 1024
MAX_WAITING = 8  # large bodies waiting for the thread, beyond the one it parses
WAIT_SECONDS = 10.0  # the longest a large body waits for the thread before a retryable 503

T = TypeVar("T")


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body; raises `GatewayRefusal` (413) past `limit` bytes, declared or sent."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise error_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise error_too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise client_closed() from None  # an upload the user stopped: nothing to log as an error
    return b"".join(chunks)


def client_closed() -> GatewayRefusal:
    """The client left before its turn was sent upstream: 499, as nginx logs it (nobody reads the answer)."""
    return GatewayRefusal(499, "api_error", "The client closed the request.", retry=True)


def error_too_large(limit: int) -> GatewayRefusal:
    return GatewayRefusal(413, "request_too_large", f"The request body is larger than {limit} bytes.")


def error_busy() -> GatewayRefusal:
    return GatewayRefusal(
        503,
        "overloaded_error",
        "This gateway replica is reading other large requests; retry shortly.",
        retry=True,
        headers={"retry-after": "1"},
    )


class LargeBodies:
    """A replica's one thread for large bodies, and its queue (see the module's docstring)."""

    def __init__(self, *, max_waiting: int = MAX_WAITING, wait_seconds: float = WAIT_SECONDS) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="switchboard-large-body")
        self._max_waiting, self._wait_seconds = max_waiting, wait_seconds
        self._lock = threading.Lock()
        self._queued = 0  # submitted and not finished: the one parsing and those waiting

    async def parse(self, headers: Headers, raw: bytes, settings: GatewaySettings) -> TurnRequest:
        """`parse_turn`, on the event loop for a small body, on the thread for a large one."""
        betas = tuple(settings.allowed_betas)

        def parse() -> TurnRequest:
            return parse_turn(headers, raw, max_items=settings.max_body_json_items, allowed_betas=betas)

        return parse() if len(raw) <= INLINE_BYTES else await self.run(parse)

    async def upstream_body(self, turn: TurnRequest, model: str) -> bytes:
        """`turn.upstream_body(model)`, re-encoded on the thread when the body is large."""
        if len(turn.raw_body) <= INLINE_BYTES or turn.body_as_sent(model) is not None:
            return turn.upstream_body(model)
        return await self.run(lambda: turn.upstream_body(model))

    async def run(self, job: Callable[[], T]) -> T:
        """`job()` on the thread, after those before it; raises the retryable 503 when the queue is full
        or the job did not start within `wait_seconds`. A job whose request is cancelled before it
        starts is dropped; one that started finishes (its values are bounded by `max_body_json_items`)."""
        with self._lock:
            if self._queued > self._max_waiting:
                raise error_busy()
            self._queued += 1
        try:
            future = self._executor.submit(job)
        except BaseException:
            self._finished(None)
            raise
        future.add_done_callback(self._finished)
        waiting = asyncio.wrap_future(future)
        try:
            return await asyncio.wait_for(asyncio.shield(waiting), self._wait_seconds)
        except TimeoutError:
            if future.cancel():  # still waiting: give its place back
                raise error_busy() from None
            return await waiting  # started just now: let it finish
        except asyncio.CancelledError:
            future.cancel()
            raise

    def _finished(self, _: Future[Any] | None) -> None:
        with self._lock:
            self._queued -= 1
